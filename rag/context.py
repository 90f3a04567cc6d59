"""Context assembly: which retrieved chunks reach the prompt, and in what form.

Entry point: :func:`assemble_context`. Hits are taken in rank order while they fit the
token budget, with three rules:

- near-duplicates are dropped (word-set Jaccard similarity >= ``dedupe`` with a chunk
  already taken: syndicated copies and overlapping re-ingests waste budget);
- at most ``per_doc`` chunks come from one article, so multi-article questions see
  several articles;
- a chunk adjacent to (or overlapping) one already taken from the same article is merged
  into it, giving one continuous passage instead of two fragments.

The rendered size of each source (header included) is what is counted.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from rag.types import Chunk, Hit

_WORDS = re.compile(r"\w+")


def _words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORDS.findall(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def merge_chunks(a: Chunk, b: Chunk) -> Chunk | None:
    """One chunk covering ``a`` and ``b`` when they are neighbours in the same article, else None."""
    if a.doc_id != b.doc_id or abs(a.position - b.position) != 1:
        return None
    first, second = (a, b) if a.start <= b.start else (b, a)
    if second.start > first.end:  # neighbours, separated by whitespace only
        text = first.text + "\n" + second.text
    else:
        text = first.text + second.text[first.end - second.start :]
    return Chunk(
        id=first.id, doc_id=first.doc_id, text=text, position=first.position, start=first.start,
        end=max(first.end, second.end), title=first.title, source=first.source, lang=first.lang,
        url=first.url, published=first.published, doc_hash=first.doc_hash,
    )


def assemble_context(hits: Sequence[Hit], budget_tokens: int, cost: Callable[[Hit], int],
                     per_doc: int = 3, dedupe: float = 0.8) -> list[Hit]:
    """Sources for the prompt, in rank order; ``cost(hit)`` is a source's size in tokens."""
    chosen: list[Hit] = []
    words: list[frozenset[str]] = []
    taken_per_doc: dict[str, int] = {}
    used = 0
    for hit in hits:
        doc = hit.chunk.doc_id
        if taken_per_doc.get(doc, 0) >= per_doc:
            continue
        w = _words(hit.chunk.text)
        if any(jaccard(w, other) >= dedupe for other in words):
            continue
        merged_at = -1
        for i, src in enumerate(chosen):
            merged = merge_chunks(src.chunk, hit.chunk)
            if merged is not None:
                candidate = Hit(merged, src.score, src.dense_score, src.lexical_score)
                extra = cost(candidate) - cost(src)
                if used + extra <= budget_tokens:
                    chosen[i], words[i] = candidate, _words(merged.text)
                    used += extra
                    merged_at = i
                break
        if merged_at >= 0:
            taken_per_doc[doc] = taken_per_doc.get(doc, 0) + 1
            continue
        c = cost(hit)
        if used + c > budget_tokens:
            continue
        chosen.append(hit)
        words.append(w)
        taken_per_doc[doc] = taken_per_doc.get(doc, 0) + 1
        used += c
    return chosen
