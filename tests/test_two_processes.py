"""Two processes, one embedded store: one writes while the other answers.

A writer process rewrites one story again and again, slowly (two chunks per Chroma call, a
pause between calls), so that a search often lands mid-write. The answering process (this
one) searches all the while: every search sees the story whole, in exactly one version, and
it sees the writer's new versions (its Chroma client is reopened, its lexical index catches
up document by document, never rebuilt). Then the real ``kabar ingest`` adds an article in
another process while the chat page's handlers and the HTTP API, in this one, find it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ingest import ingest
from rag.assistant import Assistant
from rag.models import Embedder
from rag.settings import Settings
from rag.store.lexical import LexicalIndex
from tests.conftest import ALIBABA, ROOT, SAMPLE_ARTICLES, HashEmbedder, local_client
from ui.api import build_api

WRITER = textwrap.dedent("""
    import sys, time
    from ingest import ingest_documents
    from rag.settings import Settings
    from rag.store import ChromaStore
    from rag.types import Document
    from tests.conftest import HashEmbedder

    versions = int(sys.argv[1])
    store = ChromaStore.from_settings(Settings.from_env(), HashEmbedder.model_id)
    class Slow:
        def __init__(self, col):
            self.col = col
        def __getattr__(self, name):
            return getattr(self.col, name)
        def upsert(self, **kw):
            time.sleep(0.15)                       # a pause between calls: searches land mid-write
            return self.col.upsert(**kw)

    store._batch = lambda: 2                       # two chunks per Chroma call
    store._col = Slow(store._col)
    for v in range(1, versions + 1):
        text = "\\n\\n".join(f"Paragraf {p} dari berita kapal feri listrik, versi {v}. " * 6 for p in range(8))
        doc = Document(id="story", title=f"Kapal feri listrik versi {v}", text=text, source="Warta")
        ingest_documents([doc], store, HashEmbedder(), chunk_tokens=60, chunk_overlap=0)
        print(v, flush=True)
""")


def env_for(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KABAR_", "OPENAI_"))}
    return {**env, "KABAR_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(ROOT)}


def test_answers_never_see_half_a_document(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    kabar = Assistant(settings, embedder=HashEmbedder())
    ingest([ALIBABA], kabar)  # something else in the store
    kabar.retrieve("kapal feri listrik")  # the store is open before the writer starts

    def no_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("the lexical index was rebuilt instead of caught up")

    monkeypatch.setattr(LexicalIndex, "rebuild", no_rebuild)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, "6"], env=env_for(settings), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[str] = set()
    searches = 0
    try:
        while writer.poll() is None or searches < 5:
            hits = [h for h in kabar.retrieve("kapal feri listrik versi", k=60) if h.chunk.doc_id == "story"]
            searches += 1
            if not hits:
                continue  # the story's first version is not whole yet
            versions = {h.chunk.title for h in hits}
            assert len(versions) == 1, f"two versions at once: {versions}"
            n = hits[0].chunk.n_chunks
            assert sorted(h.chunk.position for h in hits) == list(range(n)), "half a document"
            seen |= versions
            if writer.poll() is not None and searches > 200:
                break
    finally:
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert out.split() == [str(v) for v in range(1, 7)]
    assert len(seen) >= 2, f"the writer's versions were not seen: {seen}"
    final = [h for h in kabar.retrieve("kapal feri listrik versi", k=60) if h.chunk.doc_id == "story"]
    assert {h.chunk.title for h in final} == {"Kapal feri listrik versi 6"}
    dense = kabar.store.query(kabar.embedder.embed_query("kapal feri listrik versi"), 60)
    assert {h.chunk.title for h in dense if h.chunk.doc_id == "story"} == {"Kapal feri listrik versi 6"}


def test_kabar_ingest_in_another_process_reaches_the_chat_page_and_the_api(settings: Settings, e5: Embedder,
                                                                            tmp_path: Path) -> None:
    from ui.handlers import Handlers

    kabar = Assistant(settings, embedder=e5)
    ingest([ALIBABA], kabar)
    handlers = Handlers(kabar)
    _, rows, _ = handlers.show_documents()
    assert len(rows) == 1
    folder = tmp_path / "more"
    folder.mkdir()
    for path in SAMPLE_ARTICLES.iterdir():
        if path != ALIBABA:
            (folder / path.name).write_bytes(path.read_bytes())
    cli = subprocess.run([sys.executable, "-m", "ui.main", "ingest", str(folder)], env=env_for(settings), cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr
    _, rows, _ = handlers.show_documents()
    assert len(rows) == len(list(SAMPLE_ARTICLES.iterdir()))
    with local_client(build_api(kabar)) as client:
        r = client.post("/v1/retrieve", json={"question": "Huawei Cloud investasi Indonesia 2026"})
    assert r.status_code == 200
    assert any("Huawei" in a["title"] for a in r.json()["articles"])
    # The vector search itself sees the other process's chunks, not only the lexical index.
    vector = e5.embed_query("Huawei Cloud investasi Indonesia")
    assert any("Huawei" in h.chunk.title for h in kabar.store.query(vector, 5))
    started = time.perf_counter()
    assert kabar.store.refresh() is False  # nothing new: one metadata read
    assert time.perf_counter() - started < 1


def test_every_store_of_the_answering_process_sees_the_other_processes_writes(settings: Settings) -> None:
    first, second = (Assistant(settings, embedder=HashEmbedder()) for _ in range(2))
    ingest([ALIBABA], first)
    for kabar in (first, second):
        kabar.retrieve("kapal feri listrik")
    writer = subprocess.run([sys.executable, "-c", WRITER, "1"], env=env_for(settings), cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert writer.returncode == 0, writer.stderr
    vector = HashEmbedder().embed_query("kapal feri listrik versi")
    for kabar in (first, second):  # the first reopens; the second takes the same fresh client
        kabar.store.refresh()
        assert any(h.chunk.doc_id == "story" for h in kabar.store.query(vector, 10))
    others = [p for p in SAMPLE_ARTICLES.iterdir() if p != ALIBABA]
    [new_id] = ingest(others[:1], second).new  # written here: the first store sees it too
    first.store.refresh()
    assert new_id in {h.chunk.doc_id for h in first.store.query(HashEmbedder().embed_query(others[0].read_text()), 10)}
