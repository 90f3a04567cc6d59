"""Kabar over MCP (ui/mcp_server.py), read with the ``mcp`` SDK's own client.

Over HTTP: ``kabar serve``'s app run by uvicorn on 127.0.0.1 (a real server), its /mcp
endpoint behind the API's tokens and desks, the client carrying a bearer token. Over stdio:
the real ``kabar mcp`` command as a subprocess. The store is real Chroma; the LLM is faked
at the network boundary (a mock transport behind the real ``openai`` client) where an answer
is needed, or an address nothing answers at.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import anyio
import httpx2
import pytest
import uvicorn
import webfixtures as web
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from pytest_httpserver import HTTPServer

from ingest import ingest
from rag.assistant import Assistant
from rag.settings import Settings
from tests.conftest import ALIBABA, HashEmbedder
from tests.test_http_api import fake_llm
from ui.api import build_api

WRITER = "economy-writer-token-0123456789"
READER = "economy-reader-token-0123456789"
SPORTS = "sports-desk-token-0123456789abcd"
TOKENS = [{"token": WRITER, "name": "economy writer", "read": ["economy"], "write": ["economy"]},
          {"token": READER, "name": "economy reader", "read": ["economy"]},
          {"token": SPORTS, "name": "sports", "read": ["sports"], "write": ["sports"]}]
TOOLS = {"ask", "search", "timeline", "list_documents", "ingest_url"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """kabar serve's app under uvicorn: the economy desk holds the Alibaba article; its MCP URL."""
    s = settings.with_(api_tokens=json.dumps(TOKENS), fetch_allow="127.0.0.1")
    base = Assistant(s, embedder=HashEmbedder(), llm=fake_llm())
    assert not ingest([ALIBABA], base.desk("economy")).errors
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_api(base), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp/"
    server.should_exit = True
    thread.join(10)


def over_http(url: str, token: str, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    """Tool results of ``calls`` (name, arguments), or the tool list for the name "tools"."""
    async def go() -> list[Any]:
        out: list[Any] = []
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                for name, arguments in calls:
                    if name == "tools":
                        out.append({t.name for t in (await client.list_tools()).tools})
                    else:
                        out.append(await client.call_tool(name, arguments))
        return out
    return anyio.run(go)


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_mcp_over_http_asks_searches_and_lists_with_the_token(served: str) -> None:
    tools, answer, found, docs, story = over_http(served, READER, ("tools", {}),
                                                  ("ask", {"question": "who leads hybrid cloud?"}),
                                                  ("search", {"question": "hybrid cloud", "top_k": 3}),
                                                  ("list_documents", {}),
                                                  ("timeline", {"topic": "Alibaba cloud", "since": "2023-01-01"}))
    assert tools == TOOLS
    assert not answer.is_error, text_of(answer)
    body = answer.structured_content
    assert "Jin Li" in body["answer"] and body["refused"] is False
    assert body["citations"] and body["citations"][0]["title"] and body["articles"]
    assert not found.is_error and 1 <= len(found.structured_content["passages"]) <= 3
    assert [d["title"] for d in docs.structured_content["documents"]] == \
        [ALIBABA.read_text(encoding="utf-8").splitlines()[0]]
    assert not story.is_error, text_of(story)
    events = story.structured_content["events"]
    assert len(events) == 1 and events[0]["published"].startswith("2023-12") and events[0]["number"] == 1
    assert story.structured_content["window"] == "articles from 2023-01-01 on"


def test_mcp_keeps_desks_apart_and_reading_from_writing(served: str, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/story").respond_with_data(web.news_page(), content_type="text/html")
    other, docs, ask = over_http(served, SPORTS, ("list_documents", {"desk": "economy"}),
                                 ("list_documents", {}), ("ask", {"question": "who leads hybrid cloud?"}))
    assert other.is_error and "no desk 'economy' for this token" in text_of(other)
    assert docs.structured_content["documents"] == []
    assert "Jin Li" not in json.dumps(ask.structured_content or {}) + text_of(ask)
    (refused,) = over_http(served, READER, ("ingest_url", {"urls": [httpserver.url_for("/story")]}))
    assert refused.is_error and "may read desk 'economy' but not" in text_of(refused)
    ingested, metadata = over_http(served, WRITER, ("ingest_url", {"urls": [httpserver.url_for("/story")]}),
                                   ("ingest_url", {"urls": ["http://169.254.169.254/latest/meta-data/"]}))
    assert not ingested.is_error and len(ingested.structured_content["new"]) == 1
    assert "a link-local address" in metadata.structured_content["errors"][0]["problem"]


def test_mcp_over_http_needs_a_token(served: str) -> None:
    with pytest.raises(Exception):  # noqa: B017  (the client wraps the refusal in an exception group)
        over_http(served, "not-a-token-at-all-0123456789", ("tools", {}))
    import httpx

    r = httpx.post(served, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={"Authorization": "Bearer wrong", "Accept": "application/json, text/event-stream"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"


def test_kabar_mcp_over_stdio(tmp_path: Path, e5: Any) -> None:
    """The real ``kabar mcp`` command: a desktop assistant's view, the local user's every desk."""
    data_dir = tmp_path / "kabar-data"
    with Assistant(Settings(data_dir=data_dir), embedder=e5) as kabar:
        assert not ingest([ALIBABA], kabar).errors
    env = {**os.environ, "KABAR_DATA_DIR": str(data_dir), "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
           "KABAR_RETRIES": "0"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "ui.main", "mcp"], env=env,
                                   cwd=str(Path(__file__).resolve().parent.parent))

    async def go() -> list[Any]:
        async with Client(params, read_timeout_seconds=120) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            docs = await client.call_tool("list_documents", {})
            found = await client.call_tool("search", {"question": "siapa memimpin cloud hybrid?", "top_k": 2})
            answer = await client.call_tool("ask", {"question": "who leads hybrid cloud?"})
            return [tools, docs, found, answer]

    tools, docs, found, answer = anyio.run(go)
    assert tools == TOOLS
    assert len(docs.structured_content["documents"]) == 1
    assert any("Jin Li" in p["text"] for p in found.structured_content["passages"])
    # The LLM is unreachable: a tool error with Kabar's message, not a crash of the server.
    assert answer.is_error and "cannot reach the LLM server at http://127.0.0.1:9/v1" in text_of(answer)
