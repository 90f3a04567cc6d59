"""Kabar on a real Chroma server (``chroma run`` on 127.0.0.1, its own folder).

The store contract (tests/test_store.py) holds on the server too; ingest, ask, update,
delete and ``kabar eval --retrieval-only`` give the same results as the embedded store on
the same data; a server that goes away mid-ingest or mid-question is a clear error, and the
next call after it is back works.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

import ingest.pipeline as pipeline
from eval.dataset import load_set
from eval.runner import RunOptions, run_eval
from ingest import ingest
from rag.assistant import Assistant
from rag.errors import StoreError
from rag.models import Embedder
from rag.settings import Settings
from rag.store import ChromaStore
from rag.store.lexical import LexicalIndex
from rag.store.meta import complete_versions
from tests.chroma_server import ChromaServer, chroma_script
from tests.conftest import ALIBABA, FACT_QUESTION, ROOT, SAMPLE_ARTICLES, SAMPLE_QUESTIONS, HashEmbedder, local_client
from tests.test_http_api import fake_llm
from tests.test_store import MODEL, MakeStore, StoreContract
from ui.api import build_api
from ui.main import main

pytestmark = pytest.mark.skipif(not chroma_script().exists(), reason="the chroma command is not installed")
QUESTIONS = [json.loads(line)["question"] for line in SAMPLE_QUESTIONS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "data").start()
    yield server
    server.stop()


def on_server(settings: Settings, server: ChromaServer, collection: str = "") -> Settings:
    return settings.with_(chroma_host=server.host, chroma_port=server.port,
                          collection=collection or f"test-{uuid.uuid4().hex[:12]}")


class TestServerChromaStore(StoreContract):
    """The same contract as the embedded store, on the server (a fresh collection per test)."""

    @pytest.fixture
    def make_store(self, settings: Settings, chroma_server: ChromaServer) -> MakeStore:
        s = on_server(settings, chroma_server)

        def make(model: str = MODEL) -> ChromaStore:
            return ChromaStore.from_settings(s, model)

        return make


def ids(hits: Sequence[Any]) -> list[str]:
    return [h.chunk.id for h in hits]


def assert_whole(store: ChromaStore) -> None:
    rows = list(store.iter_rows())
    keep = complete_versions([r[0] for r in rows], [r[2] for r in rows])
    assert sorted(r[0] for r in rows) == sorted(set().union(*keep.values()) if keep else []), "a partial document"


def test_same_results_as_the_embedded_store(settings: Settings, chroma_server: ChromaServer, e5: Embedder,
                                            tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    shutil.copytree(SAMPLE_ARTICLES, folder)
    embedded = Assistant(settings, embedder=e5)
    remote = Assistant(on_server(settings, chroma_server), embedder=e5)
    reports = [ingest([folder], kabar) for kabar in (embedded, remote)]
    assert len(reports[0].new) == len(reports[1].new) >= 4
    assert remote.info()["store"] == f"chroma server 127.0.0.1:{chroma_server.port}"

    def same() -> None:
        assert [(d.doc_id, d.title, d.chunks) for d in embedded.documents()] == \
               [(d.doc_id, d.title, d.chunks) for d in remote.documents()]
        for question in QUESTIONS:
            here, there = embedded.prepare(question), remote.prepare(question)
            assert ids(here.hits) == ids(there.hits) and ids(here.sources) == ids(there.sources), question

    same()
    # Update: an article changes; delete: another goes.
    first = sorted(folder.iterdir())[0]
    first.write_text(first.read_text(encoding="utf-8") + "\nPembaruan: Jin Li kini juga memimpin riset.\n",
                     encoding="utf-8")
    updates = [ingest([folder], kabar) for kabar in (embedded, remote)]
    assert len(updates[0].updated) == len(updates[1].updated) == 1
    doomed = embedded.documents()[-1].doc_id
    assert embedded.delete_document(doomed) == remote.delete_document(doomed) > 0
    same()
    assert_whole(remote.store)


def test_eval_retrieval_only_on_the_server_matches_embedded(settings: Settings, chroma_server: ChromaServer,
                                                            e5: Embedder, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    examples = ROOT / "examples"
    run_eval(load_set(examples), settings, tmp_path / "embedded", RunOptions(retrieval_only=True), embedder=e5)
    monkeypatch.setenv("KABAR_CHROMA_HOST", chroma_server.host)
    monkeypatch.setenv("KABAR_CHROMA_PORT", str(chroma_server.port))
    assert main(["eval", "run", str(examples), "--retrieval-only", "--out", str(tmp_path / "server")]) == 0

    def scores(run: str) -> dict[str, Any]:
        overall = json.loads((tmp_path / run / "metrics.json").read_text())["overall"]
        return {k: v for k, v in overall.items() if "latency" not in k and "_ms" not in k}

    assert scores("server") == scores("embedded")
    assert scores("server")["n_errors"] == 0


def test_a_second_machine_catches_up_document_by_document(settings: Settings, chroma_server: ChromaServer,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two Kabar installations (their own data directories, so their own lexical indexes) on
    one Chroma server: what one writes, the other's lexical index takes in without a rebuild."""
    shared = on_server(settings, chroma_server)
    writer = Assistant(shared, embedder=HashEmbedder())
    reader = Assistant(shared.with_(data_dir=tmp_path / "second-machine"), embedder=HashEmbedder())
    ingest([ALIBABA], writer)
    assert reader.retrieve("Jin Li hybrid cloud")  # opened: its index was built from the server
    monkeypatch.setattr(LexicalIndex, "rebuild", lambda *a, **k: pytest.fail("rebuilt instead of caught up"))

    others = [p for p in SAMPLE_ARTICLES.iterdir() if p != ALIBABA]
    report = ingest(others[:1], writer)
    [new_id] = report.new
    title = next(d.title for d in writer.documents() if d.doc_id == new_id)
    hits = reader.store.lexical_query(title, 5)
    assert reader.store.lexical_caught_up == [new_id]  # only the new document was indexed
    assert hits and any(h.chunk.doc_id == new_id for h in hits)

    old_id = next(d.doc_id for d in writer.documents() if d.doc_id != new_id)
    writer.store.update_document_metadata(old_id, {"source": "Warta Ekonomi"})
    reader.retrieve("cloud")
    assert reader.store.lexical_caught_up == [old_id]  # a metadata change reaches the copy
    assert {h.chunk.source for h in reader.store.lexical_query("Jin Li", 3) if h.chunk.doc_id == old_id} == \
        {"Warta Ekonomi"}

    writer.delete_document(new_id)
    reader.retrieve("cloud")
    assert reader.store.lexical_caught_up == [new_id]
    assert reader.store.lexical.count() == writer.store.count()


