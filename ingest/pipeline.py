"""The ingest pipeline: files, URLs, feeds -> load -> clean -> chunk -> embed -> store.

Entry point: :func:`ingest`, Kabar's one way in for articles (the ``kabar ingest``
command and the chat page's upload call it; :class:`rag.Assistant` does not ingest).
Unchanged documents (same id, same content hash) are skipped before any embedding; a
changed document's chunks replace its old ones. A new article that is the same story as
a stored one (:mod:`ingest.dedupe`) is not stored again: its outlet, URL and date are
added to the stored one's alternative sources. Documents stream through in groups (a web
archive of any size passes through in the memory of one group), and each group is
written crash-safely by :meth:`rag.store.chroma.ChromaStore.write_documents`, so an
interrupted run keeps every document it finished, whole. Bad inputs are reported in
:class:`IngestReport.errors` and the rest goes on.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Union

from ingest.chunk import chunk_document
from ingest.dedupe import NearDuplicates, signature
from ingest.feeds import FeedState, Unchanged
from ingest.fetch import Fetcher
from ingest.guard import FetchPolicy
from ingest.load import LoadContext, expand_paths, load_file
from rag.assistant import Assistant
from rag.errors import InputError
from rag.models import Embedder
from rag.settings import Settings
from rag.store import ChromaStore, DocWrite
from rag.types import Chunk, Document, alternatives_json

#: progress(done, total) over chunks to embed.
ProgressFn = Callable[[int, int], None]

# Chunks embedded and written per group: big enough to batch well, small enough that an
# interrupted ingest loses little.
GROUP_CHUNKS = 256
# Documents held before a group is chunked: bounds memory while a large archive streams.
GROUP_DOCS = 64


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
    #: (document id, id of the stored document it is a near-duplicate of)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: Of ``seconds``, the time spent inside the embedder.
    embed_seconds: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks_written / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        lines = [
            f"{self.files} input(s): {len(self.new)} new, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged document(s)"
            + (f", {len(self.duplicates)} near-duplicate(s) kept as other sources" if self.duplicates else "")
            + f"; {self.chunks_written} chunk(s) written, "
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

    def update(done: int, total_now: int) -> None:
        bar.total = total_now  # inputs stream in: the total grows as they are read
        bar.update(done - bar.n)

    return update, bar.close


class _Writer:
    """Groups documents, skips unchanged ones, folds near-duplicates, embeds and writes."""

    def __init__(self, store: ChromaStore, embedder: Embedder, chunk_tokens: int, chunk_overlap: int,
                 batch_size: int, progress: ProgressFn | bool, report: IngestReport,
                 index: NearDuplicates | None) -> None:
        self.store, self.embedder, self.report, self.index = store, embedder, report, index
        self.chunk_tokens, self.chunk_overlap, self.batch_size = chunk_tokens, chunk_overlap, batch_size
        self.close: Callable[[], None] = _nothing
        self.progress: ProgressFn | None = None
        if progress is True:
            self.progress, self.close = _tqdm_progress(0)
        elif callable(progress):
            self.progress = progress
        self.pending: dict[str, Document] = {}
        self.todo: list[tuple[Document, list[Chunk], dict[str, Any]]] = []
        self.changed_alternatives: set[str] = set()
        self.done = self.total = 0

    def add(self, doc: Document) -> None:
        self.pending.pop(doc.id, None)
        self.pending[doc.id] = doc  # the last of duplicate ids wins
        if len(self.pending) >= GROUP_DOCS:
            self._sort()

    def _sort(self) -> None:
        """Decide what to do with each pending document; flush whenever a group is full."""
        docs, self.pending = list(self.pending.values()), {}
        stored = self.store.doc_hashes(d.id for d in docs)
        for doc in docs:
            if stored.get(doc.id) == doc.hash:
                self.report.unchanged.append(doc.id)
                continue
            doc_meta: dict[str, Any] = dict(doc.extra)
            if self.index is not None:
                folded = self.index.folded.get(doc.id)
                if folded is not None and folded[0] == doc.hash:
                    self.report.unchanged.append(doc.id)  # already kept as another source of folded[1]
                    continue
                sig = signature(doc.text)
                canonical = None if doc.id in stored else self.index.find(doc.id, sig)
                if canonical is not None:
                    self.index.fold(canonical, doc)
                    self.changed_alternatives.add(canonical)
                    self.report.duplicates.append((doc.id, canonical))
                    continue
                self.index.add(doc.id, sig)
                doc_meta.update(sig.encode())
            (self.report.updated if doc.id in stored else self.report.new).append(doc.id)
            chunks = chunk_document(doc, self.chunk_tokens, self.chunk_overlap)
            self.todo = [t for t in self.todo if t[0].id != doc.id]  # a later copy of an id replaces it
            self.todo.append((doc, chunks, doc_meta))
            self.total += len(chunks)
            if sum(len(cs) for _, cs, _ in self.todo) >= GROUP_CHUNKS:
                self._flush()

    def _flush(self) -> None:
        group, self.todo = self.todo, []
        flat = [c for _, cs, _ in group for c in cs]
        started = time.perf_counter()
        vectors = self.embedder.embed_passages([embedding_text(c) for c in flat], self.batch_size) if flat else []
        self.report.embed_seconds += time.perf_counter() - started
        writes, i = [], 0
        alternatives = self.index.alternatives if self.index is not None else {}
        for doc, cs, meta in group:
            for c in cs:
                c.alternatives = list(alternatives.get(doc.id, []))
            writes.append(DocWrite(doc.id, cs, list(vectors[i : i + len(cs)]), meta))
            i += len(cs)
        self.report.chunks_removed += self.store.write_documents(writes)
        self.changed_alternatives -= {doc.id for doc, _, _ in group}
        self._update_alternatives()
        self.report.chunks_written += len(flat)
        self.done += len(flat)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _update_alternatives(self) -> None:
        """Write new alternative sources onto stored documents that are not being rewritten."""
        if self.index is None:
            return
        waiting = {doc.id for doc, _, _ in self.todo}
        for doc_id in sorted(self.changed_alternatives - waiting):
            self.store.update_document_metadata(doc_id, {"alternatives": alternatives_json(
                self.index.alternatives.get(doc_id, []))})
            self.changed_alternatives.discard(doc_id)

    def finish(self) -> None:
        try:
            if self.pending:
                self._sort()
            if self.todo:
                self._flush()
            self._update_alternatives()
        finally:
            self.close()


def ingest_documents(
    docs: Iterable[Document],
    store: ChromaStore,
    embedder: Embedder,
    chunk_tokens: int = 200,
    chunk_overlap: int = 40,
    batch_size: int = 32,
    progress: ProgressFn | bool = False,
    report: IngestReport | None = None,
    dedupe: bool = False,
) -> IngestReport:
    """Chunk, embed and store documents, skipping those already stored unchanged.

    With ``dedupe``, a document that is the same story as a stored one is folded into it
    (see the module docstring); evaluation corpora are ingested without, so that every
    gold document id stays in the store.
    """
    report = report or IngestReport()
    started = time.perf_counter()
    index = NearDuplicates.from_metadata(store.first_chunk_metadata()) if dedupe else None
    writer = _Writer(store, embedder, chunk_tokens, chunk_overlap, batch_size, progress, report, index)
    try:
        for doc in docs:
            writer.add(doc)
    finally:
        writer.finish()
        report.seconds += time.perf_counter() - started
    return report


def ingest(
    paths: Iterable[Union[str, Path]],
    kabar: Assistant | None = None,
    progress: ProgressFn | bool = False,
    dedupe: bool = True,
    fetcher: Fetcher | None = None,
    loopback: bool = False,
) -> IngestReport:
    """Ingest files, folders and URLs into the store; see the module docstring.

    URLs are fetched from the public web only, plus what ``KABAR_FETCH_ALLOW`` opens;
    ``loopback`` also lets URLs given here name this machine (the command line's
    choice: see :mod:`ingest.guard`).

    ``kabar``: the :class:`~rag.assistant.Assistant` whose settings, store and embedder
    receive the articles (default: one with settings from the environment).
    """
    kabar = kabar or Assistant(Settings.from_env())
    settings, store, embedder = kabar.settings, kabar.store, kabar.embedder
    started = time.perf_counter()
    files, errors, skipped = expand_paths(paths)
    report = IngestReport(files=len(files), errors=list(errors), skipped=[str(p) for p in skipped])
    index = NearDuplicates.from_metadata(store.first_chunk_metadata()) if dedupe else None
    writer = _Writer(store, embedder, settings.chunk_tokens, settings.chunk_overlap, settings.embed_batch_size,
                     progress, report, index)

    def is_stored(doc_id: str) -> bool:
        return (index is not None and doc_id in index.folded) or bool(store.doc_hashes([doc_id]))

    feeds = FeedState(settings.data_dir / "feeds.sqlite")
    ctx = LoadContext(max_bytes=int(settings.max_file_mb * 1_000_000), fetcher=fetcher, feeds=feeds,
                      is_stored=is_stored, policy=FetchPolicy.for_settings(settings, loopback=loopback))
    loader = _Loader(files, ctx)
    try:
        for item in loader:
            if isinstance(item, InputError):
                report.errors.append(item)
            elif isinstance(item, Unchanged):
                report.unchanged.append(item.doc_id)
            else:
                writer.add(item)
    finally:
        loader.stop()
        writer.finish()
        feeds.close()
        if fetcher is None and ctx.fetcher is not None:
            ctx.fetcher.close()
        report.seconds = time.perf_counter() - started
    return report


_DONE = object()


class _Loader:
    """Loads the inputs in a thread of its own, a bounded queue ahead of the writer.

    Fetching and extracting the next pages overlaps with embedding the current ones (the
    embedder releases the GIL while it computes), which keeps the time outside the embedder
    small (docs/INGEST.md). The queue holds at most :data:`GROUP_DOCS` items, so a large
    archive never piles up in memory. An exception in the thread is raised in the reader.
    """

    def __init__(self, files: list, ctx: LoadContext) -> None:  # type: ignore[type-arg]
        self._queue: queue.Queue[object] = queue.Queue(maxsize=GROUP_DOCS)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(files, ctx), name="kabar-ingest-loader", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, files: list, ctx: LoadContext) -> None:  # type: ignore[type-arg]
        try:
            for path in files:
                for item in load_file(path, ctx):
                    if not self._put(item):
                        return
        except BaseException as e:  # handed to the reader, which raises it
            self._put(_Failed(e))
        finally:
            self._put(_DONE)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)


@dataclass
class _Failed:
    error: BaseException
