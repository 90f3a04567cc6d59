"""Fetching web pages and feeds over HTTP(S) with httpx.

:class:`Fetcher` follows redirects (at most :data:`MAX_REDIRECTS`), gives up after a
timeout, reads at most a size cap (streamed: a gigantic or endless body is cut off, not
held in memory), and checks the status and content type. Every failure is an
:class:`~rag.errors.InputError` naming the URL: "HTTP 404", "timed out after 20 s",
"is application/pdf, not an HTML page". The client is created on first use or passed in
(``client=``), so tests can point it at a local server.

Does not parse what it fetches, honour robots.txt, or retry: one try per URL per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from rag.errors import InputError

MAX_REDIRECTS = 5
TIMEOUT_S = 20.0
USER_AGENT = "Kabar/0.1 (news question answering; +https://pypi.org/project/kabar/)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml", "application/rdf+xml",
              "application/feed+json")
PDF_TYPES = ("application/pdf",)


@dataclass
class Fetched:
    """A fetched body and what the server said about it."""

    url: str  # as asked
    final_url: str  # after redirects
    data: bytes
    content_type: str  # lowercased, no parameters
    charset: str = ""


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://")) and len(text) > 8 and " " not in text.strip()


class Fetcher:
    """One HTTP client for a whole ingest run."""

    def __init__(self, timeout_s: float = TIMEOUT_S, max_bytes: int = 20_000_000,
                 client: httpx.Client | None = None) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be greater than 0. Currently, timeout_s is {timeout_s}.")
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._client = client

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(follow_redirects=True, max_redirects=MAX_REDIRECTS,
                                        timeout=httpx.Timeout(self.timeout_s),
                                        headers={"User-Agent": USER_AGENT, "Accept": "text/html, application/xhtml+xml,"
                                                 " application/rss+xml, application/atom+xml, application/xml;q=0.9,"
                                                 " application/pdf;q=0.8, */*;q=0.5"})
        return self._client

    def fetch(self, url: str, accept: tuple[str, ...] = HTML_TYPES) -> Fetched:
        """The body at ``url``; an InputError unless it is one of the ``accept`` types, whole and in time."""
        try:
            with self.client.stream("GET", url) as response:
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
                chunks: list[bytes] = []
                size = 0
                for part in response.iter_bytes():
                    size += len(part)
                    if size > self.max_bytes:
                        raise InputError(url, f"is over the {self.max_bytes / 1e6:g} MB limit (KABAR_MAX_FILE_MB); "
                                              "stopped reading")
                    chunks.append(part)
                return Fetched(url, str(response.url), b"".join(chunks), ctype, charset)
        except InputError:
            raise
        except httpx.TooManyRedirects:
            raise InputError(url, f"redirects more than {MAX_REDIRECTS} times") from None
        except httpx.TimeoutException:
            raise InputError(url, f"did not answer within {self.timeout_s:g} s") from None
        except httpx.InvalidURL as e:
            raise InputError(url, f"is not a valid URL ({e})") from None
        except httpx.HTTPError as e:
            raise InputError(url, f"cannot be fetched ({type(e).__name__}: {e or 'connection failed'})") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


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
