"""End to end: the chat page in headless Chromium, over the real embedder and local model.

The page is served by the real ``kabar ui`` command in its own process (warm-up on, its own
local LLM server started from the warm-up thread, as users run it), over a data directory
with the sample articles ingested; Playwright drives Debian's /usr/bin/chromium (never a
browser download: ``scripts/install-browser.sh`` installs both). Each wait is a named step
whose time is recorded, so a timeout says which step it was. Screenshots, the timings and
the server's log are kept in ``artifacts/`` at the repository root.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from ingest import ingest
from rag.assistant import Assistant
from rag.settings import Settings
from tests.conftest import ALIBABA, CHROMIUM, ROOT, SAMPLE_ARTICLES, models_dir_for_tests

ARTIFACTS = ROOT / "artifacts"
# A 1.5B model on a few shared CPU cores: prefill of a ~2,000-token prompt can take a minute.
ANSWER_TIMEOUT_MS = 300_000
ALIBABA_TITLE = ALIBABA.read_text(encoding="utf-8").splitlines()[0]

sync_api = pytest.importorskip("playwright.sync_api", reason="Python package playwright is not installed; "
                                                             "run scripts/install-browser.sh")
pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing; run scripts/install-browser.sh"),
]

NEW_ARTICLE = """Selat Hijau Launches Electric Ferry Kerapu-9

Merak, 3 March 2024

PT Selat Hijau, a ferry operator in the Sunda Strait, launched its first battery-electric ferry, the Kerapu-9,
on Sunday. The ferry was built in Batam by the shipyard Galangan Prima and carries 320 passengers.

Chief executive Ratna Widjaja said the company plans to replace four diesel ferries by 2027.
"""
NEW_TITLE = NEW_ARTICLE.splitlines()[0]

# The first answer in the chat; status lines ("Reading 4 articles…") and the sources note are
# Gradio "thought" messages, left out.
BOT_TEXT = """() => {
  const bots = Array.from(document.querySelectorAll('#kabar-chat [data-testid="bot"]'))
    .filter(b => !b.querySelector('.thought-group'));
  return bots.length ? bots[0].innerText.trim() : '';
}"""
STATUS_TEXT = """() => {
  const title = document.querySelector('#kabar-chat .thought-group .title');
  return title ? title.innerText.trim() : '';
}"""

timings: dict[str, Any] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def kabar_ui(env: dict[str, str], log: Path) -> Iterator[str]:
    """The real ``kabar ui`` command in its own process with ``env``; its URL until the block ends."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    kabar_command = Path(sys.executable).parent / "kabar"
    command = [str(kabar_command)] if kabar_command.exists() else [sys.executable, "-m", "ui.main"]
    with log.open("w") as out:
        proc = subprocess.Popen([*command, "ui", "--port", str(port)], env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while "Kabar chat at" not in log.read_text():
            assert proc.poll() is None, f"kabar ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"kabar ui did not start:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        assert httpx.get(url, timeout=30).status_code == 200
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, e5: Any) -> Iterator[str]:
    """``kabar ui`` in its own process over the ingested sample articles; its URL."""
    data_dir = tmp_path_factory.mktemp("ui-browser") / "kabar-data"
    with Assistant(Settings(data_dir=data_dir), embedder=e5) as kabar:
        assert not ingest([SAMPLE_ARTICLES], kabar).errors
    env = {"KABAR_DATA_DIR": str(data_dir), "KABAR_MODEL_DIR": str(models_dir_for_tests()),
           "GRADIO_ANALYTICS_ENABLED": "False"}
    try:
        with kabar_ui(env, ARTIFACTS / "ui-server.log") as url:
            yield url
    finally:
        (ARTIFACTS / "ui-timings.json").write_text(json.dumps(timings, indent=2) + "\n")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@contextmanager
def screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"ui-failed-{name}.png"), full_page=True)
        raise


