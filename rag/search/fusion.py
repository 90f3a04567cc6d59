"""Fusion: one ranking from several scored signals, each weighed by what it can know.

Entry point: :func:`fuse`. Each :class:`Signal` scores some candidates (cosine similarity,
BM25, the names a chunk shares with the question). Raw scores are not comparable across
signals, and ranks throw away how far apart the candidates are, so each signal's scores
are turned into standard scores over its own candidates (``(s - mean) / sd``): a passage
that stands out from the rest scores high, a tie of twenty passages scores zero for all of
them, whatever the units. A candidate a signal did not return gets that signal's lowest
standard score (it scored no better than the last one returned). The fused score is the
weighted sum.

The weights say how much a signal can know about this question. The dense signal always
counts fully. The lexical one counts by :func:`lexical_weight`: the share of the question
(by inverse document frequency) that occurs in the collection at all. An Indonesian
question over Indonesian articles scores near 1; an English question over Indonesian
articles shares only names and numbers with them and scores near 0.2, so its BM25
ranking, built on one or two words, cannot outvote the embedding.

What the signals are, and which candidates they score, is :mod:`rag.search.retrieval`'s business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence


@dataclass
class Signal:
    """One source of evidence: scores for some candidates (higher is better) and its weight."""

    name: str
    scores: Mapping[str, float]
    weight: float = 1.0


def standard_scores(scores: Mapping[str, float]) -> tuple[dict[str, float], float]:
    """Each score as ``(s - mean) / sd`` over ``scores``, and the lowest of them (the floor).

    All zero when the scores do not vary (one candidate, or a tie): such a signal cannot
    tell its candidates apart.
    """
    if not scores:
        return {}, 0.0
    values = list(scores.values())
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if sd <= 1e-12 * max(1.0, abs(mean)):
        return {key: 0.0 for key in scores}, 0.0
    z = {key: (s - mean) / sd for key, s in scores.items()}
    return z, min(z.values())


def fuse(signals: Sequence[Signal], candidates: Iterable[str] = ()) -> dict[str, float]:
    """Fused score of every candidate any signal scored, and of ``candidates``: the weighted sum
    of standard scores (a signal's lowest for a candidate it did not score)."""
    fused: dict[str, float] = dict.fromkeys(candidates, 0.0)
    for signal in signals:
        for key in signal.scores:
            fused.setdefault(key, 0.0)
    for signal in signals:
        if signal.weight == 0 or not signal.scores:
            continue
        z, floor = standard_scores(signal.scores)
        for key in fused:
            fused[key] += signal.weight * z.get(key, floor)
    return fused


def idf(doc_count: int, total: int) -> float:
    """Inverse document frequency as BM25 weighs a term (Lucene's form, never negative)."""
    return math.log(1.0 + (total - doc_count + 0.5) / (doc_count + 0.5))


def lexical_weight(doc_counts: Mapping[str, int], total: int) -> float:
    """Share of the query's terms, weighed by IDF, that occur in the collection at all.

    ``doc_counts`` maps each query term to the number of chunks holding it (0: none).
    A term the collection never uses carries the most weight, so a question whose key
    words the articles never use gets a small lexical weight however common its
    other words are. 0.0 for a query with no terms.
    """
    if not doc_counts or total <= 0:
        return 0.0
    weights = {term: idf(n, total) for term, n in doc_counts.items()}
    whole = sum(weights.values())
    found = sum(w for term, w in weights.items() if doc_counts[term] > 0)
    return found / whole if whole else 0.0
