"""Web archives (``.warc``, ``.warc.gz``): every HTML response record becomes an article.

:func:`warc_documents` streams the archive with warcio, one record at a time, so an
archive of any size needs the memory of one page (each record's body is read up to the
size limit, the rest skipped). A record becomes a Document through
:mod:`ingest.html`, with the record's target URI as its URL and the crawl date
(``WARC-Date``) kept beside it. Records that are not successful HTML responses
(requests, metadata, redirects, images) are passed over silently; a page that yields no
article is an error naming the archive and the URI. A broken record ends the archive
with an error naming the byte offset; what was read before it is kept.

Does not resolve revisits (deduplicated records) or read ARC files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Union

from ingest.html import html_document
from rag.errors import InputError
from rag.types import Document, content_hash

WarcItem = Union[Document, InputError]


def is_warc(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".warc", ".warc.gz"))


def warc_documents(path: Path, max_bytes: int) -> Iterator[WarcItem]:
    """A Document or an InputError for each HTML response record in the archive at ``path``."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    try:
        stream = open(path, "rb")
    except OSError as e:
        yield InputError(str(path), f"cannot read: {e.strerror or e}")
        return
    found = failed = 0
    with stream:
        records = ArchiveIterator(stream)
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except (ArchiveLoadFailed, ValueError, OSError, EOFError, AttributeError, TypeError) as e:
                # warcio fails on a broken header with any of these; none leaves a way to resync.
                offset = records.get_record_offset() if hasattr(records, "get_record_offset") else "?"
                yield InputError(f"{path} (record at byte {offset})", f"broken WARC record, rest of the archive "
                                                                      f"skipped ({type(e).__name__}: {e})")
                return
            if record.rec_type != "response" or record.http_headers is None:
                continue
            status = record.http_headers.get_statuscode() or ""
            ctype = (record.http_headers.get_header("Content-Type") or "").lower()
            if status != "200" or not ctype.startswith(("text/html", "application/xhtml+xml")):
                continue
            uri = record.rec_headers.get_header("WARC-Target-URI") or ""
            crawled = (record.rec_headers.get_header("WARC-Date") or "")
            where = f"{path} {uri}"
            try:
                data = record.content_stream().read(max_bytes + 1)
            except Exception as e:  # a body that does not decompress: this record only
                failed += 1
                yield InputError(where, f"cannot read the record's body ({type(e).__name__}: {e})")
                continue
            if len(data) > max_bytes:
                failed += 1
                yield InputError(where, f"page is over the {max_bytes / 1e6:g} MB limit (KABAR_MAX_FILE_MB)")
                continue
            charset = ""
            if "charset=" in ctype:
                charset = ctype.split("charset=", 1)[1].split(";")[0].strip().strip("\"'")
            try:
                doc = html_document(data, where, content_hash("url", uri), url=uri, charset=charset)
            except InputError as e:
                failed += 1
                yield e
                continue
            doc.extra["crawled"] = crawled
            found += 1
            yield doc
    if not found and not failed:
        yield InputError(str(path), "holds no HTML response record with article text")
