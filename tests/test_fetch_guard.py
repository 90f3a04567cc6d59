"""Fetching only the public web (ingest/guard.py) and bounded decompression (ingest/fetch.py).

Real local servers (pytest-httpserver on loopback) stand in for the server's own network;
host names are resolved by a fake ``getaddrinfo`` (the DNS boundary), so a name can point
at loopback, a private network or the metadata address, or answer differently the second
time (rebinding). Bombs are made in the test: small compressed bodies that expand far past
the size limit.
"""

from __future__ import annotations

import gzip
import socket
import zlib
from pathlib import Path

import pytest
import webfixtures as web
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingest import guard, ingest
from ingest.fetch import Fetcher
from ingest.guard import FetchPolicy, Target, serving_on
from rag.assistant import Assistant
from rag.errors import ConfigError, InputError
from rag.models import Embedder
from rag.settings import Settings
from rag.store import ChromaStore

SECRET = "<html><body><article><h1>Internal</h1>" + "<p>The admin password is hunter2, kept on this host.</p>" * 6 \
    + "</article></body></html>"


class FakeDNS:
    """getaddrinfo for made-up names: each name answers the next address of its list, then the last."""

    def __init__(self, **names: list[str]) -> None:
        self.names = {k.replace("_", "."): list(v) for k, v in names.items()}
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append(host)
        answers = self.names.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]


def refused(url: str, policy: FetchPolicy | None = None, via: Target | None = None) -> str:
    with pytest.raises(InputError) as e:
        (policy or FetchPolicy()).check(url, via)
    assert e.value.source == url
    return e.value.problem


