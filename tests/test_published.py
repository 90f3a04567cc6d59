"""Dates kept as the source states them: the local day, its time and offset, never the instant
moved to UTC (ingest.published, through the real HTML and feed readers)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ingest.feeds import _date as feed_date
from ingest.html import html_document
from ingest.published import json_ld_published, page_published, stated

BODY = "<p>" + "Wali kota mengumumkan anggaran baru untuk transportasi umum kota pada rapat dewan. " * 6 + "</p>"


def page(head: str = "", top: str = "") -> bytes:
    return (f'<html lang="id"><head><title>Anggaran kota</title>{head}</head><body>'
            f'<header><div class="date">Rabu, 6 Desember 2023</div></header>'
            f"<article><h1>Anggaran kota</h1>{top}{BODY}</article></body></html>").encode()


@pytest.mark.parametrize("value, expected", [
    ("2023-12-05T23:30:00-05:00", "2023-12-05T23:30:00-05:00"),
    ("2023-12-05T23:30:00.000-0500", "2023-12-05T23:30:00-05:00"),
    ("2023-12-06T04:30:00Z", "2023-12-06T04:30:00+00:00"),
    ("2023-12-05 23:30:00 -0500", "2023-12-05T23:30:00-05:00"),
    ("Tue, 05 Dec 2023 23:30:00 -0500", "2023-12-05T23:30:00-05:00"),
    ("2023-12-05", "2023-12-05"),
    (datetime(2023, 12, 5, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "2023-12-05T23:30:00-05:00"),
    ("kemarin sore", ""),
    ("2023-13-45", ""),
])
def test_a_stated_timestamp_keeps_its_zone(value, expected):
    assert stated(value) == expected


def test_a_page_stamped_with_an_offset_keeps_its_local_day_and_offset():
    doc = html_document(page('<meta property="article:published_time" content="2023-12-05T23:30:00-05:00">'),
                        "evening.html", "d1")
    assert doc.published == "2023-12-05T23:30:00-05:00"


def test_a_page_stamped_in_utc_keeps_the_day_it_prints():
    """Stamped 04:30 UTC on the 6th, printed for its readers as the 5th (UTC-5): the 5th is the
    day the page states. The site's header prints today's date, which does not count."""
    html = page('<meta property="article:published_time" content="2023-12-06T04:30:00Z">',
                '<p class="byline">Oleh Rina, <time datetime="2023-12-05T23:30">5 Desember 2023 23.30</time></p>')
    assert html_document(html, "utc.html", "d2").published == "2023-12-05"


def test_a_utc_stamp_the_page_prints_as_the_same_day_stands():
    html = page('<meta property="article:published_time" content="2023-12-05T10:00:00+00:00">',
                '<p class="byline"><time>5 December 2023</time></p>')
    assert page_published(html.decode(), "2023-12-05") == "2023-12-05T10:00:00+00:00"


def test_json_ld_stamp_is_the_article_nodes():
    html = page('<script type="application/ld+json">{"@graph": [{"@type": "WebPage", "datePublished": '
                '"2023-12-01T00:00:00+07:00"}, {"@type": "NewsArticle", "datePublished": '
                '"2023-12-05T21:15:00+07:00"}]}</script>')
    assert json_ld_published(html.decode()) == "2023-12-05T21:15:00+07:00"


def test_a_feed_entry_keeps_the_day_its_feed_states():
    """feedparser moves an entry's date to UTC (the 6th, 04:30); the feed said the 5th, 23:30 -0500."""
    import feedparser

    rss = ("<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item><title>a</title>"
           "<link>https://news.example/a</link><pubDate>Tue, 05 Dec 2023 23:30:00 -0500</pubDate>"
           "</item></channel></rss>")
    entry = feedparser.parse(rss).entries[0]
    assert entry.published_parsed.tm_mday == 6  # what a reader of the parsed date would store
    assert feed_date(entry) == "2023-12-05T23:30:00-05:00"
