"""An OpenAI-compatible endpoint as both of Kabar's remote clients reach it.

:class:`OpenAIEndpoint` holds what the chat model (:class:`rag.models.llm.OpenAIChat`) and the
remote embedder (:class:`rag.models.embeddings.OpenAIEmbedder`) share: where the server is,
the key (never in ``repr``), the timeout, the ``openai`` client created on first use (or
passed in as ``client=``) and Kabar's retry policy (:mod:`rag.models.retry`). The client's own
retries are off: Kabar retries itself, and never a request whose answer had begun to stream.

Leaves the requests, and what a failure means for each, to its subclasses.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from rag.errors import KabarError
from rag.models.retry import RetryPolicy


class OpenAIEndpoint:
    """Connection settings, the lazily created client and the retry policy of one server."""

    def __init__(self, base_url: str = "", api_key: str = "", timeout_s: float = 120.0, client: Any = None,
                 retries: int = 2, sleep: Callable[[float], None] = time.sleep,
                 error: type[KabarError] = KabarError) -> None:
        if timeout_s <= 0:
            raise error(f"timeout_s must be greater than 0. Currently, timeout_s is {timeout_s}.")
        try:
            self.retry = RetryPolicy(retries)
        except ValueError as e:
            raise error(str(e)) from None
        self._sleep = sleep
        self.base_url = base_url
        self._api_key = api_key
        self.timeout_s = timeout_s
        self._client = client

    @property
    def where(self) -> str:
        return self.base_url or "the OpenAI API"

    def _get(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(base_url=self.base_url or None, api_key=self._api_key or "not-needed",
                                         timeout=self.timeout_s, max_retries=0)
        return self._client
