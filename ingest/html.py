"""News web pages: bytes of an HTML page -> one :class:`rag.types.Document`.

Decoding: a byte-order mark, then the charset the server sent, then the one the page
declares (``<meta charset>``), then strict UTF-8, then detection (charset_normalizer); a
declared charset that does not decode the bytes is ignored rather than trusted.

Main text and metadata come from trafilatura (comments excluded; dates by htmldate, which
trafilatura calls with ``original_date``, kept as the page states them by
:func:`ingest.published.page_published`). What trafilatura keeps is then trimmed of the
boilerplate it lets through on news pages, each rule measured on the html-news pages
(docs/INGEST.md): related-article pointers ("Read more:", "Baca juga:"), a related
headline set alone as a link between paragraphs, a share bar's words ("Bagikan artikel ini"),
photo captions and credits, newsletter and letters-to-the-editor boxes, and a "More on X:"
heading whose link list was dropped. A lead paragraph (standfirst) that trafilatura skipped is put back
when the page's description is visible in the page. Language comes from the page's
``<html lang>`` (then ``og:locale``), else :func:`rag.lang.detect_lang`.

Does not fetch anything (:mod:`ingest.fetch` does), run scripts, or read JSON-LD
``articleBody``: a page whose article exists only in scripts yields "no article text".
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache
from urllib.parse import urlsplit

from ingest.clean import clean_text
from ingest.published import page_published
from rag.errors import InputError
from rag.lang import detect_lang
from rag.types import Document

#: Shortest main text (characters) accepted as an article.
MIN_TEXT = 80

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_HTML_LANG = re.compile(rb"""<html[^>]*\slang\s*=\s*["']?([A-Za-z]{2,3})""", re.IGNORECASE)
_OG_LOCALE = re.compile(rb"""<meta[^>]+property\s*=\s*["']og:locale["'][^>]+content\s*=\s*["']([A-Za-z]{2,3})""",
                        re.IGNORECASE)
_TAG = re.compile(rb"<\s*(?:!doctype|html|head|body|p|div|article|title|meta)\b", re.IGNORECASE)
_SPACE = re.compile(r"\s+")

# Pointers to other articles inside the text: "Baca juga: ...", "Read more: ...".
_POINTER = re.compile(
    r"^\s*(?:baca juga|lihat juga|simak juga|baca selengkapnya|read more|read also|also read|see also|related|"
    r"more on this|lesen sie auch|mehr zum thema|lire aussi|à lire aussi|lee también|leer más)\b\s*[:：-]",
    re.IGNORECASE)
# A photo caption or credit: "(Foto: ANTARA/...)", "Photo: Reuters", "(Credit: ...)".
_CREDIT_WORDS = r"(?:foto|photo|photograph|credit|crédito|bild|image|gambar|ilustrasi|sumber foto|picture)s?"
_CAPTION = re.compile(rf"(?:^\s*\(?{_CREDIT_WORDS}\s*:|\({_CREDIT_WORDS}\s*:[^)]*\)\s*\.?\s*$)", re.IGNORECASE)
# Invitations to subscribe or write in, which news pages put inside the article body. "Subscribe"
# alone is not enough: investors subscribe to share offers.
_PROMO = re.compile(
    r"\b(?:newsletter|letters? to the editor|(?:subscribe|sign(?:ing)? up|berlangganan|abonnieren|suscr[ií]bete)"
    r"\b.{0,40}?\b(?:our|now|today|here|free|inbox|email|kami|sekarang|gratis|unser\w*|nuestr\w*))",
    re.IGNORECASE)
PROMO_MAX = 250  # a longer paragraph that mentions a newsletter is reporting, not promoting
# A share bar's words left as a line: "Bagikan artikel ini", "Share this article: X LinkedIn".
_SHARE = re.compile(
    r"^\s*(?:bagikan|share|teilen|partager|compartir|compartilhe)(?:\s+(?:this|the|artikel|berita|ini|article|"
    r"story|post|on|via|ke|lewat|dieses|den|artikel|cet|article|este|artículo))*\s*[:：]?"
    r"(?:\s*(?:facebook|twitter|x|whatsapp|linkedin|e-?mail|telegram|line|reddit|pinterest|copy link|salin tautan)"
    r"\s*[,|/·]?)*\s*$", re.IGNORECASE)
SHARE_MAX = 100
# A headline alone as a link between paragraphs: a related story, not the article's text.
LINK_LINE_MIN, LINK_LINE_MAX = 15, 160
CAPTION_MAX = 300


@lru_cache(maxsize=1)
def _config():  # type: ignore[no-untyped-def]
    from trafilatura.settings import use_config

    config = use_config()
    # trafilatura's timeout uses SIGALRM, which works only in the main thread (the web UI ingests in others).
    config.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")
    return config


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except (LookupError, ValueError):
        return None


