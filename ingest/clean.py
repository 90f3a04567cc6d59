"""Text cleaning before chunking: one normal form for every article.

Unicode NFC, Unix newlines, no control or zero-width characters, tabs as spaces, no
trailing spaces, at most one blank line in a row. Offsets of chunks refer to the cleaned
text, which is what the store keeps. Does not remove boilerplate (bylines, share
counters): that is the source's business.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200d\u2060\ufeff]")
_TRAILING = re.compile(r"[ \t\u00a0]+\n")
_BLANKS = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")


def clean_text(text: str) -> str:
    """Normalise ``text`` as described in the module docstring."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text).replace("\t", " ")
    text = _SPACES.sub(" ", text)
    text = _TRAILING.sub("\n", text)
    text = _BLANKS.sub("\n\n", text)
    return text.strip()
