"""Token-aware chunking: split a document's text into overlapping spans.

Entry point: :func:`chunk_text` returns ``(start, end)`` character spans of the text;
:func:`chunk_document` wraps them into :class:`rag.types.Chunk` objects. The sizes come
from the settings (``KABAR_CHUNK_TOKENS`` / ``KABAR_CHUNK_OVERLAP``, 160 / 16 by default).

Guarantees (tested): every span holds at most ``max_tokens`` tokens (tiktoken); spans
map back to the text (``text[start:end]``) with no leading or trailing whitespace;
consecutive spans share at most ``overlap`` tokens; every non-space character is in a
span. Spans end on sentence boundaries where the sentences fit, then on word
boundaries, and only for a single over-long "word" (a URL, a run of symbols) inside it.
A single character that alone exceeds ``max_tokens`` (an emoji is up to 4 tokens) still
becomes a span of its own: budgets are meant to be tens of tokens or more.
Does not look at meaning: no semantic or layout-aware splitting.
"""

from __future__ import annotations

import re

from rag.tokens import count_tokens
from rag.types import Chunk, Document, content_hash

# A sentence ends after . ! ? … (and any closing quotes or brackets) followed by space,
# or at a line break. Indonesian and English share these conventions.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|\n+")
_WORD = re.compile(r"\S+")

Span = tuple[int, int]


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _sentences(text: str) -> list[Span]:
    spans: list[Span] = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        span = _trim(text, pos, m.start() if text[m.start()] == "\n" else m.end())
        if span:
            spans.append(span)
        pos = m.end()
    span = _trim(text, pos, len(text))
    if span:
        spans.append(span)
    return spans


def _fit_prefix(text: str, start: int, end: int, max_tokens: int) -> int:
    """Largest ``cut`` in (start, end] with ``text[start:cut]`` within budget (at least one char)."""
    lo, hi = start + 1, end
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(text[start:mid]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _units(text: str, max_tokens: int) -> list[Span]:
    """Sentences, with any sentence over budget split into words, and words into pieces."""
    units: list[Span] = []
    for s, e in _sentences(text):
        if count_tokens(text[s:e]) <= max_tokens:
            units.append((s, e))
            continue
        for m in _WORD.finditer(text, s, e):
            ws, we = m.span()
            while ws < we:
                cut = we if count_tokens(text[ws:we]) <= max_tokens else _fit_prefix(text, ws, we, max_tokens)
                units.append((ws, cut))
                ws = cut
    return units


def chunk_text(text: str, max_tokens: int, overlap: int) -> list[Span]:
    """Split ``text`` into spans of at most ``max_tokens`` tokens sharing up to ``overlap``."""
    if max_tokens <= 0:
        raise ValueError(f"max_tokens must be greater than 0. Currently, max_tokens is {max_tokens}.")
    if not 0 <= overlap < max_tokens:
        raise ValueError(f"overlap must be at least 0 and less than max_tokens. Currently, overlap is {overlap}.")
    units = _units(text, max_tokens)
    spans: list[Span] = []
    i = 0
    while i < len(units):
        start = units[i][0]
        j = i + 1  # units[i] alone always fits
        while j < len(units) and count_tokens(text[start : units[j][1]]) <= max_tokens:
            j += 1
        end = units[j - 1][1]
        spans.append((start, end))
        if j >= len(units):
            break
        # Next chunk starts at the earliest unit after i whose tail up to `end` fits the overlap.
        # It must also reach past `end` (take unit j), or it would lie inside this chunk.
        nxt = j
        for k in range(i + 1, j):
            if (count_tokens(text[units[k][0] : end]) <= overlap
                    and count_tokens(text[units[k][0] : units[j][1]]) <= max_tokens):
                nxt = k
                break
        i = nxt
    return spans


def chunk_document(doc: Document, max_tokens: int, overlap: int) -> list[Chunk]:
    """Chunk a document; chunk ids derive from the document id and the chunk's content."""
    chunks = []
    doc_hash = doc.hash
    for position, (start, end) in enumerate(chunk_text(doc.text, max_tokens, overlap)):
        text = doc.text[start:end]
        chunks.append(
            Chunk(
                id=content_hash(doc.id, str(start), text),
                doc_id=doc.id,
                text=text,
                position=position,
                start=start,
                end=end,
                title=doc.title,
                source=doc.source,
                lang=doc.lang,
                url=doc.url,
                published=doc.published,
                doc_hash=doc_hash,
                author=doc.author,
                page=doc.page_at(start),
            )
        )
    return chunks
