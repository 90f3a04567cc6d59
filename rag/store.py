"""The vector store: one Chroma collection of chunks.

:class:`ChromaStore` works the same on an embedded ``PersistentClient`` (a folder in the
data directory) and on a Chroma server (``HttpClient``, when a host is configured). The
collection records the embedding model that filled it; opening it with another model is
an :class:`~rag.errors.EmbeddingMismatchError`. Chunk metadata carries everything needed
to rebuild a :class:`~rag.types.Chunk` and to cite it. Dense scores are cosine similarities.

Every write goes to Chroma first, then to the :class:`~rag.lexical.LexicalIndex` beside
it, and stamps the collection with a new revision that the lexical index records; an
index whose revision or size disagrees with Chroma's is rebuilt when the store opens, and
when a lexical search finds that another writer changed the collection since. A filtered
dense search asks the lexical index which chunks pass first (:mod:`rag.prefilter`).
"""

from __future__ import annotations

import re
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from rag.errors import EmbeddingMismatchError, StoreError
from rag.journal import WriteJournal
from rag.lexical import LexicalIndex, Row
from rag.prefilter import filtered_query
from rag.settings import Settings
from rag.types import Chunk, Hit, alternatives_from_json, alternatives_json, published_day

_META_FIELDS = ("doc_id", "title", "source", "lang", "url", "published", "doc_hash", "author")


@dataclass
class DocWrite:
    """One document's new chunks and their vectors; ``doc_meta`` goes on its first chunk only."""

    doc_id: str
    chunks: list[Chunk]
    vectors: list[Sequence[float]]
    doc_meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class DocumentInfo:
    """A stored document as the store knows it."""

    doc_id: str
    title: str
    source: str
    chunks: int
    ingested_at: float
    lang: str = ""
    published: str = ""
    author: str = ""
    url: str = ""


