"""How a chunk is kept in Chroma: its metadata, read back into a :class:`~rag.types.Chunk`, and
which of a document's stored versions is whole (:func:`complete_versions`).

Every chunk carries its document's id, title, outlet, language, address, publication date
(also as ``published_day``, a number that date filters compare), hash and chunk count, and
its own position and offsets, so a search hit can be cited without another read.
"""

from __future__ import annotations

from typing import Any, Sequence

from rag.types import Chunk, alternatives_from_json, alternatives_json, published_day

META_FIELDS = ("doc_id", "title", "source", "lang", "url", "published", "doc_hash", "author")


def chunk_meta(c: Chunk, now: float, n_chunks: int) -> dict[str, Any]:
    """The Chroma metadata of chunk ``c`` of a document of ``n_chunks`` chunks, written at ``now``."""
    meta: dict[str, Any] = {name: getattr(c, name) for name in META_FIELDS}
    meta.update(position=c.position, start=c.start, end=c.end, ingested_at=now, n_chunks=n_chunks)
    if c.page:
        meta["page"] = c.page
    if c.alternatives:
        meta["alternatives"] = alternatives_json(c.alternatives)
    day = published_day(c.published)
    if day is not None:
        meta["published_day"] = day
    return meta


def chunk_from_meta(chunk_id: str, text: str, meta: Any) -> Chunk:
    """The chunk a stored id, text and metadata describe."""
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
        **{name: str(meta.get(name, "")) for name in META_FIELDS if name != "doc_id"},
    )


def complete_versions(ids: Sequence[str], metas: Sequence[dict[str, Any]]) -> dict[str, set[str]]:
    """Each document's newest complete version, as its chunk ids (documents with none left out).

    A version is the chunks of a document sharing a ``doc_hash``; it is complete when it holds
    ``n_chunks`` chunks at positions 0..n-1 (chunks that do not record ``n_chunks`` count as
    complete). The newest is the one written last (``ingested_at``).
    """
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
    return {doc_id: chunk_ids for doc_id, (_, chunk_ids) in keep.items()}
