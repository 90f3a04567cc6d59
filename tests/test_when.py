"""Dates in text and time in questions (rag.dates, rag.search.when), and retrieval weighing them."""

from __future__ import annotations

from datetime import date

import pytest

from rag.dates import dateline, find_dates
from rag.search.when import read_time, without_time

TODAY = date(2026, 12, 3)
ARCHIVE = date(2024, 1, 15)  # the newest article of an archive of 2023


@pytest.mark.parametrize("text, kind, first, last", [
    ("what did Telkom announce in December 2023?", "month", "2023-12-01", "2023-12-31"),
    ("laporan 12 Desember 2023", "day", "2023-12-12", "2023-12-12"),
    ("TechCrunch on October 30, 2023, about", "day", "2023-10-30", "2023-10-30"),
    ("published at '2023-12-06T13:55:17+00:00'", "day", "2023-12-06", "2023-12-06"),
    ("Q3 2023 results", "quarter", "2023-07-01", "2023-09-30"),
    ("kuartal kedua 2024", "quarter", "2024-04-01", "2024-06-30"),
    ("the first half of 2024", "half", "2024-01-01", "2024-06-30"),
    ("semester II 2023", "half", "2023-07-01", "2023-12-31"),
    ("anggaran tahun 2024", "year", "2024-01-01", "2024-12-31"),
])
def test_find_dates_reads_english_and_indonesian_dates(text, kind, first, last):
    found = find_dates(text, TODAY)
    assert [(d.kind, str(d.first), str(d.last)) for d in found] == [(kind, first, last)]


def test_a_yearless_date_is_the_latest_such_day_on_or_before_the_reference():
    assert find_dates("pada 12 Desember", TODAY)[0].first == date(2025, 12, 12)
    assert find_dates("on October 7th", ARCHIVE)[0].first == date(2023, 10, 7)


def test_words_that_only_look_like_months_are_not_dates():
    assert find_dates("I may go; the des file", TODAY) == []
    assert find_dates("5 people", TODAY) == []


def test_dateline_reads_the_date_an_article_states_at_its_top():
    assert dateline("Jakarta, 5 Desember 2023\n\nPT Telkom ...") == "2023-12-05"
    assert dateline("Hangzhou, Desember 2023\n\nAlibaba ...") == "2023-12"
    assert dateline("Redmond, January 2024\n\nMicrosoft ...") == "2024-01"
    # A date inside a sentence is what the story is about, not when it was written.
    assert dateline("Rules announced on 17 October 2023 will bite.\n\nMore.") == ""


def test_read_time_turns_questions_into_periods_days_and_latest():
    month = read_time("what did Telkom announce in December 2023?", TODAY, ARCHIVE)
    assert (month.since, month.until) == (date(2023, 12, 1), date(2023, 12, 31))
    assert month.describe() == "articles from 2023-12-01 to 2023-12-31"
    before = read_time("siapa CEO Alibaba sebelum September?", TODAY, ARCHIVE)
    assert before.since is None and before.until == date(2023, 8, 31)
    between = read_time("antara 1 November dan 30 November 2023, siapa?", TODAY, ARCHIVE)
    assert (between.since, between.until) == (date(2023, 11, 1), date(2023, 11, 30))
    days = read_time("Between the report by Fortune on October 10th and the one on October 7th", TODAY, ARCHIVE)
    assert days.days == (date(2023, 10, 7), date(2023, 10, 10)) and days.since is None
    assert read_time("apa kabar terbaru soal IPO cloud Alibaba?", TODAY, ARCHIVE).latest


def test_relative_time_is_read_against_as_of():
    week = read_time("berita pekan lalu tentang Telkom", date(2023, 12, 6))
    assert (week.since, week.until) == (date(2023, 11, 27), date(2023, 12, 3))
    assert read_time("apa yang terjadi kemarin?", date(2023, 12, 6)).until == date(2023, 12, 5)
    # Asked today of an archive that ends in January 2024, "last month" matches nothing: not read.
    assert not read_time("what happened last month?", TODAY, ARCHIVE)


def test_no_time_and_times_after_the_archive_are_not_read_as_publication_dates():
    assert not read_time("Who leads hybrid cloud?", TODAY, ARCHIVE)
    assert not read_time("How much will AWS invest in Indonesia through 2037?", TODAY, ARCHIVE)


def test_retrieval_favours_the_articles_of_the_period_a_question_names(settings, e5):
    """Two articles on the same subject, a month apart: the month in the question decides."""
    from ingest import ingest
    from rag import Assistant

    folder = settings.data_dir / "dated"
    folder.mkdir(parents=True)
    (folder / "nov.txt").write_text(
        "Telkom umumkan rencana pusat data\n\nJakarta, 10 November 2023\n\nPT Telkom Indonesia mengumumkan "
        "rencana membangun pusat data baru di Batam dengan kapasitas 10 megawatt.\n", encoding="utf-8")
    (folder / "dec.txt").write_text(
        "Telkom umumkan mitra pusat data\n\nJakarta, 12 Desember 2023\n\nPT Telkom Indonesia mengumumkan "
        "mitra strategis untuk pusat data di Batam yang akan memegang 49% saham.\n", encoding="utf-8")
    kabar = Assistant(settings, embedder=e5)
    ingest([folder], kabar)
    assert {d.published for d in kabar.documents()} == {"2023-11-10", "2023-12-12"}
    for month, title in (("November 2023", "rencana"), ("Desember 2023", "mitra")):
        prep = kabar.prepare(f"Apa yang diumumkan Telkom soal pusat data pada {month}?")
        assert title in prep.sources[0].chunk.title
        assert prep.time_window.startswith("articles from 2023-1")
    plain = kabar.prepare("Apa yang diumumkan Telkom soal pusat data?")
    assert plain.time_window == ""


@pytest.mark.parametrize("question, timeless", [
    ("Siapa CEO baru yang ditunjuk pada 4 Desember 2023?", "Siapa CEO baru yang ditunjuk?"),
    ("Which cloud company changed its leaders in January 2024?", "Which cloud company changed its leaders?"),
    ("siapa CEO Alibaba sebelum September?", "siapa CEO Alibaba?"),
    ("Apa kabar terbaru soal pusat data?", "Apa kabar soal pusat data?"),
    ("What did Telkom announce in Q3 2023?", "What did Telkom announce?"),
    ("Berita terbaru?", "Berita terbaru?"),  # nothing would be left: the question as it is
])
def test_the_question_without_its_time_is_what_the_passages_are_read_for(question, timeless):
    assert without_time(question, read_time(question, TODAY, ARCHIVE)) == timeless