def make_client(settings: Settings) -> Any:
    """A Chroma client: a server when ``chroma_host`` is set, else the data directory."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_host:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
        path = settings.data_dir / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as e:  # chromadb raises several unrelated types here
        where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(settings.data_dir)
        raise StoreError(f"cannot open the Chroma store at {where}: {e}") from e


class ChromaStore:
    """Chunks and their vectors in one Chroma collection."""

    def __init__(self, client: Any, collection: str, embedding_model: str,
                 lexical: LexicalIndex | None = None, journal: WriteJournal | None = None) -> None:
        self.client = client
        self.name = collection
        self.embedding_model = embedding_model
        self.lexical = lexical
        self.journal = journal
        try:
            self._col = client.get_or_create_collection(
                name=collection,
                metadata={"embedding_model": embedding_model},
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        except Exception as e:
            raise StoreError(f"cannot open collection {collection!r}: {e}") from e
        stored = (self._col.metadata or {}).get("embedding_model")
        if stored and stored != embedding_model:
            raise EmbeddingMismatchError(
                f"collection {collection!r} was built with embedding model {stored!r}, but {embedding_model!r} "
                f"is configured; set KABAR_EMBED_MODEL (and KABAR_EMBED_BASE_URL) back to what built it, "
                f"or use another KABAR_COLLECTION or data directory"
            )
        self._revision = str((self._col.metadata or {}).get("revision", ""))
        self._publications: tuple[str, dict[str, list[str]]] | None = None
        self._recover()
        if lexical is not None and (lexical.revision != self._revision or lexical.count() != self.count()):
            lexical.rebuild(self.iter_rows(), self._revision)

    @classmethod
    def from_settings(cls, settings: Settings, embedding_model: str) -> "ChromaStore":
        return cls(make_client(settings), settings.collection, embedding_model,
                   LexicalIndex(lexical_path(settings)), WriteJournal(journal_path(settings)))

    def _bump_revision(self) -> None:
        self._revision = uuid.uuid4().hex
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
             ) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """Ids, texts and metadata of the given chunks, or of every chunk of the given documents."""
        out_ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
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
        return out_ids, texts, metas

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
        with self._writing(doc_ids):
            old, _, _ = self._get(doc_ids=doc_ids, include=())
            now = time.time()
            chunks: list[Chunk] = []
            vectors: list[Sequence[float]] = []
            metadatas: list[dict[str, Any]] = []
            for d in docs:
                for c, v in zip(d.chunks, d.vectors):
                    meta = _metadata(c, now, len(d.chunks))
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
                self.lexical.replace_documents(doc_ids, [(c.id, c.text, m) for c, m in zip(chunks, metadatas)])
            self._bump_revision()
        return len(stale)

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None:
        """Store chunks with their vectors; an existing id is overwritten (other chunks stay)."""
        if len(chunks) != len(vectors):
            raise StoreError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        by_doc: dict[str, DocWrite] = {}
        for c, v in zip(chunks, vectors):
            by_doc.setdefault(c.doc_id, DocWrite(c.doc_id, [], [])).chunks.append(c)
            by_doc[c.doc_id].vectors.append(v)
        with self._writing(list(by_doc)):
            now = time.time()
            metadatas = [_metadata(c, now, c.n_chunks) for c in chunks]
            size = self._batch()
            for i in range(0, len(chunks), size):
                part = slice(i, i + size)
                self._col.upsert(ids=[c.id for c in chunks[part]], embeddings=[list(v) for v in vectors[part]],
                                 documents=[c.text for c in chunks[part]], metadatas=metadatas[part])
            if self.lexical is not None:
                self.lexical.upsert([(c.id, c.text, m) for c, m in zip(chunks, metadatas)])
            self._bump_revision()

    def replace_document(self, doc_id: str, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> int:
        """Make ``chunks`` the document's only chunks; returns how many old chunks were removed."""
        return self.write_documents([DocWrite(doc_id, list(chunks), list(vectors))])

    def delete_document(self, doc_id: str) -> int:
        """Remove a document's chunks; returns how many were removed."""
        ids = self.chunk_ids(doc_id)
        if ids:
            with self._writing([doc_id]):
                self._col.delete(ids=ids)
                if self.lexical is not None:
                    self.lexical.replace_documents([doc_id], [])
                self._bump_revision()
        return len(ids)

    def update_document_metadata(self, doc_id: str, values: dict[str, Any]) -> int:
        """Set metadata fields on every chunk of a document (no re-embedding); returns the chunks changed."""
        with self._writing([doc_id]):
            ids, texts, metas = self._get(doc_ids=[doc_id], include=("documents", "metadatas"))
            if not ids:
                return 0
            for meta in metas:
                meta.update(values)
            self._col.update(ids=ids, metadatas=metas)
            if self.lexical is not None:
                self.lexical.replace_documents([doc_id], list(zip(ids, texts, metas)))
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
        ids, _, metas = self._get(doc_ids=doc_ids)
        versions: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
        for cid, meta in zip(ids, metas):
            versions.setdefault((str(meta.get("doc_id")), str(meta.get("doc_hash", ""))), []).append((cid, meta))
        keep: dict[str, tuple[float, set[str]]] = {}
        for (doc_id, _), rows in versions.items():
            n = int(rows[0][1].get("n_chunks", 0) or 0)
            positions = sorted(int(m.get("position", -1)) for _, m in rows)
            if n and positions != list(range(n)):
                continue
            when = max(float(m.get("ingested_at", 0.0)) for _, m in rows)
            if doc_id not in keep or when > keep[doc_id][0]:
                keep[doc_id] = (when, {cid for cid, _ in rows})
        kept = set().union(*(v[1] for v in keep.values())) if keep else set()
        doomed = [cid for cid in ids if cid not in kept]
        size = self._batch()
        for i in range(0, len(doomed), size):
            self._col.delete(ids=doomed[i : i + size])
        if self.lexical is not None:
            kept_ids, texts, kept_metas = self._get(ids=sorted(kept), include=("documents", "metadatas"))
            self.lexical.replace_documents(list(doc_ids), list(zip(kept_ids, texts, kept_metas)))
        self._bump_revision()

    # -- reading -------------------------------------------------------------------

    def chunk_ids(self, doc_id: str) -> list[str]:
        return list(self._col.get(where={"doc_id": doc_id}, include=[])["ids"])

    def doc_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """Stored content hash of each given document that is in the store."""
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
                    infos[doc_id] = DocumentInfo(doc_id, str(meta.get("title", "")), str(meta.get("source", "")), 1,
                                                 float(meta.get("ingested_at", 0.0)), str(meta.get("lang", "")),
                                                 str(meta.get("published", "")), str(meta.get("author", "")),
                                                 str(meta.get("url", "")))
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
        chunks = [_chunk(i, t, m) for i, t, m in zip(res["ids"], res["documents"] or [], res["metadatas"] or [])]
        return sorted(chunks, key=lambda c: c.position)

    def query(self, vector: Sequence[float], k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        """The ``k`` chunks closest to ``vector``, best first."""
        if k <= 0:
            raise StoreError(f"k must be greater than 0. Currently, k is {k}.")
        include = ["documents", "metadatas", "distances"]
        res = None
        if where and self.lexical is not None:
            self._sync_lexical()  # the lexical index decides which chunks pass (rag.prefilter)
            res = filtered_query(self._col, self.lexical, vector, k, where, self.count, include)
        if res is None:
            # Chroma returns fewer than n_results when the collection (or the filter) holds fewer.
            res = self._col.query(query_embeddings=[list(vector)], n_results=k, where=where or None,
                                  include=include)
        ids, docs, metas, dists = res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]
        return [Hit(_chunk(i, t, m), 1.0 - float(d)) for i, t, m, d in zip(ids, docs, metas, dists)]

    def _sync_lexical(self) -> None:
        """Rebuild the lexical index if another writer changed the collection since it was built."""
        try:
            meta = self.client.get_collection(self.name, embedding_function=None).metadata or {}
        except Exception as e:
            raise StoreError(f"cannot read collection {self.name!r}: {e}") from e
        revision = str(meta.get("revision", ""))
        if revision != self._revision and self.lexical is not None:
            self._revision = revision
            self.lexical.rebuild(self.iter_rows(), revision)

    def lexical_query(self, text: str, k: int, where: dict[str, Any] | None = None, lang: str = "") -> list[Hit]:
        """The ``k`` best BM25 matches for ``text`` (empty without a lexical index), best first."""
        if self.lexical is None:
            return []
        self._sync_lexical()
        # Over-fetch when filtering: BM25 ranks before the filter applies.
        ranked = self.lexical.search(text, k * 4 if where else k, lang)
        if where and ranked and where_matches(where, {}) is None:
            # A filter this module cannot evaluate (decided by its syntax alone): Chroma applies it.
            res = self._col.get(ids=[cid for (cid, _, _), _ in ranked], where=where, include=[])
            allowed = set(res["ids"])
            ranked = [r for r in ranked if r[0][0] in allowed]
        elif where:
            ranked = [r for r in ranked if where_matches(where, r[0][2])]
        return [Hit(_chunk(cid, t, meta), score) for (cid, t, meta), score in ranked[:k]]


