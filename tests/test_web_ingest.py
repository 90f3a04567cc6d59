"""Web formats through the whole pipeline (ingest.ingest) into a real Chroma store.

HTML pages, URLs served by a local HTTP server (pytest-httpserver, loopback only, opened to
the fetcher by KABAR_FETCH_ALLOW's setting), RSS
feeds, PDFs and WARC archives, each with its metadata and its failures. Hash embeddings:
the model is not the point here. Every fixture is written by the test (tests/webfixtures.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import webfixtures as web
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingest import ingest
from ingest.fetch import Fetcher
from ingest.guard import FetchPolicy
from rag.assistant import Assistant
from rag.models import Embedder
from rag.settings import Settings
from rag.store import ChromaStore
from rag.types import Chunk, content_hash


def stored_text(store: ChromaStore, doc_id: str) -> str:
    """A document's text rebuilt from its stored chunks (offsets into the cleaned text)."""
    chunks = store.get_chunks(doc_id)
    assert chunks, f"no chunks for {doc_id}"
    size = max(c.end for c in chunks)
    text = [" "] * size
    for c in chunks:
        text[c.start : c.end] = c.text
    return "".join(text)


def first_chunk(store: ChromaStore, doc_id: str) -> Chunk:
    return store.get_chunks(doc_id)[0]


def url_id(url: str) -> str:
    return content_hash("url", url)


def file_id(path: Path) -> str:
    return content_hash("file", str(path.resolve()))


@pytest.fixture
def run(settings: Settings, store: ChromaStore, hash_embedder: Embedder):
    """ingest() with fetches to the test's own servers on loopback opened (ingest/guard.py)."""
    def go(paths: list, **kw):  # type: ignore[no-untyped-def]
        return ingest(paths, Assistant(settings.with_(fetch_allow="127.0.0.1"), store=store, embedder=hash_embedder),
                      **kw)
    return go


# -- HTML files ---------------------------------------------------------------------------


def test_html_page_keeps_the_article_and_its_metadata(tmp_path: Path, run, store: ChromaStore) -> None:
    page = tmp_path / "alibaba.html"
    page.write_text(web.news_page(), encoding="utf-8")
    report = run([page])
    assert report.errors == [] and report.new == [file_id(page)]
    text = stored_text(store, file_id(page))
    for paragraph in web.PARAGRAPHS:
        assert paragraph in text
    for boiler in web.BOILERPLATE:
        assert boiler not in text, boiler
    c = first_chunk(store, file_id(page))
    assert (c.title, c.source, c.url, c.published, c.author, c.lang) == (
        "Jin Li Pimpin Unit Hybrid Cloud Alibaba", "Kabar Harian", "https://kabarharian.example/2023/12/05/alibaba-cloud",
        "2023-12-05T08:30:00+07:00", "Rina Wulandari", "id")  # the page's stamp, its offset kept


@pytest.mark.parametrize("charset", ["windows-1252", "iso-8859-1", None])
def test_legacy_encodings_declared_or_not(tmp_path: Path, run, store: ChromaStore, charset: str | None) -> None:
    words = ["Café crème à Montréal : le président a annoncé une réforme des retraites très contestée, "
             "selon les syndicats réunis à l'Hôtel de Ville cette semaine."] * 3
    page = tmp_path / "fr.html"
    page.write_bytes(web.news_page(words, title="Réforme à Montréal", lang="fr", charset=charset).encode("cp1252"))
    report = run([page])
    assert report.errors == []
    text = stored_text(store, file_id(page))
    assert "Café crème à Montréal" in text and "Hôtel de Ville" in text
    assert first_chunk(store, file_id(page)).lang == "fr"


def test_wrong_declared_charset_is_not_trusted(tmp_path: Path, run, store: ChromaStore) -> None:
    page = tmp_path / "wrong.html"
    page.write_bytes(web.news_page(["Harga kopi “naik” lagi — pedagang di Pasar Minggu mengeluh karena "
                                    "pembeli berkurang setiap hari sejak bulan lalu."] * 2,
                                   charset="us-ascii").encode("utf-8"))
    assert run([page]).errors == []
    assert "Harga kopi “naik” lagi — pedagang" in stored_text(store, file_id(page))


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("nav-only.html", b"<html><body><nav><a href='/'>Beranda</a> <a href='/x'>Ekonomi</a></nav></body></html>",
     "no article text"),
    ("binary.html", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary"),
    ("empty.htm", b"   ", "empty"),
    ("plain.html", b"Just some words, no markup at all. " * 20, "not an HTML page"),
])
def test_bad_pages_are_named_and_the_rest_goes_on(tmp_path: Path, run, store: ChromaStore, name: str,
                                                   content: bytes, problem: str) -> None:
    good = tmp_path / "good.html"
    good.write_text(web.news_page(), encoding="utf-8")
    bad = tmp_path / name
    bad.write_bytes(content)
    report = run([bad, good])
    assert [e.source for e in report.errors] == [str(bad)]
    assert problem in report.errors[0].problem
    assert report.new == [file_id(good)]


