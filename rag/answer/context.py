"""Context assembly: which retrieved chunks reach the prompt, and in what form.

Entry point: :func:`assemble_context`. Hits are taken in rank order while they fit the
token budget, with three rules:

- near-duplicates are dropped (word-set Jaccard similarity >= ``dedupe`` with a source
  already taken: syndicated copies and overlapping re-ingests waste budget);
- at most ``per_doc`` chunks come from one article, so multi-article questions see
  several articles;
- one article is one source: a chunk from an article already taken joins that source, in
  reading order. Neighbouring (or overlapping) chunks become one continuous passage;
  passages further apart are separated by :data:`GAP`. The article's title, outlet and
  date are written once, not once per chunk: on questions across articles the headers
  were a fifth of the prompt.

The rendered size of each source (header included) is what is counted.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Sequence

from rag.types import Chunk, Hit

_WORDS = re.compile(r"\w+")

#: Written between two passages of one article that are not neighbours.
GAP = "\n[…]\n"


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
    return dataclasses.replace(first, text=text, end=max(first.end, second.end))


def join_chunks(chunks: Sequence[Chunk]) -> Chunk:
    """The chunks of one article as one source: in reading order, neighbours merged, :data:`GAP`
    between passages that are not. Metadata (id, title, ...) is the first chunk's; ``start`` and
    ``end`` span the whole, gaps included."""
    ordered = sorted(chunks, key=lambda c: c.position)
    passages: list[tuple[Chunk, Chunk]] = []  # (passage so far, its last chunk)
    for c in ordered:
        merged = merge_chunks(passages[-1][1], c) if passages else None
        if merged is None:
            passages.append((c, c))
            continue
        passage, last = passages[-1]
        tail = merged.text[len(last.text):]  # what ``c`` adds after the passage's last chunk
        passages[-1] = (dataclasses.replace(passage, text=passage.text + tail, end=max(passage.end, c.end)), c)
    first = passages[0][0]
    return dataclasses.replace(first, text=GAP.join(p.text for p, _ in passages), end=max(p.end for p, _ in passages))


def assemble_context(hits: Sequence[Hit], budget_tokens: int, cost: Callable[[Hit], int],
                     per_doc: int = 3, dedupe: float = 0.8) -> list[Hit]:
    """Sources for the prompt, in rank order of each article's best chunk; ``cost(hit)`` is a
    source's size in tokens."""
    chosen: list[Hit] = []
    parts: list[list[Chunk]] = []  # the chunks behind each chosen source
    words: list[frozenset[str]] = []
    used = 0
    for hit in hits:
        w = _words(hit.chunk.text)
        if any(jaccard(w, other) >= dedupe for other in words):
            continue
        at = next((i for i, src in enumerate(chosen) if src.chunk.doc_id == hit.chunk.doc_id), -1)
        if at >= 0:
            if len(parts[at]) >= per_doc or any(c.position == hit.chunk.position for c in parts[at]):
                continue
            src = chosen[at]
            joined = Hit(join_chunks(parts[at] + [hit.chunk]), src.score, src.dense_score, src.lexical_score)
            extra = cost(joined) - cost(src)
            if used + extra <= budget_tokens:
                chosen[at], words[at] = joined, _words(joined.chunk.text)
                parts[at].append(hit.chunk)
                used += extra
            continue
        if per_doc < 1:
            continue
        c = cost(hit)
        if used + c > budget_tokens:
            continue
        chosen.append(hit)
        parts.append([hit.chunk])
        words.append(w)
        used += c
    return chosen
