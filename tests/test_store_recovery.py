"""What the store does on open after a writer died mid-write (rag.store.journal + ChromaStore._repair).

The random SIGKILL test (test_crash_safety.py) shows the whole; these stage each state a
kill can leave, exactly, by writing to Chroma behind the store's back.
"""

from __future__ import annotations

import fcntl
import os

from ingest.chunk import chunk_document
from rag.settings import Settings
from rag.store import ChromaStore, DocWrite
from rag.store.meta import chunk_meta as _metadata
from rag.types import Chunk, Document
from tests.conftest import write_chunks

X = [1.0, 0.0]


def doc(version: str, sentences: int) -> Document:
    return Document(id="d", title="T", text=" ".join(f"Versi {version} kalimat {i}." for i in range(sentences)),
                    source="Kompas")


def chunks(d: Document) -> list[Chunk]:
    return chunk_document(d, 8, 0)


def reopen(settings: Settings, store: ChromaStore) -> ChromaStore:
    from chromadb.api.shared_system_client import SharedSystemClient

    assert store.lexical is not None
    store.lexical.close()
    SharedSystemClient.clear_system_cache()
    return ChromaStore.from_settings(settings, store.embedding_model)


def lexical_ids(store: ChromaStore) -> set[str]:
    assert store.lexical is not None
    with store.lexical._lock:
        return {r[0] for r in store.lexical._db.execute("SELECT chunk_id FROM chunks")}


def crash_after_chroma(store: ChromaStore, new: list[Chunk], upto: int, delete_old: bool = False) -> None:
    """Leave what a writer killed after upserting ``new[:upto]`` (and maybe deleting the old chunks) leaves."""
    assert store.journal is not None
    store.journal._note(["d"])
    old = store.chunk_ids("d")
    part = new[:upto]
    store._col.upsert(ids=[c.id for c in part], embeddings=[X] * len(part), documents=[c.text for c in part],
                      metadatas=[_metadata(c, 9e9, len(new)) for c in part])
    if delete_old:
        store._col.delete(ids=[i for i in old if i not in {c.id for c in new}])


def test_an_incomplete_new_version_is_dropped_and_the_old_one_kept(settings: Settings, store: ChromaStore) -> None:
    v1 = chunks(doc("satu", 6))
    store.write_documents([DocWrite("d", v1, [X] * len(v1))])
    v2 = chunks(doc("dua", 9))
    assert len(v2) > 2
    crash_after_chroma(store, v2, upto=2)
    store = reopen(settings, store)
    assert store.chunk_ids("d") and sorted(store.chunk_ids("d")) == sorted(c.id for c in v1)
    assert lexical_ids(store) == {c.id for c in v1}
    assert store.journal is not None and not store.journal.path.exists()


def test_a_complete_new_version_replaces_the_old_one(settings: Settings, store: ChromaStore) -> None:
    v1 = chunks(doc("satu", 6))
    store.write_documents([DocWrite("d", v1, [X] * len(v1))])
    v2 = chunks(doc("dua", 9))
    crash_after_chroma(store, v2, upto=len(v2))  # killed before the stale chunks and the lexical index
    store = reopen(settings, store)
    assert sorted(store.chunk_ids("d")) == sorted(c.id for c in v2)
    assert lexical_ids(store) == {c.id for c in v2}
    assert [c.position for c in store.get_chunks("d")] == list(range(len(v2)))


def test_a_new_document_cut_short_is_absent(settings: Settings, store: ChromaStore) -> None:
    new = chunks(doc("baru", 9))
    crash_after_chroma(store, new, upto=1)
    store = reopen(settings, store)
    assert store.chunk_ids("d") == [] and lexical_ids(store) == set()


def test_a_live_writers_note_is_left_alone(settings: Settings, store: ChromaStore) -> None:
    new = chunks(doc("baru", 9))
    crash_after_chroma(store, new, upto=1)
    assert store.journal is not None
    fd = os.open(store.journal.lock_path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a writer in another process would hold it
    try:
        store = reopen(settings, store)
        assert len(store.chunk_ids("d")) == 1  # not repaired under a live writer's feet
        assert store.journal is not None and store.journal.path.exists()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    store = reopen(settings, store)
    assert store.chunk_ids("d") == []


def damaged_store(tmp_path: object, copies: bool = True) -> tuple[Settings, list[list[str]], list[list[float]]]:
    """A store of 3,000 chunks whose HNSW files a killed process left unreadable, and what
    five dense searches found before the damage."""
    import random
    from pathlib import Path

    from chromadb.api.shared_system_client import SharedSystemClient

    settings = Settings(data_dir=Path(str(tmp_path)), collection="damaged")
    store = ChromaStore.from_settings(settings, "test/salvage")
    rng = random.Random(3)
    for lo in range(0, 3000, 600):  # reads between writes: Chroma persists its index files
        part = [Chunk(id=f"c{i}", doc_id=f"d{i // 3}", text=f"teks nomor {i}", position=i % 3, start=0, end=12,
                      source="Kompas" if i % 2 else "Tempo", published="2024-05-01") for i in range(lo, lo + 600)]
        write_chunks(store, part, [[rng.gauss(0, 1) for _ in range(16)] for _ in part])
        store.query([1.0] * 16, 2)
    probes = [[rng.gauss(0, 1) for _ in range(16)] for _ in range(5)]
    before = [[h.chunk.id for h in store.query(v, 5)] for v in probes]
    assert store.lexical is not None
    if not copies:
        with store.lexical._lock, store.lexical._db:
            store.lexical._db.execute("DELETE FROM vectors WHERE id % 100 = 0")
    store.lexical.close()
    SharedSystemClient.clear_system_cache()
    [segment] = [p for p in (settings.data_dir / "chroma").iterdir() if (p / "header.bin").exists()]
    (segment / "header.bin").write_bytes(os.urandom(100))  # what a kill in the middle of writing it leaves
    return settings, before, probes


def test_a_damaged_vector_index_is_rebuilt_from_the_lexical_copies(tmp_path: object) -> None:
    from rag.store.client import make_client

    settings, before, probes = damaged_store(tmp_path)
    broken = make_client(settings, fresh=True).get_collection("damaged")
    try:
        broken.count()
        raise AssertionError("the damage did not take")
    except Exception as e:  # noqa: BLE001 - Chroma's own error type
        assert "hnsw segment" in str(e)
    store = ChromaStore.from_settings(settings, "test/salvage")
    assert store.count() == 3000
    assert [[h.chunk.id for h in store.query(v, 5)] for v in probes] == before
    [hit] = store.query(probes[0], 1, {"source": "Kompas"})
    assert hit.chunk.text == f"teks nomor {hit.chunk.id[1:]}" and hit.chunk.published == "2024-05-01"
    assert len(store.get_chunks("d7")) == 3
    kept = [p.name for p in settings.data_dir.iterdir() if p.name.startswith("chroma.damaged-")]
    assert len(kept) == 1  # the damaged folder is kept, never deleted
    write_chunks(store, [Chunk(id="new", doc_id="new", text="baru", position=0, start=0, end=4)], [[1.0] * 16])
    assert reopen(settings, store).count() == 3001


def test_a_damaged_index_without_copies_says_what_to_do_and_moves_nothing(tmp_path: object) -> None:
    import pytest

    from rag.errors import StoreError

    settings, _, _ = damaged_store(tmp_path, copies=False)
    with pytest.raises(StoreError, match=r"damaged .* `kabar ingest`"):
        ChromaStore.from_settings(settings, "test/salvage")
    assert not [p for p in settings.data_dir.iterdir() if p.name.startswith("chroma.damaged-")]
