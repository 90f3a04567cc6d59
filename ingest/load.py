"""Loading articles from files and URLs into :class:`rag.types.Document` objects.

Supported: ``.txt`` and ``.md`` articles (the first non-empty line is the title, the
rest the body; a dateline in the first lines, "Jakarta, 5 Desember 2023", is the date),
``.jsonl`` files with one article per line in Kabar's corpus format
(``{"id", "title", "text", "lang", "url", "published", "source", "author"}``, only
``text`` required), web pages (``.html``, ``.htm``: :mod:`ingest.html`), PDFs
(:mod:`ingest.pdf`), web archives (``.warc``, ``.warc.gz``: :mod:`ingest.warc`), RSS
and Atom feeds (``.rss``, ``.atom``, ``.xml``: :mod:`ingest.feeds`), ``http(s)://`` URLs
(fetched by :mod:`ingest.fetch`: a page, a feed or a PDF, told apart by content type),
and files of URLs (``.urls``, or a ``.txt`` whose every line is a URL). Folders are
walked recursively; hidden entries and other file types in them are skipped. Each problem
is an :class:`~rag.errors.InputError` naming the file, line or URL that is yielded, not
raised, so one bad input never stops the others.

Plain-text articles must be UTF-8 (a UTF-8 or UTF-16 byte-order mark is honoured); web
pages may use any encoding they declare or that can be detected.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Union

from ingest.clean import clean_text
from ingest.feeds import FeedState, Unchanged, feed_documents, looks_like_feed
from ingest.fetch import FEED_TYPES, HTML_TYPES, PDF_TYPES, Fetcher, is_url
from ingest.guard import FetchPolicy
from ingest.html import html_document
from ingest.pdf import load_pdf, pdf_document
from ingest.warc import is_warc, warc_documents
from rag.dates import dateline
from rag.errors import InputError
from rag.lang import detect_lang
from rag.types import Document, content_hash

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
JSONL_SUFFIXES = {".jsonl"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
PDF_SUFFIXES = {".pdf"}
FEED_SUFFIXES = {".rss", ".atom", ".xml"}
URL_LIST_SUFFIXES = {".urls"}
WARC_SUFFIXES = {".warc", ".warc.gz"}
SUPPORTED = TEXT_SUFFIXES | JSONL_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES | FEED_SUFFIXES | URL_LIST_SUFFIXES \
    | WARC_SUFFIXES

Loaded = Union[Document, InputError, Unchanged]
#: A file, or a URL as given.
Input = Union[Path, str]


@dataclass
class LoadContext:
    """What loading needs beyond a path: the size limit, an HTTP client and where it may fetch, feed memory.

    ``is_stored(doc_id)`` tells whether a document is in the store already (or folded
    into one as a near-duplicate), so that an unchanged feed entry is not fetched again.
    """

    max_bytes: int = 20_000_000
    fetcher: Fetcher | None = None
    feeds: FeedState | None = None
    policy: FetchPolicy = field(default_factory=FetchPolicy)
    is_stored: Callable[[str], bool] = field(default=lambda _doc_id: False)

    def get_fetcher(self) -> Fetcher:
        if self.fetcher is None:
            self.fetcher = Fetcher(max_bytes=self.max_bytes, policy=self.policy)
        return self.fetcher


def _supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED or is_warc(path)


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Input], list[InputError], list[Path]]:
    """Files and URLs to load, errors for paths that cannot be, and files skipped inside folders."""
    files: list[Input] = []
    errors: list[InputError] = []
    skipped: list[Path] = []
    for raw in paths:
        if isinstance(raw, str) and is_url(raw.strip()):
            files.append(raw.strip())
            continue
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts) or not child.is_file():
                    continue
                (files if _supported(child) else skipped).append(child)
        elif path.is_file():
            if _supported(path):
                files.append(path)
            else:
                errors.append(InputError(str(path), f"unsupported file type {path.suffix or '(none)'!r}; "
                                                    f"Kabar ingests {', '.join(sorted(SUPPORTED))}"))
        else:
            errors.append(InputError(str(path), "no such file or folder"))
    return files, errors, skipped


def read_text(path: Path, max_bytes: int) -> str:
    """The file's text, or an InputError saying why it cannot be read as an article."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(str(path), f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit "
                                        "(KABAR_MAX_FILE_MB); split it or raise the limit")
        data = path.read_bytes()
    except OSError as e:
        raise InputError(str(path), f"cannot read: {e.strerror or e}") from e
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
        if b"\x00" in data[:8192]:
            raise InputError(str(path), "looks like a binary file (contains NUL bytes), not text")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        name = "UTF-16" if encoding == "utf-16" else "UTF-8"
        raise InputError(str(path), f"is not valid {name} (byte 0x{data[e.start]:02x} at offset {e.start}); "
                                    "convert it to UTF-8 and ingest it again") from None
    if not text.strip():
        raise InputError(str(path), "is empty")
    return text


def _split_title(text: str, markdown: bool) -> tuple[str, str]:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip():
            title = line.strip().lstrip("#").strip() if markdown else line.strip()
            body = "\n".join(lines[i + 1 :]).strip()
            return title, body or title
    return "", ""


