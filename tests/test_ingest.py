"""The ingest pipeline (ingest.ingest) against a real Chroma store.

Hash embeddings make these tests exact and fast; one test ingests the sample corpus with
the real e5 embedder and checks that English questions find the Indonesian articles.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest import ingest
from rag.assistant import Assistant
from rag.models import Embedder
from rag.settings import Settings
from rag.store import ChromaStore
from rag.types import content_hash

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_ARTICLES = ROOT / "examples" / "articles"
SAMPLE_QUESTIONS = ROOT / "examples" / "questions.jsonl"

OLD_ONLY = "Saham perusahaan turun tujuh persen pada hari Jumat."


def article(title: str, sentences: list[str]) -> str:
    return f"{title}\n\nJakarta, 5 Desember 2023\n\n" + " ".join(sentences) + "\n"


def sentences(prefix: str, n: int) -> list[str]:
    return [f"{prefix} kalimat nomor {i} tentang unit cloud perusahaan." for i in range(n)]


@pytest.fixture
def small_chunks(settings: Settings) -> Settings:
    """Settings that cut the test articles into several chunks."""
    return settings.with_(chunk_tokens=40, chunk_overlap=8)


@pytest.fixture
def news(tmp_path: Path) -> Path:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "alibaba.txt").write_text(article("Alibaba", sentences("Alibaba", 12)), encoding="utf-8")
    (folder / "telkom.txt").write_text(article("Telkom", sentences("Telkom", 8)), encoding="utf-8")
    (folder / "aws.md").write_text("# AWS\n\nThe company said it will invest in Indonesia.\n", encoding="utf-8")
    return folder


def doc_id(path: Path) -> str:
    return content_hash("file", str(path.resolve()))


def test_ingest_stores_every_document(news: Path, small_chunks: Settings, store: ChromaStore,
                                      hash_embedder: Embedder) -> None:
    report = ingest([news], Assistant(small_chunks, store=store, embedder=hash_embedder))
    assert report.errors == []
    assert report.files == 3
    assert sorted(report.new) == sorted(doc_id(p) for p in news.iterdir())
    assert report.chunks_written == store.count() > 3
    assert {d.title for d in store.documents()} == {"Alibaba", "Telkom", "AWS"}
    assert "3 new" in report.summary()


def test_reingesting_the_same_folder_writes_nothing(news: Path, small_chunks: Settings, store: ChromaStore,
                                                    hash_embedder: Embedder) -> None:
    first = ingest([news], Assistant(small_chunks, store=store, embedder=hash_embedder))
    count = store.count()
    ids = {d.doc_id: store.chunk_ids(d.doc_id) for d in store.documents()}

    second = ingest([news], Assistant(small_chunks, store=store, embedder=hash_embedder))
    assert sorted(second.unchanged) == sorted(first.new)
    assert second.new == [] and second.updated == []
    assert second.chunks_written == 0 and second.chunks_removed == 0
    assert store.count() == count
    assert {d.doc_id: store.chunk_ids(d.doc_id) for d in store.documents()} == ids


def test_changed_file_replaces_its_chunks(news: Path, small_chunks: Settings, store: ChromaStore,
                                          hash_embedder: Embedder) -> None:
    path = news / "alibaba.txt"
    old = sentences("Alibaba", 12)
    old[5] = OLD_ONLY
    path.write_text(article("Alibaba", old), encoding="utf-8")
    ingest([news], Assistant(small_chunks, store=store, embedder=hash_embedder))
    assert any(OLD_ONLY in c.text for c in store.get_chunks(doc_id(path)))
    others = {d.doc_id: store.chunk_ids(d.doc_id) for d in store.documents() if d.doc_id != doc_id(path)}

    new = sentences("Alibaba", 12)[:9] + ["Jin Li memimpin unit hybrid cloud."]
    path.write_text(article("Alibaba", new), encoding="utf-8")
    report = ingest([news], Assistant(small_chunks, store=store, embedder=hash_embedder))

    assert report.updated == [doc_id(path)]
    assert len(report.unchanged) == 2
    assert report.chunks_removed > 0
    new_text = "Jakarta, 5 Desember 2023\n\n" + " ".join(new)
    chunks = store.get_chunks(doc_id(path))
    assert chunks
    for c in chunks:
        assert c.text in new_text
        assert new_text[c.start : c.end] == c.text
        assert OLD_ONLY not in c.text
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert any("Jin Li" in c.text for c in chunks)
    assert store.count() == len(chunks) + sum(len(v) for v in others.values())
    assert {d.doc_id: store.chunk_ids(d.doc_id) for d in store.documents() if d.doc_id != doc_id(path)} == others


def test_retitled_file_is_updated(news: Path, small_chunks: Settings, store: ChromaStore,
                                  hash_embedder: Embedder) -> None:
    ingest([news], Assistant(small_chunks, store=store, embedder=hash_embedder))
    path = news / "telkom.txt"
    path.write_text(article("Telkom Spin-off", sentences("Telkom", 8)), encoding="utf-8")
    report = ingest([path], Assistant(small_chunks, store=store, embedder=hash_embedder))
    assert report.updated == [doc_id(path)]
    assert {c.title for c in store.get_chunks(doc_id(path))} == {"Telkom Spin-off"}


def test_bad_file_among_good_ones(news: Path, small_chunks: Settings, store: ChromaStore,
                                  hash_embedder: Embedder) -> None:
    bad = news / "broken.txt"
    bad.write_bytes("Harga naik à la carte".encode("latin-1"))
    report = ingest([news], Assistant(small_chunks, store=store, embedder=hash_embedder))
    assert [e.source for e in report.errors] == [str(bad)]
    assert "broken.txt" in report.summary()
    assert len(report.new) == 3
    assert len(store.documents()) == 3
    assert doc_id(bad) not in {d.doc_id for d in store.documents()}


def test_stored_documents_survive_an_ingest_with_bad_files(news: Path, tmp_path: Path, small_chunks: Settings,
                                                           store: ChromaStore, hash_embedder: Embedder) -> None:
    ingest([news], Assistant(small_chunks, store=store, embedder=hash_embedder))
    before = {d.doc_id: store.chunk_ids(d.doc_id) for d in store.documents()}

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    extra = tmp_path / "extra.txt"
    extra.write_text(article("Huawei", ["Huawei Cloud berinvestasi di Indonesia."]), encoding="utf-8")
    kabar = Assistant(small_chunks, store=store, embedder=hash_embedder)
    report = ingest([empty, extra, tmp_path / "missing.md"], kabar)

    assert sorted(Path(e.source).name for e in report.errors) == ["empty.txt", "missing.md"]
    assert report.new == [doc_id(extra)]
    after = {d.doc_id: store.chunk_ids(d.doc_id) for d in store.documents()}
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) == set(before) | {doc_id(extra)}


def test_stored_document_survives_when_its_file_turns_bad(news: Path, small_chunks: Settings, store: ChromaStore,
                                                          hash_embedder: Embedder) -> None:
    ingest([news], Assistant(small_chunks, store=store, embedder=hash_embedder))
    path = news / "telkom.txt"
    kept = store.chunk_ids(doc_id(path))
    path.write_bytes(b"\x00\x01binary now")
    report = ingest([news], Assistant(small_chunks, store=store, embedder=hash_embedder))
    assert [e.source for e in report.errors] == [str(path)]
    assert store.chunk_ids(doc_id(path)) == kept


def test_duplicate_jsonl_ids_keep_the_last(tmp_path: Path, settings: Settings, store: ChromaStore,
                                           hash_embedder: Embedder) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"id": "x", "text": "First version."}) + "\n"
                    + json.dumps({"id": "x", "text": "Second version."}) + "\n", encoding="utf-8")
    report = ingest([path], Assistant(settings, store=store, embedder=hash_embedder))
    assert report.new == ["x"]
    assert [c.text for c in store.get_chunks("x")] == ["Second version."]


def test_ingest_of_nothing(tmp_path: Path, settings: Settings, store: ChromaStore, hash_embedder: Embedder) -> None:
    report = ingest([tmp_path], Assistant(settings, store=store, embedder=hash_embedder))
    assert (report.files, report.chunks_written, report.errors) == (0, 0, [])
    assert store.count() == 0


# -- the real embedder on the sample corpus --------------------------------------------------


def _question(qid: str) -> tuple[str, str]:
    for line in SAMPLE_QUESTIONS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["id"] == qid:
            assert record["type"] == "cross-lingual" and record["lang"] == "en"
            return record["question"], record["doc_ids"][0]
    raise KeyError(qid)


CROSS_LINGUAL = [("who leads hybrid cloud?", "alibaba-cloud-reshuffle-id")] + [_question(q)
                                                                                for q in ("en-03", "en-04", "en-05")]


@pytest.fixture(scope="module")
def e5_assistant(e5: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    settings = Settings(data_dir=tmp_path_factory.mktemp("e5-corpus"))
    kabar = Assistant(settings, embedder=e5)
    report = ingest([SAMPLE_ARTICLES], kabar)
    assert report.errors == [] and len(report.new) == 14
    return kabar


@pytest.mark.parametrize(("question", "expected"), CROSS_LINGUAL, ids=[q for q, _ in CROSS_LINGUAL])
def test_english_question_finds_the_indonesian_article(e5_assistant: Assistant, question: str,
                                                       expected: str) -> None:
    hits = e5_assistant.retrieve(question)
    ranked = [Path(h.chunk.source).stem for h in hits]
    assert ranked[0] == expected, ranked
