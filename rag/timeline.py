"""A story's timeline: the articles about a topic in date order, one short cited line each.

:meth:`rag.assistant.Assistant.timeline` searches the archive for the topic (hybrid search,
the topic's own dates read as in a question), keeps the articles that are about it (the
topic's terms, weighed by rarity, mostly present: :func:`about_share`), and
makes each a :class:`TimelineEvent`: its date as the article states it, its outlet and those
of the copies folded into it (a wire story carried by several outlets is one line), and the
sentence of the article that says most about the topic. Copies stored apart (ingested
without dedupe) fold too when they share their day and title. Events come in date order
(oldest first), each numbered for citation; articles without a date are counted, not placed
(with date bounds they are not searched at all: a date filter leaves out undated articles).

No model writes the lines: each is the article's own sentence, so a timeline is as quick as
a search and cannot invent an event. Does not merge different articles about the same
event, nor date events the articles mention in passing ("the IPO planned in 2021").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from rag.text import forms, question_terms, vocabulary
from rag.types import Chunk, Hit, published_day

#: Share of the topic's weighed terms an article must hold to be about it.
MIN_COVERAGE = 0.5
LINE_CHARS = 220
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]?\s+(?=[\"'“‘(]?[A-Z0-9À-Ý])")
_TITLE_KEY = re.compile(r"\W+")
# "Jakarta, 5 Desember 2023", "Hangzhou, Desember 2023", "Redmond, January 2024" before the lead.
_DATELINE = re.compile(r"^(?:[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,3}, (?:\d{1,2} )?[A-Z][a-z]+ \d{4})\s+")


@dataclass
class TimelineEvent:
    """One line of a timeline: an article (and its copies) on its date."""

    number: int  # the citation [n], in date order
    published: str  # as the article states it: "2023-12-05", "2023-12-05T08:30:00+07:00", "2023-12"
    title: str
    line: str  # the article's sentence that says most about the topic
    outlets: list[str]  # the article's outlet, then those of its copies
    urls: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)

    @property
    def day(self) -> str:
        return self.published[:10]

    def text(self) -> str:
        """The line as the command line prints it: "2023-12-05 · Kompas, Antara — <sentence> [1]"."""
        return f"{self.day} · {', '.join(self.outlets)} — {self.line} [{self.number}]"


@dataclass
class Timeline:
    """The whole timeline, after its events: what was asked and what was left out."""

    topic: str
    events: list[TimelineEvent]
    window: str = ""  # the dates the topic or the filters named ("articles from ... to ...")
    undated: int = 0  # articles about the topic without a date, not placed
    seconds: float = 0.0

    def summary(self) -> str:
        """"4 event(s), 2023-10-02 to 2023-12-20; articles from ...", or that there is none."""
        if not self.events:
            return f"No dated article is about {self.topic!r}" + (f" ({self.window})" if self.window else "") + "."
        window = f"; {self.window}" if self.window else ""
        return f"{len(self.events)} event(s), {self.events[0].day} to {self.events[-1].day}{window}"


def timeline_events(topic: str, hits: Sequence[Hit], weights: Mapping[str, float] | None, limit: int,
                    lead: Callable[[str], Chunk | None] = lambda _doc_id: None) -> tuple[list[TimelineEvent], int]:
    """The events of ``hits`` (ranked search results) about ``topic``, oldest first, and the
    number of articles about it that had no date. At most ``limit`` dated articles, the most relevant.
    ``lead(doc_id)``: an article's first chunk, whose lead sentence is its line when it is about
    the topic as much as the best passage's."""
    best: dict[str, Hit] = {}
    for hit in hits:  # ranked: an article's first hit is its best
        best.setdefault(hit.chunk.doc_id, hit)
    about = [h for h in best.values() if about_share(topic, h.chunk, weights) >= MIN_COVERAGE]
    dated = [h for h in about if published_day(h.chunk.published) is not None][:limit]
    events: list[TimelineEvent] = []
    seen: dict[tuple[int | None, str], TimelineEvent] = {}
    for hit in sorted(dated, key=lambda h: (published_day(h.chunk.published), h.chunk.published)):
        c = hit.chunk
        key = (published_day(c.published), _TITLE_KEY.sub(" ", c.title.lower()).strip())
        copy = seen.get(key) if key[1] else None
        if copy is not None:  # the same story stored twice (ingested without dedupe)
            _add_outlet(copy, c.source, c.url, c.doc_id)
            continue
        first = lead(c.doc_id) if c.position else None
        event = TimelineEvent(len(events) + 1, c.published, c.title,
                              best_sentence([x for x in (first, c) if x is not None], topic, weights), [], [], [])
        _add_outlet(event, c.source, c.url, c.doc_id)
        for alt in c.alternatives:  # copies folded into it at ingest
            _add_outlet(event, alt.source, alt.url, alt.doc_id)
        events.append(event)
        seen[key] = event
    return events, sum(1 for h in about if published_day(h.chunk.published) is None)


def _add_outlet(event: TimelineEvent, source: str, url: str, doc_id: str) -> None:
    outlet = outlet_name(source)
    if outlet and outlet not in event.outlets:
        event.outlets.append(outlet)
    if url and url not in event.urls:
        event.urls.append(url)
    if doc_id and doc_id not in event.doc_ids:
        event.doc_ids.append(doc_id)


def outlet_name(source: str) -> str:
    """An outlet's name, or a file's name for an article ingested from a file."""
    return re.split(r"[\\/]", source.rstrip("/\\"))[-1] if ("/" in source or "\\" in source) else source


def _weight(terms: Sequence[str], text: str, weights: Mapping[str, float] | None) -> float:
    known = vocabulary(text)
    return sum((weights or {}).get(t, 1.0) for t in terms if forms(t) & known)


def about_share(topic: str, chunk: Chunk, weights: Mapping[str, float] | None) -> float:
    """Share of the topic's weight (its terms by rarity) that the article's title and best
    passage hold, in any language: names are written alike ("Alibaba", "cloud", "IPO")."""
    terms = question_terms(topic)
    total = sum((weights or {}).get(t, 1.0) for t in terms)
    return _weight(terms, chunk.title + " " + chunk.text, weights) / total if total else 0.0


def best_sentence(chunks: Sequence[Chunk], topic: str, weights: Mapping[str, float] | None) -> str:
    """The first of the chunks' sentences (in the order given) holding at least half of what the
    best one holds of the topic (a news lead says it first), without its dateline, shortened."""
    sentences = []
    for chunk in chunks:
        text = _DATELINE.sub("", chunk.text.replace("\n", " ").strip())
        sentences += [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    if not sentences:
        return chunks[0].title if chunks else ""
    terms = question_terms(topic)
    # A dateline, a photo credit or a title alone says nothing: skip the short ones.
    candidates = [s for s in sentences if len(s) >= 40] or sentences
    scores = [_weight(terms, s, weights) for s in candidates]
    top = max(scores)
    return shorten(next(s for s, w in zip(candidates, scores) if w >= top / 2))


def shorten(sentence: str, limit: int = LINE_CHARS) -> str:
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit].rsplit(" ", 1)[0].rstrip(",;:—- ")
    return cut + " …"
