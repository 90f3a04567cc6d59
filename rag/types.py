"""Plain dataclasses that travel between Kabar's stages.

    Document -> Chunk -> (store) -> Hit -> Retrieval -> Answer(Citation, ...)

Ids are derived from content or source so that re-ingesting the same article is an
upsert that changes nothing. Reprs stay short: long texts are truncated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Sequence


def short(text: str, width: int = 60) -> str:
    """Return ``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def display_title(title: str, text: str) -> str:
    """A title to show: the article's own, else the start of its text."""
    return title or short(text, 80)


def content_hash(*parts: str) -> str:
    """A stable 16-hex-digit hash of the given strings."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Alternative:
    """Another place that published the same story (a near-duplicate folded into a stored one)."""

    source: str
    url: str = ""
    published: str = ""
    title: str = ""
    doc_id: str = ""
    doc_hash: str = ""


def alternatives_json(alternatives: "list[Alternative]") -> str:
    """How alternatives travel in chunk metadata (Chroma keeps only scalars)."""
    return json.dumps([asdict(a) for a in alternatives], ensure_ascii=False) if alternatives else ""


def alternatives_from_json(text: str) -> "list[Alternative]":
    if not text:
        return []
    try:
        return [Alternative(**{k: str(v) for k, v in item.items() if k in Alternative.__dataclass_fields__})
                for item in json.loads(text) if isinstance(item, dict) and "source" in item]
    except (ValueError, TypeError):
        return []


@dataclass
class Document:
    """One article: its cleaned body text and what is known about it.

    ``source`` is where it came from as a reader names it: an outlet ("BBC News") for web
    pages, feeds and corpus records that say so, else the file's path. ``pages`` holds the
    offset in ``text`` where each page starts (PDFs; empty for everything else).
    """

    id: str
    title: str
    text: str
    source: str
    lang: str = ""
    url: str = ""
    published: str = ""
    author: str = ""
    pages: list[int] = field(default_factory=list)
    #: Facts kept with the document but not part of its identity, e.g. a web archive's crawl date.
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """Hash of everything that ends up in the store; a change means re-chunking."""
        # Fields added later join the hash only when set: older stores keep their hashes.
        extra = [self.author] if self.author else []
        extra += [",".join(map(str, self.pages))] if self.pages else []
        return content_hash(self.title, self.text, self.source, self.lang, self.url, self.published, *extra)

    def page_at(self, offset: int) -> int:
        """The 1-based page holding character ``offset`` (0 when the document has no pages)."""
        page = 0
        for number, start in enumerate(self.pages, start=1):
            if start > offset:
                break
            page = number
        return page

    def __repr__(self) -> str:
        return f"Document(id={self.id!r}, title={short(self.title, 40)!r}, text={short(self.text)!r})"


@dataclass(kw_only=True)
class ArticleFacts:
    """What is known of the article a chunk or a stored document belongs to (keyword-only)."""

    title: str = ""
    source: str = ""
    lang: str = ""
    url: str = ""
    published: str = ""
    author: str = ""


@dataclass
class Chunk(ArticleFacts):
    """A span of a document's text: ``document.text[start:end] == text``; its article's facts
    (:class:`ArticleFacts`) are keyword arguments."""

    id: str
    doc_id: str
    text: str
    position: int
    start: int
    end: int
    doc_hash: str = ""
    #: PDF page the chunk starts on (1-based; 0: not paged).
    page: int = 0
    #: How many chunks the document had when this one was written (0: not recorded).
    n_chunks: int = 0
    alternatives: list[Alternative] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Chunk(id={self.id!r}, doc_id={self.doc_id!r}, position={self.position}, text={short(self.text)!r})"


def is_path(source: str) -> bool:
    """Whether a source is a file path or URL rather than an outlet's name."""
    return "/" in source or "\\" in source


def source_facts(source: str, published: str = "", author: str = "", page: int = 0) -> str:
    """One line of what is known about where a passage comes from: "Kompas · 2023-12-05 · Budi · p. 3".

    A file path is left out (displays show the file's name on their own).
    """
    parts = [] if is_path(source) else [source]
    parts += [published[:10]] if published else []
    parts += [author] if author else []
    parts += [f"p. {page}"] if page else []
    return " · ".join(p for p in parts if p)