@contextmanager
def step(name: str) -> Iterator[None]:
    """A named part of a test: its time goes into the timings, and a failure names it."""
    started = time.perf_counter()
    try:
        yield
    except Exception as e:
        timings.setdefault("failed_steps", []).append(name)
        raise AssertionError(f"step {name!r} failed after {time.perf_counter() - started:.1f}s: {e}") from e
    finally:
        timings.setdefault("steps_s", {})[name] = round(time.perf_counter() - started, 2)


def shows(selector: str, text: str) -> str:
    """A wait_for_function predicate: the element holds ``text``. The element may be missing for a
    moment while Gradio re-renders it (during an event's progress), which is not a failure."""
    return f"() => (document.querySelector({selector!r})?.innerText || '').includes({text!r})"


def open_page(page: Any, url: str) -> float:
    """Load the app; seconds until it is usable (the question box is there)."""
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("#kabar-question textarea")
    return time.perf_counter() - started


def ask(page: Any, question: str) -> tuple[float, float, str]:
    """Ask in the chat; returns (when clicked, seconds to the first streamed text, that text)."""
    clicked = click_ask(page, question)
    page.wait_for_function(f"() => ({BOT_TEXT})().length > 0", timeout=ANSWER_TIMEOUT_MS)
    return clicked, time.perf_counter() - clicked, page.evaluate(BOT_TEXT)


def click_ask(page: Any, question: str) -> float:
    page.fill("#kabar-question textarea", question)
    clicked = time.perf_counter()
    page.click("#kabar-ask")
    return clicked


def wait_for_sources(page: Any) -> str:
    page.wait_for_selector("#kabar-sources .kabar-source-list", timeout=ANSWER_TIMEOUT_MS)
    page.wait_for_function("() => !document.querySelector('#kabar-question textarea').disabled",
                           timeout=ANSWER_TIMEOUT_MS)
    return str(page.inner_text("#kabar-sources"))


def test_answer_streams_in_with_its_sources(served: str, page: Any, browser: Any) -> None:
    with screenshot_on_failure(page, "chat"):
        answer_streams_in_with_its_sources(served, page, browser)


def answer_streams_in_with_its_sources(served: str, page: Any, browser: Any) -> None:
    with step("open the page"):
        timings["page_load_s"] = round(open_page(page, served), 2)
    with step("ask and see the sources before the answer"):
        clicked = click_ask(page, "who leads hybrid cloud?")
        page.wait_for_selector("#kabar-sources .kabar-pending .kabar-source-list", timeout=ANSWER_TIMEOUT_MS)
        timings["sources_in_browser_s"] = round(time.perf_counter() - clicked, 2)
        status, answer_so_far = page.evaluate(STATUS_TEXT), page.evaluate(BOT_TEXT)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-sources-first.png"), full_page=True)
    assert answer_so_far == "", "the sources must show before the answer's first word"
    assert "article" in status, status  # "Reading 4 articles…", or "Starting the local model, then reading…"
    assert ALIBABA_TITLE in page.inner_text("#kabar-sources")
    with step("the first words stream in"):
        page.wait_for_function(f"() => ({BOT_TEXT})().length > 0", timeout=ANSWER_TIMEOUT_MS)
        ttft, first_seen = time.perf_counter() - clicked, page.evaluate(BOT_TEXT)
    timings["first_token_in_browser_s"] = round(ttft, 2)

    # Another user opens the page while this answer is being written: it loads and is its own session.
    other = browser.new_context(viewport={"width": 1200, "height": 900})
    other_page = other.new_page()
    try:
        with screenshot_on_failure(other_page, "other-session"):
            with step("open a second session while answering"):
                timings["page_load_while_answering_s"] = round(open_page(other_page, served), 2)
            with step("second session lists the documents"):
                other_page.get_by_role("tab", name="Documents").click()
                other_page.wait_for_function(shows("#kabar-documents", "Alibaba Rombak"))
            assert other_page.locator("#kabar-chat [data-testid='user']").count() == 0
    finally:
        other.close()

    with step("the answer completes with its sources"):
        panel = wait_for_sources(page)
    timings["answer_complete_s"] = round(time.perf_counter() - clicked, 2)
    # The API's own time to first token (in the panel's footer): the rest is the page's overhead.
    api = re.search(r"([\d.]+)s to first token", panel)
    assert api is not None
    timings["first_token_in_api_s"] = float(api.group(1))
    answer = page.evaluate(BOT_TEXT)
    assert "Jin Li" in answer
    # What streamed in first is the start of the answer as it stands: checked text, never replaced.
    assert first_seen and answer.startswith(first_seen.rstrip(". ")[:20]), (first_seen, answer)
    assert ALIBABA_TITLE in panel and "★" in panel
    assert "Traceback" not in page.content()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)

    with step("clear the chat"):
        page.click("#kabar-clear")
        page.wait_for_function("() => !document.querySelector('#kabar-chat [data-testid=\"user\"]')")
    assert "Sources appear here" in page.inner_text("#kabar-sources")


