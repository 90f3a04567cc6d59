"""The chat model, always reached through ``openai.OpenAI``.

:class:`OpenAIChat` talks to any OpenAI-compatible server: OpenAI itself, vLLM, Ollama,
or the local llama.cpp server that :mod:`rag.models.local_llm` starts. It streams text and
turns the client's exceptions into Kabar's :mod:`rag.errors`, with messages that say
what to check. A request that failed before any of the answer arrived (a refused
connection, HTTP 429/500/502/503) is tried again as :mod:`rag.models.retry` decides; once part of
the answer has streamed it never is (the reader would see it twice), and the error says
so. Does not cache.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, Sequence, Union

from rag.errors import LLMError, LLMTimeoutError, LLMUnavailableError
from rag.models.endpoint import OpenAIEndpoint
from rag.models.retry import describe, retry_after_s
from rag.tokens import count_tokens
from rag.types import Usage

Message = dict[str, str]
#: What :meth:`OpenAIChat.stream` yields: text pieces, then one Usage.
StreamItem = Union[str, Usage]

OPENAI_DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIChat(OpenAIEndpoint):
    """A chat model behind an OpenAI-compatible API; the client is created on first use.

    ``active`` counts the answers being streamed now; ``serial`` says whether the server
    answers one request at a time (the local llama.cpp server does), so that a new one waits.
    """

    serial = False

    def __init__(self, model: str = "", base_url: str = "", api_key: str = "", timeout_s: float = 120.0,
                 client: Any = None, retries: int = 2, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(base_url, api_key, timeout_s, client, retries, sleep, error=LLMError)
        self._model = model
        self.active = 0
        self._active_lock = threading.Lock()
        #: Set when the server refused a request for log-probabilities: they are not asked for again.
        self.no_logprobs = False

    @property
    def model(self) -> str:
        """The model name; asked of the server when none is configured and a base URL is."""
        if not self._model:
            if not self.base_url:
                self._model = OPENAI_DEFAULT_MODEL
            else:
                models = self._retrying(lambda: list(self._get().models.list()))
                if not models:
                    raise LLMError(f"the LLM server at {self.where} lists no models; set KABAR_LLM_MODEL")
                self._model = models[0].id
        return self._model

    def _errors(self) -> Any:
        return _translate_errors(self)

    def stream(self, messages: Sequence[Message], temperature: float = 0.1, max_tokens: int = 256,
               stop: Sequence[str] | None = None, logprobs: bool = False) -> Iterator[StreamItem]:
        """Yield the answer's text as it arrives, then a :class:`Usage` (with each token's
        log-probability when ``logprobs`` and the server sends them)."""
        with self._active_lock:
            self.active += 1
        try:
            yield from self._stream(messages, temperature, max_tokens, stop, logprobs)
        finally:
            with self._active_lock:
                self.active -= 1

    def _retrying(self, call: Callable[[], Any]) -> Any:
        """``call()`` with Kabar's errors, tried again while :attr:`retry` allows."""
        attempt = 0
        while True:
            try:
                with self._errors():
                    return call()
            except LLMError as e:
                wait = self._wait_s(attempt, e)
                if wait is None:
                    raise self._given_up(e, attempt) from e.__cause__
            self._sleep(wait)
            attempt += 1

    def _wait_s(self, attempt: int, error: LLMError) -> float | None:
        cause = error.__cause__
        return None if cause is None else self.retry.wait_s(attempt, cause)

    def _given_up(self, error: LLMError, attempt: int) -> LLMError:
        """The error to raise when no more tries are made: says how often it was tried, or that
        the server asked for a longer wait than Kabar gives it."""
        cause = error.__cause__
        asked = retry_after_s(cause) if cause is not None else None
        if asked is not None and asked > self.retry.cap_s and attempt < self.retry.retries:
            return type(error)(f"{error}; it asked to be retried after {asked:.0f}s, longer than Kabar waits "
                               f"({self.retry.cap_s:g}s): try again later")
        if attempt:
            return type(error)(f"{error} (tried {attempt + 1} times, {describe(cause) if cause else 'failed'} "
                               "each time)")
        return error

    def _stream(self, messages: Sequence[Message], temperature: float, max_tokens: int,
                stop: Sequence[str] | None, logprobs: bool = False) -> Iterator[StreamItem]:
        model = self.model
        parts: list[str] = []
        scored: list[tuple[str, float]] = []
        logprobs = logprobs and not self.no_logprobs
        # top_logprobs: llama.cpp's server sends no log-probabilities without it.
        extra: dict[str, Any] = {"logprobs": True, "top_logprobs": 1} if logprobs else {}
        usage: Usage | None = None
        events = 0
        attempt = 0
        while True:
            try:
                with self._errors():
                    response = self._get().chat.completions.create(
                        model=model, messages=list(messages), temperature=temperature, max_tokens=max_tokens,
                        stream=True, stream_options={"include_usage": True}, stop=list(stop) if stop else None,
                        **extra,
                    )
                    for event in response:
                        events += 1
                        if getattr(event, "usage", None):
                            usage = Usage(event.usage.prompt_tokens or 0, event.usage.completion_tokens or 0)
                        for choice in event.choices or []:
                            if logprobs:
                                content = getattr(getattr(choice, "logprobs", None), "content", None) or []
                                scored += [(str(t.token), float(t.logprob)) for t in content]
                            piece = getattr(choice.delta, "content", None)
                            if piece:
                                parts.append(piece)
                                yield piece
                break
            except LLMError as e:
                if extra and not parts and _rejected(e):
                    # A server that does not do log-probabilities (some refuse the parameter):
                    # answer without them, here and from now on.
                    self.no_logprobs, extra, logprobs = True, {}, False
                    continue
                if parts:
                    # Part of the answer is already out: a second request would show it twice.
                    raise type(e)(
                        f"the LLM server at {self.where} stopped sending after part of the answer had arrived "
                        f"({len(''.join(parts))} characters): {e}; not retried, since the answer would start "
                        "over: ask again"
                    ) from e.__cause__
                wait = self._wait_s(attempt, e)
                if wait is None:
                    raise self._given_up(e, attempt) from e.__cause__
            self._sleep(wait)
            attempt += 1
            events = 0
            usage = None
            scored = []
        if not events:
            raise LLMError(f"the LLM server at {self.where} sent no answer (an empty or unreadable stream)")
        if usage is None:  # the server did not report usage: estimate with tiktoken
            prompt = sum(count_tokens(m["content"]) for m in messages)
            usage = Usage(prompt, count_tokens("".join(parts)), estimated=True)
        if scored:
            usage.logprobs = tuple(scored)
        yield usage

    def complete(self, messages: Sequence[Message], temperature: float = 0.0, max_tokens: int = 128) -> str:
        """The whole answer at once."""
        return "".join(p for p in self.stream(messages, temperature, max_tokens) if isinstance(p, str))