def _local_name(settings: Settings) -> str:
    where = f"{settings.chroma_host}-{settings.chroma_port}-" if settings.chroma_host else ""
    return f"{where}{settings.collection}"


def lexical_path(settings: Settings) -> Path:
    """Where the lexical index of the configured collection lives (always on this machine)."""
    return settings.data_dir / "lexical" / f"{_local_name(settings)}.sqlite"


def journal_path(settings: Settings) -> Path:
    """Where writes to the configured collection note what they are changing (see :mod:`rag.journal`)."""
    return settings.data_dir / "journal" / f"{_local_name(settings)}.json"


_COMPARE = {
    "$eq": lambda a, b: a == b, "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b, "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b, "$lte": lambda a, b: a is not None and a <= b,
    "$in": lambda a, b: a in b, "$nin": lambda a, b: a not in b,
}


def where_matches(where: dict[str, Any], meta: dict[str, Any]) -> bool | None:
    """Whether metadata passes a Chroma ``where`` filter; None for syntax not handled here.

    Covers what :meth:`~rag.types.Filters.where` writes and a little more: ``$and``,
    ``$or``, a bare value (equality) and the comparison operators above.
    """
    if len(where) != 1:
        return None  # Chroma wants one key per dict (or an error): let it say so
    results: list[bool | None] = []
    for key, cond in where.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or len(cond) < 2:
                return None  # Chroma wants two or more
            parts = [where_matches(c, meta) for c in cond]
            if any(p is None for p in parts):
                return None
            results.append(all(parts) if key == "$and" else any(parts))  # type: ignore[arg-type]
        elif key.startswith("$"):
            return None
        elif isinstance(cond, dict):
            if len(cond) != 1 or next(iter(cond)) not in _COMPARE:
                return None
            op, value = next(iter(cond.items()))
            if op in ("$in", "$nin") and not value:
                return None  # Chroma rejects an empty list
            try:
                results.append(bool(_COMPARE[op](meta.get(key), value)))
            except TypeError:  # e.g. a string compared with a number: Chroma matches nothing
                results.append(False)
        else:
            results.append(meta.get(key) == cond)
    return all(results)  # type: ignore[arg-type]


def _metadata(c: Chunk, now: float, n_chunks: int) -> dict[str, Any]:
    meta: dict[str, Any] = {name: getattr(c, name) for name in _META_FIELDS}
    meta.update(position=c.position, start=c.start, end=c.end, ingested_at=now, n_chunks=n_chunks)
    if c.page:
        meta["page"] = c.page
    if c.alternatives:
        meta["alternatives"] = alternatives_json(c.alternatives)
    day = published_day(c.published)
    if day is not None:
        meta["published_day"] = day
    return meta


def _chunk(chunk_id: str, text: str, meta: Any) -> Chunk:
    return Chunk(
        id=chunk_id,
        doc_id=str(meta["doc_id"]),
        text=text,
        position=int(meta.get("position", 0)),
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        page=int(meta.get("page", 0) or 0),
        n_chunks=int(meta.get("n_chunks", 0) or 0),
        alternatives=alternatives_from_json(str(meta.get("alternatives", ""))),
        **{name: str(meta.get(name, "")) for name in _META_FIELDS if name != "doc_id"},
    )