def decode_html(data: bytes, charset: str = "") -> str:
    """The page's text, decoded as the module docstring says."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(name, errors="replace")
    candidates = [charset]
    m = _META_CHARSET.search(data[:8192])
    if m:
        candidates.append(m.group(1).decode("ascii", "ignore"))
    candidates.append("utf-8")
    for name in candidates:
        codec = _codec(name) if name else None
        if codec is None:
            continue
        if codec in ("iso8859-1", "ascii"):
            codec = "cp1252"  # what browsers do with a page labelled latin-1 or ASCII
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    matches = from_bytes(data[:200_000])
    best = matches.best()
    if best is None:
        return data.decode("cp1252", errors="replace")
    # Single-byte code pages often decode the same bytes equally well; among equals, prefer
    # what browsers assume for an undeclared page (windows-1252) over, say, windows-1250.
    equals = [m for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence]
    encoding = "cp1252" if any("cp1252" in m.could_be_from_charset for m in equals) else best.encoding
    return data.decode(encoding, errors="replace")


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    controls = sum(b < 9 or 13 < b < 32 for b in head)
    return controls > len(head) * 0.05


def page_lang(data: bytes, text: str) -> str:
    """The page's language: ``<html lang>``, else ``og:locale``, else detected from ``text``.

    Between Kabar's own two languages the text decides: site templates often say ``en``
    on Indonesian pages.
    """
    head = data[:16384]
    m = _HTML_LANG.search(head) or _OG_LOCALE.search(head)
    declared = m.group(1).decode("ascii").lower()[:2] if m else ""
    return declared if declared and declared not in ("en", "id") else detect_lang(text)


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _boilerplate(kind: str, text: str, next_kind: str, link_lines: frozenset[str] = frozenset()) -> bool:
    """Whether one element of trafilatura's output is boilerplate by the rules above
    (``link_lines``: the page's lines that are a link and nothing else, see :func:`_link_lines`)."""
    text = text.strip()
    if not text:
        return False
    if _POINTER.match(text) or _norm(text) in link_lines:
        return True
    if len(text) <= SHARE_MAX and _SHARE.match(text):
        return True
    if len(text) <= CAPTION_MAX and _CAPTION.search(text):
        return True
    if len(text) <= PROMO_MAX and _PROMO.search(text):
        return True
    # A heading that introduces a list ("More on the coronavirus:") whose list was dropped.
    return kind == "head" and text.endswith(":") and next_kind != "list"


def _trim(body, link_lines: frozenset[str] = frozenset()) -> None:  # type: ignore[no-untyped-def]
    """Remove boilerplate elements from trafilatura's ``body`` tree, in place."""
    children = list(body)
    for i, el in enumerate(children):
        nxt = children[i + 1].tag if i + 1 < len(children) else ""
        if _boilerplate(str(el.tag), "".join(el.itertext()), str(nxt), link_lines):
            tail = el.tail
            body.remove(el)
            if tail and tail.strip():  # text after the element belongs to the body, keep it
                body.text = (body.text or "") + tail


def _link_lines(html: str) -> frozenset[str]:
    """The page's paragraphs and list items whose whole text is one link's, headline-long and
    not a sentence ("Harga emas hari ini naik tipis"): related stories set between paragraphs."""
    import lxml.html

    try:
        tree = lxml.html.document_fromstring(html)
    except Exception:
        return frozenset()
    lines = set()
    for el in tree.iter("p", "li"):
        links = el.findall(".//a")
        if len(links) != 1:
            continue
        text = _norm(el.text_content())
        if (LINK_LINE_MIN <= len(text) <= LINK_LINE_MAX and _norm(links[0].text_content()) == text
                and not text.endswith((".", "!", "?", "\"", "”"))):
            lines.add(text)
    return frozenset(lines)


def _visible_text(html: str) -> str:
    import lxml.html

    try:
        tree = lxml.html.document_fromstring(html)
    except Exception:  # lxml rejects some documents outright
        return ""
    body = tree.find("body")
    if body is None:
        return ""
    for bad in body.xpath(".//script|.//style|.//noscript|.//template"):
        bad.drop_tree()
    return _norm(body.text_content())


def _with_lead(text: str, description: str, html: str) -> str:
    """``text`` with the page's standfirst in front when trafilatura skipped a visible one."""
    lead = _norm(description or "")
    if len(lead) < 50 or lead.endswith(("...", "…")) or lead in _norm(text):
        return text
    if lead not in _visible_text(html):
        return text  # a description written only for search engines, not part of the article
    return f"{lead}\n\n{text}"


def _host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host[4:] if host.startswith("www.") else host


def html_document(data: bytes, where: str, doc_id: str, *, url: str = "", charset: str = "",
                  published: str = "", author: str = "", title: str = "") -> Document:
    """The article in an HTML page; an :class:`InputError` naming ``where`` when there is none.

    ``url`` is where the page was fetched from (its canonical URL wins when it declares one);
    ``published`` and ``author`` are what a feed said about the page, and win over what the
    page seems to say (a feed states them; a page's are found by heuristics); ``title`` is
    used where the page has none.
    """
    if not data.strip():
        raise InputError(where, "is empty")
    if _looks_binary(data):
        raise InputError(where, "is binary data, not an HTML page")
    if not _TAG.search(data[:65536]):
        raise InputError(where, "is not an HTML page (no HTML tags found)")
    import trafilatura
    from trafilatura.xml import xmltotxt

    html = decode_html(data, charset)
    try:
        extracted = trafilatura.bare_extraction(html, url=url or None, with_metadata=True, include_comments=False,
                                                include_tables=True, config=_config())
    except Exception as e:  # a parser failure on malformed markup: one page's problem, not the run's
        raise InputError(where, f"cannot be parsed as HTML ({type(e).__name__}: {e})") from None
    if extracted is None or extracted.body is None:
        raise InputError(where, "has no article text (only navigation, a cookie or login page, or script-built)")
    _trim(extracted.body, _link_lines(html))
    text = clean_text(_with_lead(xmltotxt(extracted.body, include_formatting=False) or "",
                                 extracted.description or "", html))
    if len(text) < MIN_TEXT:
        raise InputError(where, "has no article text (only navigation, a cookie or login page, or script-built)")
    canonical = extracted.url or ""
    page_url = canonical if canonical.startswith(("http://", "https://")) else url
    outlet = clean_text(extracted.sitename or "") or _host(page_url)
    return Document(
        id=doc_id,
        title=clean_text(extracted.title or title or ""),
        text=text,
        source=outlet or where,
        lang=page_lang(data, text),
        url=page_url,
        published=published or page_published(html, extracted.date or ""),
        author=clean_text(author or extracted.author or ""),
    )
