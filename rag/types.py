"""Plain dataclasses that travel between Kabar's stages.

    Document -> Chunk -> (store) -> Hit -> Answer(Citation, ...)

Ids are derived from content or source so that re-ingesting the same article is an
upsert that changes nothing. Reprs stay short: long texts are truncated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


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


@dataclass
class Document:
    """One article: its cleaned body text and what is known about it."""

    id: str
    title: str
    text: str
    source: str
    lang: str = ""
    url: str = ""
    published: str = ""

    @property
    def hash(self) -> str:
        """Hash of everything that ends up in the store; a change means re-chunking."""
        return content_hash(self.title, self.text, self.source, self.lang, self.url, self.published)

    def __repr__(self) -> str:
        return f"Document(id={self.id!r}, title={short(self.title, 40)!r}, text={short(self.text)!r})"


@dataclass
class Chunk:
    """A span of a document's text: ``document.text[start:end] == text``."""

    id: str
    doc_id: str
    text: str
    position: int
    start: int
    end: int
    title: str = ""
    source: str = ""
    lang: str = ""
    url: str = ""
    published: str = ""
    doc_hash: str = ""

    def __repr__(self) -> str:
        return f"Chunk(id={self.id!r}, doc_id={self.doc_id!r}, position={self.position}, text={short(self.text)!r})"


@dataclass
class Hit:
    """A retrieved chunk and its score (higher is better).

    ``score`` is what ranked it: a cosine similarity from dense search, a BM25 score from
    lexical search, or the fused score from hybrid search (a weighted sum of standard
    scores, :mod:`rag.fusion`), which then keeps the two component scores (None where that
    search did not find the chunk).
    """

    chunk: Chunk
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None

    def __repr__(self) -> str:
        return f"Hit(score={self.score:.3f}, doc_id={self.chunk.doc_id!r}, text={short(self.chunk.text, 40)!r})"


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


@dataclass
class Usage:
    """Tokens spent on one answer; ``estimated`` when the server did not report them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False


@dataclass
class Timings:
    """Seconds spent: retrieval, until the first answer token, and in all."""

    retrieval_s: float = 0.0
    first_token_s: float = 0.0
    total_s: float = 0.0


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
    share of the question's own terms found in the sources, a long question counting as
    eight terms (0 for a refusal); below ``Settings.min_coverage`` it is declined too.
    ``support`` is the model's probability that the source it cited states its answer
    (None when it was not asked: ``Settings.min_support`` 0, a refusal, no citation); below
    ``Settings.min_support`` the answer is declined.
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
    support: float | None = None
    model_text: str = ""

    def __repr__(self) -> str:
        cited = [c.number for c in self.citations]
        return f"Answer(text={short(self.text)!r}, citations={cited}, refused={self.refused})"


def published_day(published: str) -> int | None:
    """``YYYYMMDD`` as an int from a date string that starts ``YYYY-MM-DD`` (None otherwise).

    Chroma compares only numbers with ``$gte``/``$lte``, so date filters use this form.
    """
    digits = published[:10].replace("-", "")
    if len(digits) == 8 and digits.isdigit() and published[4:5] == "-" and published[7:8] == "-":
        return int(digits)
    return None


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
