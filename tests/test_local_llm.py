"""The local LLM server's life: tied to the Kabar process, reported when it stops, replaced after.

The first tests need no model: they check the owner-watch of :mod:`rag.models.llm_child` and the
messages. The rest (marked ``llm``) run the real llama.cpp server with the default model,
the way users run it: started from a short-lived thread, killed with the owner, crashed
mid-answer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest
from rag.assistant import Assistant, Prepared
from rag.errors import LLMServerStoppedError, LLMUnavailableError
from rag.models.local_llm import stopped_message
from rag.settings import Settings
from tests.conftest import ROOT, SAMPLE_ARTICLES, local_client, models_dir_for_tests


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def run_owner(code: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    """Start a Python process running ``code``, which prints the pid it wants watched; returns both."""
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT, env={**os.environ, **(env or {})})
    assert owner.stdout is not None
    line = owner.stdout.readline()
    assert line.strip().isdigit(), f"owner printed {line!r}"
    return owner, int(line)


# -- no model needed -------------------------------------------------------------------


def test_watched_child_ends_when_its_owner_is_killed() -> None:
    owner, child = run_owner("""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
                                  "from rag.models.llm_child import exit_when_parent_goes; import time; "
                                  "exit_when_parent_goes(0); time.sleep(120)"], stdin=subprocess.PIPE)
        print(child.pid, flush=True)
        time.sleep(120)
    """)
    try:
        time.sleep(0.5)
        assert alive(child)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert wait_gone(child, 5), "the child outlived its SIGKILLed owner"
    finally:
        owner.kill()
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_stopped_messages_name_the_signal_and_the_log(tmp_path: Path) -> None:
    log = tmp_path / "llama-server.log"
    segv = stopped_message(-signal.SIGSEGV, log)
    assert segv.startswith("the local LLM server stopped (signal 11, segmentation fault)")
    assert str(log) in segv and "kabar doctor" in segv
    assert "rerun scripts/setup.sh" in stopped_message(-signal.SIGILL, log)
    assert "(exit code 3)" in stopped_message(3, None, starting=True)
    assert issubclass(LLMServerStoppedError, LLMUnavailableError)


def dying_server(sig: int, log: Path) -> Any:
    """A server whose process dies with ``sig`` as it starts, the way a build for another CPU does."""
    from rag.models.local_llm import LocalLlamaServer

    class Server(LocalLlamaServer):
        def command(self) -> list[str]:
            return [sys.executable, "-c", f"import os; print('loading'); os.kill(os.getpid(), {sig})"]

    return Server(Path("model.gguf"), log_path=log, start_timeout_s=30)


def test_a_server_killed_by_sigill_while_starting_says_to_rebuild(tmp_path: Path, monkeypatch) -> None:
    import importlib.util as iu

    monkeypatch.setattr(iu, "find_spec", lambda name, *a: object())  # as if llama_cpp were installed
    server = dying_server(signal.SIGILL, tmp_path / "llama-server.log")
    with pytest.raises(LLMServerStoppedError) as info:
        server.start()
    message = str(info.value)
    assert message.startswith("the local LLM server stopped while starting (signal 4, illegal instruction)")
    assert "rerun scripts/setup.sh" in message and str(tmp_path / "llama-server.log") in message
    assert "loading" in message  # the log's last lines come with it


def test_generation_leaves_cores_free_and_the_prompt_uses_all(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.models import local_llm

    def option(server: local_llm.LocalLlamaServer, name: str) -> str:
        command = server.command()
        return command[command.index(name) + 1]

    monkeypatch.setattr(local_llm, "usable_cores", lambda: 2)
    server = local_llm.LocalLlamaServer(Path("model.gguf"))
    assert option(server, "--n_threads") == "1" and option(server, "--n_threads_batch") == "2"
    monkeypatch.setattr(local_llm, "usable_cores", lambda: 1)
    assert option(local_llm.LocalLlamaServer(Path("model.gguf")), "--n_threads") == "1"
    chosen = local_llm.LocalLlamaServer(Path("model.gguf"), threads=3)
    assert option(chosen, "--n_threads") == "3" and option(chosen, "--n_threads_batch") == "3"


# -- the real server -------------------------------------------------------------------

llm = pytest.mark.llm


@pytest.fixture(scope="module")
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings that make an Assistant start its own server; a short prompt keeps answers quick."""
    return Settings(data_dir=tmp_path_factory.mktemp("local-llm") / "data", model_dir=models_dir_for_tests(),
                    temperature=0.0, context_tokens=600)


@pytest.fixture(scope="module")
def ingested(local_settings: Settings, e5: Any) -> Settings:
    with Assistant(local_settings, embedder=e5) as kabar:
        assert not ingest([SAMPLE_ARTICLES], kabar).errors
    return local_settings


@llm
def test_server_started_from_a_short_lived_thread_keeps_answering(ingested: Settings, e5: Any) -> None:
    with Assistant(ingested, embedder=e5) as kabar:
        warm = threading.Thread(target=kabar.warm_up, name="short-lived")
        warm.start()
        warm.join()
        pid = kabar.llm.server.pid  # type: ignore[attr-defined]
        time.sleep(3)  # PR_SET_PDEATHSIG would have stopped it by now
        assert pid and alive(pid)
        answer = kabar.ask("who leads hybrid cloud?")
        assert "Jin Li" in answer.text and answer.citations
        assert kabar.llm.server.pid == pid  # type: ignore[attr-defined]
    assert wait_gone(pid, 10), "close() left the server running"


