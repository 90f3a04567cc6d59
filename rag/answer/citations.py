"""Citations: find the ``[n]`` markers in an answer, check them, resolve them to sources.

Entry point: :func:`verify_citations`. It checks each cited sentence against the passage
it cites: most of the sentence's content words (names, numbers, key terms, compared as
raw words and as English and Indonesian stems, without diacritics, so an English answer
can cite an Indonesian passage) must occur in it. A marker that names no source, or a
passage that does not support its sentence, is repaired to the source that does, or
flagged when none does. An answer with no marker gets one when a single source clearly
supports it. A refusal ("I don't know") carries no citations. Whether to decline an
answer is :mod:`rag.answer.refusal`'s decision.
"""

from __future__ import annotations

import re
from typing import Sequence

from rag.answer.refusal import is_refusal
from rag.text import MARKER, content_words, forms, vocabulary
from rag.types import Citation, Hit

_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)(?:\s*\[[\d,;\s]+\])*")
_GROUP = re.compile(r"(?:\[\d+(?:\s*[,;]\s*\d+)*\]\s*)+")
_REPEATED = re.compile(r"(\[\d+\])(?:\s*\1)+")
# Share of a sentence's content words its cited passage must contain.
SUPPORT = 0.5


def cited_numbers(text: str) -> list[int]:
    """Source numbers cited in ``text``, in order of first appearance."""
    numbers: list[int] = []
    for m in MARKER.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if n not in numbers:
                numbers.append(n)
    return numbers


def support(sentence: str, passage_vocabulary: frozenset[str]) -> float:
    """Share of the sentence's content words found (in some form) in the passage."""
    words = content_words(sentence)
    if not words:
        return 1.0
    return sum(bool(forms(w) & passage_vocabulary) for w in words) / len(words)


def _citation(n: int, hit: Hit, verified: bool) -> Citation:
    c = hit.chunk
    return Citation(number=n, doc_id=c.doc_id, title=c.title, source=c.source, text=c.text, chunk_id=c.id,
                    url=c.url, verified=verified, published=c.published, author=c.author, page=c.page,
                    alternatives=list(c.alternatives))


def verify_citations(text: str, sources: Sequence[Hit]) -> tuple[str, list[Citation], list[str]]:
    """Check every citation; return the (possibly repaired) text, its citations and flags."""
    if not sources or is_refusal(text):
        stripped = MARKER.sub("", text).strip() if is_refusal(text) else text
        return stripped, [], []
    vocab = [vocabulary(h.chunk.title + " " + h.chunk.text) for h in sources]
    flags: list[str] = []
    verified: dict[int, bool] = {}

    def best_source(sentence: str) -> tuple[int, float]:
        scores = [support(sentence, v) for v in vocab]
        best = max(range(len(scores)), key=lambda i: scores[i])
        return best + 1, scores[best]

    previous = ""  # the last sentence with words of its own

    def fix_sentence(m: re.Match[str]) -> str:
        nonlocal previous
        sentence = m.group(0)
        groups = list(_GROUP.finditer(sentence))
        has_words = bool(content_words(sentence))
        if has_words:
            previous = sentence
        if not groups or not previous:
            return sentence
        out, prev_end = [], 0
        for group in groups:
            # The claim a group of markers vouches for: the text since the previous group,
            # else the whole sentence, else (markers after a sentence with no words of its
            # own: "... khas. Yaitu: [8]") the sentence before. Sources cited together share it.
            claim = sentence[prev_end : group.start()]
            if not content_words(claim):
                claim = sentence if has_words else previous
            numbers = cited_numbers(group.group(0))
            needed = SUPPORT / len(numbers)
            kept: list[int] = []
            for n in numbers:
                if 1 <= n <= len(sources) and support(claim, vocab[n - 1]) >= needed:
                    verified[n] = True
                    kept.append(n)
                    continue
                best, score = best_source(claim)
                if score >= SUPPORT:
                    flags.append(f"citation [{n}] repaired to [{best}]")
                    verified[best] = True
                    kept.append(best)
                elif 1 <= n <= len(sources):
                    flags.append(f"citation [{n}] does not support its sentence")
                    verified.setdefault(n, False)
                    kept.append(n)
                else:
                    flags.append(f"citation [{n}] names no source and was removed")
            trailing = group.group(0)[len(group.group(0).rstrip()) :]
            markers = "".join(f"[{k}]" for k in dict.fromkeys(kept))
            out.append(sentence[prev_end : group.start()] + markers + trailing)
            prev_end = group.end()
        out.append(sentence[prev_end:])
        return "".join(out)

    repaired = _REPEATED.sub(r"\1", _SENTENCE.sub(fix_sentence, text))
    if not cited_numbers(repaired):
        best, score = best_source(repaired)
        if score >= SUPPORT:
            repaired = repaired.rstrip() + f" [{best}]"
            verified[best] = True
            flags.append(f"citation [{best}] added: the answer cited nothing")
        else:
            flags.append("the answer cites no source")
    citations = [_citation(n, sources[n - 1], verified.get(n, False))
                 for n in cited_numbers(repaired) if 1 <= n <= len(sources)]
    return repaired, citations, flags
