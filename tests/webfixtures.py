"""Small web fixtures written by the tests themselves: news pages, feeds, PDFs, web archives.

Nothing here is downloaded; every byte is made from the strings below.
"""

from __future__ import annotations

import gzip
import io
import textwrap
from datetime import datetime, timezone

PARAGRAPHS = [
    "Jin Li dipercaya memimpin unit hybrid cloud Alibaba setelah perusahaan membatalkan rencana penawaran "
    "saham perdana unit cloud-nya pada bulan lalu.",
    "Menurut sumber yang mengetahui rencana itu, Weiguang Liu akan memimpin unit public cloud, sementara "
    "tim penjualan internasional dipindahkan ke kantor pusat di Hangzhou.",
    "Perombakan ini merupakan yang terbesar sejak unit tersebut didirikan, dan para analis memperkirakan "
    "pendapatan unit cloud akan tumbuh lebih lambat tahun depan.",
]

#: Another story altogether (not a near-duplicate of PARAGRAPHS).
OTHER = [
    "Tencent Cloud menunjuk Dowson Tong sebagai kepala bisnis internasional, tanggung jawab yang sebelumnya "
    "dipegang oleh tim regional di Singapura.",
    "Langkah itu diumumkan dalam rapat karyawan hari Rabu, beberapa jam setelah laporan keuangan kuartalan "
    "menunjukkan penjualan iklan melemah.",
    "Juru bicara perusahaan menolak berkomentar soal kemungkinan pemutusan hubungan kerja di kantor Jakarta.",
]

BOILERPLATE = ["Terima kasih telah membaca Kabar Harian", "Kami menggunakan cookie", "Komentar pembaca",
               "Berita terkait lainnya"]


def news_page(paragraphs: list[str] | None = None, title: str = "Jin Li Pimpin Unit Hybrid Cloud Alibaba",
              published: str = "2023-12-05", author: str = "Rina Wulandari", site: str = "Kabar Harian",
              url: str = "https://kabarharian.example/2023/12/05/alibaba-cloud", lang: str = "id",
              charset: str | None = "utf-8", extra_head: str = "") -> str:
    """A news article page with navigation, a cookie banner, a related list and comments around it."""
    body = "\n".join(f"<p>{p}</p>" for p in (PARAGRAPHS if paragraphs is None else paragraphs))
    meta_charset = f'<meta charset="{charset}">' if charset else ""
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head>{meta_charset}
<title>{title} | {site}</title>
<meta property="og:title" content="{title}">
<meta property="og:site_name" content="{site}">
<meta property="og:type" content="article">
<meta name="author" content="{author}">
<meta property="article:published_time" content="{published}T08:30:00+07:00">
<link rel="canonical" href="{url}">
{extra_head}
</head><body>
<div class="cookie-banner">Kami menggunakan cookie untuk meningkatkan pengalaman Anda. <a href="#">Setuju</a></div>
<header><nav><ul><li><a href="/">Beranda</a></li><li><a href="/ekonomi">Ekonomi</a></li>
<li><a href="/teknologi">Teknologi</a></li></ul></nav></header>
<main><article>
<h1>{title}</h1>
<p class="byline">Oleh {author}, {published}</p>
{body}
<p>Baca juga: Berita terkait lainnya tentang saham teknologi</p>
</article>
<aside class="related"><h2>Berita terkait lainnya</h2><ul>
<li><a href="/a">Harga emas naik lagi</a></li><li><a href="/b">Rupiah melemah</a></li></ul></aside>
<section id="comments" class="comments"><h3>Komentar pembaca</h3>
<div class="comment"><p>Komentar pembaca: artikel yang sangat bagus sekali, terima kasih!</p></div></section>
</main>
<footer><p>Terima kasih telah membaca Kabar Harian. Hak cipta 2023.</p></footer>
</body></html>"""


def rss_feed(entries: list[dict[str, str]], title: str = "Kabar Harian - Teknologi") -> bytes:
    items = []
    for e in entries:
        items.append(f"""<item><title>{e['title']}</title><link>{e['link']}</link>
<guid>{e.get('guid', e['link'])}</guid><pubDate>{e.get('date', 'Tue, 05 Dec 2023 08:30:00 +0700')}</pubDate>
<author>{e.get('author', 'redaksi@kabarharian.example (Redaksi)')}</author>
<description><![CDATA[{e.get('content', '')}]]></description></item>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{title}</title><link>https://kabarharian.example/</link>
<description>Berita teknologi</description>{''.join(items)}</channel></rss>""".encode()


def _pdf_objects(pages: list[str | None]) -> bytes:
    """A minimal PDF, one page per entry: text drawn with Helvetica, or no text layer (None)."""
    objs: list[bytes] = []
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    font = 3 + 2 * n
    for i, text in enumerate(pages):
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                    f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode())
        if text is None:
            stream = b"0 0 1 rg 100 100 200 200 re f"  # a filled rectangle: a picture, no text
        else:
            lines = textwrap.wrap(text, 80)
            ops = ["BT /F1 11 Tf 72 720 Td 14 TL"]
            for line in lines:
                safe = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append(f"({safe}) '")
            ops.append("ET")
            stream = "\n".join(ops).encode("latin-1")
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objs, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()


def pdf(pages: list[str | None], title: str = "", author: str = "", password: str = "") -> bytes:
    """A PDF of the given pages, with metadata and optional encryption (through pypdf's writer)."""
    from pypdf import PdfReader, PdfWriter

    raw = _pdf_objects(pages)
    if not (title or author or password):
        return raw
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(raw)))
    meta = {}
    if title:
        meta["/Title"] = title
    if author:
        meta["/Author"] = author
    if meta:
        writer.add_metadata(meta)
    if password:
        writer.encrypt(password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def warc(records: list[tuple[str, str, bytes]], compress: bool = False) -> bytes:
    """A WARC of (uri, content type, body) response records, each preceded by its request record."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    out = io.BytesIO()
    writer = WARCWriter(out, gzip=compress)
    for uri, ctype, body in records:
        req = writer.create_warc_record(uri, "request", payload=io.BytesIO(b""),
                                        http_headers=StatusAndHeaders(f"GET {uri} HTTP/1.1", [], is_http_request=True))
        writer.write_record(req)
        headers = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
        rec = writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=headers,
                                        warc_headers_dict={"WARC-Date": "2024-01-15T10:00:00Z"})
        writer.write_record(rec)
    return out.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


NOW = datetime(2024, 1, 15, tzinfo=timezone.utc)
