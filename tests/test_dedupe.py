"""Near-duplicate articles (ingest.dedupe) and how the pipeline folds them into the stored story."""

from __future__ import annotations

import random
from pathlib import Path

import webfixtures as web

from ingest import ingest
from ingest.dedupe import NearDuplicates, is_same_story, signature
from rag.answer import format_source, verify_citations
from rag.assistant import Assistant
from rag.models import Embedder
from rag.settings import Settings
from rag.store import ChromaStore
from rag.types import Answer, content_hash
from ui.render import sources_html

WIRE = [
    "Pemerintah Indonesia resmi menaikkan harga bahan bakar minyak bersubsidi mulai Sabtu pukul 14.30 WIB, "
    "kata Menteri Energi dan Sumber Daya Mineral dalam konferensi pers di Istana Merdeka, Jakarta.",
    "Harga Pertalite naik dari Rp7.650 menjadi Rp10.000 per liter, sedangkan harga Solar naik dari Rp5.150 "
    "menjadi Rp6.800 per liter, menurut keterangan resmi yang dibagikan kepada wartawan.",
    "Presiden mengatakan keputusan itu diambil karena anggaran subsidi energi sudah membengkak tiga kali lipat "
    "dan sebagian besar subsidi dinikmati oleh kelompok masyarakat yang mampu.",
    "Sebagai gantinya, pemerintah akan menyalurkan bantuan langsung tunai kepada 20,65 juta keluarga penerima "
    "manfaat sebesar Rp150.000 per bulan selama empat bulan, dimulai pekan depan.",
    "Serikat buruh menyatakan akan menggelar unjuk rasa di depan gedung DPR pada Selasa untuk menolak kenaikan "
    "tersebut, sementara pengemudi ojek daring meminta tarif segera disesuaikan.",
]
# The same topic written up independently: must never be folded into WIRE.
SAME_TOPIC = [
    "Antrean kendaraan mengular di sejumlah SPBU di Bandung sejak Sabtu siang setelah kabar kenaikan harga BBM "
    "bersubsidi menyebar di media sosial, kata petugas stasiun pengisian.",
    "Seorang pengemudi taksi, Asep, mengaku menghabiskan dua jam untuk mengisi tangki dan khawatir pendapatannya "
    "akan turun karena penumpang enggan membayar tarif yang lebih tinggi.",
    "Ekonom dari sebuah universitas negeri memperkirakan inflasi akan melonjak hingga enam persen pada akhir "
    "tahun karena biaya transportasi ikut naik dan merembet ke harga pangan.",
    "Pemerintah daerah berjanji memantau harga kebutuhan pokok di pasar tradisional dan menyiapkan operasi pasar "
    "bila harga beras dan minyak goreng melonjak dalam beberapa pekan ke depan.",
]


def edited(paragraphs: list[str], rate: float, seed: int) -> list[str]:
    """A copy with about ``rate`` of its words changed, as a copy editor at another outlet might."""
    rng = random.Random(seed)
    out = []
    for p in paragraphs:
        words = p.split()
        for i in range(len(words)):
            if rng.random() < rate:
                words[i] = rng.choice(["pun", "juga", "itu", "tersebut", words[i].upper()])
        out.append(" ".join(words))
    return out


def test_copies_are_the_same_story_and_distinct_articles_are_not() -> None:
    wire = signature(" ".join(WIRE))
    assert is_same_story(wire, signature(" ".join(edited(WIRE, 0.04, 1))))
    assert is_same_story(wire, signature(" ".join(WIRE[:4])))  # truncated
    assert is_same_story(wire, signature("JAKARTA (Tempo) - " + " ".join(WIRE) + " Baca berita lainnya di Tempo."))
    assert not is_same_story(wire, signature(" ".join(SAME_TOPIC)))
    assert not is_same_story(signature("Harga BBM naik."), signature("Harga BBM naik."))  # too short to judge


def test_the_index_finds_the_closest_stored_story() -> None:
    index = NearDuplicates()
    index.add("wire", signature(" ".join(WIRE)))
    index.add("topic", signature(" ".join(SAME_TOPIC)))
    assert index.find("copy", signature(" ".join(edited(WIRE, 0.03, 2)))) == "wire"
    assert index.find("wire", signature(" ".join(WIRE))) is None  # a document is not its own duplicate
    assert index.find("new", signature(" ".join(reversed(SAME_TOPIC[:2])) + " " + " ".join(WIRE[2:3]))) is None