def test_truncated_html_keeps_what_is_there(tmp_path: Path, run, store: ChromaStore) -> None:
    html = web.news_page()
    cut = html[: html.index(web.PARAGRAPHS[2][:30])]  # ends in the middle of the article, tags left open
    page = tmp_path / "cut.html"
    page.write_text(cut, encoding="utf-8")
    assert run([page]).errors == []
    text = stored_text(store, file_id(page))
    assert web.PARAGRAPHS[0] in text and web.PARAGRAPHS[1] in text


def test_gigantic_page_is_refused_by_name(tmp_path: Path, run, settings: Settings, store: ChromaStore,
                                          hash_embedder: Embedder) -> None:
    page = tmp_path / "huge.html"
    page.write_text(web.news_page(["Kata " * 50_000]), encoding="utf-8")  # 250 kB
    report = ingest([page], Assistant(settings.with_(max_file_mb=0.1), store=store, embedder=hash_embedder))
    assert [e.source for e in report.errors] == [str(page)] and "limit" in report.errors[0].problem
    assert store.count() == 0


# -- URLs ---------------------------------------------------------------------------------


def test_url_is_fetched_and_reingesting_it_is_a_no_op(httpserver: HTTPServer, run, store: ChromaStore) -> None:
    page = web.news_page()
    httpserver.expect_request("/news/alibaba").respond_with_data(page, content_type="text/html; charset=utf-8")
    url = httpserver.url_for("/news/alibaba")
    first = run([url])
    assert first.errors == [] and first.new == [url_id(url)]
    assert web.PARAGRAPHS[1] in stored_text(store, url_id(url))
    again = run([url])
    assert again.unchanged == [url_id(url)] and again.chunks_written == 0


def test_redirects_are_followed(httpserver: HTTPServer, run, store: ChromaStore) -> None:
    httpserver.expect_request("/old").respond_with_response(Response(status=301, headers={"Location": "/new"}))
    httpserver.expect_request("/new").respond_with_data(web.news_page(url=""), content_type="text/html")
    url = httpserver.url_for("/old")
    assert run([url]).errors == []
    assert first_chunk(store, url_id(url)).url == httpserver.url_for("/new")


def test_each_failing_url_is_reported_by_name(httpserver: HTTPServer, tmp_path: Path, settings: Settings,
                                              store: ChromaStore, hash_embedder: Embedder) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response(web.news_page(), content_type="text/html")

    httpserver.expect_request("/missing").respond_with_data("gone", status=404)
    httpserver.expect_request("/broken").respond_with_data("oops", status=500)
    httpserver.expect_request("/slow").respond_with_handler(slow)
    httpserver.expect_request("/image").respond_with_data(b"\x89PNG\r\n", content_type="image/png")
    httpserver.expect_request("/huge").respond_with_data("<html>" + "x" * 300_000, content_type="text/html")
    httpserver.expect_request("/fake-html").respond_with_data(b"\x00\x01\x02\x03" * 500, content_type="text/html")
    httpserver.expect_request("/ok").respond_with_data(web.news_page(), content_type="text/html")
    # The test server answers one request at a time: the slow one goes last.
    urls = {name: httpserver.url_for(f"/{name}") for name in ("missing", "broken", "image", "huge", "fake-html",
                                                               "ok", "slow")}
    listing = tmp_path / "reading-list.urls"
    listing.write_text("# today's reading\n" + "\n".join(urls.values()) + "\n", encoding="utf-8")
    with Fetcher(timeout_s=0.5, max_bytes=200_000, policy=FetchPolicy.parse("127.0.0.1")) as fetcher:
        report = ingest([listing], Assistant(settings, store=store, embedder=hash_embedder), fetcher=fetcher)
    problems = {e.source: e.problem for e in report.errors}
    assert set(problems) == {urls[n] for n in ("missing", "broken", "slow", "image", "huge", "fake-html")}
    assert "404" in problems[urls["missing"]]
    assert "500" in problems[urls["broken"]]
    assert "did not answer within 0.5 s" in problems[urls["slow"]]
    assert "is image/png, not an HTML page or a feed or a PDF" in problems[urls["image"]]
    assert "limit" in problems[urls["huge"]]
    assert "binary" in problems[urls["fake-html"]]
    assert report.new == [url_id(urls["ok"])]


