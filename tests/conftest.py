"""Shared fixtures: an isolated environment, the real embedder, the sample corpus, the local LLM.

Every test runs with no KABAR_* / OPENAI_* variables and its own data directory. The real
e5 embedder and the real local LLM server are session-scoped because they are slow to
start; tests that need the LLM are marked ``llm``.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from rag.models.embeddings import Embedder, LocalE5Embedder
from rag.settings import Settings
from rag.store import ChromaStore, DocWrite
from rag.types import Chunk

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_ARTICLES = ROOT / "examples" / "articles"
SAMPLE_QUESTIONS = ROOT / "examples" / "questions.jsonl"
ALIBABA = SAMPLE_ARTICLES / "alibaba-cloud-reshuffle-id.txt"
#: "Who leads hybrid cloud?" in the Alibaba article's own words: the hash embedder and BM25 rank
#: that article first for it (the real embedder does so for the English question too).
FACT_QUESTION = "Siapa yang memimpin unit hybrid cloud?"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user configuration leaks in; each test gets its own data directory."""
    for name in list(os.environ):
        if name.startswith(("KABAR_", "OPENAI_")):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "kabar-data"
    monkeypatch.setenv("KABAR_DATA_DIR", str(data_dir))
    # Greedy decoding: a test that asks the real model gets the same answer every run.
    monkeypatch.setenv("KABAR_TEMPERATURE", "0")
    # Kabar's reader reads real text with real weights (a second or so a question): the tests of
    # other stages leave it off; the reader's own tests and those with the real model (their
    # settings built from a dict, not this environment) have it on, as a user does.
    monkeypatch.setenv("KABAR_READER", "0")
    return data_dir


@pytest.fixture(scope="session")
def e5() -> LocalE5Embedder:
    """The real multilingual-e5-small embedder, loaded once."""
    return LocalE5Embedder()


class HashEmbedder(Embedder):
    """Deterministic bag-of-words vectors: exact, predictable ranking where the model is not the point."""

    model_id = "test/hash-embedder"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def embed_batch(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        vectors = []
        for text in texts:
            v = [0.0] * self.dim
            for word in text.lower().split():
                v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            vectors.append([x / norm for x in v])
        return vectors


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return Settings.from_env()


@pytest.fixture
def store(settings: Settings, hash_embedder: HashEmbedder) -> ChromaStore:
    """A real embedded Chroma store in the test's data directory (hash embeddings)."""
    return ChromaStore.from_settings(settings, hash_embedder.model_id)


def models_dir_for_tests() -> Path:
    """Where the tests keep the assembled local model (once for every run, not per test)."""
    return Path(os.environ.get("KABAR_TEST_MODELS", ROOT / ".cache" / "models"))


@pytest.fixture(scope="session")
def local_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The real local llama.cpp server with the default model, shared by the session."""
    from rag.models.local_llm import LocalLlamaChat, LocalLlamaServer, ensure_model

    model = ensure_model(models_dir_for_tests())
    log = tmp_path_factory.mktemp("llm") / "server.log"
    chat = LocalLlamaChat(LocalLlamaServer(model, log_path=log), timeout_s=300).start()
    yield chat
    chat.close()


def write_chunks(store: ChromaStore, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> int:
    """Store chunks through the store's one write path, each document's given chunks becoming its only ones."""
    by_doc: dict[str, DocWrite] = {}
    for c, v in zip(chunks, vectors, strict=True):
        by_doc.setdefault(c.doc_id, DocWrite(c.doc_id, [], [])).chunks.append(c)
        by_doc[c.doc_id].vectors.append(v)
    return store.write_documents(list(by_doc.values()))


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a browser download: scripts/install-browser.sh).

    One a test module: Playwright's sync API keeps an event loop running in this thread while
    it is open, and later modules run asyncio themselves (anyio.run in tests/test_mcp.py)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python package playwright is not installed; "
                                                                 "run scripts/install-browser.sh")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def local_client(app: Any, **kw: Any) -> Any:
    """A FastAPI TestClient that calls as a program on this machine does (Host 127.0.0.1): the
    token-less API answers only loopback hosts (ui/api.py)."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1", **kw)
