"""Desks (ui/desks.py): one deployment, several archives, each token reading and writing its own.

A real embedded Chroma store holds two desks' collections (hash embeddings: ranking is not
the point), the LLM is faked at the network boundary, and every route is tried with a token
of the other desk: 404 (or 403 where it may read but not write), and nothing of the other
desk's articles in sources, citations, documents or error messages. The OpenAI-compatible
endpoint is read with the real ``openai`` client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import openai
import pytest
from fastapi.testclient import TestClient

from ingest import ingest
from rag.assistant import Assistant
from rag.errors import ConfigError
from rag.settings import Settings
from tests.conftest import HashEmbedder, local_client
from tests.test_http_api import fake_llm
from ui.api import build_api
from ui.desks import Tokens, parse_tokens
from ui.server import check_token

ECONOMY_TOKEN = "economy-desk-token-0123456789"
SPORTS_TOKEN = "sports-desk-token-0123456789ab"
EDITOR_TOKEN = "editor-reads-all-0123456789abc"
TOKENS = [
    {"token": ECONOMY_TOKEN, "name": "economy desk", "read": ["economy"], "write": ["economy"]},
    {"token": SPORTS_TOKEN, "name": "sports desk", "read": ["sports"], "write": ["sports"]},
    {"token": EDITOR_TOKEN, "name": "editor", "read": ["economy", "sports"], "write": []},
]
EMBARGO = "Bank Nusantara will report a net profit of Rp 9.9 trillion"  # only on the economy desk
EMBARGO_WORDS = ("9.9 trillion", "embargo lifts", "Embargoed")  # questions may say "Nusantara"


def article(folder: Path, name: str, title: str, text: str) -> Path:
    path = folder / f"{name}.md"
    path.write_text(f"# {title}\n\n{text}\n", encoding="utf-8")
    return path


@pytest.fixture
def desks(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    s = settings.with_(api_tokens=json.dumps(TOKENS))
    base = Assistant(s, embedder=HashEmbedder(), llm=fake_llm(["Jin Li", " leads hybrid cloud", " [1]."]))
    ingest([article(tmp_path, "embargo", "Embargoed: Bank Nusantara results",
                    f"{EMBARGO} on Monday, the embargo lifts at 09:00. " * 4)], base.desk("economy"))
    ingest([article(tmp_path, "derby", "Persija wins the Jakarta derby",
                    "Persija beat Persib 2-1 at Gelora Bung Karno on Sunday evening. " * 4)], base.desk("sports"))
    with local_client(build_api(base)) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def leaks(response: Any) -> bool:
    return any(word in response.text for word in EMBARGO_WORDS)


def test_each_token_reads_its_own_desk(desks: TestClient) -> None:
    economy = desks.get("/v1/documents", headers=auth(ECONOMY_TOKEN)).json()["documents"]
    sports = desks.get("/v1/documents", headers=auth(SPORTS_TOKEN)).json()["documents"]
    assert [d["title"] for d in economy] == ["Embargoed: Bank Nusantara results"]
    assert [d["title"] for d in sports] == ["Persija wins the Jakarta derby"]
    r = desks.post("/v1/ask", json={"question": "what will Bank Nusantara report?", "stream": False},
                   headers=auth(SPORTS_TOKEN))
    assert r.status_code == 200 and not leaks(r)
    assert {a["title"] for a in r.json()["articles"]} <= {"Persija wins the Jakarta derby"}
    editor = desks.get("/v1/documents?desk=economy", headers=auth(EDITOR_TOKEN)).json()["documents"]
    assert [d["title"] for d in editor] == ["Embargoed: Bank Nusantara results"]


def test_every_route_refuses_another_desk_without_leaking(desks: TestClient) -> None:
    economy_doc = desks.get("/v1/documents", headers=auth(ECONOMY_TOKEN)).json()["documents"][0]["doc_id"]
    h = auth(SPORTS_TOKEN)
    tries = [
        desks.get("/v1/documents?desk=economy", headers=h),
        desks.get("/v1/documents", headers={**h, "X-Kabar-Desk": "economy"}),
        desks.post("/v1/retrieve?desk=economy", json={"question": "Bank Nusantara profit"}, headers=h),
        desks.post("/v1/ask?desk=economy", json={"question": "Bank Nusantara profit", "stream": False}, headers=h),
        desks.post("/v1/ask?desk=economy", json={"question": "Bank Nusantara profit"}, headers=h),
        desks.delete(f"/v1/documents/{economy_doc}?desk=economy", headers=h),
        desks.post("/v1/ingest?desk=economy", json={"urls": ["https://news.example/a"]}, headers=h),
        desks.post("/v1/ingest/files?desk=economy", files=[("files", ("x.txt", b"Hello there.", "text/plain"))],
                   headers=h),
        desks.post("/v1/chat/completions", json={"model": "kabar/economy", "messages": [
            {"role": "user", "content": "Bank Nusantara profit"}]}, headers=h),
        desks.post("/v1/timeline?desk=economy", json={"topic": "Bank Nusantara"}, headers=h),
        desks.post("/v1/ask?desk=nonexistent", json={"question": "x", "stream": False}, headers=h),
    ]
    for r in tries:
        assert r.status_code == 404, (r.request.method, r.request.url, r.status_code, r.text)
        assert r.json()["error"]["type"] == "not_found" and not leaks(r)
    # The same words whether the desk exists or not: a token learns nothing of other desks.
    assert tries[0].json()["error"]["message"].replace("economy", "X") == \
        tries[-1].json()["error"]["message"].replace("nonexistent", "X")
    # Deleting an economy document through the sports desk finds nothing there.
    r = desks.delete(f"/v1/documents/{economy_doc}", headers=h)
    assert r.status_code == 404 and not leaks(r)
    assert len(desks.get("/v1/documents", headers=auth(ECONOMY_TOKEN)).json()["documents"]) == 1


def test_reading_is_not_writing(desks: TestClient) -> None:
    h = auth(EDITOR_TOKEN)
    doc = desks.get("/v1/documents?desk=economy", headers=h).json()["documents"][0]["doc_id"]
    for r in (desks.delete(f"/v1/documents/{doc}?desk=economy", headers=h),
              desks.post("/v1/ingest?desk=sports", json={"urls": ["https://news.example/a"]}, headers=h),
              desks.post("/v1/ingest/files?desk=economy", files=[("files", ("x.txt", b"Hi.", "text/plain"))],
                         headers=h)):
        assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden"
        assert "may read desk" in r.json()["error"]["message"]
    assert len(desks.get("/v1/documents?desk=economy", headers=h).json()["documents"]) == 1


def test_uploads_land_on_the_writers_desk_only(desks: TestClient) -> None:
    text = b"# Persib signs a new coach\n\nPersib Bandung named a new head coach on Tuesday. " * 3
    r = desks.post("/v1/ingest/files", files=[("files", ("coach.md", text, "text/markdown"))],
                   headers=auth(SPORTS_TOKEN))
    assert r.status_code == 200 and len(r.json()["new"]) == 1
    titles = {d["title"] for d in desks.get("/v1/documents", headers=auth(SPORTS_TOKEN)).json()["documents"]}
    assert "Persib signs a new coach" in titles
    economy = desks.get("/v1/documents", headers=auth(ECONOMY_TOKEN)).json()["documents"]
    assert [d["title"] for d in economy] == ["Embargoed: Bank Nusantara results"]


def test_openai_client_sees_its_desks_as_models(desks: TestClient) -> None:
    editor = openai.OpenAI(base_url="http://127.0.0.1/v1", api_key=EDITOR_TOKEN, http_client=desks, max_retries=0)
    assert [m.id for m in editor.models.list()] == ["kabar", "kabar/economy", "kabar/sports"]
    sports = openai.OpenAI(base_url="http://127.0.0.1/v1", api_key=SPORTS_TOKEN, http_client=desks, max_retries=0)
    assert [m.id for m in sports.models.list()] == ["kabar", "kabar/sports"]
    reply = sports.chat.completions.create(model="kabar", messages=[
        {"role": "user", "content": "what will Bank Nusantara report?"}])
    assert not any(w in json.dumps(reply.model_dump()) for w in EMBARGO_WORDS)
    with pytest.raises(openai.NotFoundError) as e:
        sports.chat.completions.create(model="kabar/economy", messages=[{"role": "user", "content": "profit?"}])
    assert "no desk 'economy' for this token" in e.value.message


def test_tokens_are_checked_before_the_server_starts(settings: Settings, tmp_path: Path) -> None:
    file = tmp_path / "tokens.json"
    file.write_text(json.dumps({"tokens": TOKENS}), encoding="utf-8")
    assert set(parse_tokens(str(file))) == {ECONOMY_TOKEN, SPORTS_TOKEN, EDITOR_TOKEN}
    assert check_token("0.0.0.0", settings.with_(api_tokens=str(file))) == ""
    grants = Tokens.from_settings(settings.with_(api_tokens=str(file)))
    editor = grants.grant(EDITOR_TOKEN.encode())
    assert editor is not None and editor.read == ("economy", "sports") and editor.write == ()
    assert grants.grant(b"wrong") is None
    bad = [("[]", "must be a JSON list"), ("{nope", "is not valid JSON"),
           (json.dumps([{"token": "short", "read": ["a1b"]}]), "16 characters or more"),
           (json.dumps([{"token": ECONOMY_TOKEN, "read": ["../etc"]}]), "is not a desk name"),
           (json.dumps([{"token": ECONOMY_TOKEN}]), "reads no desk"),
           (json.dumps([TOKENS[0], TOKENS[0]]), "the same token is given twice"),
           (str(tmp_path / "missing.json"), "cannot read the file")]
    for value, problem in bad:
        with pytest.raises(ConfigError, match=problem):
            check_token("0.0.0.0", settings.with_(api_tokens=value))


# -- the chat page ---------------------------------------------------------------------------

USERS = [
    {"user": "rina", "password": "rina-economy-pass", "read": ["economy"], "write": ["economy"]},
    {"user": "budi", "password": "budi-sports-pass1", "read": ["sports"], "write": ["sports"]},
    {"user": "chief", "password": "chief-reads-all-1", "read": ["economy", "sports"]},
]


@pytest.fixture
def page_handlers(settings: Settings, tmp_path: Path) -> Any:
    import gradio as gr

    from ui.desks import parse_users
    from ui.handlers import Handlers

    base = Assistant(settings, embedder=HashEmbedder(), llm=fake_llm(["Persija", " won [1]."]))
    ingest([article(tmp_path, "embargo", "Embargoed: Bank Nusantara results",
                    f"{EMBARGO} on Monday, the embargo lifts at 09:00. " * 4)], base.desk("economy"))
    ingest([article(tmp_path, "derby", "Persija wins the Jakarta derby",
                    "Persija beat Persib 2-1 at Gelora Bung Karno on Sunday evening. " * 4)], base.desk("sports"))
    return Handlers(base, parse_users(json.dumps(USERS))), gr.Request


def test_the_chat_page_shows_each_login_its_desks(page_handlers: Any) -> None:
    h, request = page_handlers
    budi, chief = request(username="budi"), request(username="chief")
    assert h.desks(budi)["choices"] == ["sports"] and h.desks(budi)["visible"] is False
    assert h.desks(chief)["choices"] == ["economy", "sports"] and h.desks(chief)["visible"] is True
    _, rows, _ = h.show_documents(None, budi)
    assert [r[0] for r in rows] == ["Persija wins the Jakarta derby"]
    status, rows, _ = h.show_documents("economy", budi)  # a crafted call naming another desk
    assert "no desk 'economy'" in status and rows == []
    _, rows, _ = h.show_documents("economy", chief)
    assert [r[0] for r in rows] == ["Embargoed: Bank Nusantara results"]
    *_, (chat, panel) = h.answer([{"role": "user", "content": "what will Bank Nusantara report?"}], None, None,
                                 "sports", budi)
    assert not any(w in json.dumps(chat) + str(panel) for w in EMBARGO_WORDS)
    *_, (chat, _) = h.answer([{"role": "user", "content": "Bank Nusantara profit?"}], None, None, "economy", budi)
    assert "no desk 'economy'" in chat[-1]["content"]


def test_the_chat_page_writes_only_where_the_login_may(page_handlers: Any, tmp_path: Path) -> None:
    h, request = page_handlers
    chief, rina = request(username="chief"), request(username="rina")
    doc = h.show_documents("economy", chief)[1]
    picked = h.list_documents("economy", chief)[1]["choices"][0][1]
    status, rows, _ = h.delete(picked, "economy", chief)
    assert "may read desk 'economy' but not" in status and len(rows) == len(doc) == 1
    note = tmp_path / "rups.md"
    note.write_text("# RUPS Bank Nusantara\n\nRapat umum pemegang saham digelar pada Selasa. " * 3, encoding="utf-8")
    status, rows, _, _ = h.upload([str(note)], "economy", request=chief)
    assert "may read desk 'economy' but not" in status and len(rows) == 1
    status, rows, _, _ = h.upload([str(note)], "economy", request=rina)
    assert "1 new" in status and len(rows) == 2
    assert [r[0] for r in h.show_documents(None, request(username="budi"))[1]] == ["Persija wins the Jakarta derby"]


def test_the_chat_page_login_checks_every_user(settings: Settings) -> None:
    from ui.app import check_auth

    check = check_auth("0.0.0.0", settings.with_(ui_users=json.dumps(USERS)))
    assert callable(check)
    assert check("rina", "rina-economy-pass") and check("chief", "chief-reads-all-1")
    assert not check("rina", "budi-sports-pass1") and not check("nobody", "rina-economy-pass")
    assert not check("", "")
    with pytest.raises(ConfigError, match="12 characters or more"):
        check_auth("0.0.0.0", settings.with_(ui_users=json.dumps([{"user": "x", "password": "short",
                                                                    "read": ["economy"]}])))