class KillingEmbedder(HashEmbedder):
    """Hash vectors; on its ``kill_on``-th batch it kills the Chroma server first."""

    def __init__(self, server: ChromaServer, kill_on: int) -> None:
        super().__init__()
        self.server, self.kill_on, self.calls = server, kill_on, 0

    def embed_batch(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        self.calls += 1
        if self.calls == self.kill_on:
            self.server.kill()
        return super().embed_batch(texts, kind)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma").start()
    yield server
    server.stop()


def test_server_gone_mid_ingest_then_back(settings: Settings, own_server: ChromaServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "GROUP_CHUNKS", 4)  # several writes, so the server dies between them
    s = on_server(settings, own_server, "gone-mid-ingest")
    kabar = Assistant(s, embedder=KillingEmbedder(own_server, kill_on=2))
    with pytest.raises(StoreError) as info:
        ingest([SAMPLE_ARTICLES], kabar)
    message = str(info.value)
    assert f"cannot reach the Chroma server at 127.0.0.1:{own_server.port}" in message
    assert "chroma run" in message and "KABAR_CHROMA_HOST" in message
    with pytest.raises(StoreError, match="cannot reach the Chroma server"):
        kabar.documents()

    own_server.start()  # same folder, same port: the next call works, with the same Assistant
    report = ingest([SAMPLE_ARTICLES], kabar)
    assert not report.errors and len(report.new) + len(report.unchanged) == len(list(SAMPLE_ARTICLES.iterdir()))
    assert len(report.unchanged) >= 1  # what the first run finished is kept
    assert len(kabar.documents()) == len(list(SAMPLE_ARTICLES.iterdir()))
    assert_whole(kabar.store)
    assert kabar.retrieve("hybrid cloud Jin Li")


class KillOnQuery(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.kill: ChromaServer | None = None

    def embed_batch(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        if kind == "query" and self.kill is not None:
            self.kill.kill()
            self.kill = None
        return super().embed_batch(texts, kind)


def test_server_gone_mid_question_then_back(settings: Settings, own_server: ChromaServer) -> None:
    embedder = KillOnQuery()
    kabar = Assistant(on_server(settings, own_server, "gone-mid-question"), embedder=embedder, llm=fake_llm())
    ingest([SAMPLE_ARTICLES], kabar)
    assert kabar.ask(FACT_QUESTION).citations

    # The server dies after the question is embedded, before the search: a question not asked
    # before (a repeated one takes its vector from the cache and embeds nothing).
    embedder.kill = own_server
    with pytest.raises(StoreError, match=f"cannot reach the Chroma server at 127.0.0.1:{own_server.port}"):
        kabar.ask(FACT_QUESTION + " And since when?")
    assert embedder.kill is None, "the question was not embedded: the server was never stopped"
    with local_client(build_api(kabar)) as client:
        r = client.post("/v1/ask", json={"question": FACT_QUESTION})
        assert r.status_code == 503 and r.json()["error"]["type"] == "store_unavailable"
        assert "cannot reach the Chroma server" in r.json()["error"]["message"]

        own_server.start()
        r = client.post("/v1/ask", json={"question": FACT_QUESTION, "stream": False})
        assert r.status_code == 200 and r.json()["citations"]
    assert kabar.ask(FACT_QUESTION).citations