def _page(tmp_path: Path, name: str, paragraphs: list[str], site: str, published: str) -> Path:
    path = tmp_path / name
    path.write_text(web.news_page(paragraphs, title="Harga BBM Naik", site=site, published=published,
                                  url=f"https://{site.lower().replace(' ', '')}.example/bbm"), encoding="utf-8")
    return path


def test_a_copy_from_another_outlet_is_stored_once_and_named_with_the_citation(
        tmp_path: Path, settings: Settings, store: ChromaStore, hash_embedder: Embedder) -> None:
    original = _page(tmp_path, "antara.html", WIRE, "Antara", "2022-09-03")
    copy = _page(tmp_path, "tempo.html", ["JAKARTA (Tempo) -"] + edited(WIRE, 0.03, 3), "Tempo", "2022-09-04")
    other = _page(tmp_path, "pikiran.html", SAME_TOPIC, "Pikiran Rakyat", "2022-09-03")
    ids = {p.name: content_hash("file", str(p.resolve())) for p in (original, copy, other)}

    first = ingest([original], Assistant(settings, store=store, embedder=hash_embedder))
    assert first.new == [ids["antara.html"]]
    # A new run: the near-duplicate index is read from the store.
    second = ingest([copy, other], Assistant(settings, store=store, embedder=hash_embedder))
    assert second.duplicates == [(ids["tempo.html"], ids["antara.html"])]
    assert second.new == [ids["pikiran.html"]]
    assert {d.doc_id for d in store.documents()} == {ids["antara.html"], ids["pikiran.html"]}
    assert "1 near-duplicate(s)" in second.summary()

    chunks = store.get_chunks(ids["antara.html"])
    assert all([a.source for a in c.alternatives] == ["Tempo"] for c in chunks)
    alt = chunks[0].alternatives[0]
    assert (alt.url, alt.published, alt.doc_id) == ("https://tempo.example/bbm", "2022-09-04T08:30:00+07:00",
                                                    ids["tempo.html"])
    assert store.lexical is not None and store.lexical_query("Pertalite", 5)[0].chunk.alternatives[0].source == "Tempo"

    again = ingest([copy, original], Assistant(settings, store=store, embedder=hash_embedder))
    assert sorted(again.unchanged) == sorted([ids["tempo.html"], ids["antara.html"]])
    assert again.duplicates == [] and again.chunks_written == 0
    assert len(store.get_chunks(ids["antara.html"])[0].alternatives) == 1

    hits = store.lexical_query("Pertalite Solar harga", 3)
    _, citations, _ = verify_citations("Harga Pertalite naik menjadi Rp10.000 [1].", hits)
    assert citations[0].source == "Antara" and citations[0].published == "2022-09-03T08:30:00+07:00"
    assert [a.source for a in citations[0].alternatives] == ["Tempo"]
    assert "Also published by: Tempo (2022-09-04)" in format_source(1, hits[0])
    assert "Source: Antara" in format_source(1, hits[0])
    panel = sources_html(Answer(question="q", text="t [1]", citations=citations, sources=hits))
    assert "also: Tempo (2022-09-04)" in panel and "https://tempo.example/bbm" in panel


def test_two_copies_in_one_run_store_the_first(tmp_path: Path, settings: Settings, store: ChromaStore,
                                               hash_embedder: Embedder) -> None:
    a = _page(tmp_path, "a.html", WIRE, "Antara", "2022-09-03")
    b = _page(tmp_path, "b.html", edited(WIRE, 0.02, 4), "Kompas", "2022-09-03")
    report = ingest([a, b], Assistant(settings, store=store, embedder=hash_embedder))
    assert len(report.new) == 1 and len(report.duplicates) == 1
    [doc] = store.documents()
    assert [x.source for x in store.get_chunks(doc.doc_id)[0].alternatives] == ["Kompas"]


def test_dedupe_can_be_turned_off(tmp_path: Path, settings: Settings, store: ChromaStore,
                                  hash_embedder: Embedder) -> None:
    a = _page(tmp_path, "a.html", WIRE, "Antara", "2022-09-03")
    b = _page(tmp_path, "b.html", edited(WIRE, 0.02, 5), "Kompas", "2022-09-03")
    report = ingest([a, b], Assistant(settings, store=store, embedder=hash_embedder), dedupe=False)
    assert len(report.new) == 2 and report.duplicates == []