def test_upload_an_article_then_ask_about_it(served: str, page: Any, tmp_path: Path) -> None:
    with screenshot_on_failure(page, "upload"):
        upload_an_article_then_ask_about_it(served, page, tmp_path)


def upload_an_article_then_ask_about_it(served: str, page: Any, tmp_path: Path) -> None:
    article = tmp_path / "selat-hijau-ferry-en.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    bad = tmp_path / "scan.txt"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    with step("open the documents tab"):
        open_page(page, served)
        page.get_by_role("tab", name="Documents").click()
        page.wait_for_function(shows("#kabar-documents", "Alibaba Rombak"))
    with step("upload a good and a bad file"):
        page.set_input_files("#kabar-upload input[type=file]", [str(article), str(bad)])
        page.wait_for_function(shows("#kabar-doc-status", "Ingested"), timeout=120_000)
    status = page.inner_text("#kabar-doc-status")
    assert "Ingested 1 document(s) (1 new)" in status
    assert "scan.txt: looks like a binary file" in status
    with step("the table lists the new article"):
        page.wait_for_function(shows("#kabar-documents", NEW_TITLE))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-documents.png"), full_page=True)

    page.get_by_role("tab", name="Chat").click()
    with step("ask about the uploaded article"):
        _, ttft, _ = ask(page, "Who is the chief executive of PT Selat Hijau?")
        timings["first_token_after_upload_s"] = round(ttft, 2)
        panel = wait_for_sources(page)
    assert "Ratna Widjaja" in page.evaluate(BOT_TEXT)
    assert NEW_TITLE in panel
    page.screenshot(path=str(ARTIFACTS / "ui-upload-answer.png"), full_page=True)


def test_timeline_tab_lists_a_story_in_date_order(served: str, page: Any) -> None:
    with screenshot_on_failure(page, "timeline"):
        with step("open the timeline tab"):
            open_page(page, served)
            page.get_by_role("tab", name="Timeline").click()
        with step("ask for a story's timeline"):
            page.fill("#kabar-timeline-topic textarea, #kabar-timeline-topic input", "Telkom pusat data")
            page.click("#kabar-timeline-go")
            page.wait_for_function(shows("#kabar-timeline .kabar-timeline-status", "event(s)"), timeout=120_000)
        dates = page.locator("#kabar-timeline .kabar-event-date").all_inner_texts()
        assert dates and dates == sorted(dates), dates
        assert "2023-12-05" in dates
        events = page.locator("#kabar-timeline .kabar-event").all_inner_texts()
        telkom = events[dates.index("2023-12-05")]
        assert "Telkom Siapkan Pemisahan Bisnis Pusat Data" in telkom and "[" in telkom
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-timeline.png"), full_page=True)
