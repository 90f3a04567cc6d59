"""Retrieval: dense (Chroma), lexical (BM25) and their fusion.

Entry point: :func:`hybrid_search`. Dense and lexical candidates are fused by reciprocal
rank fusion (RRF: ``sum 1 / (k + rank)``), which needs no score calibration between
cosine similarities and BM25. A third, small ranking favours candidates that contain the
names the question mentions (capitalised words such as "Huawei" or "Jin Li"): names are
what an English question and an Indonesian article share, and neither the embedding nor
BM25 weighs them above common words like "cloud". Filters (``where``, Chroma's metadata
syntax) apply to both searches. Does not rerank with a cross-encoder.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from rag.embeddings import Embedder
from rag.store import ChromaStore
from rag.types import Hit

RRF_K = 60

_NAME = re.compile(r"(?<![.?!]\s)(?<!^)\b[A-Z][\w&-]*|\b[A-Z]{2,}\b|\b\d[\d.,]*\b")
_WORD = re.compile(r"[^\W_]+")


def query_names(query: str) -> set[str]:
    """Capitalised words (not sentence-initial), acronyms and numbers in the query, lowercased."""
    return {m.group(0).lower().strip(".,") for m in _NAME.finditer(query.strip())} - {""}


def name_ranking(hits: Sequence[Hit], names: set[str]) -> list[str]:
    """Chunk ids ordered by how many of ``names`` they contain (those with none left out)."""
    if not names:
        return []
    counts = []
    for i, h in enumerate(hits):
        words = {w.lower() for w in _WORD.findall(h.chunk.title + " " + h.chunk.text)}
        n = len(names & words)
        if n:
            counts.append((-n, i, h.chunk.id))
    return [cid for _, _, cid in sorted(counts)]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    """Fused score of every id over several best-first rankings."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def hybrid_search(store: ChromaStore, embedder: Embedder, query: str, k: int, candidates: int = 30,
                  where: dict[str, Any] | None = None, lang: str = "") -> list[Hit]:
    """The ``k`` best chunks for ``query`` by RRF over dense and lexical candidates."""
    n = max(k, candidates)
    dense = store.query(embedder.embed_query(query), n, where)
    lexical = store.lexical_query(query, n, where, lang)
    if not lexical:
        return [Hit(h.chunk, h.score, dense_score=h.score) for h in dense[:k]]
    rankings = [[h.chunk.id for h in dense], [h.chunk.id for h in lexical]]
    by_id: dict[str, Hit] = {}
    for h in dense:
        by_id[h.chunk.id] = Hit(h.chunk, 0.0, dense_score=h.score)
    for h in lexical:
        hit = by_id.setdefault(h.chunk.id, Hit(h.chunk, 0.0))
        hit.lexical_score = h.score
    rankings.append(name_ranking(list(by_id.values()), query_names(query)))
    fused = reciprocal_rank_fusion(rankings)
    ranked = sorted(by_id.values(), key=lambda h: -fused[h.chunk.id])[:k]
    for h in ranked:
        h.score = fused[h.chunk.id]
    return ranked