def test_a_txt_file_of_urls_is_a_url_list(httpserver: HTTPServer, tmp_path: Path, run, store: ChromaStore) -> None:
    httpserver.expect_request("/a").respond_with_data(web.news_page(), content_type="text/html")
    listing = tmp_path / "links.txt"
    listing.write_text(httpserver.url_for("/a") + "\n", encoding="utf-8")
    assert run([listing]).new == [url_id(httpserver.url_for("/a"))]


# -- feeds --------------------------------------------------------------------------------


def _entry(httpserver: HTTPServer, name: str, title: str, **kw: str) -> dict[str, str]:
    return {"title": title, "link": httpserver.url_for(f"/{name}"), **kw}


def test_feed_ingests_entry_pages_then_only_new_or_changed_entries(httpserver: HTTPServer, tmp_path: Path, run,
                                                                    store: ChromaStore) -> None:
    hits = {"a": 0, "b": 0, "c": 0}

    def gone(request: Request) -> Response:
        hits["c"] += 1
        return Response("gone", status=404)

    def page(name: str, paragraphs: list[str]):  # type: ignore[no-untyped-def]
        def handler(request: Request) -> Response:
            hits[name] += 1
            return Response(web.news_page(paragraphs, url="", published="2023-01-01", author=""),
                            content_type="text/html")
        return handler

    other = web.OTHER
    httpserver.expect_request("/a").respond_with_handler(page("a", web.PARAGRAPHS))
    httpserver.expect_request("/b").respond_with_handler(page("b", other))
    httpserver.expect_request("/c").respond_with_handler(gone)
    fallback = "<p>Isi dari feed: " + " ".join(["Huawei Cloud membuka pusat data baru di Jakarta."] * 3) + "</p>"
    entries = [
        _entry(httpserver, "a", "Alibaba", date="Tue, 05 Dec 2023 08:30:00 +0700", author="ana@x.example (Ana)"),
        _entry(httpserver, "b", "Tencent", date="Wed, 06 Dec 2023 09:00:00 +0700"),
        _entry(httpserver, "c", "Huawei", content=fallback),
    ]
    feed = tmp_path / "tekno.rss"
    feed.write_bytes(web.rss_feed(entries))
    first = run([feed])
    assert first.errors == [] and len(first.new) == 3
    a = first_chunk(store, url_id(entries[0]["link"]))
    assert (a.published, a.author) == ("2023-12-05T08:30:00+07:00", "ana@x.example (Ana)")  # the feed's, as stated
    assert a.source == "Kabar Harian"
    c = first_chunk(store, url_id(entries[2]["link"]))
    assert "Huawei Cloud membuka pusat data" in stored_text(store, c.doc_id)
    assert c.source == "Kabar Harian - Teknologi"  # the feed's title names the outlet of a fallback

    entries[1]["date"] = "Thu, 07 Dec 2023 10:00:00 +0700"  # a corrected date: the entry changed
    entries.append(_entry(httpserver, "a", "Alibaba again", guid="dup-guid-0", date=entries[0]["date"],
                          author=entries[0]["author"]))  # a second entry for a page already stored
    feed.write_bytes(web.rss_feed(entries))
    before = dict(hits)
    second = run([feed])
    assert hits["a"] == before["a"] + 1 and hits["b"] == before["b"] + 1  # new guid and changed entry only
    assert hits["c"] == 1  # the 404 entry is unchanged: not fetched again
    assert sorted(second.unchanged) == sorted([url_id(entries[0]["link"]), url_id(entries[2]["link"]),
                                               url_id(entries[0]["link"])])
    assert second.updated == [url_id(entries[1]["link"])]
    assert first_chunk(store, url_id(entries[1]["link"])).published == "2023-12-07T10:00:00+07:00"


def test_feed_served_over_http(httpserver: HTTPServer, run, store: ChromaStore) -> None:
    httpserver.expect_request("/a").respond_with_data(web.news_page(), content_type="text/html")
    httpserver.expect_request("/feed").respond_with_data(
        web.rss_feed([_entry(httpserver, "a", "Alibaba")]), content_type="application/rss+xml")
    report = run([httpserver.url_for("/feed")])
    assert report.errors == [] and report.new == [url_id(httpserver.url_for("/a"))]


def test_a_feed_that_is_not_xml(tmp_path: Path, run) -> None:
    feed = tmp_path / "broken.rss"
    feed.write_text("this is { not xml at all", encoding="utf-8")
    report = run([feed])
    assert [e.source for e in report.errors] == [str(feed.resolve())]
    assert "not an RSS or Atom feed" in report.errors[0].problem


