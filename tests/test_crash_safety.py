"""Killing ``kabar ingest`` with SIGKILL at random moments never leaves a document half-written.

Each round starts ``kabar ingest`` on a corpus (a new version of some of its articles
each round, so replacements happen too), kills it with SIGKILL after a random delay,
then opens the store as the next run would and checks: every document's chunks are one
complete version (one ``doc_hash``, ``n_chunks`` chunks at positions 0..n-1), and the
lexical index holds exactly Chroma's chunks. A last run, not killed, must end with every
article stored whole. Embeddings come from a local fake ``/v1/embeddings`` server (the
network boundary): the model is not the point, and writing is what gets interrupted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from rag.settings import Settings
from rag.store import ChromaStore

ROUNDS = 6
DOCS = 80


class _Embeddings(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = []
        for i, text in enumerate(body["input"]):
            v = [0.0] * 16
            for word in str(text).split():
                v[int(hashlib.md5(word.encode()).hexdigest(), 16) % 16] += 1.0
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [x / norm for x in v]})
        out = json.dumps({"object": "list", "data": data, "model": body.get("model", "fake"),
                          "usage": {"prompt_tokens": 0, "total_tokens": 0}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def embeddings_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


WORDS = ("saham pasar cloud unit bank kota warga harga beras listrik jalan banjir sekolah guru pajak ekspor "
         "impor kapal pelabuhan hutan sungai kereta bandara menteri presiden gubernur rapat laporan").split()


def write_corpus(path: Path, version: int) -> None:
    """The corpus at ``version``: every third article changes each version; articles share little text."""
    lines = []
    for i in range(DOCS):
        v = version if i % 3 == version % 3 else 0
        words = random.Random(i * 1000 + v)
        sentences = [" ".join(words.choice(WORDS) for _ in range(9)) + f" {i}-{v}-{k}."
                     for k in range(8 + (i + v) % 9)]
        lines.append(json.dumps({"id": f"doc-{i}", "title": f"Artikel {i}", "text": " ".join(sentences),
                                 "source": f"Outlet {i % 5}", "published": "2024-01-01"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def check_invariants(settings: Settings, model: str) -> dict[str, str]:
    """Open the store as a new run would (which repairs it) and check it; returns doc_id -> doc_hash."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # see what the killed process left on disk, not a cached view
    store = ChromaStore.from_settings(settings, model)
    rows = list(store.iter_rows())
    versions: dict[str, dict[str, list[dict]]] = {}
    for _, _, meta in rows:
        versions.setdefault(meta["doc_id"], {}).setdefault(meta["doc_hash"], []).append(meta)
    hashes = {}
    for doc_id, by_hash in versions.items():
        assert len(by_hash) == 1, f"{doc_id} has chunks of {len(by_hash)} versions"
        [(doc_hash, metas)] = by_hash.items()
        n = metas[0]["n_chunks"]
        assert sorted(m["position"] for m in metas) == list(range(n)), f"{doc_id} is not whole"
        hashes[doc_id] = doc_hash
    assert store.lexical is not None
    with store.lexical._lock:
        lexical_ids = {r[0] for r in store.lexical._db.execute("SELECT chunk_id FROM chunks")}
    assert lexical_ids == {cid for cid, _, _ in rows}, "lexical index out of step with Chroma"
    assert not store.journal or not store.journal.path.exists()
    store.lexical.close()
    SharedSystemClient.clear_system_cache()
    return hashes


def test_sigkill_at_random_moments_leaves_documents_whole_or_absent(tmp_path: Path, embeddings_url: str) -> None:
    data_dir = tmp_path / "data"
    corpus = tmp_path / "corpus.jsonl"
    env = {**os.environ, "KABAR_DATA_DIR": str(data_dir), "KABAR_EMBED_BASE_URL": embeddings_url,
           "KABAR_EMBED_MODEL": "fake-hash", "KABAR_CHUNK_TOKENS": "24", "KABAR_CHUNK_OVERLAP": "4",
           "KABAR_EMBED_BATCH_SIZE": "64"}
    settings = Settings.from_env(data_dir=data_dir).with_(embed_base_url=embeddings_url, embed_model="fake-hash")
    command = [sys.executable, "-c", "import sys; from ui.main import main; sys.exit(main())", "ingest", str(corpus)]
    # New kill moments every run; CRASH_SEED=N replays a failure (the seed is in its message).
    seed = int(os.environ.get("CRASH_SEED") or time.time_ns() % 100_000)
    rng = random.Random(seed)
    killed_while_writing = 0
    for version in range(1, ROUNDS + 1):
        write_corpus(corpus, version)
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        journal = data_dir / "journal" / "kabar.json"
        if version % 2:
            # Most of a run is imports and opening the store, and between writes it embeds: wait
            # for the first write, let a random part of the writing pass, then kill inside the
            # next write under way (a run's writing takes about a second here).
            deadline = time.monotonic() + 30
            while not journal.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.8))
            while not journal.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.01))
        else:
            time.sleep(rng.uniform(0.5, 5.0))  # anywhere: while importing, opening, loading or writing
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_while_writing += journal.exists()
        try:
            check_invariants(settings, "fake-hash")
        except AssertionError as e:
            raise AssertionError(f"round {version}, CRASH_SEED={seed}: {e}") from None
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    hashes = check_invariants(settings, "fake-hash")
    assert len(hashes) == DOCS
    assert killed_while_writing >= 1, "no kill landed inside a write: the test proved nothing this time"
