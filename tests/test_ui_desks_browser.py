"""End to end: desks on the chat page, in headless Chromium, logged in as different users.

``kabar ui`` runs in its own process with ``KABAR_UI_USERS`` (three logins, two desks) over a
data directory whose desks hold one article each (the real embedder). Each login sees its own
desk's documents in the documents table (the element that must hold them); one that reads
both desks picks between them; one without a desk's write grant cannot delete from it. The
LLM is a remote address nothing answers at: nothing here needs an answer from it.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from ingest import ingest
from rag.assistant import Assistant
from rag.settings import Settings
from tests.test_ui_browser import ARTIFACTS, CHROMIUM, kabar_ui, shows, step

sync_api = pytest.importorskip("playwright.sync_api", reason="Python package playwright is not installed; "
                                                             "run scripts/install-browser.sh")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing; run scripts/install-browser.sh")

USERS = [
    {"user": "rina", "password": "rina-economy-pass", "read": ["economy"], "write": ["economy"]},
    {"user": "budi", "password": "budi-sports-pass1", "read": ["sports"], "write": ["sports"]},
    {"user": "chief", "password": "chief-reads-all-1", "read": ["economy", "sports"]},
]
ECONOMY_TITLE = "Bank Nusantara Bukukan Laba Rp 4,1 Triliun"
SPORTS_TITLE = "Persija Menang di Derbi Jakarta"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, e5: Any) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("desk-articles")
    data_dir = tmp_path_factory.mktemp("ui-desks") / "kabar-data"
    economy, sports = folder / "laba.md", folder / "derbi.md"
    economy.write_text(f"# {ECONOMY_TITLE}\n\nJakarta, 30 Oktober 2023\n\n"
                       + "PT Bank Nusantara mencatat laba bersih Rp 4,1 triliun pada kuartal ketiga. " * 3,
                       encoding="utf-8")
    sports.write_text(f"# {SPORTS_TITLE}\n\nJakarta, 29 Oktober 2023\n\n"
                      + "Persija mengalahkan Persib 2-1 di Stadion Gelora Bung Karno pada Minggu malam. " * 3,
                      encoding="utf-8")
    with Assistant(Settings(data_dir=data_dir), embedder=e5) as kabar:
        assert not ingest([economy], kabar.desk("economy")).errors
        assert not ingest([sports], kabar.desk("sports")).errors
    env = {"KABAR_DATA_DIR": str(data_dir), "KABAR_UI_USERS": json.dumps(USERS),
           "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with kabar_ui(env, ARTIFACTS / "ui-desks-server.log") as url:
        yield url


def logged_in(browser: Any, url: str, user: str) -> Any:
    """A page of its own browser context, logged in through Gradio's login route."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    password = next(u["password"] for u in USERS if u["user"] == user)
    assert page.request.post(url + "login", form={"username": user, "password": password}).status == 200
    page.goto(url)
    page.wait_for_selector("#kabar-question textarea")
    page.get_by_role("tab", name="Documents").click()
    return page


def documents(page: Any) -> str:
    return str(page.inner_text("#kabar-documents"))


def test_a_wrong_password_gets_no_page(browser: Any, served: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    assert page.request.post(served + "login", form={"username": "rina", "password": "budi-sports-pass1"}).status \
        == 400
    page.goto(served)
    assert page.locator("#kabar-question").count() == 0
    context.close()


def test_each_login_sees_its_own_desk(browser: Any, served: str) -> None:
    for user, own, other in (("budi", SPORTS_TITLE, ECONOMY_TITLE), ("rina", ECONOMY_TITLE, SPORTS_TITLE)):
        page = logged_in(browser, served, user)
        with step(f"{user}'s documents table"):
            page.wait_for_function(shows("#kabar-documents", own))
        assert other not in documents(page)
        assert not page.locator("#kabar-desk").is_visible()  # one desk: no picker
        page.context.close()


def test_a_login_with_two_desks_picks_one_and_cannot_delete_from_it(browser: Any, served: str) -> None:
    page = logged_in(browser, served, "chief")
    with step("chief's first desk"):
        page.wait_for_function(shows("#kabar-documents", ECONOMY_TITLE))
    assert SPORTS_TITLE not in documents(page)
    with step("switch to the sports desk"):
        page.locator("#kabar-desk input").click()
        page.get_by_role("option", name="sports").click()
        page.wait_for_function(shows("#kabar-documents", SPORTS_TITLE))
    assert ECONOMY_TITLE not in documents(page)
    with step("try to delete from a desk chief only reads"):
        page.locator("#kabar-pick input").click()
        page.get_by_role("option", name=SPORTS_TITLE).first.click()
        page.click("#kabar-delete")
        page.wait_for_function(shows("#kabar-doc-status", "may read desk 'sports' but not"))
    assert SPORTS_TITLE in documents(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-desks.png"), full_page=True)
    page.context.close()