class _translate_errors:
    """Context manager: openai exceptions -> Kabar's LLM errors."""

    def __init__(self, chat: OpenAIChat) -> None:
        self.chat = chat

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, exc: Any, tb: Any) -> bool:
        if exc is None:
            return False
        import httpx
        import openai

        where = self.chat.where
        if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
            raise LLMTimeoutError(
                f"the LLM server at {where} did not answer within {self.chat.timeout_s:g}s; "
                "try again, or raise KABAR_LLM_TIMEOUT"
            ) from exc
        if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
            raise LLMUnavailableError(
                f"cannot reach the LLM server at {where}; check OPENAI_BASE_URL and that the server is running "
                "(`kabar serve-llm` starts the local one)"
            ) from exc
        if isinstance(exc, openai.AuthenticationError):
            raise LLMError(f"the LLM server at {where} rejected the API key; check OPENAI_API_KEY") from exc
        if isinstance(exc, openai.NotFoundError):
            raise LLMError(
                f"the LLM server at {where} does not know model {self.chat._model!r}; set KABAR_LLM_MODEL"
            ) from exc
        if isinstance(exc, openai.APIStatusError):
            raise LLMError(f"the LLM server at {where} answered HTTP {exc.status_code}: {exc.message}") from exc
        if isinstance(exc, openai.APIError):
            raise LLMError(f"the LLM server at {where} sent a response Kabar cannot read: {exc}") from exc
        if isinstance(exc, (ValueError, KeyError, AttributeError, TypeError)) and not isinstance(exc, LLMError):
            raise LLMError(f"the LLM server at {where} sent a malformed response: {exc}") from exc
        return False


def _rejected(error: LLMError) -> bool:
    """True when the server refused the request itself (HTTP 400 or 422), not its load or state."""
    import openai

    cause = error.__cause__
    return isinstance(cause, openai.APIStatusError) and cause.status_code in (400, 422)