@pytest.mark.parametrize("url, kind", [
    ("http://127.0.0.1:8080/admin", "a loopback address"),
    ("http://[::1]/", "a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("http://10.1.2.3/", "a private address"),
    ("http://192.168.0.1/", "a private address"),
    ("http://[fd00::1]/", "a private address"),
    ("http://0.0.0.0:8080/", "an unspecified address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://100.64.0.1/", "a non-public address"),
])
def test_addresses_outside_the_public_web_are_refused(url: str, kind: str) -> None:
    problem = refused(url)
    assert kind in problem and "KABAR_FETCH_ALLOW" in problem


def test_a_name_that_resolves_inward_is_refused_by_what_it_resolves_to() -> None:
    dns = FakeDNS(metadata_test=["169.254.169.254"], intranet_test=["10.0.0.5"], split_test=["93.184.216.34",
                                                                                              "127.0.0.1"])
    policy = FetchPolicy(resolve=dns)
    assert "resolves to 169.254.169.254, a link-local address" in refused("http://metadata.test/x", policy)
    assert "resolves to 10.0.0.5, a private address" in refused("https://intranet.test/", policy)
    assert "cannot be resolved" in refused("http://nowhere.test/", policy)
    assert "resolves to 127.0.0.1" in refused("http://localhost:9/", FetchPolicy())  # the real resolver
    public = policy.check("http://split.test/story")
    assert str(public.address) == "93.184.216.34" and not public.loopback


def test_other_schemes_and_broken_urls_are_refused() -> None:
    assert "Kabar fetches http and https only" in refused("file:///etc/passwd")
    assert "Kabar fetches http and https only" in refused("gopher://127.0.0.1:70/")
    assert "has no host name" in refused("http:///path")
    assert "invalid port" in refused("http://example.com:99999/")


def test_allow_opens_hosts_and_networks_and_rejects_nonsense() -> None:
    dns = FakeDNS(wiki_newsroom_test=["10.20.1.9"], other_test=["10.30.0.1"])
    policy = FetchPolicy.parse("wiki.newsroom.test, 10.20.0.0/16 [fd00::]/8", loopback=False)
    policy = FetchPolicy(policy.allow_hosts, policy.allow_networks, resolve=dns)
    assert str(policy.check("http://wiki.newsroom.test/a").address) == "10.20.1.9"
    assert str(policy.check("http://10.20.7.7/").address) == "10.20.7.7"
    assert policy.check("http://[fd00::5]/")
    assert "resolves to 10.30.0.1, a private address" in refused("http://other.test/", policy)
    with pytest.raises(ConfigError, match="KABAR_FETCH_ALLOW: '10.0.0.0/33' is neither"):
        FetchPolicy.parse("10.0.0.0/33")


def test_loopback_for_the_command_line_only_from_the_user_not_from_a_public_page() -> None:
    policy = FetchPolicy(loopback=True)
    typed = policy.check("http://localhost:8000/page.html")
    assert typed.loopback
    assert policy.check("http://127.0.0.1:8000/next.html", via=typed)  # a local page's redirect or link
    public = Target("https://news.example/a", "news.example", 443, policy.check("http://93.184.216.34/").address,
                    False)
    assert "reached from a public page" in refused("http://127.0.0.1:8000/", policy, via=public)
    assert "is a private address" in refused("http://10.0.0.1/", policy)  # loopback only, not the LAN


def test_this_servers_own_port_stays_closed_even_where_loopback_is_open(httpserver: HTTPServer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "_SERVING", set())  # this process's record, for this test only
    serving_on(httpserver.port)
    url = httpserver.url_for("/v1/documents")
    assert f"port {httpserver.port} of this Kabar server" in refused(url, FetchPolicy.parse("127.0.0.0/8"))
    assert f"port {httpserver.port} of this Kabar server" in refused(url, FetchPolicy(loopback=True))
    llm = Settings(llm_port=8765)
    assert "is port 8765" in refused("http://127.0.0.1:8765/v1/models", FetchPolicy.for_settings(
        llm.with_(fetch_allow="127.0.0.1"), loopback=True))


# -- through the fetcher and ingest() -------------------------------------------------------


@pytest.fixture
def run(settings: Settings, store: ChromaStore, hash_embedder: Embedder):
    def go(paths: list, allow: str = "", **kw):  # type: ignore[no-untyped-def]
        return ingest(paths, Assistant(settings.with_(fetch_allow=allow), store=store, embedder=hash_embedder), **kw)
    return go


def test_ingest_refuses_a_local_url_and_names_it(httpserver: HTTPServer, run, store: ChromaStore) -> None:
    httpserver.expect_request("/admin").respond_with_data(SECRET, content_type="text/html")
    url = httpserver.url_for("/admin")
    report = run([url])
    assert report.new == [] and [e.source for e in report.errors] == [url]
    assert "a loopback address" in report.errors[0].problem
    assert httpserver.log == []  # not even connected to
    assert store.documents() == []
    assert len(run([url], allow="127.0.0.1").new) == 1  # a deployment that opens it


def test_a_public_redirect_into_the_servers_network_is_refused(httpserver: HTTPServer) -> None:
    """The first hop is allowed (by name), its redirect names loopback and a metadata host: both refused."""
    httpserver.expect_request("/to-local").respond_with_response(
        Response(status=302, headers={"Location": httpserver.url_for("/admin")}))
    httpserver.expect_request("/to-metadata").respond_with_response(
        Response(status=301, headers={"Location": "http://metadata.test/latest/meta-data/"}))
    httpserver.expect_request("/admin").respond_with_data(SECRET, content_type="text/html")
    dns = FakeDNS(news_test=["127.0.0.1"], metadata_test=["169.254.169.254"], localhost=["127.0.0.1"])
    policy = FetchPolicy(allow_hosts=frozenset({"news.test"}), resolve=dns)
    with Fetcher(policy=policy) as fetcher:
        for path, target, reason in (("/to-local", httpserver.url_for("/admin"),
                                      "resolves to 127.0.0.1, a loopback address"),
                                     ("/to-metadata", "http://metadata.test/latest/meta-data/",
                                      "resolves to 169.254.169.254, a link-local address")):
            url = f"http://news.test:{httpserver.port}{path}"
            with pytest.raises(InputError) as e:
                fetcher.fetch(url)
            assert e.value.source == url and f"redirects to {target}, which {reason}" in e.value.problem
    assert [r.path for r, _ in httpserver.log] == ["/to-local", "/to-metadata"]  # /admin never asked


def test_the_connection_goes_to_the_address_that_was_checked(httpserver: HTTPServer) -> None:
    """DNS rebinding: the name answers an allowed address once, then a private one; one lookup, pinned."""
    seen: list[str] = []

    def page(request: Request) -> Response:
        seen.append(request.headers.get("Host", ""))
        return Response(web.news_page(), content_type="text/html")

    httpserver.expect_request("/story").respond_with_handler(page)
    dns = FakeDNS(rebind_test=["127.0.0.1", "10.9.9.9"])
    with Fetcher(policy=FetchPolicy(allow_networks=FetchPolicy.parse("127.0.0.1").allow_networks,
                                    resolve=dns)) as fetcher:
        fetched = fetcher.fetch(f"http://rebind.test:{httpserver.port}/story")
    assert dns.calls == ["rebind.test"]
    assert seen == [f"rebind.test:{httpserver.port}"]  # the server was asked for the name, at the checked address
    assert fetched.final_url == f"http://rebind.test:{httpserver.port}/story" and b"Jin Li" in fetched.data


def test_a_feed_linking_into_the_servers_network(httpserver: HTTPServer, tmp_path: Path, run,
                                                 store: ChromaStore) -> None:
    httpserver.expect_request("/admin").respond_with_data(SECRET, content_type="text/html")
    feed = tmp_path / "evil.rss"
    feed.write_bytes(web.rss_feed([{"title": "Internal", "link": httpserver.url_for("/admin")},
                                   {"title": "Metadata", "link": "http://169.254.169.254/latest/user-data"}]))
    report = run([feed])
    assert report.new == [] and len(report.errors) == 2
    assert "a loopback address" in report.errors[0].problem
    assert "is a link-local address" in report.errors[1].problem
    assert httpserver.log == [] and store.documents() == []


# -- decompression bombs --------------------------------------------------------------------


def _encoded(body: bytes, coding: str) -> bytes:
    return gzip.compress(body) if coding == "gzip" else zlib.compress(body)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compressed_responses_are_read_and_bombs_stop_at_the_limit(httpserver: HTTPServer, coding: str) -> None:
    page = web.news_page().encode()
    bomb = _encoded(b"<html><body>" + b" " * 60_000_000, coding)
    assert len(bomb) < 100_000
    httpserver.expect_request("/page").respond_with_data(_encoded(page, coding), content_type="text/html",
                                                         headers={"Content-Encoding": coding})
    httpserver.expect_request("/bomb").respond_with_data(bomb, content_type="text/html",
                                                         headers={"Content-Encoding": coding})
    with Fetcher(max_bytes=2_000_000, policy=FetchPolicy.parse("127.0.0.1")) as fetcher:
        assert fetcher.fetch(httpserver.url_for("/page")).data == page
        with pytest.raises(InputError) as e:
            fetcher.fetch(httpserver.url_for("/bomb"))
    assert e.value.source == httpserver.url_for("/bomb")
    assert f"expands past the 2 MB limit (KABAR_MAX_FILE_MB) when decompressed ({coding})" in e.value.problem


def test_a_bomb_in_a_batch_is_named_and_the_rest_goes_on(httpserver: HTTPServer, tmp_path: Path, run,
                                                         settings: Settings) -> None:
    httpserver.expect_request("/bomb").respond_with_data(gzip.compress(b"<p>" + b"a" * 50_000_000),
                                                         content_type="text/html",
                                                         headers={"Content-Encoding": "gzip"})
    httpserver.expect_request("/ok").respond_with_data(web.news_page(), content_type="text/html")
    listing = tmp_path / "today.urls"
    listing.write_text(f"{httpserver.url_for('/bomb')}\n{httpserver.url_for('/ok')}\n", encoding="utf-8")
    report = run([listing], allow="127.0.0.1")
    assert [e.source for e in report.errors] == [httpserver.url_for("/bomb")]
    assert "when decompressed (gzip)" in report.errors[0].problem
    assert len(report.new) == 1


def test_an_unknown_content_encoding_is_named(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/zz").respond_with_data(b"\x00" * 10, content_type="text/html",
                                                       headers={"Content-Encoding": "zstd"})
    with Fetcher(policy=FetchPolicy.parse("127.0.0.1")) as fetcher, pytest.raises(InputError) as e:
        fetcher.fetch(httpserver.url_for("/zz"))
    assert "content encoding 'zstd', which Kabar does not read" in e.value.problem


def test_a_warc_gz_bomb_is_one_error_and_the_next_record_is_kept(tmp_path: Path, run) -> None:
    bomb = b"<html><body><p>" + b"x" * 40_000_000 + b"</p></body></html>"
    archive = tmp_path / "crawl.warc.gz"
    archive.write_bytes(web.warc([("https://news.example/bomb", "text/html", bomb),
                                  ("https://news.example/ok", "text/html", web.news_page().encode())], compress=True))
    assert archive.stat().st_size < 1_000_000
    report = run([archive])
    assert len(report.errors) == 1 and "https://news.example/bomb" in report.errors[0].source
    assert "over the 20 MB limit" in report.errors[0].problem
    assert len(report.new) == 1


def _pdf_bomb(expanded: int) -> bytes:
    """A one-page PDF whose content stream is ``expanded`` bytes of spaces, Flate-compressed."""
    stream = zlib.compress(b"BT /F1 11 Tf 72 720 Td (Bom) Tj ET" + b" " * expanded, 9)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_a_pdf_whose_streams_expand_past_the_limit_is_one_error(tmp_path: Path, run) -> None:
    from ingest.pdf import pdf_document

    assert pdf_document(_pdf_bomb(1_000), "small.pdf", max_bytes=2_000_000).text == "Bom"
    bomb = _pdf_bomb(60_000_000)
    assert len(bomb) < 200_000
    with pytest.raises(InputError) as e:
        pdf_document(bomb, "bomb.pdf", max_bytes=2_000_000)
    assert e.value.source == "bomb.pdf" and "expands past the 2 MB limit" in e.value.problem
    (tmp_path / "bomb.pdf").write_bytes(bomb)
    (tmp_path / "report.pdf").write_bytes(web.pdf(["Bank Nusantara mencatat laba bersih Rp 4,1 triliun "
                                                   "pada kuartal ketiga 2023, naik 12 persen."]))
    report = run([tmp_path])
    assert [Path(e.source).name for e in report.errors] == ["bomb.pdf"]
    assert "when decompressed" in report.errors[0].problem and len(report.new) == 1
