"""The store: chunks in Chroma, with a lexical index (SQLite FTS5) beside it.

Owns everything that keeps or finds stored chunks: the Chroma client, embedded or server
(:mod:`~rag.store.client`); the collection itself (:mod:`~rag.store.chroma`:
:class:`ChromaStore`); the BM25 index with metadata and vector copies
(:mod:`~rag.store.lexical`); Chroma's filters outside Chroma (:mod:`~rag.store.where`) and the
fast filtered dense search built on them (:mod:`~rag.store.prefilter`); the write journal
that keeps one writer at a time (:mod:`~rag.store.journal`); the repair of a vector index a
killed process damaged (:mod:`~rag.store.salvage`); chunk metadata (:mod:`~rag.store.meta`).

Leaves ranking and fusing what it finds to :mod:`rag.search`, and embedding to
:mod:`rag.models`: the store is handed vectors, never text to embed.
"""

from rag.store.chroma import ChromaStore, DocumentInfo, DocWrite

__all__ = ["ChromaStore", "DocWrite", "DocumentInfo"]
