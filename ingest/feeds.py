"""RSS and Atom feeds: each entry's article page becomes a Document.

For every entry, :func:`feed_documents` fetches the entry's link and extracts the page
(:mod:`ingest.html`); when the page cannot be fetched or holds no article, the entry's
own content (or summary) stands in. The entry's date and author are kept (the page's are
used only where the feed gives none), and the feed's title names the outlet when the page
does not. :class:`FeedState` remembers a fingerprint of each entry already ingested, so
running the same feed again fetches and ingests only new or changed entries.

Parsing is feedparser's. Does not follow a feed's pagination or discover feeds in pages.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Union

from ingest.clean import clean_text
from ingest.fetch import Fetcher, is_url
from ingest.guard import Target
from ingest.html import MIN_TEXT, html_document
from ingest.published import stated
from rag.errors import InputError
from rag.lang import detect_lang
from rag.types import Document, content_hash


@dataclass
class Unchanged:
    """An input known to be stored already, unchanged: nothing was fetched or loaded for it."""

    doc_id: str


FeedItem = Union[Document, InputError, Unchanged]


class FeedState:
    """Fingerprints of ingested feed entries, in one SQLite file (safe to lose: entries are re-fetched)."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS entries(feed TEXT, entry TEXT, fingerprint TEXT, "
                             "doc_id TEXT, PRIMARY KEY(feed, entry))")

    def get(self, feed: str, entry: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT fingerprint FROM entries WHERE feed = ? AND entry = ?",
                                   (feed, entry)).fetchone()
        return row[0] if row else None

    def put(self, feed: str, entry: str, fingerprint: str, doc_id: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)", (feed, entry, fingerprint, doc_id))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def parse_feed(data: bytes, where: str) -> Any:
    """feedparser's result; an InputError when ``data`` is not an RSS or Atom feed."""
    import feedparser

    parsed = feedparser.parse(data)
    version = parsed.get("version", "")
    if not version or (parsed.get("bozo") and not parsed.entries):
        problem = parsed.get("bozo_exception")
        detail = f" ({type(problem).__name__}: {problem})" if problem else ""
        raise InputError(where, f"is not an RSS or Atom feed{detail}")
    return parsed


def looks_like_feed(data: bytes) -> bool:
    """Cheap sniff of the first bytes: an RSS, RDF or Atom root element."""
    head = data[:2048].lstrip().lower()
    return head.startswith(b"<?xml") and any(tag in data[:4096].lower() for tag in (b"<rss", b"<feed", b"<rdf:rdf")) \
        or head.startswith((b"<rss", b"<feed"))


def _date(entry: Any) -> str:
    """The entry's date as the feed states it, in its own zone (feedparser's parsed dates are
    moved to UTC, a day off for an evening story in UTC-5)."""
    for key in ("published", "updated"):
        value = stated(dict.get(entry, key) or "")
        if value:
            return value
    parsed = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    return time.strftime("%Y-%m-%d", parsed) if parsed else ""


def _entry_html(entry: Any) -> str:
    for content in entry.get("content") or []:
        if content.get("value"):
            return str(content["value"])
    return str(entry.get("summary") or "")


def _fragment_text(fragment: str) -> str:
    import lxml.html

    if "<" not in fragment:
        return clean_text(fragment)
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except Exception:  # lxml refuses some fragments; then the feed's text is all we have
        return clean_text(fragment)
    for el in root.iter("p", "br", "div", "li", "h1", "h2", "h3", "h4"):
        el.tail = "\n\n" + (el.tail or "")
    return clean_text(root.text_content())


def feed_documents(data: bytes, where: str, fetcher: Fetcher | None, state: FeedState | None,
                   is_stored: Callable[[str], bool] = lambda _doc_id: False,
                   via: Target | None = None) -> Iterator[FeedItem]:
    """A Document (or an error, or :class:`Unchanged`) per entry of the feed in ``data``.

    ``via``: where a fetched feed came from; its entries' links are checked as reached from it.
    """
    try:
        parsed = parse_feed(data, where)
    except InputError as e:
        yield e
        return
    outlet = clean_text(str(parsed.feed.get("title") or ""))
    for n, entry in enumerate(parsed.entries, start=1):
        link = str(entry.get("link") or "").strip()
        key = str(entry.get("id") or link or f"#{n}")
        entry_where = link or f"{where} entry {n}"
        fingerprint = content_hash(link, str(entry.get("title", "")), str(dict.get(entry, "updated", "")),
                                   str(entry.get("published", "")), _entry_html(entry))
        doc_id = content_hash("url", link) if is_url(link) else content_hash("feed", where, key)
        if state is not None and state.get(where, key) == fingerprint and is_stored(doc_id):
            yield Unchanged(doc_id)
            continue
        meta = {"published": _date(entry), "author": clean_text(str(entry.get("author") or "")),
                "title": clean_text(str(entry.get("title") or ""))}
        doc: Document | None = None
        problem = "has no link to an article page"
        if is_url(link) and fetcher is not None:
            try:
                page = fetcher.fetch(link, via=via)
                doc = html_document(page.data, link, doc_id, url=page.final_url, charset=page.charset, **meta)
            except InputError as e:
                problem = e.problem
        if doc is None:
            text = _fragment_text(_entry_html(entry))
            if len(text) < MIN_TEXT:
                yield InputError(entry_where, f"{problem}, and the feed entry has too little text of its own")
                continue
            doc = Document(id=doc_id, title=meta["title"], text=text, source=outlet or where, lang=detect_lang(text),
                           url=link, published=meta["published"], author=meta["author"])
        if not doc.source or doc.source == link:
            doc.source = outlet or doc.source
        if state is not None:
            state.put(where, key, fingerprint, doc_id)
        yield doc
