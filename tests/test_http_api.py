"""The HTTP API (ui/api.py, ui/openai_compat.py) over a real store and ingest.

The store is real Chroma with the sample articles (hash embeddings: the ranking is not the
point here); the LLM is faked only at the network boundary (an ``httpx.MockTransport``
behind the real ``openai`` client). The OpenAI-compatible endpoint is read back with the
real ``openai`` client, and the schema is fuzzed with schemathesis: no input gets a 500.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import hypothesis
import hypothesis.errors
import openai
import pytest
from fastapi.testclient import TestClient

from ingest import ingest
from rag.assistant import Assistant
from rag.errors import ConfigError
from rag.models import OpenAIChat
from rag.settings import Settings
from tests.conftest import ALIBABA, FACT_QUESTION, SAMPLE_ARTICLES, HashEmbedder, local_client
from tests.test_llm_errors import event, sse
from ui.api import build_api
from ui.openai_compat import FOOTNOTE, strip_footnote
from ui.server import check_token, server_app

ANSWER = "Jin Li leads hybrid cloud [1]."
# Kabar may renumber the citation to the passage that says it (hash embeddings rank loosely).
CITED = "Jin Li leads hybrid cloud ["
TOKEN = "t0ken-for-the-tests-only-0123456789"


def fake_llm(pieces: list[str] | None = None, fail: Callable[[httpx.Request], httpx.Response] | None = None,
             seen: list[dict[str, Any]] | None = None) -> OpenAIChat:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(json.loads(request.content))
        if fail is not None:
            return fail(request)
        usage = {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}
        return sse([event(p) for p in (pieces or ["Jin Li", " leads hybrid cloud", " [1]."])] + [event(usage=usage)])

    client = openai.OpenAI(base_url="http://llm.test/v1", api_key="x", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    return OpenAIChat("fake", "http://llm.test/v1", client=client, retries=0)


@pytest.fixture
def kabar(settings: Settings) -> Assistant:
    assistant = Assistant(settings, embedder=HashEmbedder(), llm=fake_llm())
    ingest([SAMPLE_ARTICLES], assistant)
    return assistant


@pytest.fixture
def client(kabar: Assistant) -> Iterator[TestClient]:
    with local_client(build_api(kabar)) as c:
        yield c


def events(text: str) -> list[tuple[str, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


# -- ask, retrieve, documents --------------------------------------------------------------


def test_ask_streams_sources_then_text_then_the_answer(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": FACT_QUESTION})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    got = events(r.text)
    kinds = [k for k, _ in got]
    assert kinds[0] == "sources" and kinds[-1] == "answer" and set(kinds[1:-1]) == {"delta"}
    sources = got[0][1]
    assert sources["query"] == FACT_QUESTION
    numbers = [p["number"] for a in sources["articles"] for p in a["passages"]]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    assert "".join(d["text"] for k, d in got if k == "delta") == ANSWER
    answer = got[-1][1]
    assert answer["text"].startswith(CITED) and answer["refused"] is False
    assert len(answer["citations"]) == 1
    assert answer["timings"]["first_token_s"] > 0 and answer["usage"]["prompt_tokens"] == 50


def test_ask_without_streaming(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": FACT_QUESTION, "stream": False, "top_k": 5,
                                     "temperature": 0.0, "filters": {"since": "", "sources": []}})
    assert r.status_code == 200
    body = r.json()
    assert body["text"].startswith(CITED) and body["citations"][0]["title"] and body["articles"]


def test_history_reaches_the_model(settings: Settings) -> None:
    seen: list[dict[str, Any]] = []
    assistant = Assistant(settings.with_(answer_history=4), embedder=HashEmbedder(), llm=fake_llm(seen=seen))
    ingest([ALIBABA], assistant)
    with local_client(build_api(assistant)) as c:
        r = c.post("/v1/ask", json={"question": "and public cloud?", "stream": False, "history": [
            {"role": "user", "content": FACT_QUESTION}, {"role": "assistant", "content": ANSWER}]})
    assert r.status_code == 200
    assert any(ANSWER in m["content"] for req in seen for m in req["messages"])


def test_retrieve_asks_no_model(settings: Settings) -> None:
    seen: list[dict[str, Any]] = []
    assistant = Assistant(settings, embedder=HashEmbedder(), llm=fake_llm(seen=seen))
    ingest([SAMPLE_ARTICLES], assistant)
    with local_client(build_api(assistant)) as c:
        r = c.post("/v1/retrieve", json={"question": "Huawei Cloud Indonesia", "top_k": 3})
    assert r.status_code == 200 and seen == []
    body = r.json()
    assert 1 <= len(body["hits"]) <= 3 and body["articles"][0]["passages"][0]["number"] == 1


def test_documents_list_and_delete(client: TestClient, kabar: Assistant) -> None:
    docs = client.get("/v1/documents").json()["documents"]
    assert len(docs) == len(kabar.documents()) >= 3
    doc_id = docs[0]["doc_id"]
    r = client.delete(f"/v1/documents/{doc_id}")
    assert r.status_code == 200 and r.json()["chunks"] == docs[0]["chunks"]
    assert doc_id not in {d["doc_id"] for d in client.get("/v1/documents").json()["documents"]}
    r = client.delete(f"/v1/documents/{doc_id}")
    assert r.status_code == 404 and "no document" in r.json()["error"]["message"]


def test_ingest_files_and_urls(settings: Settings, tmp_path: Path) -> None:
    from pytest_httpserver import HTTPServer

    assistant = Assistant(settings, embedder=HashEmbedder(), llm=fake_llm())
    with local_client(build_api(assistant)) as c:
        r = c.post("/v1/ingest/files", files=[("files", ("alibaba.txt", ALIBABA.read_bytes(), "text/plain")),
                                              ("files", ("empty.txt", b"", "text/plain"))])
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["new"]) == 1 and body["errors"][0]["source"] == "empty.txt"
        again = c.post("/v1/ingest/files", files=[("files", ("alibaba.txt", ALIBABA.read_bytes(), "text/plain"))])
        assert len(again.json()["unchanged"]) == 1  # same name, same document
        r = c.post("/v1/ingest/files", files=[("files", ("../..", b"x", "text/plain"))])
        assert r.status_code == 400 and "plain file name" in r.json()["error"]["message"]
        r = c.post("/v1/ingest", json={"urls": ["/etc/passwd"]})
        assert r.status_code == 400 and "http(s) URL" in r.json()["error"]["message"]
        with HTTPServer() as server:
            page = "<html><head><title>Kapal listrik</title></head><body><article><h1>Kapal listrik</h1>" + \
                   "<p>PT Selat Hijau meluncurkan feri listrik pertamanya, Kerapu-9, di Merak pada Minggu.</p>" * 8 + \
                   "</article></body></html>"
            server.expect_request("/news/ferry.html").respond_with_data(page, content_type="text/html")
            url = server.url_for("/news/ferry.html")
            r = c.post("/v1/ingest", json={"urls": [url]})
            # The server's own network is closed to fetches unless the deployment opens it.
            assert r.status_code == 200 and r.json()["new"] == [], r.text
            error = r.json()["errors"][0]
            assert error["source"] == url and "a loopback address" in error["problem"]
            assert "KABAR_FETCH_ALLOW" in error["problem"]
            assistant.settings = settings.with_(fetch_allow="127.0.0.1/32")
            r = c.post("/v1/ingest", json={"urls": [url]})
        assert r.status_code == 200 and len(r.json()["new"]) == 1, r.text


# -- errors ----------------------------------------------------------------------------------


def test_errors_are_json_with_a_message(client: TestClient) -> None:
    cases = [
        (client.post("/v1/ask", json={"question": ""}), 422, "invalid_request"),
        (client.post("/v1/ask", json={"question": "x", "top_k": 0}), 422, "invalid_request"),
        (client.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"}), 422,
         "invalid_request"),
        (client.post("/v1/ask", json={"question": "x", "filters": {"since": "yesterday"}}), 422, "invalid_request"),
        (client.post("/v1/ask", json={"question": "   "}), 400, "invalid_request"),
        (client.get("/v1/nothing-here"), 404, "not_found"),
        (client.put("/v1/ask"), 405, "method_not_allowed"),
    ]
    for r, status, kind in cases:
        assert r.status_code == status, (r.status_code, r.text)
        assert r.json()["error"]["type"] == kind and r.json()["error"]["message"]


def test_empty_collection_says_what_to_do(settings: Settings) -> None:
    with local_client(build_api(Assistant(settings, embedder=HashEmbedder(), llm=fake_llm()))) as c:
        r = c.post("/v1/ask", json={"question": "who leads hybrid cloud?"})
    assert r.status_code == 409 and "kabar ingest" in r.json()["error"]["message"]


def test_llm_failure_mid_answer_is_an_error_event(settings: Settings) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": "model crashed"}})

    assistant = Assistant(settings, embedder=HashEmbedder(), llm=fake_llm(fail=fail))
    ingest([ALIBABA], assistant)
    with local_client(build_api(assistant)) as c:
        r = c.post("/v1/ask", json={"question": "who leads hybrid cloud?"})
        assert r.status_code == 200  # the sources were sent before the model failed
        got = events(r.text)
        assert [k for k, _ in got] == ["sources", "error"]
        assert got[1][1]["error"]["type"] == "llm_error" and "500" in got[1][1]["error"]["message"]
        r = c.post("/v1/ask", json={"question": "who leads hybrid cloud?", "stream": False})
        assert r.status_code == 502 and "llm.test" in r.json()["error"]["message"]


def test_body_size_limit(kabar: Assistant) -> None:
    with local_client(build_api(kabar, max_body_bytes=1000)) as c:
        r = c.post("/v1/ask", json={"question": "x" * 2000})
        assert r.status_code == 413 and "KABAR_API_MAX_BODY_MB" in r.json()["error"]["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"question": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}'

        r = c.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


# -- token -----------------------------------------------------------------------------------


def test_token_is_required_when_set(kabar: Assistant) -> None:
    with local_client(build_api(kabar, token=TOKEN)) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/openapi.json").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            r = c.get("/v1/documents", headers=headers)
            assert r.status_code == 401 and "KABAR_API_TOKEN" in r.json()["error"]["message"]
            assert TOKEN not in r.text
        assert c.get("/v1/documents", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_binding_beyond_loopback_needs_a_token(settings: Settings) -> None:
    assert check_token("127.0.0.1", settings) == ""
    with pytest.raises(ConfigError, match="KABAR_API_TOKEN"):
        check_token("0.0.0.0", settings)
    with pytest.raises(ConfigError, match="too short"):
        check_token("0.0.0.0", settings.with_(api_token="short"))
    assert check_token("0.0.0.0", settings.with_(api_token=TOKEN)) == TOKEN
    assert TOKEN not in repr(settings.with_(api_token=TOKEN))
    with pytest.raises(ConfigError, match="KABAR_UI_USER"):  # the chat page beside it needs its login
        server_app(Assistant(settings.with_(api_token=TOKEN)), "0.0.0.0")


def test_chat_page_mounts_beside_the_api(kabar: Assistant) -> None:
    with local_client(server_app(kabar, "127.0.0.1")) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/ui/").status_code == 200 and "gradio" in c.get("/ui/").text.lower()
        assert c.get("/v1/models").json()["data"][0]["id"] == "kabar"


# -- OpenAI-compatible -----------------------------------------------------------------------


def openai_client(c: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://127.0.0.1/v1", api_key="any", http_client=c, max_retries=0)


def test_openai_client_gets_an_answer_with_citations(client: TestClient) -> None:
    oc = openai_client(client)
    assert [m.id for m in oc.models.list()] == ["kabar"]
    reply = oc.chat.completions.create(model="whatever-name", messages=[
        {"role": "system", "content": "You are helpful."}, {"role": "user", "content": FACT_QUESTION}])
    text = reply.choices[0].message.content
    assert text.startswith(CITED) and FOOTNOTE in text and "] " in text.split(FOOTNOTE)[1]
    assert reply.model == "whatever-name" and reply.usage.total_tokens == 57
    extra = reply.model_extra["kabar"]
    assert extra["citations"][0]["number"] >= 1 and extra["articles"]


def test_openai_client_streams(client: TestClient) -> None:
    oc = openai_client(client)
    stream = oc.chat.completions.create(model="kabar", stream=True, stream_options={"include_usage": True},
                                        messages=[{"role": "user", "content": FACT_QUESTION}])
    pieces, finish, extra, usage = [], None, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
        extra = (chunk.model_extra or {}).get("kabar") or extra
    text = "".join(pieces)
    assert text.startswith(CITED) and FOOTNOTE in text
    assert finish == "stop" and extra["citations"] and usage.prompt_tokens == 50


def test_openai_client_follow_up_with_history(settings: Settings) -> None:
    """The client sends back the earlier answer, footnote and all: the model gets it without the footnote."""
    seen: list[dict[str, Any]] = []
    assistant = Assistant(settings.with_(answer_history=4), embedder=HashEmbedder(), llm=fake_llm(seen=seen))
    ingest([ALIBABA], assistant)
    with local_client(build_api(assistant)) as c:
        oc = openai_client(c)
        first = oc.chat.completions.create(model="kabar", messages=[{"role": "user", "content": FACT_QUESTION}])
        earlier = first.choices[0].message.content
        assert FOOTNOTE in earlier
        reply = oc.chat.completions.create(model="kabar", messages=[
            {"role": "user", "content": FACT_QUESTION}, {"role": "assistant", "content": earlier},
            {"role": "user", "content": "and public cloud?"}])
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.role == "assistant"
    history = [m["content"] for m in seen[-1]["messages"]]
    assert any(earlier.split(FOOTNOTE)[0] in m for m in history)
    assert not any(FOOTNOTE.strip() + "\n[" in m for m in history), history


def test_openai_client_errors_are_its_own_exceptions(settings: Settings) -> None:
    """A bad request, an oversized one and a wrong token, as the openai client raises them."""
    assistant = Assistant(settings, embedder=HashEmbedder(), llm=fake_llm())
    ingest([ALIBABA], assistant)
    with local_client(build_api(assistant, token=TOKEN, max_body_bytes=50_000)) as c:
        good = openai.OpenAI(base_url="http://127.0.0.1/v1", api_key=TOKEN, http_client=c, max_retries=0)
        with pytest.raises(openai.BadRequestError) as bad:
            good.chat.completions.create(model="kabar", messages=[{"role": "assistant", "content": "hi"}])
        assert bad.value.status_code == 400 and "last message" in bad.value.message
        assert bad.value.body["type"] == "invalid_request" and bad.value.code == "invalid_request"
        with pytest.raises(openai.UnprocessableEntityError) as empty:
            good.chat.completions.create(model="kabar", messages=[])
        assert empty.value.body["type"] == "invalid_request"
        with pytest.raises(openai.APIStatusError) as big:
            good.chat.completions.create(model="kabar", messages=[{"role": "user", "content": "x " * 40_000}])
        assert big.value.status_code == 413 and "KABAR_API_MAX_BODY_MB" in big.value.message
        wrong = openai.OpenAI(base_url="http://127.0.0.1/v1", api_key="not-the-token", http_client=c, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as denied:
            wrong.chat.completions.create(model="kabar", messages=[{"role": "user", "content": FACT_QUESTION}])
        assert denied.value.status_code == 401 and "API token" in denied.value.message
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        with pytest.raises(openai.AuthenticationError):  # a stream is refused before it starts
            next(iter(wrong.chat.completions.create(model="kabar", stream=True,
                                                    messages=[{"role": "user", "content": FACT_QUESTION}])))


def test_openai_history_drops_the_footnote() -> None:
    assert strip_footnote(ANSWER + FOOTNOTE + "[1] Alibaba — x") == ANSWER


def test_openai_request_errors(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json={"model": "x", "messages": [{"role": "assistant", "content": "hi"}]})
    assert r.status_code == 400 and "last message" in r.json()["error"]["message"]
    r = client.post("/v1/chat/completions", json={"model": "x", "messages": []})
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request"


# -- fuzzing -----------------------------------------------------------------------------------


schemathesis = pytest.importorskip("schemathesis")
FUZZ_EXAMPLES = 50  # per operation and mode: the whole fuzz run stays well under a minute


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_input_gets_a_server_error(kabar: Assistant, mode: str) -> None:
    app = build_api(kabar, max_body_bytes=200_000)
    # Ingesting URLs would fetch whatever the fuzzer makes up: it is tested above with a local server.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/v1/ingest", method="POST")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    seen: dict[str, int] = {}
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

        @hypothesis.given(case=strategy)
        @hypothesis.settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(hypothesis.HealthCheck))
        def no_server_error(case: Any) -> None:
            response = case.call()
            seen[response.status_code // 100 * 100] = seen.get(response.status_code // 100 * 100, 0) + 1
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["message"] and error["type"]

        try:
            no_server_error()
        except hypothesis.errors.Unsatisfiable:
            assert mode == "negative"  # an operation without inputs has no invalid ones
    assert seen.get(400) if mode == "negative" else seen.get(200)


def test_kabar_serve_refuses_a_public_address_without_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    from ui.main import main

    assert main(["serve", "--host", "0.0.0.0", "--no-ui"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kabar: error:") and "KABAR_API_TOKEN" in err and "Traceback" not in err


def test_without_a_token_only_this_machine_is_answered(kabar: Assistant) -> None:
    """DNS rebinding (a page's own name pointing at 127.0.0.1) and other sites' pages are refused."""
    app = build_api(kabar)
    with local_client(app) as c:
        assert c.get("/v1/documents").status_code == 200
        for headers in ({"Host": "evil.example:8080"}, {"Host": "kabar.newsroom.example"},
                        {"Origin": "https://evil.example"}, {"Origin": "null"}):
            r = c.get("/v1/documents", headers=headers)
            assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden", headers
            assert "documents" not in r.json()
        r = c.post("/v1/ingest", json={"urls": ["https://news.example/a"]}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "may not call this API" in r.json()["error"]["message"]
        for ok in ({"Host": "localhost:8080"}, {"Host": "[::1]:8080"}, {"Origin": "http://127.0.0.1:8080"}):
            assert c.get("/v1/documents", headers=ok).status_code == 200, ok
        assert c.get("/health", headers={"Host": "evil.example"}).status_code == 200  # a probe, nothing in it
    with local_client(build_api(kabar, token=TOKEN)) as c:  # with a token, the token decides
        r = c.get("/v1/documents", headers={"Host": "kabar.newsroom.example", "Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
