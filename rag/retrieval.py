"""Retrieval: dense (Chroma), lexical (BM25) and their fusion.

Entry point: :func:`hybrid_search`. Dense and lexical candidates are fused by reciprocal
rank fusion (RRF: ``sum 1 / (k + rank)``), which needs no score calibration between
cosine similarities and BM25. A third, small ranking favours candidates that contain the
names the question mentions (capitalised words such as "Huawei" or "Jin Li"): names are
what an English question and an Indonesian article share, and neither the embedding nor
BM25 weighs them above common words like "cloud". For a follow-up, a fourth ranking keeps
the conversation's topic: articles naming what the previous turn named ("Jin Li leads
hybrid cloud" before "and public cloud?") rise over other companies' cloud news. Filters (``where``, Chroma's metadata
syntax) apply to both searches. Does not rerank with a cross-encoder.

Questions that name publications ("according to Fortune ... as reported by The Age") get,
for each publication named, one more ranking: the same search restricted to that
publication's articles. A question that compares two outlets needs an article from each;
without this the better-matching outlet fills the prompt.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from rag.embeddings import Embedder
from rag.store import ChromaStore
from rag.types import Hit

RRF_K = 60
# Candidates taken from each publication a question names.
PER_PUBLICATION = 10

_NAME = re.compile(r"(?<![.?!]\s)(?<!^)\b[A-Z][\w&-]*|\b[A-Z]{2,}\b|\b\d[\d.,]*\b")
_WORD = re.compile(r"[^\W_]+")


def query_names(query: str) -> set[str]:
    """Capitalised words (not sentence-initial), acronyms and numbers in the query, lowercased."""
    return {m.group(0).lower().strip(".,") for m in _NAME.finditer(query.strip())} - {""}


_MULTIWORD_NAME = re.compile(r"\b[A-Z][\w&-]*(?:\s+[A-Z][\w&-]*)+")
_CITATION = re.compile(r"\[\d+\]")


def topic_names(text: str) -> set[str]:
    """Names in the conversation so far: as :func:`query_names`, plus multi-word names even at
    the start of a sentence ("Jin Li leads..."), without citation markers or bare numbers."""
    text = _CITATION.sub(" ", text)
    names = {n for n in query_names(text) if not n[0].isdigit()}
    for m in _MULTIWORD_NAME.finditer(text):
        names.update(w.lower() for w in m.group(0).split())
    return names


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


def topic_ranking(hits: Sequence[Hit], names: set[str]) -> list[str]:
    """Chunk ids of the documents that contain ``names``, documents with more of them first.

    A document counts by its best candidate chunk, so every candidate chunk of an article
    about the conversation's subject rises, not only the chunk that repeats the names.
    """
    if not names:
        return []
    best: dict[str, int] = {}
    for h in hits:
        words = {w.lower() for w in _WORD.findall(h.chunk.title + " " + h.chunk.text)}
        best[h.chunk.doc_id] = max(best.get(h.chunk.doc_id, 0), len(names & words))
    ranked = sorted((-best[h.chunk.doc_id], i, h.chunk.id) for i, h in enumerate(hits) if best[h.chunk.doc_id])
    return [cid for _, _, cid in ranked]


def mentioned_publications(query: str, publications: dict[str, list[str]]) -> list[list[str]]:
    """The source values of each publication named in ``query`` (whole words, case as written)."""
    found = []
    for name, sources in publications.items():
        if re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", query):
            found.append(sources)
    return found


def _restrict(where: dict[str, Any] | None, sources: list[str]) -> dict[str, Any]:
    only = {"source": {"$in": sources}}
    return {"$and": [where, only]} if where else only


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> dict[str, float]:
    """Fused score of every id over several best-first rankings."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return scores


def hybrid_search(store: ChromaStore, embedder: Embedder, query: str, k: int, candidates: int = 30,
                  where: dict[str, Any] | None = None, lang: str = "", topic: str = "") -> list[Hit]:
    """The ``k`` best chunks for ``query`` by RRF over dense and lexical candidates.

    ``topic`` is the text of the conversation so far, for follow-ups (see the module doc).
    Only chunks of whole documents are returned (:meth:`ChromaStore.whole`).
    """
    n = max(k, candidates)
    store.refresh()  # another process may have written since the last question
    outlets = mentioned_publications(query, store.publications())
    vector = embedder.embed_query(query)
    dense = store.query(vector, n, where)
    # One BM25 search serves every ranking: an outlet's lexical candidates are its chunks
    # among the first 4 * PER_PUBLICATION overall, as a filtered search would find them.
    lexical_all = store.lexical_query(query, max(n, 4 * PER_PUBLICATION) if outlets else n, where, lang)
    lexical = lexical_all[:n]
    if not lexical:
        return [Hit(h.chunk, h.score, dense_score=h.score) for h in store.whole(dense)[:k]]
    rankings = [[h.chunk.id for h in dense], [h.chunk.id for h in lexical]]
    by_id: dict[str, Hit] = {}
    for h in dense:
        by_id[h.chunk.id] = Hit(h.chunk, 0.0, dense_score=h.score)
    for h in lexical:
        hit = by_id.setdefault(h.chunk.id, Hit(h.chunk, 0.0))
        hit.lexical_score = h.score
    for sources in outlets:
        outlet_dense = store.query(vector, PER_PUBLICATION, _restrict(where, sources))
        outlet_lexical = [h for h in lexical_all if h.chunk.source in sources][:PER_PUBLICATION]
        for h in outlet_dense:
            by_id.setdefault(h.chunk.id, Hit(h.chunk, 0.0)).dense_score = h.score
        for h in outlet_lexical:
            by_id.setdefault(h.chunk.id, Hit(h.chunk, 0.0)).lexical_score = h.score
        outlet_scores = reciprocal_rank_fusion([[h.chunk.id for h in outlet_dense],
                                                [h.chunk.id for h in outlet_lexical]])
        rankings.append(sorted(outlet_scores, key=lambda cid: -outlet_scores[cid]))
    pool = list(by_id.values())
    names = query_names(query)
    rankings.append(name_ranking(pool, names))
    if topic:
        rankings.append(topic_ranking(pool, topic_names(topic) - names))
    fused = reciprocal_rank_fusion(rankings)
    ranked = store.whole(sorted(by_id.values(), key=lambda h: -fused[h.chunk.id]))[:k]
    for h in ranked:
        h.score = fused[h.chunk.id]
    return ranked
