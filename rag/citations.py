"""Citations: find the ``[n]`` markers in an answer and resolve them to sources.

Also recognises a refusal ("I don't know", "tidak tahu") in either language. Markers that
name no given source are reported, not silently kept as citations.
"""

from __future__ import annotations

import re
from typing import Sequence

from rag.types import Citation, Hit

_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_REFUSAL = re.compile(
    r"\b(i don'?t know|i do not know|do(?:es)? not (?:say|mention|contain)|no information"
    r"|tidak tahu|tidak (?:menyebutkan|disebutkan|ada informasi)|tidak diketahui)\b",
    re.IGNORECASE,
)


def cited_numbers(text: str) -> list[int]:
    """Source numbers cited in ``text``, in order of first appearance."""
    numbers: list[int] = []
    for m in _MARKER.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if n not in numbers:
                numbers.append(n)
    return numbers


def resolve_citations(text: str, sources: Sequence[Hit]) -> tuple[list[Citation], list[int]]:
    """Citations for the markers that name a source, and the numbers that name none."""
    citations: list[Citation] = []
    invalid: list[int] = []
    for n in cited_numbers(text):
        if not 1 <= n <= len(sources):
            invalid.append(n)
            continue
        c = sources[n - 1].chunk
        citations.append(Citation(number=n, doc_id=c.doc_id, title=c.title, source=c.source, text=c.text,
                                  chunk_id=c.id, url=c.url))
    return citations, invalid


def is_refusal(text: str) -> bool:
    """True when the answer declines rather than answers."""
    return bool(_REFUSAL.search(text[:200]))