# -- PDF ----------------------------------------------------------------------------------


def test_pdf_pages_are_kept_and_chunks_know_theirs(tmp_path: Path, settings: Settings, store: ChromaStore,
                                                   hash_embedder: Embedder) -> None:
    one = "Pendapatan Telkom naik sembilan persen pada kuartal ketiga. " * 6
    three = "Direktur utama Telkom mengatakan pusat data baru dibuka di Batam. " * 6
    path = tmp_path / "laporan.pdf"
    path.write_bytes(web.pdf([one, None, three], title="Laporan Kuartal", author="Tim Riset"))
    small = settings.with_(chunk_tokens=40, chunk_overlap=0)
    report = ingest([path], Assistant(small, store=store, embedder=hash_embedder))
    assert report.errors == []
    chunks = store.get_chunks(file_id(path))
    assert chunks[0].title == "Laporan Kuartal" and chunks[0].author == "Tim Riset"
    pages = {c.page for c in chunks}
    assert pages == {1, 3}
    assert all(("Batam" in c.text) == (c.page == 3) for c in chunks)


@pytest.mark.parametrize(("content", "problem"), [
    (web.pdf([None, None]), "no extractable text"),
    (web.pdf(["Rahasia negara. " * 20], password="s3cret"), "encrypted"),
    (web.pdf(["Rusak. " * 20])[:300], "corrupt"),
    (b"<html>not a pdf</html>", "not a PDF"),
])
def test_bad_pdfs(tmp_path: Path, run, store: ChromaStore, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(content)
    report = run([path])
    assert [e.source for e in report.errors] == [str(path)]
    assert problem in report.errors[0].problem
    assert store.count() == 0


# -- WARC ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_warc_html_responses_become_articles(tmp_path: Path, run, store: ChromaStore, compress: bool) -> None:
    other = web.OTHER
    archive = tmp_path / ("crawl.warc.gz" if compress else "crawl.warc")
    archive.write_bytes(web.warc([
        ("https://kabarharian.example/a", "text/html; charset=utf-8", web.news_page(url="").encode()),
        ("https://kabarharian.example/logo.png", "image/png", b"\x89PNG\r\n"),
        ("https://kabarharian.example/b", "text/html", web.news_page(other, url="").encode()),
    ], compress=compress))
    report = run([archive])
    assert report.errors == []
    assert sorted(report.new) == sorted([url_id("https://kabarharian.example/a"), url_id("https://kabarharian.example/b")])
    meta = next(m for m in store.first_chunk_metadata() if m["doc_id"] == url_id("https://kabarharian.example/a"))
    assert meta["url"] == "https://kabarharian.example/a"
    assert meta["crawled"] == "2024-01-15T10:00:00Z"


def test_warc_with_a_broken_record_keeps_what_came_before(tmp_path: Path, run, store: ChromaStore) -> None:
    good = web.warc([("https://kabarharian.example/a", "text/html", web.news_page(url="").encode())])
    archive = tmp_path / "broken.warc"
    archive.write_bytes(good + b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: 999999\r\n\r\ntruncated")
    report = run([archive])
    assert report.new == [url_id("https://kabarharian.example/a")]
    assert len(report.errors) == 1 and str(archive) in report.errors[0].source
    assert "broken WARC record" in report.errors[0].problem


def test_warc_is_streamed_not_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run) -> None:
    """The archive is never read in one call: records come through a bounded reader."""
    archive = tmp_path / "crawl.warc"
    archive.write_bytes(web.warc([(f"https://kabarharian.example/{i}", "text/html",
                                   web.news_page([f"Berita nomor {i} tentang cloud {i * i}. " * 12,
                                                  f"Paragraf kedua {i}: " + " ".join(map(str, range(i, 500, 7)))],
                                                 url="").encode())
                                  for i in range(12)]))
    reads: list[int] = []
    real_open = open

    class Spy:
        def __init__(self, f):  # type: ignore[no-untyped-def]
            self.f = f

        def read(self, n: int = -1) -> bytes:
            reads.append(n)
            return self.f.read(n)

        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            return getattr(self.f, name)

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc):  # type: ignore[no-untyped-def]
            self.f.close()

    import ingest.warc as warc_module
    monkeypatch.setattr(warc_module, "open", lambda p, m: Spy(real_open(p, m)), raising=False)
    report = run([archive], dedupe=False)  # the pages are near-copies of each other
    assert len(report.new) == 12
    assert len(reads) > 2 and max(reads) < archive.stat().st_size / 2


# -- the examples folder ------------------------------------------------------------------


