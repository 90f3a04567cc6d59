"""The reader in the answer path: what Kabar's own reader found in the prompt's sources.

Entry points: :func:`find_evidence` (before the model: the best answer spans in the
sources, with the sentence around each) and :func:`check_answer` (after it: does the
model's answer say what the reader found, and if the reader is sure it does not, the
repaired answer).

The reader (:class:`rag.models.reader.Reader`) scores each token of a passage as the start
or end of the answer, and the passage as holding none. Its margin, best span against "no
answer", is what the refusal gate compares with ``Settings.reader_margin``
(:func:`rag.answer.refusal.decide`); the thresholds were chosen on the tuning halves of
the dev sets (docs/READER.md).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

from rag.models.reader import Reader
from rag.text import MARKER, forms, vocabulary
from rag.types import Citation, Hit

#: Tokens of sources the reader reads for one question, in source order (its cost grows with it).
READ_TOKENS = 1024
# A sentence ends at . ! ? followed by space and a capital, digit or quote, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[A-Z0-9\"'“‘(\[])|\n+")


@dataclass(frozen=True)
class Evidence:
    """One answer span the reader found: in source ``number`` (as the prompt numbers them), at
    character offsets ``start``-``end`` of that source's text, inside the sentence
    ``sentence_start``-``sentence_end``; ``margin`` its score against "no answer"."""

    number: int
    start: int
    end: int
    text: str
    sentence_start: int
    sentence_end: int
    margin: float


@dataclass
class Findings:
    """The reader's best spans over a question's sources (best first) and its best margin."""

    evidence: list[Evidence] = field(default_factory=list)
    margin: float = -math.inf
    read_s: float = 0.0

    @property
    def best(self) -> Evidence | None:
        return self.evidence[0] if self.evidence else None

    def in_source(self, number: int) -> Evidence | None:
        """The best span in source ``number``, if the reader found one there."""
        return next((e for e in self.evidence if e.number == number), None)


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The character span of the sentence(s) of ``text`` holding ``start``-``end``."""
    held = [(s, e) for s, e in _sentences(text) if s < max(end, start + 1) and e > start]
    return (held[0][0], max(held[-1][1], end)) if held else (start, end)


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def paragraphs(text: str) -> list[tuple[int, str]]:
    """``text``'s paragraphs (split at blank lines) as (offset in ``text``, paragraph)."""
    out, left = [], 0
    for m in [*_PARAGRAPH_BREAK.finditer(text), None]:
        right = m.start() if m else len(text)
        piece = text[left:right]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append((left + lead, piece.strip()))
        left = m.end() if m else right
    return out


def find_evidence(reader: Reader, question: str, sources: Sequence[Hit], max_tokens: int = READ_TOKENS,
                  per_source: int = 2) -> Findings:
    """The reader's spans over ``sources`` (their chunk texts), at most ``max_tokens`` read."""
    started = time.perf_counter()
    if not sources:
        return Findings()
    # The reader learned on single paragraphs: each source is read paragraph by paragraph.
    pieces = [(n, at, piece) for n, h in enumerate(sources, start=1) for at, piece in paragraphs(h.chunk.text)]
    readings = reader.read(question, [p for _, _, p in pieces], k=per_source, max_tokens=max_tokens)
    found: list[Evidence] = []
    for (n, at, _), reading in zip(pieces, readings):
        text = sources[n - 1].chunk.text
        for span in reading.spans:
            s, e = sentence_bounds(text, at + span.start, at + span.end)
            found.append(Evidence(n, at + span.start, at + span.end, span.text, s, e, span.score - reading.null))
    found.sort(key=lambda ev: -ev.margin)
    margin = max((r.margin for r in readings), default=-math.inf)
    return Findings(found, margin, time.perf_counter() - started)


def _plain(text: str) -> str:
    return MARKER.sub(" ", text)


def agrees(answer: str, span: str) -> bool:
    """Whether ``answer`` says ``span``: most of the span's words occur in it, in some form.

    Compared as words (raw, stemmed, without diacritics): "Jin Li memimpin unit hybrid cloud"
    says the span "Jin Li"; "Eddie Wu" does not.
    """
    words = [w for w in re.findall(r"\w+", span.casefold())]
    if not words:
        return True
    known = vocabulary(_plain(answer))
    return sum(bool(forms(w) & known) for w in words) >= max(1, math.ceil(0.5 * len(words)))


