"""The vector store (rag.store.chroma.ChromaStore) on a real embedded Chroma.

The tests are a contract class: a Chroma server store can inherit :class:`StoreContract`
and override the ``make_store`` fixture to run the same checks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from rag.errors import EmbeddingMismatchError, StoreError
from rag.settings import Settings
from rag.store import ChromaStore, DocWrite
from rag.types import Chunk
from tests.conftest import write_chunks

MODEL = "test/store-model"
DIM = 4
EPS = 1e-5

MakeStore = Callable[..., ChromaStore]


def chunk(doc_id: str, position: int, text: str, **extra: str) -> Chunk:
    return Chunk(id=f"{doc_id}-{position}", doc_id=doc_id, text=text, position=position, start=position * 100,
                 end=position * 100 + len(text), title=extra.get("title", f"Title of {doc_id}"),
                 source=extra.get("source", f"/news/{doc_id}.txt"), lang=extra.get("lang", "id"),
                 url=extra.get("url", ""), published=extra.get("published", ""),
                 doc_hash=extra.get("doc_hash", f"hash-{doc_id}"))


def unit(*xs: float) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs))
    return [x / norm for x in xs]


# Four directions: a query along X ranks x > xy > y > -x.
X, XY, Y, NEG_X = unit(1, 0, 0, 0), unit(1, 1, 0, 0), unit(0, 1, 0, 0), unit(-1, 0, 0, 0)


class StoreContract:
    """Behaviour every store must have. Subclasses provide ``make_store(model=MODEL)``."""

    @pytest.fixture
    def make_store(self) -> MakeStore:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def filled(self, make_store: MakeStore) -> ChromaStore:
        store = make_store()
        write_chunks(store, [chunk("a", 0, "alpha nol"), chunk("a", 1, "alpha satu"), chunk("b", 0, "beta nol"),
                      chunk("c", 0, "gamma nol")], [X, XY, Y, NEG_X])
        return store

    def test_query_returns_hits_best_first(self, filled: ChromaStore) -> None:
        hits = filled.query(X, k=4)
        assert [h.chunk.id for h in hits] == ["a-0", "a-1", "b-0", "c-0"]
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(-1 - EPS <= s <= 1 + EPS for s in scores)
        assert scores[0] == pytest.approx(1.0, abs=1e-4)
        assert scores[1] == pytest.approx(math.sqrt(0.5), abs=1e-4)
        assert scores[2] == pytest.approx(0.0, abs=1e-4)
        assert scores[3] == pytest.approx(-1.0, abs=1e-4)

    def test_query_rebuilds_the_chunk(self, make_store: MakeStore) -> None:
        store = make_store()
        original = chunk("a", 3, "Jin Li memimpin unit hybrid cloud.", title="Alibaba", source="/news/alibaba.txt",
                         lang="id", url="https://example.com/a", published="2023-12-05", doc_hash="h1")
        write_chunks(store, [original], [X])
        original.n_chunks = 1  # the write records the document's chunk count
        [hit] = store.query(X, k=1)
        assert hit.chunk == original
        assert store.get_chunks("a") == [original]

    def test_query_k_caps_the_hits(self, filled: ChromaStore) -> None:
        assert len(filled.query(X, k=2)) == 2
        assert len(filled.query(X, k=100)) == 4

    def test_query_where_filters(self, filled: ChromaStore) -> None:
        hits = filled.query(X, k=4, where={"doc_id": "b"})
        assert [h.chunk.id for h in hits] == ["b-0"]

    @pytest.mark.parametrize("k", [0, -1])
    def test_query_k_must_be_positive(self, filled: ChromaStore, k: int) -> None:
        with pytest.raises(StoreError, match="k must be greater than 0"):
            filled.query(X, k=k)

    def test_query_k_must_be_positive_on_an_empty_store(self, make_store: MakeStore) -> None:
        with pytest.raises(StoreError):
            make_store().query(X, k=0)

    def test_query_on_empty_store_returns_nothing(self, make_store: MakeStore) -> None:
        store = make_store()
        assert store.count() == 0
        assert store.query(X, k=5) == []

    def test_upsert_overwrites_an_existing_id(self, filled: ChromaStore) -> None:
        write_chunks(filled, [chunk("b", 0, "beta baru")], [X])
        assert filled.count() == 4
        assert [c.text for c in filled.get_chunks("b")] == ["beta baru"]

    def test_a_write_needs_one_vector_per_chunk(self, make_store: MakeStore) -> None:
        with pytest.raises(StoreError, match="2 chunks but 1 vectors"):
            make_store().write_documents([DocWrite("a", [chunk("a", 0, "x"), chunk("a", 1, "y")], [X])])

    def test_doc_hashes(self, filled: ChromaStore) -> None:
        assert filled.doc_hashes(["a", "b", "missing"]) == {"a": "hash-a", "b": "hash-b"}
        assert filled.doc_hashes([]) == {}

    def test_delete_document(self, filled: ChromaStore) -> None:
        assert filled.delete_document("a") == 2
        assert filled.chunk_ids("a") == []
        assert filled.count() == 2
        assert sorted(d.doc_id for d in filled.documents()) == ["b", "c"]
        assert all(h.chunk.doc_id != "a" for h in filled.query(X, k=10))
        assert filled.delete_document("a") == 0
        assert filled.delete_document("never-stored") == 0

    def test_replace_document_removes_stale_chunks(self, filled: ChromaStore) -> None:
        removed = write_chunks(filled, [chunk("a", 0, "alpha nol"), chunk("a", 5, "alpha lima")], [X, Y])
        assert removed == 1
        assert [c.id for c in filled.get_chunks("a")] == ["a-0", "a-5"]
        assert filled.count() == 4

    def test_documents_counts_chunks_per_document(self, filled: ChromaStore) -> None:
        docs = {d.doc_id: d for d in filled.documents()}
        assert {k: d.chunks for k, d in docs.items()} == {"a": 2, "b": 1, "c": 1}
        assert docs["a"].title == "Title of a"
        assert docs["a"].source == "/news/a.txt"
        assert docs["a"].lang == "id"
        assert docs["a"].ingested_at > 0

    def test_get_chunks_in_position_order(self, make_store: MakeStore) -> None:
        store = make_store()
        write_chunks(store, [chunk("d", 2, "dua"), chunk("d", 0, "nol"), chunk("d", 1, "satu")], [X, Y, XY])
        assert [c.text for c in store.get_chunks("d")] == ["nol", "satu", "dua"]
        assert store.get_chunks("nothing") == []

    def test_other_embedding_model_is_refused(self, filled: ChromaStore, make_store: MakeStore) -> None:
        with pytest.raises(EmbeddingMismatchError) as info:
            make_store(model="other/model")
        message = str(info.value)
        assert MODEL in message and "other/model" in message
        assert "KABAR_EMBED_MODEL" in message

    def test_same_embedding_model_reopens(self, filled: ChromaStore, make_store: MakeStore) -> None:
        again = make_store()
        assert again.count() == 4
        assert [h.chunk.id for h in again.query(X, k=1)] == ["a-0"]


class TestPersistentChromaStore(StoreContract):
    """The embedded store in the data directory."""

    @pytest.fixture
    def make_store(self, settings: Settings) -> MakeStore:
        def make(model: str = MODEL) -> ChromaStore:
            return ChromaStore.from_settings(settings, model)

        return make


def test_store_lives_in_the_data_directory(settings: Settings) -> None:
    store = ChromaStore.from_settings(settings, MODEL)
    write_chunks(store, [chunk("a", 0, "alpha")], [X])
    assert (settings.data_dir / "chroma").is_dir()


def test_collections_are_separate(settings: Settings) -> None:
    one = ChromaStore.from_settings(settings, MODEL)
    other = ChromaStore.from_settings(settings.with_(collection="other"), "other/model")
    write_chunks(one, [chunk("a", 0, "alpha")], [X])
    assert other.count() == 0


def test_unopenable_data_directory_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(StoreError, match="cannot open the Chroma store"):
        ChromaStore.from_settings(Settings(data_dir=blocker), MODEL)


def test_a_version_half_written_by_another_process_is_left_out_of_searches(settings: Settings,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """What another writer has put in Chroma but not finished (no new revision yet) is not read:
    the lexical index answers which version is whole, and Chroma's own metadata says the same."""
    from rag.store.meta import chunk_meta as _metadata

    store = ChromaStore.from_settings(settings, MODEL)
    v1 = [replace(chunk("a", i, f"alpha lama {i}"), n_chunks=2) for i in range(2)]
    write_chunks(store, v1, [X, XY])
    # Two of the three chunks of a new version, as a writer that has not finished leaves them.
    v2 = [replace(chunk("a", i, f"alpha baru {i}", doc_hash="hash-a2"), id=f"a2-{i}", n_chunks=3) for i in range(2)]
    later = time.time() + 60
    store._col.upsert(ids=[c.id for c in v2], embeddings=[X, X], documents=[c.text for c in v2],
                      metadatas=[_metadata(c, later, 3) for c in v2])
    hits = store.query(X, k=10)
    assert {"a2-0", "a-0"} <= {h.chunk.id for h in hits}  # both versions are in Chroma's answer
    for lexical in (store.lexical, None):  # through the lexical index, and through Chroma
        monkeypatch.setattr(store, "lexical", lexical)
        assert sorted(h.chunk.id for h in store.whole(hits)) == ["a-0", "a-1"]
