"""PDF articles: the text layer of each page, with page boundaries kept.

:func:`pdf_document` reads a PDF with pypdf (lenient mode: many real PDFs bend the
spec), cleans each page's text and joins the pages with a blank line, recording where
each page starts (``Document.pages``) so that every chunk knows its page and a citation
can name it. Title, author and creation date come from the PDF's metadata when it has
them (else the first line is the title). An empty password is tried on an encrypted
file, as PDF readers do.

Errors name the file: encrypted with a real password, corrupt or not a PDF, and a PDF
with no text layer at all ("no extractable text": a scan needs OCR first, which Kabar
does not do).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from ingest.clean import clean_text
from ingest.published import stated
from rag.errors import InputError
from rag.lang import detect_lang
from rag.types import Document, content_hash

# pypdf warns on stderr about every quirk it tolerates; they are not the user's business.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def _date(value: object) -> str:
    """A PDF's creation date as it states it (time and offset kept), "" when it has none."""
    try:
        return stated(value) if value is not None else ""
    except (AttributeError, ValueError):
        return ""


def _limits(max_bytes: int) -> dict[str, int]:
    """pypdf's decompression limits, each set to Kabar's size limit (its defaults allow 75 MB a stream)."""
    names = ("maximum_declared_stream_length", "array_based_stream_maximum_output_length",
             "jbig2_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
             "zlib_maximum_output_length", "brotli_maximum_output_length", "image_maximum_buffer_size",
             "stream_decoding_work_maximum_length", "xfa_decoding_work_maximum_length")
    return {name: max_bytes for name in names}


def pdf_document(data: bytes, where: str, doc_id: str | None = None, max_bytes: int = 20_000_000) -> Document:
    """The article in a PDF's bytes; an InputError naming ``where`` when it cannot be read.

    Every compressed stream expands to at most ``max_bytes``, and so does the text of all
    pages together: a small PDF of compressed zeros is an error, not an afternoon.
    """
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError

    if not data.lstrip()[:1024].startswith(b"%PDF") and b"%PDF-" not in data[:1024]:
        raise InputError(where, "is not a PDF (no %PDF header)")
    bomb = f"expands past the {max_bytes / 1e6:g} MB limit (KABAR_MAX_FILE_MB) when decompressed"
    try:
        with apply_configuration(**_limits(max_bytes)):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise InputError(where, "is encrypted (password-protected); save an unprotected copy and ingest that")
            pages: list[str] = []
            size = 0
            for page in reader.pages:
                pages.append(clean_text(page.extract_text() or ""))
                size += len(pages[-1])
                if size > max_bytes:
                    raise InputError(where, f"{bomb} (its text, by page {len(pages)})")
            info = reader.metadata
    except InputError:
        raise
    except LimitReachedError as e:
        raise InputError(where, f"{bomb} (a stream: {e})") from None
    except (FileNotDecryptedError, DependencyError) as e:
        raise InputError(where, f"is encrypted and cannot be read ({e})") from None
    except (PdfReadError, ValueError, TypeError, KeyError, IndexError, AttributeError, OSError) as e:
        raise InputError(where, f"is a corrupt or unreadable PDF ({type(e).__name__}: {e})") from None
    if not any(pages):
        raise InputError(where, f"has no extractable text ({len(pages)} page(s) without a text layer: a scanned "
                                "PDF needs OCR before Kabar can read it)")
    starts: list[int] = []
    parts: list[str] = []
    offset = 0
    for text in pages:
        starts.append(offset)
        parts.append(text)
        offset += len(text) + (2 if text else 0)
    body = "\n\n".join(p for p in parts if p)
    # A page without text starts where the next text does; offsets above assume that.
    title = clean_text(str(getattr(info, "title", "") or "")) if info else ""
    if not title:
        title = next((line.strip() for line in body.split("\n") if line.strip()), "")[:200]
    return Document(
        id=doc_id or content_hash("file", where),
        title=title,
        text=body,
        source=where,
        lang=detect_lang(body),
        author=clean_text(str(getattr(info, "author", "") or "")) if info else "",
        published=_date(getattr(info, "creation_date", None)) if info else "",
        pages=starts,
    )


def load_pdf(path: Path, max_bytes: int) -> Document:
    """:func:`pdf_document` for a file (the size limit checked before reading)."""
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(str(path), f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit "
                                    "(KABAR_MAX_FILE_MB); split it or raise the limit")
    source = str(path.resolve())
    doc = pdf_document(path.read_bytes(), str(path), content_hash("file", source), max_bytes)
    doc.source = source
    return doc