def load_text_file(path: Path, max_bytes: int, raw: str | None = None) -> Document:
    text = clean_text(read_text(path, max_bytes) if raw is None else raw)
    if not text:
        raise InputError(str(path), "has no text left after cleaning")
    title, body = _split_title(text, markdown=path.suffix.lower() != ".txt")
    source = str(path.resolve())
    # A news article's dateline ("Jakarta, 5 Desember 2023") is its publication date, as it states it.
    return Document(id=content_hash("file", source), title=title, text=body, source=source,
                    lang=detect_lang(body), published=dateline(body))


def jsonl_records(text: str, path: Path) -> Iterator[tuple[str, dict[str, Any] | InputError]]:
    """Each non-blank line of a JSONL text: ``(path:line, its object)``, or the InputError saying
    why the line is not one (the caller decides whether a bad line stops the file)."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            yield where, InputError(where, f"not valid JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(record, dict):
            yield where, InputError(where, f"expected a JSON object, got {type(record).__name__}")
            continue
        yield where, record


def load_jsonl(path: Path, max_bytes: int) -> Iterator[Loaded]:
    """One Document per valid line; an InputError for each bad line."""
    try:
        text = read_text(path, max_bytes)
    except InputError as e:
        yield e
        return
    for where, record in jsonl_records(text, path):
        if isinstance(record, InputError):
            yield record
            continue
        try:
            yield document_from_record(record, default_source=where)
        except InputError as e:
            yield InputError(where, e.problem)


def document_from_record(record: dict, default_source: str) -> Document:
    """A Document from a corpus-format record; ``text`` is required."""
    raw = record.get("text")
    if not isinstance(raw, str) or not raw.strip():
        raise InputError(default_source, "record has no \"text\" string")
    body = clean_text(raw)
    if not body:
        raise InputError(default_source, "record has no \"text\" string (nothing left after cleaning)")
    # No title stays no title: a title made of the text's first words would repeat them in
    # the lexical index and in every prompt. Displays fall back to rag.types.display_title.
    title = clean_text(str(record.get("title") or ""))
    doc_id = str(record.get("id") or content_hash("text", body))
    lang = str(record.get("lang") or detect_lang(body))
    url = str(record.get("url") or "")
    source = str(record.get("source") or url or default_source)
    return Document(id=doc_id, title=title, text=body, source=source, lang=lang, url=url,
                    published=str(record.get("published") or ""), author=str(record.get("author") or ""))


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, or an InputError if it is over the limit or cannot be read."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(str(path), f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit "
                                        "(KABAR_MAX_FILE_MB); split it or raise the limit")
        return path.read_bytes()
    except OSError as e:
        raise InputError(str(path), f"cannot read: {e.strerror or e}") from e


def url_list(path: Path, text: str) -> list[str] | None:
    """The URLs in a file of URLs (one a line, ``#`` comments allowed); None if it is not one."""
    lines = [line.strip() for line in text.split("\n")]
    urls = [line for line in lines if line and not line.startswith("#")]
    if path.suffix.lower() in URL_LIST_SUFFIXES or (urls and all(is_url(u) for u in urls)):
        return urls
    return None


def load_url(url: str, ctx: LoadContext) -> Iterator[Loaded]:
    """A page, a feed's entries or a PDF fetched from ``url``."""
    try:
        page = ctx.get_fetcher().fetch(url, accept=HTML_TYPES + FEED_TYPES + PDF_TYPES)
        doc_id = content_hash("url", url)
        if page.content_type in PDF_TYPES:
            doc = pdf_document(page.data, url, doc_id, ctx.max_bytes)
            doc.source, doc.url = url, page.final_url
            yield doc
        elif page.content_type in FEED_TYPES or (page.content_type not in HTML_TYPES and looks_like_feed(page.data)):
            yield from feed_documents(page.data, url, ctx.get_fetcher(), ctx.feeds, ctx.is_stored, via=page.target)
        else:
            yield html_document(page.data, url, doc_id, url=page.final_url, charset=page.charset)
    except InputError as e:
        yield e


def load_file(path: Input, ctx: LoadContext | int) -> Iterator[Loaded]:
    """Documents (or errors) from one supported file or URL."""
    if isinstance(ctx, int):
        ctx = LoadContext(max_bytes=ctx)
    if isinstance(path, str):
        yield from load_url(path, ctx)
        return
    suffix = path.suffix.lower()
    try:
        if suffix in JSONL_SUFFIXES:
            yield from load_jsonl(path, ctx.max_bytes)
        elif is_warc(path):
            yield from warc_documents(path, ctx.max_bytes)
        elif suffix in PDF_SUFFIXES:
            yield load_pdf(path, ctx.max_bytes)
        elif suffix in HTML_SUFFIXES:
            source = str(path.resolve())
            doc = html_document(read_bytes(path, ctx.max_bytes), str(path), content_hash("file", source))
            if doc.source == str(path):
                doc.source = source
            yield doc
        elif suffix in FEED_SUFFIXES:
            yield from feed_documents(read_bytes(path, ctx.max_bytes), str(path.resolve()), ctx.get_fetcher(),
                                      ctx.feeds, ctx.is_stored)
        else:
            text = read_text(path, ctx.max_bytes)
            urls = url_list(path, text)
            if urls is None:
                yield load_text_file(path, ctx.max_bytes, text)
            else:
                for url in urls:
                    yield from load_url(url, ctx)
    except InputError as e:
        yield e
