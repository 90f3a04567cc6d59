"""The ingest pipeline: paths -> load -> clean -> chunk -> embed -> store.

Entry point: :func:`ingest`. Unchanged documents (same id, same content hash) are
skipped before any embedding; a changed document's chunks replace its old ones. Work is
written in groups of documents, so an interrupted run keeps what it finished. Bad files
are reported in :class:`IngestReport.errors` and the rest goes on.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Union

from ingest.chunk import chunk_document
from ingest.load import expand_paths, load_file
from rag.embeddings import Embedder, make_embedder
from rag.errors import InputError
from rag.settings import Settings
from rag.store import ChromaStore
from rag.types import Chunk, Document

#: progress(done, total) over chunks to embed.
ProgressFn = Callable[[int, int], None]

# Chunks embedded and written per group: big enough to batch well, small enough that an
# interrupted ingest loses little.
GROUP_CHUNKS = 256


@dataclass
class IngestReport:
    """What an ingest run did."""

    files: int = 0
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    chunks_written: int = 0
    chunks_removed: int = 0
    errors: list[InputError] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_written / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        lines = [
            f"{self.files} file(s): {len(self.new)} new, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged document(s); {self.chunks_written} chunk(s) written, "
            f"{self.chunks_removed} removed in {self.seconds:.1f}s"
            + (f" ({self.chunks_per_s:.1f} chunks/s)" if self.chunks_written else "")
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unsupported file(s) in folders")
        for err in self.errors:
            lines.append(f"error: {err}")
        return "\n".join(lines)


def embedding_text(chunk: Chunk) -> str:
    """What gets embedded for a chunk: its article's title gives it context."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title and chunk.title not in chunk.text else chunk.text


def _nothing() -> None:
    return None


def _tqdm_progress(total: int) -> tuple[ProgressFn, Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="chunk", desc="embedding", file=sys.stderr, leave=False,
               disable=not sys.stderr.isatty())

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def ingest_documents(
    docs: Iterable[Document],
    store: ChromaStore,
    embedder: Embedder,
    chunk_tokens: int = 200,
    chunk_overlap: int = 40,
    batch_size: int = 32,
    progress: ProgressFn | bool = False,
    report: IngestReport | None = None,
) -> IngestReport:
    """Chunk, embed and store documents, skipping those already stored unchanged."""
    report = report or IngestReport()
    started = time.perf_counter()
    by_id: dict[str, Document] = {}
    for doc in docs:
        by_id[doc.id] = doc  # the last of duplicate ids wins
    stored = store.doc_hashes(by_id)
    todo: list[tuple[Document, list[Chunk]]] = []
    for doc in by_id.values():
        if stored.get(doc.id) == doc.hash:
            report.unchanged.append(doc.id)
            continue
        (report.updated if doc.id in stored else report.new).append(doc.id)
        todo.append((doc, chunk_document(doc, chunk_tokens, chunk_overlap)))

    total = sum(len(chunks) for _, chunks in todo)
    close: Callable[[], None] = _nothing
    if progress is True:
        progress, close = _tqdm_progress(total)
    done = 0
    group: list[tuple[Document, list[Chunk]]] = []

    def flush() -> None:
        nonlocal done, group
        flat = [c for _, cs in group for c in cs]
        vectors = embedder.embed_passages([embedding_text(c) for c in flat], batch_size)
        i = 0
        for gdoc, cs in group:
            report.chunks_removed += store.replace_document(gdoc.id, cs, vectors[i : i + len(cs)])
            i += len(cs)
        report.chunks_written += len(flat)
        done += len(flat)
        if callable(progress):
            progress(done, total)
        group = []

    try:
        for doc, chunks in todo:
            group.append((doc, chunks))
            if sum(len(cs) for _, cs in group) >= GROUP_CHUNKS:
                flush()
        if group:
            flush()
    finally:
        close()
        report.seconds += time.perf_counter() - started
    return report


def ingest(
    paths: Iterable[Union[str, Path]],
    settings: Settings | None = None,
    store: ChromaStore | None = None,
    embedder: Embedder | None = None,
    progress: ProgressFn | bool = False,
) -> IngestReport:
    """Ingest files and folders into the store; see the module docstring."""
    settings = settings or Settings.from_env()
    embedder = embedder or make_embedder(settings)
    store = store or ChromaStore.from_settings(settings, embedder.model_id)
    started = time.perf_counter()
    files, errors, skipped = expand_paths(paths)
    report = IngestReport(files=len(files), errors=list(errors), skipped=[str(p) for p in skipped])
    max_bytes = int(settings.max_file_mb * 1_000_000)
    docs: list[Document] = []
    for path in files:
        for item in load_file(path, max_bytes):
            if isinstance(item, InputError):
                report.errors.append(item)
            else:
                docs.append(item)
    ingest_documents(docs, store, embedder, settings.chunk_tokens, settings.chunk_overlap,
                     settings.embed_batch_size, progress, report)
    report.seconds = time.perf_counter() - started
    return report