@llm
def test_server_dies_with_its_owner_even_on_sigkill(ingested: Settings) -> None:
    owner, pid = run_owner("""
        import threading, time
        from rag.assistant import Assistant
        kabar = Assistant()
        t = threading.Thread(target=kabar.warm_up)
        t.start(); t.join()
        print(kabar.llm.server.pid, flush=True)
        time.sleep(300)
    """, env={"KABAR_DATA_DIR": str(ingested.data_dir), "KABAR_MODEL_DIR": str(ingested.models_dir)})
    try:
        assert alive(pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert wait_gone(pid, 10), "the llama.cpp server outlived its SIGKILLed owner"
    finally:
        owner.kill()
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def crash_while_answering(llm: Any, pid: int) -> threading.Thread:
    """SIGSEGV the server once it is answering (its request in flight), from a thread of its own.

    Kabar shows checked text only (a one-sentence answer arrives whole), so "mid-answer" is
    while the model reads or writes, not after a first streamed word.
    """
    def crash() -> None:
        deadline = time.monotonic() + 120
        while not llm.active and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        os.kill(pid, signal.SIGSEGV)

    thread = threading.Thread(target=crash, name="crash-the-server", daemon=True)
    thread.start()
    return thread


@llm
def test_crash_mid_answer_is_reported_and_the_next_question_gets_a_fresh_server(ingested: Settings,
                                                                                 e5: Any) -> None:
    with Assistant(ingested, embedder=e5) as kabar:
        kabar.warm_up()
        first_pid = kabar.llm.server.pid  # type: ignore[attr-defined]
        stream = kabar.stream("who leads hybrid cloud?")
        with pytest.raises(LLMServerStoppedError) as info:
            for item in stream:
                if isinstance(item, Prepared):  # the model is about to read: crash it as AMX did
                    crash_while_answering(kabar.llm, first_pid)
        message = str(info.value)
        assert "the local LLM server stopped (signal 11, segmentation fault)" in message
        assert str(ingested.data_dir / "logs" / "llama-server.log") in message
        assert info.value.returncode == -signal.SIGSEGV

        answer = kabar.ask("who leads hybrid cloud?")
        assert "Jin Li" in answer.text
        assert kabar.llm.server.pid != first_pid  # type: ignore[attr-defined]


@llm
def test_chat_page_shows_the_crash_and_stays_usable(ingested: Settings, e5: Any) -> None:
    from ui.handlers import Handlers

    with Assistant(ingested, embedder=e5) as kabar:
        handlers = Handlers(kabar)
        chat: list[dict[str, Any]] = [{"role": "user", "content": "who leads hybrid cloud?"}]
        server = kabar.llm.server  # type: ignore[attr-defined]
        crashing = None
        for shown, _ in handlers.answer(chat):
            chat = shown
            if crashing is None:  # the question is on its way: crash the server while it answers
                crashing = crash_while_answering(kabar.llm, server.pid)
        assert "the local LLM server stopped (signal 11, segmentation fault)" in chat[-1]["content"], chat
        assert "cannot reach" not in chat[-1]["content"]

        chat.append({"role": "user", "content": "who leads hybrid cloud?"})
        *_, (chat, sources) = handlers.answer(chat)
        assert any("Jin Li" in str(m.get("content")) for m in chat[-3:]), chat
        assert "Alibaba" in str(sources)


@llm
def test_several_hundred_token_prompt_through_the_real_server(local_settings: Settings) -> None:
    """The prompt length at which llama.cpp's AMX kernels crashed: the build must answer it."""
    from rag.doctor import probe_llm
    from rag.models.local_llm import LocalLlamaChat, LocalLlamaServer, ensure_model

    server = LocalLlamaServer(ensure_model(local_settings.models_dir), log_path=local_settings.data_dir / "probe.log")
    chat = LocalLlamaChat(server)
    try:
        probe = probe_llm(chat)
    finally:
        chat.close()
    assert probe["prompt_tokens"] >= 300
    assert "Jin Li" in probe["answer"]
    assert probe["prompt_tokens_per_s"] > 0 and probe["generation_tokens_per_s"] > 0


@llm
def test_http_api_reports_the_crash_and_the_next_question_is_answered(ingested: Settings, e5: Any) -> None:

    from ui.api import build_api

    with Assistant(ingested, embedder=e5) as kabar, local_client(build_api(kabar)) as client:
        kabar.warm_up()
        server = kabar.llm.server  # type: ignore[attr-defined]
        first_pid = server.pid
        kinds: list[str] = []
        error: dict[str, Any] = {}
        with client.stream("POST", "/v1/ask", json={"question": "who leads hybrid cloud?"}) as r:
            kind = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[len("event: "):]
                    kinds.append(kind)
                    if kind == "sources":  # the model is about to read: crash it while it answers
                        crash_while_answering(kabar.llm, first_pid)
                elif line.startswith("data: ") and kind == "error":
                    error = json.loads(line[len("data: "):])["error"]
        assert kinds[0] == "sources" and kinds[-1] == "error", kinds
        assert "the local LLM server stopped (signal 11, segmentation fault)" in error["message"], error
        assert "cannot reach" not in error["message"]

        r = client.post("/v1/ask", json={"question": "who leads hybrid cloud?", "stream": False})
        assert r.status_code == 200 and "Jin Li" in r.json()["text"], r.text
        assert kabar.llm.server.pid != first_pid  # type: ignore[attr-defined]