def test_the_web_examples_ingest_offline(settings: Settings, store: ChromaStore, hash_embedder: Embedder) -> None:
    """examples/web: a page, a feed (its links do not resolve: entry text stands in) and a PDF."""
    import httpx

    folder = Path(__file__).resolve().parent.parent / "examples" / "web"
    unreachable = httpx.Client(transport=httpx.MockTransport(lambda r: (_ for _ in ()).throw(
        httpx.ConnectError("no network", request=r))))
    kabar = Assistant(settings, store=store, embedder=hash_embedder)
    report = ingest([folder], kabar, fetcher=Fetcher(client=unreachable))
    assert report.errors == [] and len(report.new) == 4
    by_title = {d.title: d for d in store.documents()}
    page = by_title["Nusantara Data Opens Its Second Batam Data Centre"]
    assert (page.source, page.published, page.author) == ("The Jakarta Ledger", "2024-02-20T09:15:00+07:00",
                                                          "Maya Hartono")
    text = stored_text(store, page.doc_id)
    assert text.startswith("Nusantara Data Opens") and "Nongsa Digital Park" in text
    for junk in ("cookies", "Read more", "newsletter", "Related stories", "Hope they hire", "(Photo:"):
        assert junk not in text, junk
    ipo = by_title["Garuda Pangan Lists on the Jakarta Stock Exchange"]
    assert (ipo.source, ipo.published, ipo.author) == (
        "The Jakarta Ledger - Business", "2024-02-21T10:00:00+07:00", "desk@jakartaledger.example (Dimas Prasetyo)")
    pdf = by_title["Bank Nusantara Quarterly Results Q3 2023"]
    assert {c.page for c in store.get_chunks(pdf.doc_id)} <= {1, 2}
    assert pdf.author == "Bank Nusantara Investor Relations"


def test_outlet_and_date_filter_retrieval(tmp_path: Path, run, store: ChromaStore) -> None:
    """--source / --since / --until work on what the pages said about themselves."""
    from rag.types import Filters

    a = tmp_path / "a.html"
    a.write_text(web.news_page(site="Kabar Harian", published="2023-12-05"), encoding="utf-8")
    b = tmp_path / "b.html"
    b.write_text(web.news_page(web.OTHER, site="Warta Kota", published="2024-01-20",
                               url="https://wartakota.example/b"), encoding="utf-8")
    assert run([a, b]).errors == []

    def found(filters: Filters) -> set[str]:
        return {h.chunk.source for h in store.lexical_query("cloud kantor perusahaan", 10, filters.where())}

    assert found(Filters()) == {"Kabar Harian", "Warta Kota"}
    assert found(Filters(sources=["Warta Kota"])) == {"Warta Kota"}
    assert found(Filters(since="2024-01-01")) == {"Warta Kota"}
    assert found(Filters(until="2023-12-31")) == {"Kabar Harian"}


def test_kabar_ingest_command_takes_urls_and_pages(httpserver: HTTPServer, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from ui.main import main

    httpserver.expect_request("/a").respond_with_data(web.news_page(), content_type="text/html")
    httpserver.expect_request("/gone").respond_with_data("", status=404)
    page = tmp_path / "b.html"
    page.write_text(web.news_page(web.OTHER), encoding="utf-8")
    args = ["ingest", httpserver.url_for("/a"), httpserver.url_for("/gone"), str(page)]
    assert main(args + ["--no-dedupe"]) == 0
    out = capsys.readouterr().out
    assert "3 input(s): 2 new" in out
    assert f"error: {httpserver.url_for('/gone')}: HTTP 404" in out


def test_boilerplate_inside_the_article_is_trimmed_and_reporting_is_not(tmp_path: Path, run,
                                                                         store: ChromaStore) -> None:
    paragraphs = web.PARAGRAPHS + [
        "Baca juga: Harga emas naik lagi",
        "Jin Li saat konferensi pers di Hangzhou (Foto: ANTARA/Budi Santoso).",
        "Jangan lewatkan berita terbaru, berlangganan newsletter kami sekarang!",
        "Investor ramai-ramai subscribe rights issue perusahaan itu, kata analis.",
        "Investors rushed to subscribe to the rights issue, the company said.",
    ]
    page = tmp_path / "p.html"
    page.write_text(web.news_page(paragraphs), encoding="utf-8")
    assert run([page]).errors == []
    text = stored_text(store, file_id(page))
    for gone in ("Baca juga", "(Foto: ANTARA", "newsletter"):
        assert gone not in text, gone
    for kept in ("Investor ramai-ramai subscribe", "Investors rushed to subscribe", web.PARAGRAPHS[2]):
        assert kept in text, kept
