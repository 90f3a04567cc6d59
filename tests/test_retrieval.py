"""Hybrid retrieval: the BM25 index stays consistent with Chroma; fusion; names; filters."""

from __future__ import annotations

import pytest

from ingest import ingest
from ingest.pipeline import ingest_documents
from rag.search.retrieval import (
    Candidates,
    dense_search,
    hybrid_search,
    query_names,
    rank,
    topic_counts,
    topic_names,
)
from rag.store.chroma import ChromaStore, lexical_path, make_client
from rag.store.lexical import LexicalIndex, analyze
from rag.types import Chunk, Document, Filters, Hit


def doc(doc_id: str, text: str, **kw) -> Document:
    return Document(id=doc_id, title=kw.pop("title", doc_id), text=text, source=kw.pop("source", doc_id), **kw)


def lexical_docs(store: ChromaStore, query: str) -> set[str]:
    return {h.chunk.doc_id for h in store.lexical_query(query, 10)}


def test_analysis_keeps_names_beside_stems():
    terms = analyze("Huawei Cloud memimpin perusahaannya", "id")
    assert {"huawei", "cloud", "pimpin", "usaha"} <= set(terms)
    assert "yang" not in analyze("yang memimpin", "id")


def test_lexical_index_follows_update_and_delete(store, hash_embedder):
    ingest_documents([doc("a", "Zebras graze near the river."), doc("b", "Giraffes eat acacia leaves.")],
                     store, hash_embedder)
    assert lexical_docs(store, "zebras") == {"a"}
    ingest_documents([doc("a", "Penguins swim in cold water.")], store, hash_embedder)
    assert lexical_docs(store, "zebras") == set()
    assert lexical_docs(store, "penguins") == {"a"}
    store.delete_document("a")
    assert lexical_docs(store, "penguins") == set()
    assert store.lexical.count() == store.count() == 1


def test_missing_lexical_index_is_rebuilt_from_chroma(settings, store, hash_embedder):
    ingest_documents([doc("a", "Zebras graze near the river.")], store, hash_embedder)
    store.lexical.close()
    lexical_path(settings).unlink()
    reopened = ChromaStore.from_settings(settings, hash_embedder.model_id)
    assert reopened.lexical.count() == 1
    assert lexical_docs(reopened, "zebras") == {"a"}


def test_stale_lexical_index_is_rebuilt_when_another_writer_changed_chroma(settings, store, hash_embedder):
    ingest_documents([doc("a", "Zebras graze near the river.")], store, hash_embedder)
    # Another process writes through Chroma without this machine's lexical index.
    other = ChromaStore(make_client(settings), settings.collection, hash_embedder.model_id, lexical=None)
    ingest_documents([doc("b", "Penguins swim in cold water.")], other, hash_embedder)
    # The open store notices the new revision on its next search, and so does a new one.
    assert lexical_docs(store, "penguins") == {"b"}
    reopened = ChromaStore.from_settings(settings, hash_embedder.model_id)
    assert lexical_docs(reopened, "penguins") == {"b"}
    other.delete_document("a")
    assert lexical_docs(store, "zebras") == set()  # a deleted chunk is never served from the copy
    assert store.lexical.count() == 1


def test_lexical_index_is_not_rebuilt_per_query(store, hash_embedder, monkeypatch):
    ingest_documents([doc("a", "Zebras graze near the river.")], store, hash_embedder)
    monkeypatch.setattr(LexicalIndex, "rebuild", lambda *a, **k: pytest.fail("rebuilt"))
    for _ in range(3):
        hybrid_search(store, hash_embedder, "zebras river", 3)


def test_hybrid_finds_a_rare_name_that_dense_misses(store, hash_embedder):
    docs = [doc(f"d{i}", f"Cloud unit news number {i} about cloud growth and cloud leaders.") for i in range(12)]
    docs.append(doc("target", "Kurniawati will head the analytics team, the memo said."))
    ingest_documents(docs, store, hash_embedder)
    hits = hybrid_search(store, hash_embedder, "Who is Kurniawati?", 3).hits
    assert hits[0].chunk.doc_id == "target"
    assert hits[0].lexical_score is not None


