"""The vector store: one Chroma collection of chunks.

:class:`ChromaStore` works the same on an embedded ``PersistentClient`` (a folder in the
data directory) and on a Chroma server (``HttpClient``, when a host is configured). The
collection records the embedding model that filled it; opening it with another model is
an :class:`~rag.errors.EmbeddingMismatchError`. Chunk metadata carries everything needed
to rebuild a :class:`~rag.types.Chunk` and to cite it. Dense scores are cosine similarities.

Every write goes to Chroma first, then to the :class:`~rag.store.lexical.LexicalIndex` beside
it, and stamps the collection with a new revision that the lexical index records.

Another process may write the same collection (``kabar ingest`` while the chat page
answers): :meth:`ChromaStore.refresh`, called before each search, notices the new revision.
The lexical index then catches up document by document (only what changed is indexed
again), and an embedded store reopens its Chroma client, whose vector index would otherwise
never see the other process's chunks (Chroma's embedded client is not process-safe: one
writer at a time, which the write journal ensures on one machine; more use a Chroma
server). Searches keep only chunks of each document's newest complete version
(:meth:`ChromaStore.whole`), so an answer never reads half of a document that is still being
written. On a Chroma server, a failure to reach it is a :class:`~rag.errors.StoreError` that
says what to check, and the next call after it is back works. A filtered dense search asks
the lexical index which chunks pass first (:mod:`rag.store.prefilter`).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from rag.errors import EmbeddingMismatchError, StoreError
from rag.settings import Settings
from rag.store.client import Guarded, is_server, make_client, store_error, store_location
from rag.store.journal import WriteJournal
from rag.store.lexical import LexicalIndex, Row
from rag.store.meta import chunk_from_meta, chunk_meta, complete_versions
from rag.store.prefilter import filtered_query
from rag.store.salvage import is_damaged_index, rebuild_from_lexical
from rag.store.where import where_matches, where_sql
from rag.types import Chunk, DocumentInfo, Hit, day_date, published_day


@dataclass
class DocWrite:
    """One document's new chunks and their vectors; ``doc_meta`` goes on its first chunk only."""

    doc_id: str
    chunks: list[Chunk]
    vectors: list[Sequence[float]]
    doc_meta: dict[str, Any] = field(default_factory=dict)


#: Revisions this process stamped or has read through its current client: a store that sees
#: one of them needs no fresh client.
_WRITTEN_HERE: set[str] = set()
#: Per embedded store folder, the client every store of this process should use now, with a
#: generation number: when one store reopens, the others take the same fresh client.
_CURRENT: dict[str, tuple[int, Any]] = {}
_CURRENT_LOCK = threading.Lock()


