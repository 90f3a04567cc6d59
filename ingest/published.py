"""When a source says it was published, kept as the source states it.

A stored ``published`` is the stated local date, with the time and offset when the source
gives them: ``2023-12-05T23:30:00-05:00`` for a page that stamps that instant, never the
same instant moved to UTC (``2023-12-06T04:30:00+00:00``), because the day a reader sees on
the page, and asks about, is the 5th. Everything that reads a date by day takes its first
ten characters (:func:`rag.types.published_day`).

:func:`stated` normalises one timestamp (ISO 8601, RFC 822 as feeds write it, a datetime)
keeping its offset. :func:`page_published` chooses among what an HTML page says, in this
order (measured on html-news, docs/INGEST.md):

1. the day htmldate finds (it weighs the page's stamps, byline, URL path and text; it was
   right for 32 of 33 dev pages, where the page's own JSON-LD or meta stamp was right for 25
   of 29);
2. when that day is the day of the page's machine stamp (JSON-LD ``datePublished`` of an
   article node, the ``article:published_time`` family of meta tags, ``itemprop=
   "datePublished"``) in UTC and the first date the page prints (a ``<time>`` element's
   text, a byline or date element) is one day from it, the printed day: the page was
   stamped in UTC and written for a reader in its own zone;
3. the machine stamp itself, time and offset, when it names that day.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Iterator

from rag.dates import find_dates

_ARTICLE_TYPES = ("article", "newsarticle", "reportagenews", "blogposting", "analysisnewsarticle",
                  "opinionnewsarticle", "backgroundnewsarticle", "report", "liveblogposting")
_META_NAMES = ("article:published_time", "og:published_time", "og:article:published_time",
               "datepublished", "parsely-pub-date", "sailthru.date", "dc.date.issued", "dcterms.issued",
               "pubdate", "publishdate", "publish-date", "article.published", "cxenseparse:recs:publishtime")
_LD = re.compile(r"""<script[^>]+type\s*=\s*["']application/ld\+json["'][^>]*>(.*?)</script>""", re.I | re.S)
_DOTTED = re.compile(r"(?<![\d.])([0-3]?\d)\.([01]?\d)\.((?:19|20)\d\d)(?!\d)")
_PRINTED_HINT = re.compile(r"date|time|byline|publish|posted|meta|timestamp|dateline", re.I)


def stated(value: Any) -> str:
    """``value`` (a timestamp string or a datetime/date) as ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM:SS``
    or ``YYYY-MM-DDTHH:MM:SS±HH:MM``, in the zone it was stated in; "" when it is not one."""
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value or "").strip()
    if not text:
        return ""
    if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            return ""
    iso = re.sub(r"\s+(?=[+-]\d\d:?\d\d$)", "", text.replace(" ", "T", 1) if re.match(r"\d{4}-\d\d-\d\d \d", text)
                 else text)
    iso = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", iso)  # +0700 -> +07:00
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00").replace("z", "+00:00")).replace(
            microsecond=0).isoformat()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).replace(microsecond=0).isoformat()
    except (TypeError, ValueError, IndexError):
        return ""


def _is_utc(stamp: str) -> bool:
    return stamp.endswith("+00:00")


def _ld_nodes(data: Any) -> Iterator[dict]:
    if isinstance(data, list):
        for item in data:
            yield from _ld_nodes(item)
    elif isinstance(data, dict):
        yield data
        for key in ("@graph", "mainEntity", "mainEntityOfPage"):
            if key in data:
                yield from _ld_nodes(data[key])


def _types(node: dict) -> list[str]:
    kind = node.get("@type") or []
    return [str(k).lower() for k in (kind if isinstance(kind, list) else [kind])]


def json_ld_published(html: str) -> str:
    """``datePublished`` of the page's JSON-LD article node (the first one), as stated."""
    fallback = ""
    for m in _LD.finditer(html):
        try:
            data = json.loads(m.group(1).strip())
        except (ValueError, RecursionError):
            continue
        for node in _ld_nodes(data):
            value = stated(node.get("datePublished")) if isinstance(node.get("datePublished"), str) else ""
            if not value:
                continue
            if any(t in _ARTICLE_TYPES for t in _types(node)):
                return value
            fallback = fallback or value
    return fallback


def _tree(html: str) -> Any:
    import lxml.html

    try:
        return lxml.html.document_fromstring(html)
    except Exception:  # lxml rejects some documents outright
        return None


def meta_published(tree: Any) -> str:
    """The first publication stamp among the page's meta tags and ``itemprop`` attributes."""
    if tree is None:
        return ""
    found: dict[str, str] = {}
    for el in tree.iter("meta"):
        name = (el.get("property") or el.get("name") or el.get("itemprop") or "").strip().lower()
        if name in _META_NAMES and name not in found:
            found[name] = stated(el.get("content"))
    for name in _META_NAMES:
        if found.get(name):
            return found[name]
    for el in tree.xpath("//*[@itemprop='datePublished']"):
        value = stated(el.get("content") or el.get("datetime"))
        if value:
            return value
    return ""


def _days(text: str) -> list[date]:
    text = " ".join(text.split())[:120]
    days = [d.first for d in find_dates(text, date.max - timedelta(days=1))
            if d.kind == "day" and re.search(r"(?:19|20)\d\d", d.text)]
    for dd, mm, yyyy in _DOTTED.findall(text):
        try:
            days.append(date(int(yyyy), int(mm), int(dd)))
        except ValueError:
            pass
    return days


def printed_days(tree: Any) -> list[date]:
    """The days the page prints where it shows dates, in page order: the texts of its ``<time>``
    elements, else of its byline and date elements outside headers, menus and footers (where
    sites print today's date)."""
    body = tree.find("body") if tree is not None else None
    if body is None:
        return []
    days = [d for el in body.iter("time") for d in _days(el.text_content())]
    if days:
        return days
    for el in body.iter():
        hint = " ".join(filter(None, (el.get("class"), el.get("id"), el.get("itemprop")))) \
            if isinstance(el.tag, str) else ""
        if not _PRINTED_HINT.search(hint) or el.xpath("ancestor::header|ancestor::nav|ancestor::footer"):
            continue
        days += _days(el.text_content())
    return days


def page_published(html: str, found: str = "") -> str:
    """The page's publication date as it states it (the module docstring's order); ``found``:
    the day htmldate read from the page."""
    tree = _tree(html)
    stamp = json_ld_published(html) or meta_published(tree)
    day = stated(found)[:10] or stamp[:10]
    if stamp and _is_utc(stamp) and stamp[:10] == day:
        printed = printed_days(tree)
        if printed and abs((printed[0] - date.fromisoformat(day)).days) == 1:
            return printed[0].isoformat()  # stamped in UTC, printed for a reader in its own zone
    return stamp if stamp and stamp[:10] == day else day