def also_published(alternatives: "list[Alternative]") -> str:
    """The other outlets of a story, one phrase: "also: Tempo (2023-12-06), Antara"."""
    if not alternatives:
        return ""
    named = [f"{a.source} ({a.published[:10]})" if a.published else a.source
             for a in alternatives if a.source and not is_path(a.source)]
    named += [a.url for a in alternatives if (not a.source or is_path(a.source)) and a.url]
    return "also: " + ", ".join(named) if named else ""


@dataclass
class DocumentInfo(ArticleFacts):
    """A stored document as the store knows it: its chunk count and when it was ingested."""

    doc_id: str
    chunks: int
    ingested_at: float


@dataclass
class Hit:
    """A retrieved chunk and its score (higher is better).

    ``score`` is what ranked it: a cosine similarity from dense search, a BM25 score from
    lexical search, or the fused score from hybrid search (a weighted sum of standard
    scores, :mod:`rag.search.fusion`), which then keeps the two component scores (None where that
    search did not find the chunk).
    """

    chunk: Chunk
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None

    def __repr__(self) -> str:
        return f"Hit(score={self.score:.3f}, doc_id={self.chunk.doc_id!r}, text={short(self.chunk.text, 40)!r})"


@dataclass
class Retrieval:
    """What one search for a question found and learned, for the stages after it.

    ``hits`` best first; ``lang`` the question's language as searched; ``outlets`` the source
    values of each publication the question names; ``doc_counts`` how many chunks of the whole
    collection hold each lexical term of the question (its words and its content terms) and
    ``total`` how many chunks there are (0: no lexical index). The refusal gate weighs the
    question's terms from these, so nothing goes back to the store after the answer.
    """

    hits: list[Hit]
    lang: str = ""
    outlets: list[list[str]] = field(default_factory=list)
    doc_counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    #: What retrieval favoured for the dates the question asks about ("articles from 2023-12-01
    #: to 2023-12-31"; "": it names none), see :mod:`rag.search.when`.
    time_window: str = ""
    #: The question without the time it names (:func:`rag.search.when.without_time`; "": it names none).
    timeless: str = ""


@dataclass
class Citation:
    """A source the answer cites as ``[number]``, resolved to its document."""

    number: int
    doc_id: str
    title: str
    source: str
    text: str
    chunk_id: str
    url: str = ""
    verified: bool = True
    published: str = ""
    author: str = ""
    page: int = 0
    #: Other outlets that published the same story (see :class:`Alternative`).
    alternatives: list[Alternative] = field(default_factory=list)
    #: Character offsets in ``text`` of the answer span Kabar's reader found there, and of the
    #: sentence holding it (None: the reader found none in this passage).
    span: tuple[int, int] | None = None
    sentence: tuple[int, int] | None = None

    @property
    def supporting_sentence(self) -> str:
        """The sentence of the passage that supports the answer ("" when none was found)."""
        return self.text[self.sentence[0] : self.sentence[1]] if self.sentence else ""


@dataclass
class Usage:
    """Tokens spent on one answer; ``estimated`` when the server did not report them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False
    #: Each generated token with its log-probability, when they were asked for and the server sent them.
    logprobs: tuple[tuple[str, float], ...] = ()


@dataclass
class Timings:
    """Seconds spent: retrieval, until the first answer token, and in all; ``sources_s``: from
    the question until its sources were known (condensing a follow-up, retrieval, the prompt)."""

    retrieval_s: float = 0.0
    first_token_s: float = 0.0
    total_s: float = 0.0
    sources_s: float = 0.0


@dataclass
class SourceArticle:
    """One article among an answer's sources, with its passages numbered as the model saw them."""

    doc_id: str
    passages: list[tuple[int, Hit]]

    @property
    def chunk(self) -> Chunk:
        """The first passage's chunk: the article's title, source, URL, date, author."""
        return self.passages[0][1].chunk

    @property
    def numbers(self) -> list[int]:
        return [n for n, _ in self.passages]


def source_articles(sources: Sequence[Hit]) -> list[SourceArticle]:
    """Numbered sources (from 1) grouped by article, articles in the order they first appear."""
    by_doc: dict[str, SourceArticle] = {}
    for n, hit in enumerate(sources, start=1):
        article = by_doc.setdefault(hit.chunk.doc_id, SourceArticle(hit.chunk.doc_id, []))
        article.passages.append((n, hit))
    return list(by_doc.values())


