"""Pages of the kinds extraction missed on held-out news pages (ingest/html.py), made here.

Share bars, related-article lists inside the article, "read more" / "baca juga" blocks, a
long article in several sections, and a timestamp with an offset: each page's article text
must come through whole and nothing of the boilerplate with it. The pages are invented;
their markup follows what news sites print (class names, nesting, link-only lines).
"""

from __future__ import annotations

import pytest

from ingest.html import html_document

LEAD = ("Pemerintah Kota Surabaya meresmikan jalur bus listrik pertama yang menghubungkan Terminal "
        "Purabaya dengan kawasan Tunjungan pada Senin pagi.")
BODY = [
    "Wali Kota Surabaya mengatakan armada awal terdiri atas 24 bus listrik buatan dalam negeri dengan "
    "kapasitas 60 penumpang per bus.",
    "Tarif perjalanan ditetapkan Rp 5.000 dan dapat dibayar dengan kartu uang elektronik maupun kode QR.",
    "Dinas Perhubungan memperkirakan jalur baru itu akan melayani sekitar 18.000 penumpang setiap hari "
    "pada tahun pertama operasinya.",
    "Pemerintah kota berencana menambah dua jalur lagi, ke Rungkut dan ke Benowo, sebelum akhir 2025.",
]


def page(article: str, head: str = "") -> bytes:
    return f"""<!DOCTYPE html><html lang="id"><head><meta charset="utf-8">
<title>Bus Listrik Pertama Melaju di Surabaya | Warta Jatim</title>
<meta property="og:site_name" content="Warta Jatim">{head}</head><body>
<header><nav><a href="/">Beranda</a> <a href="/kota">Kota</a></nav></header>
<main><article><h1>Bus Listrik Pertama Melaju di Surabaya</h1>
<p class="byline">Oleh Dewi Lestari</p>
{article}
</article></main><footer><p>© 2024 Warta Jatim. Seluruh hak cipta dilindungi.</p></footer></body></html>""".encode()


def paragraphs(texts: list[str]) -> str:
    return "\n".join(f"<p>{t}</p>" for t in texts)


def text_of(html: bytes) -> str:
    return html_document(html, "page.html", "doc").text


def assert_whole(text: str, junk: list[str]) -> None:
    for sentence in [LEAD, *BODY]:
        assert sentence in text, sentence
    for piece in junk:
        assert piece not in text, piece


SHARE_BAR = """<div class="share-bar"><span>Bagikan:</span> <a href="#">Facebook</a> <a href="#">Twitter</a>
<a href="#">WhatsApp</a> <a href="#">Salin tautan</a></div>"""


def test_share_bars_above_and_below_the_article() -> None:
    text = text_of(page(SHARE_BAR + paragraphs([LEAD, *BODY]) + SHARE_BAR))
    assert_whole(text, ["Bagikan", "WhatsApp", "Salin tautan"])


def test_related_lists_inside_the_article() -> None:
    related = """<div class="related-articles"><h3>Berita terkait</h3><ul>
<li><a href="/a">Tarif bus kota naik mulai Januari</a></li>
<li><a href="/b">Halte baru dibangun di Jalan Darmo</a></li></ul></div>"""
    text = text_of(page(paragraphs([LEAD, BODY[0]]) + related + paragraphs(BODY[1:])))
    assert_whole(text, ["Berita terkait", "Tarif bus kota naik", "Halte baru dibangun"])


@pytest.mark.parametrize("block", [
    '<p><strong>Baca juga:</strong> <a href="/c">Proyek MRT Surabaya dikaji ulang</a></p>',
    '<p>BACA JUGA: <a href="/c">Proyek MRT Surabaya dikaji ulang</a></p>',
    '<div class="read-more"><a href="/c">Read more: Proyek MRT Surabaya dikaji ulang</a></div>',
    '<p><em>Read also: <a href="/c">Proyek MRT Surabaya dikaji ulang</a></em></p>',
])
def test_read_more_blocks_between_paragraphs(block: str) -> None:
    text = text_of(page(paragraphs([LEAD, BODY[0], BODY[1]]) + block + paragraphs(BODY[2:])))
    assert_whole(text, ["Proyek MRT Surabaya dikaji ulang"])


def test_a_long_article_in_sections_keeps_every_paragraph() -> None:
    sections = []
    expected = []
    for n in range(1, 7):
        sentences = [f"Bagian {n}, paragraf {k}: warga di kecamatan nomor {n * 10 + k} menilai layanan bus listrik "
                     f"itu tepat waktu dan bersih, menurut survei dinas yang dirilis pekan ini." for k in range(1, 6)]
        expected += sentences
        sections.append(f"<h2>Bagian {n}: tanggapan warga</h2>" + paragraphs(sentences))
    text = text_of(page(paragraphs([LEAD, *BODY]) + "".join(sections)))
    assert_whole(text, [])
    missing = [s for s in expected if s not in text]
    assert not missing, f"{len(missing)} of {len(expected)} paragraphs dropped, first: {missing[0]}"


def test_a_timestamp_with_an_offset_is_the_day_the_page_states() -> None:
    head = '<meta property="article:published_time" content="2023-12-05T23:30:00-05:00">'
    stamp = '<p><time datetime="2023-12-05T23:30:00-05:00">December 5, 2023, 11:30 p.m. EST</time></p>'
    doc = html_document(page(stamp + paragraphs([LEAD, *BODY]), head), "page.html", "doc")
    assert doc.published == "2023-12-05T23:30:00-05:00"  # not 2023-12-06, the same instant in UTC
    assert_whole(doc.text, [])


@pytest.mark.parametrize("block", [
    '<p><a href="/d">Harga emas hari ini naik tipis di Pegadaian</a></p>',  # a headline alone, a link
    "<p>Bagikan artikel ini</p>",
    '<p class="share">Share this article: <a href="#">X</a> <a href="#">LinkedIn</a></p>',
    '<aside class="inline-related"><p><a href="/e">Terminal Purabaya dipercantik</a></p></aside>',
])
def test_inline_links_and_share_lines_between_paragraphs(block: str) -> None:
    text = text_of(page(paragraphs([LEAD, BODY[0]]) + block + paragraphs(BODY[1:])))
    assert_whole(text, ["Harga emas hari ini", "Bagikan artikel", "Share this article", "LinkedIn",
                        "Terminal Purabaya dipercantik"])
