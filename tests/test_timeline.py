"""A story's timeline (rag/timeline.py): the Python API, the command, the HTTP API and MCP's tool.

A real Chroma store holds one story told over three months by several outlets (a wire story
carried by two of them, folded at ingest), an article without a date, and an unrelated one.
Hash embeddings: what makes an article part of the story here is the lexical side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest
from rag.assistant import Assistant
from rag.errors import EmptyCollectionError
from rag.settings import Settings
from rag.timeline import Timeline, TimelineEvent
from tests.conftest import HashEmbedder, local_client
from tests.test_http_api import fake_llm
from ui.api import build_api

WIRE = ("PT Nusantara Data Infra set the price of its initial public offering at Rp 1,250 a share on Friday, "
        "valuing the Telkom data centre unit at Rp 18 trillion ahead of its listing in Jakarta. ") * 3
STORY = [
    {"id": "plan", "title": "Telkom plans an IPO of Nusantara Data Infra", "source": "Kabar Harian",
     "url": "https://kabarharian.example/ndi-plan", "published": "2023-10-02",
     "text": "Telkom Indonesia said on Monday it plans an initial public offering of Nusantara Data Infra, its data "
             "centre unit, in the fourth quarter. " * 3},
    {"id": "wire-a", "title": "Nusantara Data Infra prices its IPO", "source": "Antara",
     "url": "https://antara.example/ndi-price", "published": "2023-12-01T16:05:00+07:00", "text": WIRE},
    {"id": "wire-b", "title": "Nusantara Data Infra prices its IPO", "source": "Reuters",
     "url": "https://reuters.example/ndi-price", "published": "2023-12-01T09:20:00Z", "text": WIRE},
    {"id": "regulator", "title": "OJK clears the Nusantara Data Infra IPO", "source": "Kompas",
     "url": "https://kompas.example/ojk-ndi", "published": "2023-11-15",
     "text": "The financial services authority OJK approved the registration statement of Nusantara Data Infra "
             "for its initial public offering, the Telkom unit said in a filing. " * 3},
    {"id": "debut", "title": "Nusantara Data Infra shares jump on debut", "source": "Kabar Harian",
     "url": "https://kabarharian.example/ndi-debut", "published": "2023-12-20",
     "text": "Shares of Nusantara Data Infra rose 25 percent on their first day of trading after the IPO, "
             "giving Telkom's data centre unit a market value of Rp 22 trillion. " * 3},
    {"id": "profile", "title": "Who runs Nusantara Data Infra", "source": "Kabar Harian",
     "text": "Nusantara Data Infra, the Telkom data centre unit preparing an IPO, is led by Rina Kusuma, "
             "who ran Telkom's enterprise business. " * 3},
    {"id": "derby", "title": "Persija wins the Jakarta derby", "source": "Kompas", "published": "2023-11-12",
     "text": "Persija beat Persib 2-1 at Gelora Bung Karno on Sunday evening in front of 70,000 fans. " * 3},
]


@pytest.fixture
def kabar(settings: Settings, tmp_path: Path) -> Assistant:
    corpus = tmp_path / "story.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in STORY), encoding="utf-8")
    assistant = Assistant(settings, embedder=HashEmbedder(), llm=fake_llm())
    report = ingest([corpus], assistant)  # dedupe on: the wire story is stored once, both outlets kept
    assert not report.errors and len(report.duplicates) == 1
    return assistant


def run(kabar: Assistant, topic: str, **kw: Any) -> tuple[list[TimelineEvent], Timeline]:
    *events, whole = list(kabar.timeline(topic, **kw))
    assert isinstance(whole, Timeline) and all(isinstance(e, TimelineEvent) for e in events)
    assert events == whole.events  # streamed one by one, then the whole
    return events, whole


def test_a_story_in_date_order_with_its_copies_folded(kabar: Assistant) -> None:
    events, whole = run(kabar, "Nusantara Data Infra IPO")
    assert [e.title for e in events] == ["Telkom plans an IPO of Nusantara Data Infra",
                                         "OJK clears the Nusantara Data Infra IPO",
                                         "Nusantara Data Infra prices its IPO",
                                         "Nusantara Data Infra shares jump on debut"]
    assert [e.number for e in events] == [1, 2, 3, 4]
    assert [e.day for e in events] == ["2023-10-02", "2023-11-15", "2023-12-01", "2023-12-20"]
    wire = events[2]
    assert sorted(wire.outlets) == ["Antara", "Reuters"] and len(wire.urls) == 2
    assert wire.published in ("2023-12-01T16:05:00+07:00", "2023-12-01T09:20:00Z")  # as the article states it
    assert wire.line.startswith("PT Nusantara Data Infra set the price of its initial public offering")
    assert wire.text().startswith("2023-12-01 · ") and wire.text().endswith(" [3]")
    assert whole.undated == 1  # the profile: about the story, but it has no date
    assert "Persija" not in json.dumps([e.line for e in events])


def test_bounds_from_the_caller_or_the_topic(kabar: Assistant) -> None:
    events, whole = run(kabar, "Nusantara Data Infra IPO", since="2023-11-01", until="2023-12-10")
    assert [e.day for e in events] == ["2023-11-15", "2023-12-01"]
    assert whole.window == "articles from 2023-11-01 to 2023-12-10"
    events, whole = run(kabar, "Nusantara Data Infra IPO in December 2023")
    assert [e.day for e in events] == ["2023-12-01", "2023-12-20"]
    assert whole.window == "articles from 2023-12-01 to 2023-12-31"
    events, whole = run(kabar, "Nusantara Data Infra IPO", limit=2)
    assert len(events) == 2


def test_nothing_about_it_and_bad_requests(kabar: Assistant, settings: Settings) -> None:
    events, whole = run(kabar, "Garuda Indonesia fleet renewal")
    assert events == [] and whole.events == []
    with pytest.raises(ValueError, match="needs a topic"):
        list(kabar.timeline("   "))
    with pytest.raises(ValueError, match="limit must be at least 1"):
        list(kabar.timeline("IPO", limit=0))
    empty = Assistant(settings.with_(collection="empty-desk"), embedder=HashEmbedder())
    with pytest.raises(EmptyCollectionError, match="is empty: ingest articles first"):
        list(empty.timeline("IPO"))


def test_timeline_over_http_streams_then_answers_whole(kabar: Assistant) -> None:
    with local_client(build_api(kabar)) as client:
        r = client.post("/v1/timeline", json={"topic": "Nusantara Data Infra IPO", "since": "2023-11-01"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        blocks = [dict(line.split(": ", 1) for line in b.splitlines()) for b in r.text.strip().split("\n\n")]
        kinds = [b["event"] for b in blocks]
        assert kinds == ["event", "event", "event", "timeline"]
        assert [json.loads(b["data"])["number"] for b in blocks[:3]] == [1, 2, 3]
        whole = json.loads(blocks[-1]["data"])
        assert whole["window"] == "articles from 2023-11-01 on" and len(whole["events"]) == 3
        r = client.post("/v1/timeline", json={"topic": "Nusantara Data Infra IPO", "stream": False})
        assert r.status_code == 200 and r.json()["events"][0]["published"] == "2023-10-02"
        for bad in ({"topic": ""}, {"topic": "IPO", "since": "last week"}, {"topic": "IPO", "limit": 0}):
            assert client.post("/v1/timeline", json=bad).status_code == 422
        assert client.post("/v1/timeline", json={"topic": "   "}).status_code == 400


def test_the_timeline_command(kabar: Assistant, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rag.assistant.Assistant", lambda *a, **kw: _Borrowed(kabar))
    from ui.main import main

    assert main(["timeline", "Nusantara Data Infra IPO"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2023-10-02 · Kabar Harian — Telkom Indonesia said on Monday")
    assert out[2].startswith("2023-12-01 · ") and out[2].endswith(" [3]") and "Antara" in out[2]
    assert "4 event(s), 2023-10-02 to 2023-12-20" in out
    assert any("1 article(s) about it have no date" in line for line in out)
    assert main(["timeline", "Nusantara Data Infra IPO", "--until", "2023-12-05"]) == 0
    assert "3 event(s), 2023-10-02 to 2023-12-01; articles up to 2023-12-05" in capsys.readouterr().out


class _Borrowed:
    """The test's assistant, lent to the command (which closes what it opens)."""

    def __init__(self, kabar: Assistant) -> None:
        self.kabar = kabar

    def __enter__(self) -> Assistant:
        return self.kabar

    def __exit__(self, *exc: object) -> None:
        pass
