"""Rebuilding an embedded Chroma collection whose vector index a killed process damaged.

Chroma applies its write log to the on-disk HNSW index on the next read. A process killed
while that index was being written (4 of 252 ``kabar ingest`` runs killed at a random
moment of their writing, measured here) can leave index files that no longer agree, and
from then on every read of the collection fails with "Failed to apply logs to the hnsw
segment writer". Nothing in Chroma repairs it.

The lexical index beside the collection holds every chunk's text, metadata and a copy of
its vector, one whole version per document (:mod:`rag.store.lexical`). Entry point:
:func:`rebuild_from_lexical` moves the damaged folder aside (renamed, never deleted) and
writes a new collection from that copy: no re-embedding, every document as whole as the
lexical index had it. A document a killed write was replacing comes back in its previous
version; the write journal still names it, so the next ingest writes it again.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from rag.errors import StoreError
from rag.store.lexical import LexicalIndex

log = logging.getLogger(__name__)


def is_damaged_index(error: Exception) -> bool:
    """True for the error every read raises once the collection's HNSW files disagree."""
    return "hnsw segment" in str(error).lower()


def rebuild_from_lexical(folder: Path, lexical: LexicalIndex, make_client: Callable[[], Any],
                         open_collection: Callable[[Any], Any], batch: int = 1000) -> Any:
    """Move ``folder`` (the embedded store) aside and refill a new collection from ``lexical``;
    returns the new client.

    ``make_client`` opens a fresh client on ``folder``, ``open_collection`` opens or creates the
    collection in it. Call it holding the write journal's lock: when another process rebuilt
    the collection while this one waited, its collection is opened instead. Raises
    StoreError, leaving the folder where it was, when a chunk has no vector copy.
    """
    client = make_client()
    try:
        open_collection(client).count()
        return client  # readable again: another process rebuilt it
    except StoreError as e:
        if not is_damaged_index(e):
            raise
    missing = lexical.missing_vectors(0, 1)
    if missing:
        raise StoreError(f"the vector index in {folder} is damaged (a process was killed while writing it), and "
                         f"some chunks (e.g. {missing[0][1]!r}) have no vector copy to rebuild it from: move "
                         f"{folder} aside and run `kabar ingest` on your articles again")
    aside = folder.with_name(f"{folder.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    folder.rename(aside)
    started = time.perf_counter()
    client = make_client()
    col = open_collection(client)
    written = 0
    for rows, vectors in lexical.pages(batch):
        if vectors is None:  # written meanwhile without copies: cannot happen under the journal's lock
            raise StoreError(f"the lexical index lost vector copies while {folder} was being rebuilt")
        col.upsert(ids=[cid for cid, _, _ in rows], documents=[text for _, text, _ in rows],
                   metadatas=[meta for _, _, meta in rows], embeddings=vectors.tolist())
        written += len(rows)
    log.warning("the vector index in %s was damaged (a process was killed while writing it): rebuilt it from the "
                "lexical index's copies (%d chunks, %.1f s); the damaged folder is kept as %s",
                folder, written, time.perf_counter() - started, aside)
    return client