class ChromaStore:
    """Chunks and their vectors in one Chroma collection."""

    def __init__(self, client: Any, collection: str, embedding_model: str,
                 lexical: LexicalIndex | None = None, journal: WriteJournal | None = None, where: str = "",
                 reopen: Callable[[], Any] | None = None) -> None:
        """``where`` names the store in messages; ``reopen`` makes a fresh client of an embedded
        store (see :meth:`refresh`)."""
        self.client = client
        self.name = collection
        self.embedding_model = embedding_model
        self.lexical = lexical
        self.journal = journal
        self.where = where or "the Chroma store"
        self._server = is_server(client)
        self._reopen = reopen
        self._generation = _CURRENT.get(self.where, (0, None))[0]
        self._refresh_lock = threading.Lock()
        self._col = self._open_collection(client)
        if reopen is not None and lexical is not None:
            self._salvage()
        stored = (self._col.metadata or {}).get("embedding_model")
        if stored and stored != embedding_model:
            raise EmbeddingMismatchError(
                f"collection {collection!r} was built with embedding model {stored!r}, but {embedding_model!r} "
                f"is configured; set KABAR_EMBED_MODEL (and KABAR_EMBED_BASE_URL) back to what built it, "
                f"or use another KABAR_COLLECTION or data directory"
            )
        self._revision = str((self._col.metadata or {}).get("revision", ""))
        self._publications: tuple[str, dict[str, list[str]]] | None = None
        #: The documents the last catch-up with another writer indexed again (see refresh).
        self.lexical_caught_up: list[str] = []
        self._recover()
        if lexical is not None and lexical.revision != self._revision:
            if lexical.count() == 0:
                lexical.rebuild(self.iter_rows(), self._revision)
            else:
                self._catch_up_lexical(self._revision)
        if lexical is not None and not lexical.vectors_complete:
            self._copy_vectors()

    def _open_collection(self, client: Any) -> Guarded:
        try:
            return Guarded(client.get_or_create_collection(
                name=self.name,
                metadata={"embedding_model": self.embedding_model},
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            ), self.where, self._server)
        except Exception as e:
            raise StoreError(f"cannot open collection {self.name!r}: {store_error(e, self.where, self._server)}"
                             ) from e

    def _salvage(self) -> None:
        """Rebuild an embedded collection whose vector index a killed process damaged (:mod:`rag.store.salvage`)."""
        assert self._reopen is not None and self.lexical is not None
        try:
            self._col.count()  # the first read applies Chroma's log to its index, or fails
            return
        except StoreError as e:
            if not is_damaged_index(e):
                raise
        folder = Path(self.client.get_settings().persist_directory)
        with self.journal.exclusive() if self.journal is not None else nullcontext():
            client = rebuild_from_lexical(folder, self.lexical, self._reopen, self._open_collection)
            with _CURRENT_LOCK:
                generation = max(_CURRENT.get(self.where, (0, None))[0], self._generation) + 1
                self._adopt(client, generation)
                _CURRENT[self.where] = (generation, client)
            self._bump_revision()

    @classmethod
    def from_settings(cls, settings: Settings, embedding_model: str) -> "ChromaStore":
        reopen = None if settings.chroma_host else (lambda: make_client(settings, fresh=True))
        return cls(make_client(settings), settings.collection, embedding_model,
                   LexicalIndex(lexical_path(settings)), WriteJournal(journal_path(settings)),
                   where=store_location(settings), reopen=reopen)

    def _bump_revision(self) -> None:
        self._revision = uuid.uuid4().hex
        _WRITTEN_HERE.add(self._revision)
        self._col.modify(metadata={"embedding_model": self.embedding_model, "revision": self._revision})
        if self.lexical is not None:
            self.lexical.set_revision(self._revision)

    def _writing(self, doc_ids: Sequence[str]) -> Any:
        return self.journal.writing(doc_ids) if self.journal is not None else nullcontext()

    # -- writing -------------------------------------------------------------------

    def _batch(self) -> int:
        try:
            return int(self.client.get_max_batch_size())
        except Exception:
            return 1000

    def _get(self, ids: Sequence[str] = (), doc_ids: Sequence[str] = (), include: Sequence[str] = ("metadatas",)
             ) -> tuple[list[str], list[str], list[dict[str, Any]], list[Sequence[float]]]:
        """Ids, texts, metadata and (when ``include`` names them) vectors of the given chunks, or
        of every chunk of the given documents."""
        out_ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        vectors: list[Sequence[float]] = []
        keys, field_ = (list(ids), "ids") if ids else (sorted(set(doc_ids)), "doc_id")
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            if field_ == "ids":
                res = self._col.get(ids=part, include=list(include))
            else:
                res = self._col.get(where={"doc_id": {"$in": part}}, include=list(include))
            out_ids += res["ids"]
            texts += list(res.get("documents") or [""] * len(res["ids"]))
            metas += [dict(m or {}) for m in (res.get("metadatas") or [{}] * len(res["ids"]))]
            if "embeddings" in include:
                vectors += list(res["embeddings"])
        return out_ids, texts, metas, vectors

    def write_documents(self, docs: Sequence[DocWrite]) -> int:
        """Make each document's chunks exactly the given ones; returns how many old chunks were removed.

        Crash-safe: the documents are noted in the journal first; new chunks (each carrying
        its document's hash and chunk count) go to Chroma in as few calls as Chroma allows,
        then stale ones are deleted, then the lexical index follows in one transaction. A
        writer killed anywhere in between leaves the note, and the next open keeps each
        noted document's newest complete version only (see :meth:`_repair`).
        """
        docs = [d for d in docs if d.chunks]
        if not docs:
            return 0
        for d in docs:
            if len(d.chunks) != len(d.vectors):
                raise StoreError(f"{len(d.chunks)} chunks but {len(d.vectors)} vectors for document {d.doc_id!r}")
        doc_ids = [d.doc_id for d in docs]
        self._recover()  # a write of this process that failed (the server went away) is repaired first
        with self._writing(doc_ids):
            self._refresh_client()
            old, _, _, _ = self._get(doc_ids=doc_ids, include=())
            now = time.time()
            chunks: list[Chunk] = []
            vectors: list[Sequence[float]] = []
            metadatas: list[dict[str, Any]] = []
            for d in docs:
                for c, v in zip(d.chunks, d.vectors):
                    meta = chunk_meta(c, now, len(d.chunks))
                    if c.position == 0:
                        meta.update(d.doc_meta)
                    chunks.append(c)
                    vectors.append(v)
                    metadatas.append(meta)
            size = self._batch()
            for i in range(0, len(chunks), size):
                part = slice(i, i + size)
                self._col.upsert(ids=[c.id for c in chunks[part]], embeddings=[list(v) for v in vectors[part]],
                                 documents=[c.text for c in chunks[part]], metadatas=metadatas[part])
            stale = sorted(set(old) - {c.id for c in chunks})
            for i in range(0, len(stale), size):
                self._col.delete(ids=stale[i : i + size])
            if self.lexical is not None:
                self.lexical.replace_documents(doc_ids, [(c.id, c.text, m) for c, m in zip(chunks, metadatas)],
                                               vectors)
            self._bump_revision()
        return len(stale)

    def delete_document(self, doc_id: str) -> int:
        """Remove a document's chunks; returns how many were removed."""
        self._recover()
        ids = self.chunk_ids(doc_id)
        if ids:
            with self._writing([doc_id]):
                self._refresh_client()
                self._col.delete(ids=ids)
                if self.lexical is not None:
                    self.lexical.replace_documents([doc_id], [])
                self._bump_revision()
        return len(ids)

    def update_document_metadata(self, doc_id: str, values: dict[str, Any]) -> int:
        """Set metadata fields on every chunk of a document (no re-embedding); returns the chunks changed."""
        with self._writing([doc_id]):
            ids, texts, metas, vectors = self._get(doc_ids=[doc_id],
                                                   include=("documents", "metadatas", "embeddings"))
            if not ids:
                return 0
            for meta in metas:
                meta.update(values)
            self._col.update(ids=ids, metadatas=metas)
            if self.lexical is not None:
                self.lexical.replace_documents([doc_id], list(zip(ids, texts, metas)), vectors)
            self._bump_revision()
        return len(ids)

    # -- recovery ------------------------------------------------------------------

    def _recover(self) -> None:
        """Repair the documents a killed writer left noted in the journal (see :meth:`write_documents`)."""
        if self.journal is None:
            return
        with self.journal.recovering() as doc_ids:
            if doc_ids is None:
                return
            self._repair(doc_ids)

    def _repair(self, doc_ids: Sequence[str]) -> None:
        """Keep each document's newest complete version in Chroma, and the lexical rows to match.

        A version is the chunks sharing a ``doc_hash``; it is complete when it holds
        ``n_chunks`` chunks at positions 0..n-1. A document with no complete version is removed.
        """
        ids, _, metas, _ = self._get(doc_ids=doc_ids)
        keep = complete_versions(ids, metas)
        kept = set().union(*keep.values()) if keep else set()
        doomed = [cid for cid in ids if cid not in kept]
        size = self._batch()
        for i in range(0, len(doomed), size):
            self._col.delete(ids=doomed[i : i + size])
        if self.lexical is not None:
            kept_ids, texts, kept_metas, vectors = self._get(ids=sorted(kept),
                                                             include=("documents", "metadatas", "embeddings"))
            self.lexical.replace_documents(list(doc_ids), list(zip(kept_ids, texts, kept_metas)), vectors)
        self._bump_revision()

    # -- reading -------------------------------------------------------------------

    def chunk_ids(self, doc_id: str) -> list[str]:
        return list(self._col.get(where={"doc_id": doc_id}, include=[])["ids"])

    def doc_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """Stored content hash of each given document that is in the store."""
        self._recover()  # a document half written by a failed write is not "stored unchanged"
        wanted = sorted(set(doc_ids))
        found: dict[str, str] = {}
        for i in range(0, len(wanted), 500):
            res = self._col.get(where={"doc_id": {"$in": wanted[i : i + 500]}}, include=["metadatas"])
            for meta in res["metadatas"] or []:
                found[str(meta["doc_id"])] = str(meta.get("doc_hash", ""))
        return found

    def count(self) -> int:
        """Number of chunks."""
        return int(self._col.count())

    def documents(self) -> list[DocumentInfo]:
        """Every stored document with its chunk count, newest first."""
        infos: dict[str, DocumentInfo] = {}
        total = self.count()
        for offset in range(0, total, 5000):
            res = self._col.get(include=["metadatas"], limit=5000, offset=offset)
            for meta in res["metadatas"] or []:
                doc_id = str(meta["doc_id"])
                info = infos.get(doc_id)
                if info is None:
                    infos[doc_id] = DocumentInfo(
                        doc_id=doc_id, chunks=1, ingested_at=float(meta.get("ingested_at", 0.0)),
                        **{k: str(meta.get(k, "")) for k in ("title", "source", "lang", "published", "author", "url")})
                else:
                    info.chunks += 1
        return sorted(infos.values(), key=lambda d: (-d.ingested_at, d.title))

    def publications(self) -> dict[str, list[str]]:
        """Publication names of the stored sources and the source values each stands for.

        A source such as "The Independent - Sports" is known by its name before " - ", " | " or
        ": " ("The Independent"). File paths and URLs are not publications. Computed once per
        collection revision.
        """
        if self._publications is not None and self._publications[0] == self._revision:
            return self._publications[1]
        names: dict[str, set[str]] = {}
        total = self.count()
        for offset in range(0, total, 5000):
            res = self._col.get(include=["metadatas"], limit=5000, offset=offset)
            for meta in res["metadatas"] or []:
                source = str(meta.get("source", ""))
                if not source or "/" in source or "\\" in source:
                    continue
                name = re.split(r"\s+[-|]\s+|:\s+", source, maxsplit=1)[0].strip()
                if len(name) >= 3:
                    names.setdefault(name, set()).add(source)
        found = {name: sorted(values) for name, values in names.items()}
        self._publications = (self._revision, found)
        return found

    def newest_day(self) -> date | None:
        """The publication date of the newest stored article (None: no article has a date)."""
        if self.lexical is not None:
            day = self.lexical.newest_day()
        else:
            days = [published_day(str(m.get("published", ""))) for m in self.first_chunk_metadata()]
            day = max((d for d in days if d), default=None)
        return day_date(day) if day is not None else None

    def iter_rows(self, page: int = 2000) -> Iterator[Row]:
        """Every stored chunk as ``(id, text, metadata)`` (no vectors), page by page."""
        total = self.count()
        for offset in range(0, total, page):
            res = self._col.get(include=["documents", "metadatas"], limit=page, offset=offset)
            for i, t, m in zip(res["ids"], res["documents"] or [], res["metadatas"] or []):
                yield i, t or "", dict(m or {})

    def first_chunk_metadata(self, page: int = 2000) -> Iterator[dict[str, Any]]:
        """The metadata of every document's first chunk, where per-document data lives (``DocWrite.doc_meta``)."""
        offset = 0
        while True:
            res = self._col.get(where={"position": 0}, include=["metadatas"], limit=page, offset=offset)
            metas = res["metadatas"] or []
            for meta in metas:
                yield dict(meta or {})
            if len(metas) < page:
                return
            offset += page

    def get_chunks(self, doc_id: str) -> list[Chunk]:
        """A document's chunks in order."""
        res = self._col.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        rows = zip(res["ids"], res["documents"] or [], res["metadatas"] or [])
        chunks = [chunk_from_meta(i, t, m) for i, t, m in rows]
        return sorted(chunks, key=lambda c: c.position)

    def query(self, vector: Sequence[float], k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        """The ``k`` chunks closest to ``vector``, best first."""
        if k <= 0:
            raise StoreError(f"k must be greater than 0. Currently, k is {k}.")
        include = ["documents", "metadatas", "distances"]
        res = None
        if where and self.lexical is not None:
            # The lexical index decides which chunks pass (rag.store.prefilter); searches refresh() first.
            res = filtered_query(self._col, self.lexical, vector, k, where, self.count, include)
        if res is None:
            # Chroma returns fewer than n_results when the collection (or the filter) holds fewer.
            res = self._col.query(query_embeddings=[list(vector)], n_results=k, where=where or None,
                                  include=include)
        ids, docs, metas, dists = res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]
        # A vector index that lags the metadata (another process deleted the chunk) returns the
        # id without metadata: the chunk is gone.
        return [Hit(chunk_from_meta(i, t or "", m), 1.0 - float(d)) for i, t, m, d in zip(ids, docs, metas, dists) if m]

    # -- other writers ---------------------------------------------------------------

    def _stored_revision(self) -> str:
        try:
            meta = self.client.get_collection(self.name, embedding_function=None).metadata or {}
        except Exception as e:
            raise StoreError(f"cannot read collection {self.name!r}: {store_error(e, self.where, self._server)}"
                             ) from e
        return str(meta.get("revision", ""))

    def refresh(self) -> bool:
        """Catch up with what another process wrote since this store last looked; True if it had.

        One metadata read when nothing changed. Otherwise an embedded store reopens its Chroma
        client (its vector index would not see the other process's chunks) and the lexical
        index re-indexes only the documents that changed (:meth:`_catch_up_lexical`).
        """
        with self._refresh_lock:
            revision = self._stored_revision()
            if revision == self._revision:
                return False
            self._refresh_client(revision)
            self._revision = revision
            if self.lexical is not None and self.lexical.revision != revision:
                self._catch_up_lexical(revision)
            return True

    def _refresh_client(self, revision: str | None = None) -> None:
        """Give an embedded store a fresh client when the collection's revision is another
        process's; all stores of this process on the same folder move to it together."""
        if self._reopen is None:
            return
        with _CURRENT_LOCK:
            generation, client = _CURRENT.get(self.where, (0, None))
            if client is not None and generation != self._generation:
                self._adopt(client, generation)  # another store here reopened already
            revision = self._stored_revision() if revision is None else revision
            if revision in _WRITTEN_HERE or revision == self._revision or not revision:
                return
            try:
                client = self._reopen()
            except StoreError:
                raise
            except Exception as e:
                raise store_error(e, self.where, self._server) from e
            generation = max(generation, self._generation) + 1
            self._adopt(client, generation)
            _CURRENT[self.where] = (generation, client)
            _WRITTEN_HERE.add(revision)  # the shared client has read it now

    def _adopt(self, client: Any, generation: int) -> None:
        try:
            col = client.get_collection(self.name, embedding_function=None)
        except Exception as e:
            raise store_error(e, self.where, self._server) from e
        self.client, self._col, self._generation = client, Guarded(col, self.where, self._server), generation

    def _catch_up_lexical(self, revision: str) -> None:
        """Bring the lexical index in line with Chroma by re-indexing only the documents that
        differ: chunks added or removed, or a first chunk whose metadata changed."""
        lexical = self.lexical
        assert lexical is not None
        indexed = lexical.chunk_docs()
        stored = set(self._all_ids())
        changed = {indexed[cid] for cid in indexed.keys() - stored}
        added = sorted(stored - indexed.keys())
        if added:
            _, _, metas, _ = self._get(ids=added)
            changed |= {str(m.get("doc_id", "")) for m in metas}
        firsts = lexical.first_chunks()
        for meta in self.first_chunk_metadata():
            doc_id = str(meta.get("doc_id", ""))
            if doc_id not in changed and firsts.get(doc_id) != meta:
                changed.add(doc_id)
        if changed:
            ids, texts, metas, vectors = self._get(doc_ids=sorted(changed),
                                                   include=("documents", "metadatas", "embeddings"))
            lexical.replace_documents(sorted(changed), list(zip(ids, texts, metas)), vectors)
        lexical.set_revision(revision)
        self.lexical_caught_up = sorted(changed)

    def _copy_vectors(self, page: int = 2000) -> None:
        """Copy from Chroma the vector of every chunk the lexical index has none for (an index
        rebuilt from Chroma's rows, or written before it kept copies; see
        :meth:`rag.store.lexical.LexicalIndex.passing_vectors`)."""
        lexical = self.lexical
        assert lexical is not None
        after = 0
        while missing := lexical.missing_vectors(after, page):
            after = missing[-1][0]
            res = self._col.get(ids=[cid for _, cid in missing], include=["embeddings"])
            lexical.set_vectors(res["ids"], res["embeddings"])
        lexical.mark_vectors_complete()

    def _all_ids(self, page: int = 5000) -> Iterator[str]:
        total = self.count()
        for offset in range(0, total, page):
            yield from self._col.get(include=[], limit=page, offset=offset)["ids"]

    def whole(self, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` less any chunk that is not part of its document's newest complete version.

        A document being written (here or by another process) has old and new chunks side by
        side for a moment, and a new one may be missing some; a search keeps to what was whole
        when it looked, so an answer never reads half a document or two versions of one.
        """
        doc_ids = sorted({h.chunk.doc_id for h in hits})
        if not doc_ids:
            return list(hits)
        if self.lexical is not None:
            # The lexical index replaces a document's rows in one transaction once its new version
            # is in Chroma, and catches up with other writers' finished writes in refresh(): its
            # rows are one whole version per document, read through an index (Chroma's own
            # metadata filter scans the collection: 65 ms a question at 10,000 chunks).
            ids, metas = self.lexical.doc_chunks(doc_ids)
        else:
            ids, _, metas, _ = self._get(doc_ids=doc_ids)
        keep = complete_versions(ids, metas)
        return [h for h in hits if h.chunk.id in keep.get(h.chunk.doc_id, ())]

    def lexical_query(self, text: str, k: int, where: dict[str, Any] | None = None, lang: str = "") -> list[Hit]:
        """The ``k`` best BM25 matches for ``text`` (empty without a lexical index), best first."""
        if self.lexical is None:
            return []
        self.refresh()
        if where and where_sql(where) is not None:
            # The index applies the filter inside the search (source and date are indexed there).
            ranked = self.lexical.search(text, k, lang, where)
            return [Hit(chunk_from_meta(cid, t, meta), score) for (cid, t, meta), score in ranked]
        # Over-fetch when filtering: BM25 ranks before the filter applies.
        ranked = self.lexical.search(text, k * 4 if where else k, lang)
        if where and ranked and where_matches(where, {}) is None:
            # A filter this module cannot evaluate (decided by its syntax alone): Chroma applies it.
            res = self._col.get(ids=[cid for (cid, _, _), _ in ranked], where=where, include=[])
            allowed = set(res["ids"])
            ranked = [r for r in ranked if r[0][0] in allowed]
        elif where:
            ranked = [r for r in ranked if where_matches(where, r[0][2])]
        return [Hit(chunk_from_meta(cid, t, meta), score) for (cid, t, meta), score in ranked[:k]]

    def lexical_doc_counts(self, text: str, lang: str = "") -> tuple[dict[str, int], int]:
        """How many chunks hold each lexical term of ``text``, and how many chunks there are in all
        (the whole collection, whatever filter a search applies)."""
        if self.lexical is None:
            return {}, 0
        self.refresh()
        return self.lexical.doc_counts(text, lang), self.lexical.count()


def _local_name(settings: Settings) -> str:
    where = f"{settings.chroma_host}-{settings.chroma_port}-" if settings.chroma_host else ""
    return f"{where}{settings.collection}"


def lexical_path(settings: Settings) -> Path:
    """Where the lexical index of the configured collection lives (always on this machine)."""
    return settings.data_dir / "lexical" / f"{_local_name(settings)}.sqlite"


def journal_path(settings: Settings) -> Path:
    """Where writes to the configured collection note what they are changing (see :mod:`rag.store.journal`)."""
    return settings.data_dir / "journal" / f"{_local_name(settings)}.json"
