"""Filtered dense search that stays fast on large collections.

Chroma evaluates a ``where`` filter by collecting every chunk each clause matches (about
6 µs a chunk: a date range holding 40% of a 100,000-chunk collection cost 260 ms a
question), and its search within a given list of ids slows down as the list gets shorter
(the vector graph is walked further to find enough of them). So :func:`filtered_query`
first asks the lexical index, which keeps each chunk's metadata under SQLite indexes on
source and date and a copy of its vector, how many chunks pass, and then picks the
cheapest exact-enough way:

- at most :data:`MAX_SCAN` pass: their vector copies are read from the lexical index and
  scored here, and the best few scored again from Chroma's own vectors (an exact search);
- enough pass that an unfiltered search for at most :data:`MAX_OVERFETCH` candidates
  should hold about ``2 * k`` of them: that search, keeping the candidates that pass
  (~12 ms for a filter passing 40% of 100,000 chunks);
- otherwise Chroma searches the passing ids (at most :data:`MAX_IDS`), else applies the
  filter itself, as it does whenever the index cannot evaluate the filter, lacks vector
  copies, or an approach above comes up short.

The filters themselves are translated by :mod:`rag.store.where`. Does not rank or fuse.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from rag.store.lexical import LexicalIndex

#: Most passing chunks scored from the lexical index's vector copies.
MAX_SCAN = 30_000
#: Candidates beyond ``k`` of that scan that are scored again from Chroma's float32 vectors
#: (the copies are float16: near-equal scores may swap).
RESCORE = 8
#: Most candidates fetched from an unfiltered search to keep those that pass.
MAX_OVERFETCH = 3_000
#: Most ids handed to Chroma's search, and read from the lexical index.
MAX_IDS = 50_000

Result = dict[str, list[Any]]


def filtered_query(col: Any, lexical: "LexicalIndex", vector: Sequence[float], k: int, where: dict[str, Any],
                   total: Callable[[], int], include: Sequence[str]) -> Result | None:
    """Chroma's ``query`` result (one query) for ``where``, or None: let Chroma filter."""
    count = lexical.filter_count(where)
    if count is None:
        return None
    try:
        if count == 0:
            return {name: [[]] for name in ("ids", *include)}
        if count <= MAX_SCAN:
            scanned = lexical.passing_vectors(where)
            if scanned is not None and scanned[0]:
                ids, matrix = scanned
                scores = matrix @ _unit(vector)
                n = min(len(ids), k + RESCORE)
                best = np.argpartition(-scores, n - 1)[:n] if n < len(ids) else np.arange(len(ids))
                return _rescored(col, [ids[i] for i in best], vector, k, include)
        found = lexical.filter_ids(where, MAX_IDS)
        if found is None:
            return None
        ids, count = found
        n = math.ceil(2 * k * total() / count)
        if n <= MAX_OVERFETCH:
            res = col.query(query_embeddings=[list(vector)], n_results=n, include=["distances"])
            candidates, dists = res["ids"][0], res["distances"][0]
            passing = set(ids) if ids else lexical.passing(candidates, where)
            keep = [i for i, cid in enumerate(candidates) if cid in passing][:k]
            if len(keep) >= min(k, count):
                return _fetch(col, [candidates[i] for i in keep], [dists[i] for i in keep], include)
        if ids:
            return dict(col.query(query_embeddings=[list(vector)], n_results=min(k, count), ids=ids,
                                  include=list(include)))
    except Exception:  # noqa: BLE001 - e.g. an id the lexical index has and Chroma no longer: Chroma filters
        return None
    return None


def _unit(vector: Sequence[float]) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _rescored(col: Any, ids: list[str], vector: Sequence[float], k: int, include: Sequence[str]) -> Result:
    """The ``k`` of ``ids`` closest to ``vector`` by Chroma's stored vectors (cosine distance)."""
    got = col.get(ids=ids, include=["embeddings"])
    matrix = np.asarray(got["embeddings"], dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1)
    dists = 1.0 - (matrix @ _unit(vector)) / np.where(norms > 0, norms, 1.0)
    order = np.argsort(dists, kind="stable")[:k]
    return _fetch(col, [got["ids"][i] for i in order], [float(dists[i]) for i in order], include)


def _fetch(col: Any, ids: list[str], dists: list[float], include: Sequence[str]) -> Result:
    """A ``query``-shaped result for ``ids`` (best first) with their distances."""
    got = col.get(ids=ids, include=[i for i in include if i != "distances"])
    at = {cid: i for i, cid in enumerate(got["ids"])}
    order = [cid for cid in ids if cid in at]
    out: Result = {"ids": [order], "distances": [[d for cid, d in zip(ids, dists) if cid in at]]}
    for name in include:
        if name != "distances":
            out[name] = [[got[name][at[cid]] for cid in order]]
    return out
