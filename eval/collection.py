"""The collection a question set runs against: ``eval-<set>-<key>``, built once and reused.

The key hashes the corpus bytes, ``chunk_tokens``, ``chunk_overlap``, the embedding model id
and the chunking code, so a collection is reused as long as none of these change; a small
JSON marker (``<data dir>/eval/collections/<collection>.json``) written after ingestion says
the collection is complete. An interrupted ingestion leaves no marker; the next run resumes
it (documents already stored unchanged are not embedded again).
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from eval.dataset import EvalSet
from rag.models import Embedder
from rag.settings import Settings
from rag.store import ChromaStore
from rag.types import content_hash


@dataclass
class EvalCollection:
    """The collection a set's questions run against."""

    settings: Settings
    store: ChromaStore
    reused: bool = False
    ingest_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def chunker_fingerprint() -> str:
    """Hash of the code that decides what a chunk holds: chunking, cleaning, loading, the embedded text.

    Part of the collection key, so that a change to the chunker never leaves a stale cache
    behind (even an edit to a comment in those files means embedding the corpus again).
    """
    import ingest.chunk
    import ingest.clean
    from ingest.load import document_from_record, load_text_file
    from ingest.pipeline import embedding_text

    return content_hash(inspect.getsource(ingest.chunk), inspect.getsource(ingest.clean),
                        inspect.getsource(document_from_record), inspect.getsource(load_text_file),
                        inspect.getsource(embedding_text))


def collection_key(corpus_digest: str, chunk_tokens: int, chunk_overlap: int, embedding_model: str,
                   chunker: str = "") -> str:
    """16 hex digits that change whenever the corpus, the chunking or the embedding model does."""
    return content_hash(corpus_digest, str(chunk_tokens), str(chunk_overlap), embedding_model, chunker)


def collection_name(set_name: str, key: str) -> str:
    """``eval-<set>-<key>``, within Chroma's naming rules."""
    safe = re.sub(r"[^a-z0-9]+", "-", set_name.lower()).strip("-")[:40] or "set"
    return f"eval-{safe}-{key}"


def marker_path(settings: Settings, collection: str) -> Path:
    return settings.data_dir / "eval" / "collections" / f"{collection}.json"


def ensure_collection(eval_set: EvalSet, settings: Settings, embedder: Embedder, rebuild: bool = False,
                      progress: Callable[[int, int], None] | bool = False) -> EvalCollection:
    """The set's collection, ingested unless a complete one with the same key exists."""
    from ingest.pipeline import ingest_documents

    if not eval_set.has_corpus:
        return EvalCollection(settings, ChromaStore.from_settings(settings, embedder.model_id), reused=True)
    chunker = chunker_fingerprint()
    key = collection_key(eval_set.corpus_digest, settings.chunk_tokens, settings.chunk_overlap, embedder.model_id,
                         chunker)
    name = collection_name(eval_set.name, key)
    s = settings.with_(collection=name)
    marker = marker_path(s, name)
    store = ChromaStore.from_settings(s, embedder.model_id)
    expected = {"collection": name, "corpus_sha256": eval_set.corpus_digest, "chunk_tokens": s.chunk_tokens,
                "chunk_overlap": s.chunk_overlap, "embedding_model": embedder.model_id, "chunker": chunker}
    notes: list[str] = []
    if rebuild:
        try:
            store.client.delete_collection(name)
        except Exception:  # absent already
            pass
        marker.unlink(missing_ok=True)
        store = ChromaStore.from_settings(s, embedder.model_id)
    elif marker.is_file():
        try:
            done = json.loads(marker.read_text(encoding="utf-8"))
        except ValueError:
            done = {}
        if all(done.get(k) == v for k, v in expected.items()) and done.get("chunks") == store.count():
            return EvalCollection(s, store, reused=True, ingest_s=0.0, notes=notes)
        marker.unlink(missing_ok=True)
        notes.append(f"collection {name} was left incomplete; resuming its ingestion")
    started = time.perf_counter()
    docs = eval_set.documents()
    report = ingest_documents(docs, store, embedder, s.chunk_tokens, s.chunk_overlap, s.embed_batch_size, progress)
    seconds = time.perf_counter() - started
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({**expected, "set": str(eval_set.path), "documents": len({d.id for d in docs}),
                                  "chunks": store.count(), "ingest_s": round(seconds, 2),
                                  "chunks_written": report.chunks_written,
                                  "completed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
                                 indent=2) + "\n", encoding="utf-8")
    return EvalCollection(s, store, reused=False, ingest_s=seconds, notes=notes)
