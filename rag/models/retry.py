"""When and how long to wait before asking a model server again.

A request to an OpenAI-compatible server (the chat model in :mod:`rag.models.llm`, the embedder
in :mod:`rag.models.embeddings`) is tried again when trying again is safe and likely to help:
the connection failed, or the server answered 429 (too many requests) or 500/502/503 (it
failed or is overloaded). Waits grow (0.5 s, 1 s, 2 s, ... up to a cap); a ``Retry-After``
header is honoured when it asks for no more than the cap, and a server that asks for
longer is not waited for. A timeout is not retried: a server that was too slow once would
make the reader wait twice as long.

Decides only; the callers loop, and say in their messages what was tried. Whether a
request may be repeated at all (not after part of an answer has been shown) is theirs to
know.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

#: HTTP statuses worth another try: rate limited, failed, bad gateway, unavailable.
RETRY_STATUSES = frozenset({429, 500, 502, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more tries after the first; waits from ``base_s`` doubling up to ``cap_s``."""

    retries: int = 2
    base_s: float = 0.5
    cap_s: float = 10.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more. Currently, retries is {self.retries}.")

    def wait_s(self, attempt: int, exc: BaseException) -> float | None:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0) after ``exc``;
        None when ``exc`` is not worth another try or the tries are spent."""
        if attempt >= self.retries or not retryable(exc):
            return None
        asked = retry_after_s(exc)
        if asked is not None:
            return asked if asked <= self.cap_s else None
        backoff = min(self.cap_s, self.base_s * (2 ** attempt))
        return backoff * (0.75 + 0.5 * random.random())  # jitter: clients that failed together spread out


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an ``openai`` or ``httpx`` status error, else None."""
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def retryable(exc: BaseException) -> bool:
    """A refused or dropped connection, or HTTP 429/500/502/503; never a timeout."""
    import httpx
    import openai

    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
        return False
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
        return True
    status = status_of(exc)
    return status in RETRY_STATUSES if status is not None and isinstance(exc, (openai.APIStatusError,
                                                                                httpx.HTTPStatusError)) else False


def retry_after_s(exc: BaseException) -> float | None:
    """What the server's ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms`` asks for."""
    response: Any = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def describe(exc: BaseException) -> str:
    """A few words on what failed, for a message: ``HTTP 503`` or ``connection failed``."""
    status = status_of(exc)
    return f"HTTP {status}" if status is not None else "the connection failed"
