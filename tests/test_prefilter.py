"""Filtered dense search through the lexical index (rag.store.prefilter) against Chroma's own filtering."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from rag.settings import Settings
from rag.store import ChromaStore, prefilter
from rag.store.where import where_sql
from rag.types import Chunk, Filters
from tests.conftest import write_chunks

DIM = 16
OUTLETS = ["Kompas", "Tempo", "Reuters", "BBC"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ChromaStore:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("prefilter")), collection="prefilter")
    s = ChromaStore.from_settings(settings, "test/prefilter")
    rng = random.Random(5)
    chunks, vectors = [], np.random.default_rng(5).standard_normal((600, DIM)).astype(np.float32)
    for i in range(600):
        day = "" if i % 50 == 0 else f"20{rng.randrange(15, 25)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        chunks.append(Chunk(id=f"c{i}", doc_id=f"d{i // 3}", text=f"teks {i}", position=i % 3, start=0, end=6,
                            source=OUTLETS[i % 4], published=day, lang="id" if i % 2 else "en"))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    write_chunks(s, chunks, vectors.tolist())
    return s


FILTERS = [
    Filters(sources=["Kompas"]),
    Filters(sources=["Kompas", "BBC"], since="2018-01-01", until="2021-12-31"),
    Filters(since="2020-03-01"),
    Filters(until="2015-06-30"),
    Filters(doc_ids=["d3", "d7", "d100"]),
    Filters(sources=["nobody"]),
]


def chroma_only(store: ChromaStore, vector: list[float], k: int, where: dict) -> list[str]:
    res = store._col.query(query_embeddings=[vector], n_results=k, where=where, include=["distances"])
    return list(res["ids"][0])


@pytest.mark.parametrize("scan, overfetch", [(1_000, 3_000), (0, 3_000), (0, 0)])
@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: str(f.where()))
def test_each_way_finds_what_chroma_filtering_finds(store: ChromaStore, flt: Filters, scan: int, overfetch: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Small collection, exact search: every way (scan here, over-fetch, Chroma over the ids) agrees.
    monkeypatch.setattr(prefilter, "MAX_SCAN", scan)
    monkeypatch.setattr(prefilter, "MAX_OVERFETCH", overfetch)
    rng = np.random.default_rng(9)
    for _ in range(3):
        v = rng.standard_normal(DIM).astype(np.float32)
        v = (v / np.linalg.norm(v)).tolist()
        where = flt.where()
        assert where is not None
        hits = store.query(v, 10, where)
        expected = chroma_only(store, v, 10, where)
        assert [h.chunk.id for h in hits] == expected
        assert [round(h.score, 4) for h in hits] == sorted((round(h.score, 4) for h in hits), reverse=True)


def test_hits_are_whole_chunks(store: ChromaStore) -> None:
    [hit] = store.query([1.0] + [0.0] * (DIM - 1), 1, Filters(doc_ids=["d3"], sources=["Reuters"]).where())
    assert (hit.chunk.doc_id, hit.chunk.source, hit.chunk.text) == ("d3", "Reuters", f"teks {hit.chunk.id[1:]}")


def test_where_sql_covers_what_filters_write() -> None:
    sql = where_sql(Filters(sources=["A", "B"], since="2020-01-01").where())  # type: ignore[arg-type]
    assert sql == ("(json_extract(meta, '$.source') IN (?, ?) AND json_extract(meta, '$.published_day') >= ?)",
                   ["A", "B", 20200101])
    assert where_sql({"doc_id": "x"}) == ("doc_id = ?", ["x"])
    assert where_sql({"$or": [{"source": "A"}, {"doc_id": {"$in": ["d"]}}]}) is not None


@pytest.mark.parametrize("where", [
    {"lang": "id"},                                  # a field without an index
    {"source": {"$ne": "A"}},                        # operators left to Chroma
    {"source": {"$in": []}},
    {"$and": [{"source": "A"}]},                     # Chroma wants two or more
    {"source": "A", "doc_id": "b"},                  # one key per dict
    {"published_day": {"$gte": 1.5}},
    {"published_day": {"$gte": "2020-01-01"}},         # a string against a number: Chroma matches nothing
    {"source": {"$gt": 3}},
    {"source": {"$in": ["A", 3]}},
    {"published_day": {"$gte": True}},
])
def test_where_sql_leaves_the_rest_to_chroma(where: dict) -> None:
    assert where_sql(where) is None


def test_an_unknown_filter_still_filters(store: ChromaStore) -> None:
    v = [1.0] + [0.0] * (DIM - 1)
    hits = store.query(v, 50, {"lang": "id"})
    assert [h.chunk.id for h in hits] == chroma_only(store, v, 50, {"lang": "id"})
    assert len(hits) == 50 and all(h.chunk.lang == "id" for h in hits)


def test_a_long_question_keeps_its_rarest_terms_within_the_postings_budget(tmp_path: Path) -> None:
    from rag.store.lexical import LexicalIndex

    index = LexicalIndex(tmp_path / "lex.sqlite")
    rows = [(f"c{i}", f"pasar saham naik turun hari ini {i}", {"doc_id": f"d{i}", "lang": "id"}) for i in range(200)]
    rows.append(("rare", "pasar saham Wuling Ningbo naik", {"doc_id": "rare", "lang": "id"}))
    index.upsert(rows)
    question = "pasar saham naik turun hari Wuling Ningbo"
    index.max_postings = 0  # every posting
    full = [row[0] for row, _ in index.search(question, 5, "id")]
    index.max_postings = 50
    kept = index._within_budget(sorted(set(["pasar", "saham", "naik", "turun", "hari", "wuling", "ningbo"])), 50)
    assert kept == ["hari", "ningbo", "wuling"]  # the two rare ones, then the rarest common one (MIN_TERMS)
    assert [row[0] for row, _ in index.search(question, 5, "id")][0] == full[0] == "rare"
    index.max_postings = 10_000  # 7 terms x 201 chunks fit: nothing dropped
    assert index._within_budget(["hari", "ningbo"], 10_000) == ["hari", "ningbo"]


def test_every_chunk_has_its_vector_copied_and_scored_like_chroma(store: ChromaStore) -> None:
    lexical = store.lexical
    assert lexical is not None and lexical.vectors_complete
    ids, matrix = lexical.passing_vectors(Filters(sources=["Kompas"]).where())  # type: ignore[arg-type,misc]
    assert len(ids) == 150 and matrix.shape == (150, DIM)
    stored = store._col.get(ids=ids[:5], include=["embeddings"])
    for cid, vec in zip(stored["ids"], stored["embeddings"]):
        assert np.allclose(matrix[ids.index(cid)], vec, atol=2e-3)  # float16 copies of unit vectors


def test_an_index_without_vector_copies_gets_them_from_chroma_and_searches_meanwhile(
        store: ChromaStore, tmp_path: Path) -> None:
    from rag.store.lexical import LexicalIndex

    # An index written before the copies existed (or by a writer killed before copying them).
    lexical = store.lexical
    assert lexical is not None
    with lexical._lock, lexical._db:
        lexical._db.execute("DELETE FROM vectors WHERE id % 3 = 0")
        lexical._set_meta("vectors", "")
    where = Filters(sources=["Tempo"]).where()
    assert where is not None and lexical.passing_vectors(where) is None
    v = [0.0, 1.0] + [0.0] * (DIM - 2)
    assert [h.chunk.id for h in store.query(v, 10, where)] == chroma_only(store, v, 10, where)  # another way
    reopened = ChromaStore(store.client, store.name, "test/prefilter", lexical=LexicalIndex(lexical.path))
    assert reopened.lexical is not None and reopened.lexical.vectors_complete
    found = reopened.lexical.passing_vectors(where)
    assert found is not None and len(found[0]) == 150
    assert [h.chunk.id for h in reopened.query(v, 10, where)] == chroma_only(store, v, 10, where)


def test_a_metadata_change_keeps_the_vector_copies(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, collection="meta-change")
    s = ChromaStore.from_settings(settings, "test/prefilter")
    vectors = np.eye(DIM, dtype=np.float32)[:6]
    write_chunks(s, [Chunk(id=f"m{i}", doc_id="doc", text=f"teks {i}", position=i, start=0, end=6, source="Kompas")
              for i in range(6)], vectors.tolist())
    assert s.update_document_metadata("doc", {"source": "Tempo"}) == 6
    assert s.lexical is not None
    found = s.lexical.passing_vectors(Filters(sources=["Tempo"]).where())  # type: ignore[arg-type]
    assert found is not None and sorted(found[0]) == [f"m{i}" for i in range(6)]
    assert [h.chunk.id for h in s.query(vectors[4].tolist(), 1, Filters(sources=["Tempo"]).where())] == ["m4"]


@pytest.mark.parametrize("fetch, ids", [(5_000, 50_000), (20, 50_000), (20, 0)],
                         ids=["best-matches-first", "every-match-by-row-id", "every-match-joined"])
def test_bm25_applies_a_narrow_filter_inside_the_search(tmp_path: Path, fetch: int, ids: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # 300 chunks say "saham"; the 6 of one outlet are among the weakest BM25 matches. A search
    # that filtered after ranking (even over four times k) would return none of them.
    from rag.store import lexical

    monkeypatch.setattr(lexical, "FILTER_FETCH", fetch)
    monkeypatch.setattr(lexical, "FILTER_IDS", ids)
    settings = Settings(data_dir=tmp_path, collection="bm25-filter")
    s = ChromaStore.from_settings(settings, "test/prefilter")
    chunks = []
    for i in range(300):
        rare = i % 50 == 7
        text = ("saham " * (1 if rare else 5)) + ("pasar modal bergerak lambat " * (6 if rare else 1)) + str(i)
        chunks.append(Chunk(id=f"b{i}", doc_id=f"d{i}", text=text, position=0, start=0, end=len(text),
                            source="Rare" if rare else "Common", lang="id"))
    write_chunks(s, chunks, np.random.default_rng(1).standard_normal((300, DIM)).tolist())
    where = Filters(sources=["Rare"]).where()
    hits = s.lexical_query("saham", 5, where, "id")
    assert len(hits) == 5 and {h.chunk.source for h in hits} == {"Rare"}
    assert all(h.chunk.id not in {x.chunk.id for x in s.lexical_query("saham", 20, None, "id")} for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert {h.chunk.id for h in s.lexical_query("saham", 50, where, "id")} == {f"b{i}" for i in range(7, 300, 50)}