def test_query_names():
    assert query_names("How much is Huawei Cloud investing in Indonesia through 2026?") == {
        "huawei", "cloud", "indonesia", "2026"}
    assert query_names("who leads hybrid cloud?") == set()


def test_filters_by_source_date_and_document(store, hash_embedder):
    ingest_documents([
        doc("a", "Cloud news from Reuters in November.", source="Reuters", published="2023-11-05"),
        doc("b", "Cloud news from Kompas in December.", source="Kompas", published="2023-12-10T08:00:00Z"),
        doc("c", "Cloud news without a date.", source="Kompas"),
    ], store, hash_embedder)

    def found(filters: Filters) -> set[str]:
        found = hybrid_search(store, hash_embedder, "cloud news", 10, where=filters.where())
        return {h.chunk.doc_id for h in found.hits}

    assert found(Filters()) == {"a", "b", "c"}
    assert found(Filters(sources=["Kompas"])) == {"b", "c"}
    assert found(Filters(since="2023-12-01")) == {"b"}
    assert found(Filters(until="2023-11-30")) == {"a"}
    assert found(Filters(doc_ids=["c", "a"], sources=["Kompas"])) == {"c"}


@pytest.mark.parametrize("where", [
    {"source": "Kompas"}, {"source": {"$ne": "Kompas"}}, {"source": {"$nin": ["Reuters"]}},
    {"published_day": {"$gt": 20231105}}, {"published_day": {"$lt": 20231231}},
    {"$or": [{"doc_id": "a"}, {"source": "Kompas"}]},
    {"$and": [{"source": {"$in": ["Kompas", "Reuters"]}}, {"published_day": {"$gte": 20231101}}]},
    {"doc_id": {"$in": []}},
    {"source": {"$gt": 3}},  # a type mismatch matches nothing
    {"doc_id": {"$nin": ["b"]}, "source": "Kompas"},  # two keys: Chroma rejects this, so must Kabar
])
def test_lexical_filters_agree_with_chromas(store, hash_embedder, where):
    """The lexical search filters its own copy of the metadata; Chroma's dense search is the reference."""
    ingest_documents([
        doc("a", "Cloud news from Reuters in November.", source="Reuters", published="2023-11-05"),
        doc("b", "Cloud news from Kompas in December.", source="Kompas", published="2023-12-10T08:00:00Z"),
        doc("c", "Cloud news without a date.", source="Kompas"),
    ], store, hash_embedder)
    vector = hash_embedder.embed_query("cloud news")
    try:
        expected = {h.chunk.doc_id for h in store.query(vector, 10, where)}
    except ValueError:  # syntax Chroma rejects: the lexical search must reject it too
        with pytest.raises(ValueError):
            store.lexical_query("cloud news", 10, where)
        return
    assert {h.chunk.doc_id for h in store.lexical_query("cloud news", 10, where)} == expected


def test_bad_filter_date_is_a_clear_error():
    with pytest.raises(ValueError, match="since must be a date like 2023-12-31"):
        Filters(since="last week")


def test_topic_names_take_names_from_the_previous_answer_but_not_citations_or_numbers():
    names = topic_names("who leads hybrid cloud? Jin Li leads hybrid cloud since 2023. [2]")
    assert names == {"jin", "li"}


def test_topic_counts_lift_every_candidate_chunk_of_the_conversation_article():
    def h(cid: str, doc_id: str, text: str) -> Hit:
        return Hit(Chunk(id=cid, doc_id=doc_id, text=text, title=doc_id, source=doc_id, position=0, start=0,
                         end=len(text)), 0.0)
    hits = [h("aws-0", "aws", "AWS leads public cloud revenue."),
            h("ali-1", "alibaba", "Weiguang Liu will lead public cloud."),
            h("ali-0", "alibaba", "Jin Li will lead hybrid cloud.")]
    assert topic_counts(hits, {"jin", "li"}) == {"aws-0": 0.0, "ali-1": 2.0, "ali-0": 2.0}
    assert topic_counts(hits, set()) == {"aws-0": 0.0, "ali-1": 0.0, "ali-0": 0.0}


