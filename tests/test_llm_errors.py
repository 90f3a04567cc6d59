"""What the chat client does when the LLM server fails (rag.models.llm.OpenAIChat).

The fake sits at the network boundary only: a real ``openai.OpenAI`` client whose HTTP
transport is an ``httpx.MockTransport``. The end-to-end tests point a real Assistant and
the real CLI at a port where nothing listens.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ingest import ingest
from rag.assistant import Assistant
from rag.errors import LLMError, LLMTimeoutError, LLMUnavailableError
from rag.models import Embedder, OpenAIChat
from rag.settings import Settings
from rag.types import Usage
from ui.main import main

BASE_URL = "http://llm.test/v1"
MESSAGES = [{"role": "system", "content": "Answer from the sources."}, {"role": "user", "content": "Who leads?"}]
Handler = Callable[[httpx.Request], httpx.Response]


def chat(handler: Handler) -> OpenAIChat:
    client = openai.OpenAI(base_url=BASE_URL, api_key="x", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    return OpenAIChat("test-model", BASE_URL, client=client)


def event(content: str | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
                         "model": "test-model", "choices": []}
    if content is not None:
        e["choices"] = [{"index": 0, "delta": {"content": content}, "finish_reason": None}]
    if usage is not None:
        e["usage"] = usage
    return e


def sse(events: list[dict[str, Any]]) -> httpx.Response:
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- failures ----------------------------------------------------------------------------


def test_connection_refused_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(LLMUnavailableError) as info:
        list(chat(handler).stream(MESSAGES))
    message = str(info.value)
    assert BASE_URL in message
    assert "cannot reach" in message and "OPENAI_BASE_URL" in message


def test_timeout_is_a_timeout_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(LLMTimeoutError) as info:
        list(chat(handler).stream(MESSAGES))
    assert BASE_URL in str(info.value) and "KABAR_LLM_TIMEOUT" in str(info.value)


def test_timeout_error_is_an_llm_error() -> None:
    assert issubclass(LLMTimeoutError, LLMError) and issubclass(LLMUnavailableError, LLMError)


@pytest.mark.parametrize("body", [{"error": {"message": "model crashed"}}, None])
def test_http_500(body: dict[str, Any] | None) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(500, text="Internal Server Error")
        return httpx.Response(500, json=body)

    with pytest.raises(LLMError) as info:
        list(chat(handler).stream(MESSAGES))
    assert not isinstance(info.value, (LLMUnavailableError, LLMTimeoutError))
    assert "500" in str(info.value) and BASE_URL in str(info.value)


def test_unknown_model_says_what_to_set() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"message": "model not found"}})

    with pytest.raises(LLMError, match="KABAR_LLM_MODEL"):
        list(chat(handler).stream(MESSAGES))


def test_rejected_key_says_what_to_set() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "bad key"}})

    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        list(chat(handler).stream(MESSAGES))


def test_garbage_event_stream() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="data: {not json\n\n", headers={"content-type": "text/event-stream"})

    with pytest.raises(LLMError) as info:
        list(chat(handler).stream(MESSAGES))
    assert BASE_URL in str(info.value)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("<html><body>502 Bad Gateway</body></html>", "text/html"), ("{not json", "application/json"),
     ("", "text/event-stream")],
    ids=["html", "broken-json", "empty"],
)
def test_garbage_body_is_an_error_not_an_empty_answer(body: str, content_type: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body, headers={"content-type": content_type})

    with pytest.raises(LLMError) as info:
        list(chat(handler).stream(MESSAGES))
    assert BASE_URL in str(info.value)


# -- a working stream --------------------------------------------------------------------


def test_valid_stream_yields_text_then_usage() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        usage = {"prompt_tokens": 42, "completion_tokens": 3, "total_tokens": 45}
        return sse([event("Jin"), event(" Li"), event(" [1]."), event(usage=usage)])

    items = list(chat(handler).stream(MESSAGES, temperature=0.2, max_tokens=64))
    assert items == ["Jin", " Li", " [1].", Usage(42, 3, estimated=False)]
    [request] = seen
    assert request["model"] == "test-model"
    assert request["messages"] == MESSAGES
    assert request["stream"] is True
    assert request["max_tokens"] == 64 and request["temperature"] == 0.2


def test_stream_without_usage_estimates_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return sse([event("Jin"), event(" Li")])

    items = list(chat(handler).stream(MESSAGES))
    assert items[:-1] == ["Jin", " Li"]
    usage = items[-1]
    assert isinstance(usage, Usage)
    assert usage.estimated is True
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0


def test_complete_joins_the_stream() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return sse([event("Jin"), event(" Li")])

    assert chat(handler).complete(MESSAGES) == "Jin Li"


def test_model_is_asked_of_the_server_when_not_configured() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models"
        return httpx.Response(200, json={"object": "list", "data": [
            {"id": "served-model", "object": "model", "created": 0, "owned_by": "me"}]})

    client = openai.OpenAI(base_url=BASE_URL, api_key="x", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    assert OpenAIChat("", BASE_URL, client=client).model == "served-model"


def test_bad_timeout_is_refused() -> None:
    with pytest.raises(LLMError, match="timeout_s must be greater than 0"):
        OpenAIChat("m", BASE_URL, timeout_s=0)


# -- end to end: nothing listens -----------------------------------------------------------


@pytest.fixture
def article(tmp_path: Path) -> Path:
    path = tmp_path / "alibaba.txt"
    path.write_text("Alibaba\n\nJin Li memimpin unit hybrid cloud di Alibaba.\n", encoding="utf-8")
    return path


def test_assistant_with_unreachable_server(settings: Settings, hash_embedder: Embedder, article: Path) -> None:
    unreachable = settings.with_(llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="x",
                                 llm_timeout_s=10)
    kabar = Assistant(unreachable, embedder=hash_embedder)
    assert ingest([article], kabar).new
    started = time.perf_counter()
    with pytest.raises(LLMUnavailableError) as info:
        kabar.ask("siapa yang memimpin hybrid cloud?")
    assert time.perf_counter() - started < 10
    assert unreachable.llm_base_url in str(info.value)


def test_cli_ask_with_unreachable_server(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         settings: Settings, e5: Embedder, article: Path) -> None:
    ingest([article], Assistant(settings, embedder=e5))  # the CLI uses the same data directory and model
    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("KABAR_LLM_MODEL", "x")
    capsys.readouterr()

    assert main(["ask", "who leads hybrid cloud?"]) == 1

    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kabar: error:")
    assert url in lines[0]
    assert "Traceback" not in err