@dataclass(frozen=True)
class Check:
    """What :func:`check_answer` concluded: ``text`` the answer to give (unchanged when it agrees),
    ``number`` the source it rests on, and a ``flag`` saying what was changed (``""``: nothing)."""

    text: str
    number: int = 0
    flag: str = ""


def check_answer(answer: str, cited: Sequence[int], findings: Findings | None, repair_margin: float,
                 same_language: bool) -> Check:
    """The model's ``answer`` checked against the reader's best span.

    The answer stands when it says what the reader found (:func:`agrees`) in any source, or
    when the reader is not sure (its best margin below ``repair_margin``). Otherwise the
    answer is repaired to the reader's span with its citation, when the question and the
    passage share a language (across languages the span would answer an English question in
    Indonesian); else it stands, flagged.
    """
    best = findings.best if findings else None
    if best is None or best.margin < repair_margin:
        return Check(answer)
    assert findings is not None
    if any(agrees(answer, e.text) for e in findings.evidence if e.margin >= repair_margin or e.number in cited):
        return Check(answer, best.number)
    if not same_language:
        return Check(answer, 0, f"the reader found {best.text!r} in source [{best.number}], which the answer "
                                "does not say")
    repaired = f"{best.text.strip()} [{best.number}]"
    return Check(repaired, best.number, f"repaired to the reader's answer {best.text!r} in source [{best.number}] "
                                        f"(margin {best.margin:.1f}); the model said: {answer!r}")


#: Best spans whose sentences an evidence-first prompt keeps, and sentences kept either side.
EVIDENCE_SPANS = 3
EVIDENCE_NEIGHBOURS = 1


def _sentences(text: str) -> list[tuple[int, int]]:
    out, left = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.start() > left:
            out.append((left, m.start()))
        left = m.end()
    if left < len(text):
        out.append((left, len(text)))
    return out


def evidence_excerpts(sources: Sequence[Hit], findings: Findings, spans: int = EVIDENCE_SPANS,
                      neighbours: int = EVIDENCE_NEIGHBOURS) -> list[tuple[int, Hit]]:
    """The sources an evidence-first prompt shows, as (number, source cut to its evidence):
    only the sources holding one of the reader's ``spans`` best spans, each cut to the
    sentences holding them and ``neighbours`` sentences either side, in reading order, with
    ``[…]`` between pieces that are not contiguous. Numbers stay those of ``sources``."""
    keep: dict[int, set[int]] = {}
    for ev in findings.evidence[:spans]:
        bounds = _sentences(sources[ev.number - 1].chunk.text)
        at = [i for i, (s, e) in enumerate(bounds) if s < ev.end and e > ev.start] or [0]
        lo, hi = max(0, at[0] - neighbours), min(len(bounds) - 1, at[-1] + neighbours)
        keep.setdefault(ev.number, set()).update(range(lo, hi + 1))
    out = []
    for n in sorted(keep):
        hit = sources[n - 1]
        bounds = _sentences(hit.chunk.text)
        pieces, last = [], -2
        for i in sorted(keep[n]):
            s, e = bounds[i]
            piece = hit.chunk.text[s:e].strip()
            if i == last + 1 and pieces:
                pieces[-1] += " " + piece
            else:
                pieces.append(piece)
            last = i
        text = "\n[…]\n".join(pieces)
        out.append((n, replace(hit, chunk=replace(hit.chunk, text=text))))
    return out


def highlight(citations: Sequence[Citation], findings: Findings | None, answer: str) -> list[Citation]:
    """Each citation with the offsets of the reader's span in its passage and of the sentence
    holding it: the span the answer says, else the reader's best one in that passage."""
    if findings is None:
        return list(citations)
    out = []
    for c in citations:
        here = [e for e in findings.evidence if e.number == c.number]
        ev = next((e for e in here if agrees(answer, e.text)), here[0] if here else None)
        out.append(replace(c, span=(ev.start, ev.end), sentence=(ev.sentence_start, ev.sentence_end)) if ev else c)
    return out


# Where a streamed answer's sentence is complete: its end (. ! ? and any citation markers after
# it) once the next sentence has begun, or a line break.
_STREAM_END = re.compile(r"[.!?](?:\s*\[[\d,;\s]+\])*\s+(?=[^\s\[])|\n")


def split_sentences(text: str) -> tuple[str, str]:
    """``text`` as (its complete sentences, the rest still being written)."""
    ends = [m.end() for m in _STREAM_END.finditer(text)]
    return (text[: ends[-1]], text[ends[-1] :]) if ends else ("", text)