def test_a_follow_up_retrieves_from_the_article_the_conversation_is_about(e5, tmp_path):
    from rag.assistant import Assistant
    from rag.settings import Settings
    from tests.conftest import SAMPLE_ARTICLES
    kabar = Assistant(Settings.from_env({"KABAR_DATA_DIR": str(tmp_path)}), embedder=e5)
    ingest([SAMPLE_ARTICLES], kabar)
    topic = "who leads hybrid cloud? Jin Li leads hybrid cloud. [2]"
    first = kabar.retrieve("who leads public cloud?", 4, topic=topic)[0]
    assert first.chunk.title.startswith("Alibaba")


def _hit(cid: str, score: float, text: str = "") -> Hit:
    return Hit(Chunk(id=cid, doc_id=cid, text=text or cid, position=0, start=0, end=1), score)


def test_rank_weighs_bm25_by_what_the_index_knows_of_the_question():
    dense = [_hit("a", 0.86), _hit("b", 0.85), _hit("c", 0.80), _hit("d", 0.79)]
    lexical = [_hit("d", 9.0), _hit("c", 1.0), _hit("b", 0.9)]
    # dense z: a 1.15, b 0.82, c -0.82, d -1.15; lexical z: d 1.41, c -0.69, b -0.72 (a: the floor, -0.72)
    full = rank(Candidates(dense, lexical, lexical_weight=1.0), 4)
    assert [h.chunk.id for h in full] == ["a", "d", "b", "c"]  # d: -1.15 + 1.41 = 0.26 over b: 0.82 - 0.72
    assert full[0].score == pytest.approx(1.1508 - 0.7202, abs=1e-3)
    # An English question over Indonesian articles: BM25 matched a fifth of it, dense decides.
    cross = rank(Candidates(dense, lexical, lexical_weight=0.2), 4)
    assert [h.chunk.id for h in cross] == ["a", "b", "d", "c"]  # d: -1.15 + 0.28 = -0.87, b: 0.82 - 0.14
    assert cross[0].dense_score == 0.86 and cross[2].lexical_score == 9.0
    assert [h.chunk.id for h in rank(Candidates(dense, [], lexical_weight=1.0), 2)] == ["a", "b"]


def test_an_english_question_over_indonesian_articles_counts_bm25_little(e5, store):
    from rag.search.fusion import lexical_weight
    docs = [doc("alibaba", "Alibaba merombak unit cloud. Jin Li akan memimpin cloud hybrid, Weiguang Liu cloud publik.",
                lang="id"),
            doc("tencent", "Tencent melaporkan pendapatan kuartal ketiga naik sepuluh persen.", lang="id")]
    ingest_documents(docs, store, e5)
    counts, total = store.lexical_doc_counts("Who will lead Alibaba's hybrid cloud?", "en")
    assert counts["alibaba"] == 1 and counts["lead"] == 0 and total == store.count()
    assert 0 < lexical_weight(counts, total) < 0.8
    same, _ = store.lexical_doc_counts("Siapa yang memimpin cloud hybrid Alibaba?", "id")
    assert lexical_weight(same, total) == 1.0
    assert hybrid_search(store, e5, "Who will lead Alibaba's hybrid cloud?", 1).hits[0].chunk.doc_id == "alibaba"
    assert dense_search(store, e5, "Who will lead Alibaba's hybrid cloud?", 1)[0].chunk.doc_id == "alibaba"


def test_a_candidate_only_a_named_publications_search_found_is_ranked():
    dense = [_hit("a", 0.9), _hit("b", 0.8)]
    outlet_only = Hit(Chunk(id="o", doc_id="o", text="o", position=0, start=0, end=1, source="The Bugle"), 0.5)
    ranked = rank(Candidates(dense, [], 0.0, outlets=[(["The Bugle"], [outlet_only], [])]), 3)
    # dense z: a 1, b -1, "o" the floor -1; from the named outlet z: o 1.41, a and b -0.71
    assert [h.chunk.id for h in ranked] == ["o", "a", "b"] and ranked[0].dense_score == 0.5
    assert [h.score for h in ranked] == pytest.approx([-1 + 2 ** 0.5, 1 - 2 ** -0.5, -1 - 2 ** -0.5])
