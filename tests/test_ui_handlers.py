"""The web UI's handlers, called directly, over a real Assistant.

A real Chroma store in the test's data directory and the hash embedder; the LLM is the real
:class:`OpenAIChat` whose HTTP transport is faked (an SSE stream, or a refused connection),
the one boundary these tests replace. The last test uses the real local model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ingest import ingest
from rag.answer.citations import cited_numbers
from rag.assistant import Assistant
from rag.errors import ConfigError
from rag.models import OpenAIChat
from rag.settings import Settings
from tests.conftest import ALIBABA, FACT_QUESTION, SAMPLE_ARTICLES
from ui import render
from ui.app import build_app, check_auth, is_loopback
from ui.handlers import Handlers

ALIBABA_TITLE = ALIBABA.read_text(encoding="utf-8").splitlines()[0]


def sse_events(pieces: list[str]) -> list[str]:
    """Server-sent events of an OpenAI chat-completions stream: ``pieces``, then usage."""
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "mock-model"}
    events = [json.dumps({**head, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]})
              for p in pieces]
    usage = {"prompt_tokens": 50, "completion_tokens": len(pieces), "total_tokens": 50 + len(pieces)}
    events.append(json.dumps({**head, "choices": [], "usage": usage}))
    return [f"data: {e}\n\n" for e in events] + ["data: [DONE]\n\n"]


def sse(pieces: list[str]) -> bytes:
    return "".join(sse_events(pieces)).encode()


def chat_over(handler: Callable[[httpx.Request], httpx.Response]) -> OpenAIChat:
    """The real OpenAIChat, its HTTP faked by ``handler``."""
    base = "http://llm.test/v1"
    client = openai.OpenAI(base_url=base, api_key="test", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    return OpenAIChat("mock-model", base, client=client)


class ScriptedLLM:
    """Answers every request with the next scripted reply; keeps the requests it got."""

    def __init__(self, *replies: list[str]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        pieces = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return httpx.Response(200, content=sse(pieces), headers={"content-type": "text/event-stream"})


@pytest.fixture
def scripted() -> ScriptedLLM:
    return ScriptedLLM(["Jin Li ", "memimpin unit ", "hybrid cloud [1]."])


@pytest.fixture
def assistant(settings: Settings, hash_embedder: Any, scripted: ScriptedLLM) -> Assistant:
    return Assistant(settings, embedder=hash_embedder, llm=chat_over(scripted))


@pytest.fixture
def loaded(assistant: Assistant) -> Assistant:
    report = ingest([SAMPLE_ARTICLES], assistant)
    assert not report.errors
    return assistant


def ask(h: Handlers, question: str, chat: list[dict[str, Any]] | None = None,
        top_k: float | None = None, temperature: float | None = 0.1) -> tuple[list[dict[str, Any]], list[Any]]:
    """What the page does on Ask: show the question, then stream the answer; returns the final
    chat and every (chat, sources) the stream yielded, copied as the browser would see them."""
    _, chat, _ = h.add_question(question, chat or [])
    steps = []
    for new_chat, panel in h.answer(chat, top_k, temperature):
        steps.append(([dict(m) for m in new_chat], panel))
    return steps[-1][0], steps


def last_panel(steps: list[Any]) -> str:
    panels = [p for _, p in steps if isinstance(p, str)]
    return panels[-1]


# -- chat ---------------------------------------------------------------------------------


def test_sources_come_first_then_the_answer_streams_then_the_cited_are_marked(loaded: Assistant) -> None:
    h = Handlers(loaded)
    chat, steps = ask(h, FACT_QUESTION)

    # Before any text: a status line in the chat and the articles found in the panel.
    first_text = next(i for i, (c, _) in enumerate(steps) if c[-1]["role"] == "assistant" and c[-1]["content"])
    before = steps[:first_text]
    assert before[0][0][-1]["metadata"] == {"title": render.SEARCHING, "status": "pending"}
    reading = [(c, p) for c, p in before if isinstance(p, str) and "kabar-source-list" in p]
    assert reading, "the sources must be shown before the first word of the answer"
    status = reading[0][0][-1]["metadata"]["title"]
    assert status.startswith("Reading ") and status.endswith(" articles…"), status
    assert ALIBABA_TITLE in reading[0][1] and "★" not in reading[0][1]

    texts = [c[-1]["content"] for c, _ in steps if c[-1]["role"] == "assistant" and "metadata" not in c[-1]]
    assert "Jin Li " in texts and "Jin Li memimpin unit " in texts  # it grew piece by piece
    assert not any(render.is_status(m) for m in chat)  # the status line gave way to the answer
    assert [m["role"] for m in chat] == ["user", "assistant", "assistant"]
    assert chat[0]["content"] == FACT_QUESTION
    # the final text is the API's (it may repair a citation number), with one [n] marker
    assert chat[1]["content"].startswith("Jin Li memimpin unit hybrid cloud [")
    n = cited_numbers(chat[1]["content"])
    assert len(n) == 1
    assert chat[2]["metadata"]["title"] == f"Sources: [{n[0]}] cited"

    panel = last_panel(steps)
    passages = panel.count('data-n="')
    articles = panel.count('<li class="kabar-source')
    assert 1 < passages <= loaded.settings.top_k and articles <= passages
    assert f"(1 of {articles} articles cited)" in panel
    assert len(set(re.findall(r'data-doc="([^"]+)"', panel))) == articles  # one entry per article
    cited_article = panel.split('<li class="kabar-source kabar-cited"')[1].split("</li>")[0]
    assert f'kabar-cited-passage" data-n="{n[0]}"' in cited_article and ALIBABA_TITLE in cited_article


def test_a_queued_question_says_it_waits(loaded: Assistant) -> None:
    h = Handlers(loaded)
    _, chat, _ = h.add_question("who leads hybrid cloud?", [])
    assert chat[-1]["metadata"] == {"title": render.QUEUED, "status": "pending"}
    assert render.api_history(chat) == [{"role": "user", "content": "who leads hybrid cloud?"}]
    assert render.reading_status(4, waiting=True) == "Waiting for another answer to finish, then reading 4 articles…"
    assert render.reading_status(1, starting=True) == "Starting the local model, then reading 1 article…"


def test_the_answer_shows_the_cited_passage(loaded: Assistant) -> None:
    h = Handlers(loaded)
    chat, steps = ask(h, "Jin Li dipercaya memimpin unit hybrid cloud")
    panel = last_panel(steps)
    assert ALIBABA_TITLE in panel.split('data-n="2"')[0]  # the hash embedder ranks the exact words first
    assert "Jin Li dipercaya memimpin unit hybrid cloud" in panel
    assert "alibaba-cloud-reshuffle-id.txt" in panel
    assert "Jin Li dipercaya memimpin unit hybrid cloud" in chat[2]["content"]


def test_follow_up_sends_the_conversation_without_sources_or_errors(loaded: Assistant, scripted: ScriptedLLM) -> None:
    h = Handlers(loaded)
    chat, _ = ask(h, "who leads hybrid cloud?")
    first_answer = chat[1]["content"]
    chat, _ = ask(h, "and public cloud?", chat)

    # What the follow-up sent: the question made standalone from the conversation (the
    # elliptical "and public cloud?" takes the shape of the earlier question).
    sent = json.dumps(scripted.requests[1:], ensure_ascii=False)
    assert "who leads public cloud?" in sent
    assert first_answer  # the earlier answer was on the page, and went to the API as history
    assert "★" not in sent and "Could not answer" not in sent  # the page's annotations stay on the page
    assert [m["role"] for m in chat] == ["user", "assistant", "assistant", "user", "assistant", "assistant"]


def test_history_from_the_page_drops_sources_and_failed_turns() -> None:
    page = [  # as Gradio hands the chatbot's value to a handler: content as a list of parts
        {"role": "user", "content": [{"type": "text", "text": "who leads hybrid cloud?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Jin Li [1]."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "[1] ..."}], "metadata": {"title": "Sources: [1]"}},
        {"role": "user", "content": [{"type": "text", "text": "and public cloud?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "⚠️ **Could not answer:** unreachable"}]},
        {"role": "user", "content": "and public cloud?"},
        {"role": "assistant", "content": "Weiguang Liu [2]."},
    ]
    assert render.api_history(page) == [
        {"role": "user", "content": "who leads hybrid cloud?"},
        {"role": "assistant", "content": "Jin Li [1]."},
        {"role": "user", "content": "and public cloud?"},
        {"role": "assistant", "content": "Weiguang Liu [2]."},
    ]


def test_settings_of_the_session_reach_the_api(loaded: Assistant, scripted: ScriptedLLM) -> None:
    h = Handlers(loaded)
    _, steps = ask(h, "who leads hybrid cloud?", top_k=2, temperature=0.7)
    assert scripted.requests[0]["temperature"] == 0.7
    assert last_panel(steps).count('data-n="') <= 2
    assert loaded.settings.top_k == Settings.top_k  # the shared settings are untouched


def test_unreachable_llm_is_a_message_in_the_chat(settings: Settings, hash_embedder: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    kabar = Assistant(settings, embedder=hash_embedder, llm=chat_over(refuse))
    ingest([ALIBABA], kabar)
    chat, steps = ask(Handlers(kabar), "who leads hybrid cloud?")
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert chat[1]["content"].startswith(render.ERROR_MARK)
    assert "cannot reach the LLM server at http://llm.test/v1" in chat[1]["content"]
    assert last_panel(steps) == render.EMPTY_SOURCES
    assert render.api_history(chat) == []  # a retry does not see the failed turn


def test_llm_failing_mid_answer_keeps_what_came(settings: Settings, hash_embedder: Any) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        body = sse_events(["Jin Li "])[0] + "data: {not json}\n\n"
        return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})

    kabar = Assistant(settings, embedder=hash_embedder, llm=chat_over(broken))
    ingest([ALIBABA], kabar)
    chat, _ = ask(Handlers(kabar), "who leads hybrid cloud?")
    assert chat[1]["content"] == "Jin Li "
    assert chat[2]["content"].startswith(f"{render.ERROR_MARK} **Could not answer:** the answer was cut off")


def test_empty_collection_is_a_message_in_the_chat(assistant: Assistant) -> None:
    chat, _ = ask(Handlers(assistant), "who leads hybrid cloud?")
    assert chat[-1]["content"].startswith(render.ERROR_MARK)
    assert "is empty: ingest articles first" in chat[-1]["content"]


def test_an_empty_question_asks_nothing(loaded: Assistant, scripted: ScriptedLLM) -> None:
    h = Handlers(loaded)
    _, chat, _ = h.add_question("   ", [])
    assert chat == []
    assert [c for c, _ in h.answer(chat, 8, 0.1)] == [[]]
    assert scripted.requests == []


def test_clear_empties_the_chat_and_the_sources(assistant: Assistant) -> None:
    chat, panel, _, _ = Handlers(assistant).clear()
    assert chat == [] and panel == render.EMPTY_SOURCES


def test_document_text_is_shown_as_text_never_markup(assistant: Assistant, tmp_path: Path) -> None:
    evil = tmp_path / "evil.md"
    evil.write_text("# <img src=x onerror=alert(1)> *bold* [link](javascript:alert(2))\n\n"
                    "<script>alert(3)</script> costs $20 and $30.\n", encoding="utf-8")
    ingest([evil], assistant)
    chat, steps = ask(Handlers(assistant), "costs")
    panel = last_panel(steps)
    assert "<script>" not in panel and "<img" not in panel
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in panel
    sources = chat[2]["content"]
    assert "<script>" not in sources and "](javascript" not in sources
    assert "\\<script\\>" in sources and "\\$20" in sources


# -- documents ----------------------------------------------------------------------------


def test_upload_ingests_keeps_the_file_and_lists_it(assistant: Assistant, tmp_path: Path) -> None:
    h = Handlers(assistant)
    article = tmp_path / "gradio-tmp" / "kopi-robot.txt"
    article.parent.mkdir()
    article.write_text("Robot Kopi Hadir di Bandung\n\nKedai Kopi Nusantara memakai robot barista "
                       "bernama Si Gesit sejak Maret.\n", encoding="utf-8")
    status, rows, picker, cleared = h.upload([str(article)])
    assert status.startswith("✓ Ingested 1 document(s) (1 new)")
    assert cleared is None
    kept = assistant.settings.data_dir / "uploads" / "kopi-robot.txt"
    assert kept.read_text(encoding="utf-8") == article.read_text(encoding="utf-8")
    assert rows[0][:3] == ["Robot Kopi Hadir di Bandung", "kopi-robot.txt", 1]
    assert rows[0][3]  # when it was ingested
    assert picker["choices"] == [("Robot Kopi Hadir di Bandung — kopi-robot.txt", rows[0][4])]

    # the same file name again (Gradio puts each upload in a new temporary folder): an update
    again = tmp_path / "other-tmp" / "kopi-robot.txt"
    again.parent.mkdir()
    again.write_text("Robot Kopi Hadir di Bandung\n\nSi Gesit kini juga membuat teh.\n", encoding="utf-8")
    status, rows, _, _ = h.upload([str(again)])
    assert "(1 updated)" in status
    assert len(rows) == 1


def test_upload_of_bad_files_says_which_and_why(assistant: Assistant, tmp_path: Path) -> None:
    h = Handlers(assistant)
    good = tmp_path / "good.txt"
    good.write_text("A Title\n\nSome body text.\n", encoding="utf-8")
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    status, rows, _, _ = h.upload([str(good), str(binary), str(pdf)])
    assert "Ingested 1 document(s) (1 new)" in status
    assert "**photo\\.txt**: looks like a binary file" in status
    assert "**report\\.pdf**: is a corrupt or unreadable PDF" in status
    assert "Traceback" not in status
    assert [r[0] for r in rows] == ["A Title"]


def test_upload_reports_progress(assistant: Assistant, tmp_path: Path) -> None:
    seen: list[Any] = []
    article = tmp_path / "a.txt"
    article.write_text("Title\n\n" + "Kalimat berita yang panjang. " * 200, encoding="utf-8")
    Handlers(assistant).upload([str(article)], progress=lambda *a, **kw: seen.append(a[0]))
    assert seen[0] == (0, None)
    done, total = seen[-1]
    assert done == total and total > 1


def test_upload_nothing_asks_for_files(assistant: Assistant) -> None:
    status, rows, _, _ = Handlers(assistant).upload(None)
    assert status.startswith("Choose one or more files")
    assert rows == []


def test_delete_removes_the_document(loaded: Assistant) -> None:
    h = Handlers(loaded)
    _, rows, picker = h.show_documents()
    assert len(rows) == 14
    doc_id = next(r[4] for r in rows if r[0] == ALIBABA_TITLE)
    status, rows, picker = h.delete(doc_id)
    assert status.startswith(f"Deleted **{render.md_escape(ALIBABA_TITLE)}**")
    assert len(rows) == 13 and doc_id not in [r[4] for r in rows]
    assert doc_id not in [v for _, v in picker["choices"]]
    status, _, _ = h.delete(doc_id)
    assert status.startswith(render.ERROR_MARK)
    status, _, _ = h.delete(None)
    assert status.startswith("Choose a document")


# -- settings -----------------------------------------------------------------------------


def test_models_says_what_is_local_and_what_is_remote(loaded: Assistant, settings: Settings,
                                                      hash_embedder: Any) -> None:
    text = Handlers(loaded).models()
    assert "- **LLM:** local — `qwen2.5-coder-1.5b-instruct (llama.cpp server on 127.0.0.1)`" in text
    assert "- **Embedding model:** local (in-process) — `test/hash-embedder`" in text
    assert "14 documents" in text

    remote = Assistant(settings.with_(llm_base_url="http://gpu.example:8000/v1", llm_model="qwen-72b"),
                       embedder=hash_embedder)
    assert "- **LLM:** remote — `qwen-72b at http://gpu.example:8000/v1`" in Handlers(remote).models()


# -- the app ------------------------------------------------------------------------------


def test_build_app_returns_the_page_without_starting_anything(settings: Settings, hash_embedder: Any) -> None:
    import gradio as gr

    kabar = Assistant(settings, embedder=hash_embedder)
    app = build_app(kabar)
    assert isinstance(app, gr.Blocks)
    assert not app.is_running
    assert kabar._store is None and kabar._llm is None
    assert app.analytics_enabled is False


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_needs_no_login(host: str) -> None:
    assert is_loopback(host)
    assert check_auth(host, Settings.from_env({})) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "kabar.example.org"])
def test_other_addresses_refuse_to_start_without_a_login(host: str) -> None:
    with pytest.raises(ConfigError, match="KABAR_UI_USER and KABAR_UI_PASSWORD"):
        check_auth(host, Settings.from_env({}))
    with pytest.raises(ConfigError, match="KABAR_UI_PASSWORD is not set"):
        check_auth(host, Settings.from_env({"KABAR_UI_USER": "ana"}))
    login = Settings.from_env({"KABAR_UI_USER": "ana", "KABAR_UI_PASSWORD": "s3cret"})
    assert check_auth(host, login) == ("ana", "s3cret")


def test_kabar_ui_refuses_a_public_address_in_one_line(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.main import main

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")

    assert main(["ui", "--host", "0.0.0.0", "--port", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("kabar: error: refusing to serve on 0.0.0.0 without a login")


def test_served_app_with_a_login_refuses_anonymous_calls(settings: Settings, hash_embedder: Any) -> None:
    from ui.app import serve

    app = build_app(Assistant(settings.with_(ui_user="ana", ui_password="s3cret"), embedder=hash_embedder))
    url = serve(app, "127.0.0.1", None)
    try:
        assert httpx.get(url + "config").status_code == 401
        with httpx.Client() as client:
            assert client.post(url + "login", data={"username": "ana", "password": "wrong"}).status_code == 400
            assert client.post(url + "login", data={"username": "ana", "password": "s3cret"}).status_code == 200
            assert client.get(url + "config").status_code == 200
    finally:
        app.close()


# -- with the real model ------------------------------------------------------------------


@pytest.mark.llm
def test_follow_up_question_uses_the_conversation(settings: Settings, e5: Any, local_llm: Any) -> None:
    kabar = Assistant(settings, embedder=e5, llm=local_llm)
    ingest([SAMPLE_ARTICLES], kabar)
    h = Handlers(kabar)
    chat, _ = ask(h, "who leads hybrid cloud?", top_k=4, temperature=0.0)  # a shorter prompt: faster
    assert "Jin Li" in chat[1]["content"]
    chat, steps = ask(h, "and public cloud?", chat, top_k=4, temperature=0.0)
    assert not chat[4]["content"].startswith(render.ERROR_MARK)
    assert ALIBABA_TITLE in last_panel(steps)
    assert "Weiguang Liu" in chat[4]["content"], chat[4]["content"]


def test_kabar_ui_serves_prints_the_url_and_stops_on_ctrl_c(isolated_env: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A configured (unreachable) LLM: the warm-up creates its client and starts nothing.
    env = {**os.environ, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "GRADIO_ANALYTICS_ENABLED": "False"}
    # stderr goes to a file: a pipe nobody reads would block the server once it filled up.
    # faulthandler dumps every thread's stack on SIGABRT, should it ever not stop.
    log = isolated_env.parent / "ui-stderr.log"
    # The child gets the default Ctrl-C handling even when the tests run in the background,
    # where the shell starts them with SIGINT ignored and the child would inherit that.
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "ui.main", "ui", "--port", str(port)],
                                env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"Kabar chat at http://127.0.0.1:{port}/"), log.read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=30)
            raise AssertionError("kabar ui did not stop on Ctrl-C:\n" + log.read_text()[-6000:]) from None
        assert code == 0, log.read_text()[-6000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
