"""Fetching web pages and feeds over HTTP(S) with httpx, from the public web only.

:class:`Fetcher` checks every URL with its :class:`~ingest.guard.FetchPolicy` before
connecting (loopback, private, link-local and metadata addresses are refused unless
``KABAR_FETCH_ALLOW`` opens them), connects to the address that was checked, and follows
redirects itself (at most :data:`MAX_REDIRECTS`), checking each one the same way. It
gives up after a timeout, reads at most a size cap (streamed: a gigantic or endless body
is cut off, not held in memory), decompresses gzip and deflate bodies itself against
that same cap (a small compressed bomb stops at the cap, not in memory), and checks the
status and content type. Every failure is an :class:`~rag.errors.InputError` naming the
URL: "HTTP 404", "did not answer within 20 s", "is application/pdf, not an HTML page",
"resolves to 10.0.0.5, is a private address". The client is created on first use or
passed in (``client=``), so tests can point it at a mock transport.

Does not parse what it fetches, honour robots.txt, or retry: one try per URL per run.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from ingest.guard import FetchPolicy, Target
from rag.errors import InputError

MAX_REDIRECTS = 5
TIMEOUT_S = 20.0
USER_AGENT = "Kabar/0.1 (news question answering; +https://pypi.org/project/kabar/)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml", "application/rdf+xml",
              "application/feed+json")
PDF_TYPES = ("application/pdf",)
ACCEPT = ("text/html, application/xhtml+xml, application/rss+xml, application/atom+xml, application/xml;q=0.9,"
          " application/pdf;q=0.8, */*;q=0.5")
REDIRECTS = (301, 302, 303, 307, 308)
CLIENTS = 16  # one connection pool per host name (a pool is keyed by the checked address)


@dataclass
class Fetched:
    """A fetched body and what the server said about it."""

    url: str  # as asked
    final_url: str  # after redirects
    data: bytes
    content_type: str  # lowercased, no parameters
    charset: str = ""
    target: Target | None = None  # where the body came from, checked


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://")) and len(text) > 8 and " " not in text.strip()


class Fetcher:
    """One HTTP client (a pool per host) for a whole ingest run."""

    def __init__(self, timeout_s: float = TIMEOUT_S, max_bytes: int = 20_000_000,
                 client: httpx.Client | None = None, policy: FetchPolicy | None = None) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be greater than 0. Currently, timeout_s is {timeout_s}.")
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.policy = policy or FetchPolicy()
        self._given = client
        self._clients: OrderedDict[str, httpx.Client] = OrderedDict()

    def _client(self, host: str) -> httpx.Client:
        if self._given is not None:
            return self._given
        client = self._clients.pop(host, None)
        if client is None:
            client = httpx.Client(follow_redirects=False, timeout=httpx.Timeout(self.timeout_s),
                                  headers={"User-Agent": USER_AGENT, "Accept": ACCEPT})
            while len(self._clients) >= CLIENTS:
                self._clients.popitem(last=False)[1].close()
        self._clients[host] = client
        return client

    def fetch(self, url: str, accept: tuple[str, ...] = HTML_TYPES, via: Target | None = None) -> Fetched:
        """The body at ``url``; an InputError unless it is one of the ``accept`` types, whole and in time.

        ``via``: the checked page that linked here (a feed), for the loopback rule of
        :class:`~ingest.guard.FetchPolicy`.
        """
        current = url
        try:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    target = self.policy.check(current, via)
                except InputError as e:
                    if current == url:
                        raise
                    raise InputError(url, f"redirects to {current}, which {e.problem}") from None
                extensions = {"sni_hostname": target.host} if target.url.startswith("https:") else {}
                client = self._client(target.host)
                request = client.build_request(
                    "GET", target.connect_url(), extensions=extensions,
                    headers={"Host": target.host_header(), "Accept-Encoding": "gzip, deflate"})
                response = client.send(request, stream=True, follow_redirects=False)
                try:
                    location = response.headers.get("location", "")
                    if response.status_code in REDIRECTS and location:
                        current, via = urljoin(current, location.strip()), target
                        continue
                    return self._read(url, current, target, response, accept)
                finally:
                    response.close()
            raise InputError(url, f"redirects more than {MAX_REDIRECTS} times")
        except InputError:
            raise
        except httpx.TimeoutException:
            raise InputError(url, f"did not answer within {self.timeout_s:g} s") from None
        except httpx.InvalidURL as e:
            raise InputError(url, f"is not a valid URL ({e})") from None
        except httpx.HTTPError as e:
            raise InputError(url, f"cannot be fetched ({type(e).__name__}: {e or 'connection failed'})") from None

    def _read(self, url: str, final: str, target: Target, response: httpx.Response,
              accept: tuple[str, ...]) -> Fetched:
        if response.status_code >= 400:
            reason = response.reason_phrase or ""
            raise InputError(url, f"HTTP {response.status_code} {reason}".strip())
        ctype, charset = _content_type(response.headers.get("content-type", ""))
        if ctype and accept and ctype not in accept:
            raise InputError(url, f"is {ctype}, not {_describe(accept)}")
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise InputError(url, f"is {int(length) / 1e6:.1f} MB, over the {self.max_bytes / 1e6:g} MB "
                                  "limit (KABAR_MAX_FILE_MB)")
        inflate = Inflater(url, response.headers.get("content-encoding", ""), self.max_bytes)
        chunks: list[bytes] = []
        size = 0
        for part in response.iter_raw():
            size += len(part)
            if size > self.max_bytes:
                raise InputError(url, f"is over the {self.max_bytes / 1e6:g} MB limit (KABAR_MAX_FILE_MB); "
                                      "stopped reading")
            chunks.append(inflate.feed(part))
        return Fetched(url, final, b"".join(chunks), ctype, charset, target)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._given is not None:
            self._given.close()
            self._given = None

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Inflater:
    """A response body's content encoding undone, never past ``limit`` bytes out."""

    def __init__(self, url: str, encoding: str, limit: int) -> None:
        self.url, self.limit, self.left = url, limit, limit
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip().lower() not in ("", "identity")]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise InputError(url, f"is sent with content encoding {encoding!r}, which Kabar does not read")
        self.coding = codings[0] if codings else ""
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 32) if self.coding else None  # gzip or zlib header
        self._started = False

    def feed(self, data: bytes) -> bytes:
        if self._z is None:
            return data
        out: list[bytes] = []
        while data:
            try:
                part = self._z.decompress(data, self.left + 1)
            except zlib.error as e:
                if self.coding == "deflate" and not self._started:  # raw deflate, no zlib header
                    self._z, self._started = zlib.decompressobj(-zlib.MAX_WBITS), True
                    continue
                raise InputError(self.url, f"cannot be decompressed ({self.coding}: {e})") from None
            self._started = True
            self.left -= len(part)
            if self.left < 0:
                raise InputError(self.url, f"expands past the {self.limit / 1e6:g} MB limit (KABAR_MAX_FILE_MB) "
                                           f"when decompressed ({self.coding}); stopped reading")
            out.append(part)
            data = self._z.unconsumed_tail
        return b"".join(out)


def _content_type(header: str) -> tuple[str, str]:
    main, _, params = header.partition(";")
    charset = ""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
    return main.strip().lower(), charset


def _describe(accept: tuple[str, ...]) -> str:
    kinds = ["an HTML page"] if set(HTML_TYPES) <= set(accept) else []
    kinds += ["a feed"] if set(FEED_TYPES) <= set(accept) else []
    kinds += ["a PDF"] if set(PDF_TYPES) <= set(accept) else []
    return " or ".join(kinds) if kinds else "one of " + ", ".join(accept)