@dataclass
class Answer:
    """What a question gets back.

    ``hits`` are all retrieved chunks in rank order; ``sources`` are those that fitted the
    prompt, numbered from 1 in the order the model saw them; ``citations`` are the sources
    the text cites, each checked against its passage (``verified``). ``query`` is what was
    searched (the question, or a follow-up rewritten to stand alone). ``flags`` name what
    Kabar changed or doubts in the model's text, e.g. a repaired citation number.
    ``grounding`` is the share of the answer's own key words found in the sources (0 for a
    refusal); below ``Settings.min_grounding`` the answer is declined. ``coverage`` is the
    share of the question's own terms found in the sources, each weighed by its rarity in
    the collection, a long question counting as eight terms (0 for a refusal); below
    ``Settings.min_coverage`` it is declined too. ``confidence`` is the model's own
    probability of the answer it wrote, per token (:func:`rag.answer.refusal.answer_confidence`; None
    when not asked: ``Settings.min_confidence`` 0, or the server sent no log-probabilities);
    below ``Settings.min_confidence`` the answer is declined.
    ``text`` is brief: a restatement of the question in front of the answer is dropped.
    ``model_text`` is the model's reply as generated, before any repair, refusal or
    shortening.
    """

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    sources: list[Hit] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)
    refused: bool = False
    model: str = ""
    query: str = ""
    flags: list[str] = field(default_factory=list)
    grounding: float = 0.0
    coverage: float = 0.0
    confidence: float | None = None
    model_text: str = ""
    #: Kabar's reader's margin over the sources: its best answer span's score against "no
    #: answer" (above ``Settings.reader_margin``: it found an answer); None when it did not read.
    reader_margin: float | None = None
    reader_span: str = ""  # the reader's best span over the sources ("" when it did not read)
    reader_s: float | None = None  # seconds the reader took
    #: True when the question asked for one fact (the short budget): the reader's gate and check applied.
    one_fact: bool = False
    #: The articles' dates retrieval favoured for the time the question names ("articles from
    #: 2023-12-01 to 2023-12-31"); "" when it names none (:mod:`rag.search.when`).
    time_window: str = ""

    @property
    def articles(self) -> "list[SourceArticle]":
        """The sources grouped by article, passages numbered as in the text."""
        return source_articles(self.sources)

    def __repr__(self) -> str:
        cited = [c.number for c in self.citations]
        return f"Answer(text={short(self.text)!r}, citations={cited}, refused={self.refused})"


def published_day(published: str) -> int | None:
    """``YYYYMMDD`` as an int from a date string that starts ``YYYY-MM-DD`` (None otherwise);
    a month alone, ``YYYY-MM`` (a dateline "Hangzhou, Desember 2023"), counts as its first day.

    Chroma compares only numbers with ``$gte``/``$lte``, so date filters use this form.
    """
    digits = published[:10].replace("-", "")
    if len(digits) == 8 and digits.isdigit() and published[4:5] == "-" and published[7:8] == "-":
        return int(digits)
    if len(published) == 7 and published[4] == "-" and published[:4].isdigit() and published[5:].isdigit():
        return int(published[:4] + published[5:] + "01")
    return None


def day_date(day: int) -> date | None:
    """A ``published_day`` number (YYYYMMDD) as a date (None when it is not a real day)."""
    try:
        return date(day // 10000, day // 100 % 100, day % 100)
    except ValueError:
        return None


def published_date(published: str) -> date | None:
    """The day a date string names, as :func:`published_day` reads it (None otherwise)."""
    day = published_day(published)
    return day_date(day) if day is not None else None


@dataclass
class Filters:
    """Restrict retrieval to some sources, documents or a publication date range.

    Dates are ``YYYY-MM-DD`` strings, both ends inclusive; a date filter excludes
    articles with no known publication date.
    """

    sources: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    since: str = ""
    until: str = ""

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value and published_day(value) is None:
                raise ValueError(f"{name} must be a date like 2023-12-31. Currently, {name} is {value!r}.")

    def where(self) -> dict | None:
        """The filter in Chroma's ``where`` syntax (None when empty)."""
        clauses: list[dict] = []
        if self.sources:
            clauses.append({"source": {"$in": list(self.sources)}})
        if self.doc_ids:
            clauses.append({"doc_id": {"$in": list(self.doc_ids)}})
        if self.since:
            clauses.append({"published_day": {"$gte": published_day(self.since)}})
        if self.until:
            clauses.append({"published_day": {"$lte": published_day(self.until)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}
