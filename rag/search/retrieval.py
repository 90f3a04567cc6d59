"""Retrieval: dense (Chroma) and lexical (BM25) candidates, fused by weighted standard scores.

Entry point: :func:`hybrid_search` = :func:`gather` (the searches) then :func:`rank` (the
fusion, :mod:`rag.search.fusion`). The signals fused:

- dense: cosine similarity of the question's e5 embedding with each chunk; always counts
  fully.
- lexical: BM25 over the stemmed index, weighed by how much of the question the index
  knows at all (:func:`rag.search.fusion.lexical_weight`): an English question over Indonesian
  articles shares only names and numbers with them, and its BM25 ranking counts little.
- topic, for a follow-up: how many of the names the conversation so far mentioned a
  candidate's article holds ("Jin Li leads hybrid cloud" before "and public cloud?"), so
  the conversation's article rises over other companies' cloud news.
- one per publication the question names ("according to Fortune ... as reported by The
  Age"): whether a candidate comes from it. The publication's own best candidates (the
  same dense and lexical searches restricted to its articles) join the pool, its chunks
  rise together, and its best candidate by the fused score is placed right after the
  best overall (two named outlets that fill the pool cancel each other's lift). A
  question that compares two outlets needs an article from each; without this the
  better-matching outlet fills the prompt.

Filters (``where``, Chroma's metadata syntax) apply to every search. :func:`dense_search`
is the embedding alone, the baseline. Does not rerank with a cross-encoder.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Callable, Sequence

from rag.lang import detect_lang
from rag.models import Embedder
from rag.search.fusion import Signal, fuse, lexical_weight
from rag.search.when import TimeQuery, without_time
from rag.store import ChromaStore
from rag.store.lexical import analyze
from rag.text import question_terms
from rag.types import Hit, Retrieval, published_date, published_day

# Candidates taken from each publication a question names (and each period it asks about).
PER_PUBLICATION = 10
#: How much "latest / terbaru" lifts newer candidates (a signal's weight; dense counts 1).
RECENCY_WEIGHT = 0.5

#: Threads for the BM25 search that runs beside the dense one (one a question in flight).
_LEXICAL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kabar-bm25")

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


def _words(hit: Hit) -> set[str]:
    return {w.lower() for w in _WORD.findall(hit.chunk.title + " " + hit.chunk.text)}


def topic_counts(hits: Sequence[Hit], names: set[str]) -> dict[str, float]:
    """How many of ``names`` each chunk's document holds, by chunk id (every chunk, 0 for none).

    A document counts by its best candidate chunk, so every candidate chunk of an article
    about the conversation's subject rises, not only the chunk that repeats the names.
    """
    held = {h.chunk.id: len(names & _words(h)) for h in hits}
    best: dict[str, int] = {}
    for h in hits:
        best[h.chunk.doc_id] = max(best.get(h.chunk.doc_id, 0), held[h.chunk.id])
    return {h.chunk.id: float(best[h.chunk.doc_id]) for h in hits}


def mentioned_publications(query: str, publications: dict[str, list[str]]) -> list[list[str]]:
    """The source values of each publication named in ``query`` (whole words, case as written)."""
    found = []
    for name, sources in publications.items():
        if re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", query):
            found.append(sources)
    return found


def _restrict(where: dict[str, Any] | None, only: dict[str, Any]) -> dict[str, Any]:
    return {"$and": [where, only]} if where else only


@dataclass(frozen=True)
class Period:
    """Publication days a question asks about (:mod:`rag.search.when`): from ``first`` to ``last``."""

    first: int  # YYYYMMDD, as chunks' ``published_day``
    last: int

    def holds(self, hit: Hit) -> bool:
        day = published_day(hit.chunk.published)
        return day is not None and self.first <= day <= self.last

    def where(self) -> dict[str, Any]:
        return {"$and": [{"published_day": {"$gte": self.first}}, {"published_day": {"$lte": self.last}}]}


def _day(d: date) -> int:
    return int(d.strftime("%Y%m%d"))


def periods(when: TimeQuery | None) -> list[Period]:
    """What retrieval weighs for ``when``: its period, and each day it names (a day either
    side: a page's date and a report's date may sit in different time zones)."""
    if not when:
        return []
    out = []
    if when.since or when.until:
        out.append(Period(_day(when.since or date.min), _day(when.until or date.max)))
    out += [Period(_day(d - timedelta(1)), _day(d + timedelta(1))) for d in when.days]
    return out


@dataclass
class Candidates:
    """What the searches found for one question, before fusion (see :func:`gather`)."""

    dense: list[Hit]
    lexical: list[Hit]
    lexical_weight: float = 1.0
    # Per publication the question names: its source values, its dense and its lexical candidates.
    outlets: list[tuple[list[str], list[Hit], list[Hit]]] = field(default_factory=list)
    topic: set[str] = field(default_factory=set)  # names of the conversation so far, less the question's
    # Chunks of the whole collection holding each lexical term of the query and of its content
    # terms (rag.text.question_terms), and chunks in all: read once, for fusion and the refusal gate.
    doc_counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    # Per period the question asks about (rag.search.when): as per outlet.
    periods: list[tuple[Period, list[Hit], list[Hit]]] = field(default_factory=list)
    latest: bool = False  # the question asks for the newest articles


def gather(store: ChromaStore, embedder: Embedder, query: str, n: int, where: dict[str, Any] | None = None,
           lang: str = "", topic: str = "", when: TimeQuery | None = None) -> Candidates:
    """Every search :func:`hybrid_search` fuses, ``n`` candidates each (see the module doc)."""
    lang = lang or detect_lang(query)
    outlets = mentioned_publications(query, store.publications())
    dated = periods(when)

    def lexical() -> tuple[list[Hit], dict[str, int], int]:
        # One BM25 search serves every signal: an outlet's lexical candidates are its chunks
        # among the first 4 * PER_PUBLICATION overall, as a filtered search would find them.
        found = store.lexical_query(query, max(n, 4 * PER_PUBLICATION) if outlets or dated else n, where, lang)
        counts, total = store.lexical_doc_counts(query + "\n" + " ".join(question_terms(query)), lang)
        return found, counts, total

    # BM25 (SQLite) runs while the question is embedded and searched densely (numpy, Chroma):
    # both release the GIL, and the question's vector alone takes 15-40 ms.
    searching = _LEXICAL.submit(lexical)
    vector = embedder.embed_query(query)
    dense = store.query(vector, n, where)
    lexical_all, counts, total = searching.result()
    per_outlet = [(sources, store.query(vector, PER_PUBLICATION, _restrict(where, {"source": {"$in": sources}})),
                   [h for h in lexical_all if h.chunk.source in sources][:PER_PUBLICATION]) for sources in outlets]
    per_period = [(p, store.query(vector, PER_PUBLICATION, _restrict(where, p.where())),
                   [h for h in lexical_all if p.holds(h)][:PER_PUBLICATION]) for p in dated]
    topic_only = topic_names(topic) - query_names(query) if topic else set()
    # BM25 counts only when it found something; its weight is over the query's own terms.
    own = {t: counts[t] for t in sorted(set(analyze(query, lang))) if t in counts} if lexical_all else {}
    return Candidates(dense, lexical_all[:n], lexical_weight(own, total if lexical_all else 0), per_outlet,
                      topic_only, counts, total, per_period, bool(when and when.latest))


@dataclass(frozen=True)
class Facet:
    """One restriction a question names, a publication or a period: which candidates belong to
    it, its own dense and lexical candidates, and whether its best candidate takes a place at
    the head of the ranking."""

    signal: str
    holds: Callable[[Hit], bool]
    dense: list[Hit]
    lexical: list[Hit]
    slot: bool


def facets(c: Candidates) -> list[Facet]:
    """The outlets, then the periods, of ``c`` as facets. Every named outlet has a place at the
    head; periods only when there are several (reports of several days compared)."""
    out = [Facet("outlet", lambda h, s=sources: h.chunk.source in s, d, lx, True) for sources, d, lx in c.outlets]
    return out + [Facet("period", p.holds, d, lx, len(c.periods) > 1) for p, d, lx in c.periods]


def rank(candidates: Candidates, k: int) -> list[Hit]:
    """The ``k`` best candidates by the fused score of their signals (see the module doc)."""
    c = candidates
    named = facets(c)
    by_id: dict[str, Hit] = {}
    for h in c.dense + [h for f in named for h in f.dense]:
        by_id.setdefault(h.chunk.id, Hit(h.chunk, 0.0)).dense_score = h.score
    for h in c.lexical + [h for f in named for h in f.lexical]:
        by_id.setdefault(h.chunk.id, Hit(h.chunk, 0.0)).lexical_score = h.score
    signals = [Signal("dense", {h.chunk.id: h.score for h in c.dense}),
               Signal("lexical", {h.chunk.id: h.score for h in c.lexical}, c.lexical_weight)]
    pool = list(by_id.values())
    for f in named:
        # Whether a candidate comes from a publication the question names (or was published in a
        # period it asks about): those chunks rise together, in the order the other signals give them.
        signals.append(Signal(f.signal, {h.chunk.id: float(f.holds(h)) for h in pool}))
    if c.latest:
        # "latest / terbaru": newer candidates rise, by half as much as the other signals count.
        days = {h.chunk.id: float(d.toordinal()) for h in pool if (d := published_date(h.chunk.published))}
        signals.append(Signal("recency", days, RECENCY_WEIGHT))
    if c.topic:
        signals.append(Signal("topic", topic_counts(pool, c.topic)))
    # Candidates only a publication's own search found are scored too (each signal's lowest).
    fused = fuse(signals, by_id)
    ranked = sorted(pool, key=lambda h: -fused[h.chunk.id])
    # Two named outlets that fill the pool cancel each other's lift: each also puts its best
    # candidate right after the best of all, so that a question comparing them sees both.
    head = ranked[:1]
    for f in named:
        best = next((h for h in ranked if f.holds(h)), None) if f.slot else None
        if best is not None and best not in head:
            head.append(best)
    ranked = (head + [h for h in ranked if h not in head])[:k]
    for h in ranked:
        h.score = fused[h.chunk.id]
    return ranked


def hybrid_search(store: ChromaStore, embedder: Embedder, query: str, k: int, candidates: int = 30,
                  where: dict[str, Any] | None = None, lang: str = "", topic: str = "",
                  when: TimeQuery | None = None) -> Retrieval:
    """The ``k`` best chunks for ``query``, dense and lexical candidates fused, with what the
    search learned on the way (:class:`~rag.types.Retrieval`).

    ``topic`` is the text of the conversation so far, for follow-ups; ``when`` the dates the
    question asks about (:func:`rag.search.when.read_time`; see the module doc). Only chunks
    of whole documents are returned (:meth:`ChromaStore.whole`).
    """
    store.refresh()  # another process may have written since the last question
    lang = lang or detect_lang(query)
    found = gather(store, embedder, query, max(k, candidates), where, lang, topic, when)
    # Rank every candidate, then keep to whole documents, then take k: a half-written
    # document's chunks must not take the places of whole ones.
    hits = store.whole(rank(found, len(found.dense) + len(found.lexical) + sum(
        len(f.dense) + len(f.lexical) for f in facets(found))))[:k]
    return Retrieval(hits, lang, [sources for sources, _, _ in found.outlets], found.doc_counts, found.total,
                     when.describe() if when else "", without_time(query, when) if when else "")


def dense_search(store: ChromaStore, embedder: Embedder, query: str, k: int,
                 where: dict[str, Any] | None = None) -> list[Hit]:
    """The ``k`` chunks closest to ``query`` by the embedding alone: the baseline hybrid search must beat."""
    store.refresh()
    hits = store.whole(store.query(embedder.embed_query(query), k, where))
    return [Hit(h.chunk, h.score, dense_score=h.score) for h in hits]
