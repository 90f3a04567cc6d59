"""Dates as news text writes them, in English and Indonesian: "5 December 2023", "Oct. 7th",
"Desember 2023", "Q3 2023", "kuartal kedua 2024", "2023-12-06T13:55:17+00:00".

:func:`find_dates` finds every such expression in a text and gives the days it covers
(a day, a month, a quarter, a half year or a year); a date written without its year
("12 Desember", "October 7th") is the latest such day on or before a reference date.
:func:`dateline` reads the date an article states at its top ("Jakarta, 5 Desember 2023").

Leaves to others: what a question means by its dates (:mod:`rag.search.when`).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

MONTHS: dict[str, int] = {}
for _n, _names in enumerate((
        "january januari jan", "february februari feb peb pebruari", "march maret mar", "april apr",
        "may mei", "june juni jun", "july juli jul", "august agustus aug agu agt",
        "september sept sep", "october oktober oct okt", "november nopember nov nop",
        "december desember dec des"), start=1):
    for _name in _names.split():
        MONTHS[_name] = _n

_MONTH = r"(?P<{}>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_ORD = r"(?:st|nd|rd|th)?"
_YEAR = r"(?P<{}>(?:19|20)\d\d)(?!\d)"
_QUARTERS = {"1": 1, "2": 2, "3": 3, "4": 4, "i": 1, "ii": 2, "iii": 3, "iv": 4, "first": 1, "second": 2,
             "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "pertama": 1, "kedua": 2,
             "ketiga": 3, "keempat": 4, "satu": 1, "dua": 2, "tiga": 3, "empat": 4}
_QWORD = r"(?P<q>1st|2nd|3rd|4th|first|second|third|fourth|pertama|kedua|ketiga|keempat|iv|iii|ii|i|[1-4])"

# Most specific first: a span taken by one pattern is not matched again by a later one.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"(?<![\d-])" + _YEAR.format("y") + r"-(?P<m>[01]\d)-(?P<d>[0-3]\d)(?!\d)")),
    ("dmy", re.compile(r"(?<![\w.])(?P<d>[0-3]?\d)" + _ORD + r"\s+(?:of\s+)?" + _MONTH.format("mon")
                       + r"(?:,?\s+" + _YEAR.format("y") + r")?(?!\w)", re.I)),
    ("mdy", re.compile(r"(?<!\w)" + _MONTH.format("mon") + r"\s+(?P<d>[0-3]?\d)" + _ORD + r"(?![\d:])"
                       + r"(?:,?\s+" + _YEAR.format("y") + r")?(?!\w)", re.I)),
    ("quarter", re.compile(r"(?<!\w)(?:q" + _QWORD + r"|(?:kuartal|triwulan)\s+(?:ke-?)?" + _QWORD.replace("q>", "q2>")
                           + r"|" + _QWORD.replace("q>", "q3>") + r"\s+quarter)(?:\s+(?:of\s+|tahun\s+)?"
                           + _YEAR.format("y") + r")?(?!\w)", re.I)),
    ("half", re.compile(r"(?<!\w)(?:h(?P<h>[12])|(?P<h2>first|second)\s+half|semester\s+(?P<h3>i|ii|1|2|pertama|kedua))"
                        r"(?:\s+(?:of\s+|tahun\s+)?" + _YEAR.format("y") + r")?(?!\w)", re.I)),
    ("my", re.compile(r"(?<!\w)" + _MONTH.format("mon") + r",?\s+" + _YEAR.format("y"), re.I)),
    # A month or year alone only after a word that makes it one ("in May", "tahun 2023").
    ("month", re.compile(r"(?<!\w)(?:in|during|since|before|after|until|till|by|of|early|late|mid|from|to|and"
                         r"|pada|bulan|sejak|sebelum|setelah|sesudah|hingga|sampai|selama|awal|akhir|dari|dan)\s+(?P<at>"
                         + _MONTH.format("mon") + r")(?!\w)", re.I)),
    ("year", re.compile(r"(?<!\w)(?:in|during|since|before|after|until|till|by|of|from|to|through|throughout|and|year"
                        r"|tahun|pada|sejak|sebelum|setelah|sesudah|hingga|sampai|selama|sepanjang|dari|dan)\s+(?P<at>"
                        + _YEAR.format("y") + ")", re.I)),
]


@dataclass(frozen=True)
class DateMention:
    """One date expression in a text: where it is, and the first and last day it covers."""

    start: int
    end: int
    first: date
    last: date
    kind: str  # "day", "month", "quarter", "half" or "year"
    text: str


def date_words(published: str) -> str:
    """The words an ISO date (or datetime) is written with, in English and Indonesian, long and
    short: "2023-12-05" -> "5 2023 12 05 december desember dec des"; "" when it is none."""
    try:
        d = date.fromisoformat(published[:10])
    except ValueError:
        return ""
    names = " ".join(name for name, n in MONTHS.items() if n == d.month)
    return f"{d.day} {d.year} {d.month} {d.day:02d} {d.month:02d} {names}"


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _yearless(month: int, day: int, ref: date) -> date | None:
    """The latest ``day`` of ``month`` on or before ``ref``."""
    for year in (ref.year, ref.year - 1):
        try:
            d = date(year, month, day)
        except ValueError:
            continue
        if d <= ref:
            return d
    return None


def _mention(kind: str, m: re.Match[str], ref: date) -> DateMention | None:
    g = m.groupdict()
    year = int(g["y"]) if g.get("y") else None
    try:
        if kind == "iso":
            first = last = date(int(g["y"]), int(g["m"]), int(g["d"]))
            span = "day"
        elif kind in ("dmy", "mdy"):
            month, day = MONTHS[g["mon"].lower()], int(g["d"])
            if g["mon"].lower() == "may" and year is None and kind == "mdy":
                return None  # "may 5 people" is not a date
            d = date(year, month, day) if year else _yearless(month, day, ref)
            if d is None:
                return None
            first = last = d
            span = "day"
        elif kind in ("my", "month"):
            month = MONTHS[g["mon"].lower()]
            if kind == "month" and g["mon"].lower() in ("may", "mar", "jan", "sep", "des", "dec", "jun", "jul"):
                return None  # a short or ambiguous word alone ("may", "des") is too often not a month
            if year is None:
                year = ref.year if month <= ref.month else ref.year - 1
            first, last, span = date(year, month, 1), _month_end(year, month), "month"
        elif kind == "quarter":
            q = _QUARTERS[(g.get("q") or g.get("q2") or g.get("q3") or "").lower()]
            year = year or ref.year
            first, last, span = date(year, 3 * q - 2, 1), _month_end(year, 3 * q), "quarter"
        elif kind == "half":
            h = (g.get("h") or g.get("h2") or g.get("h3") or "").lower()
            second = h in ("2", "second", "ii", "kedua")
            year = year or ref.year
            first, last = (date(year, 7, 1), date(year, 12, 31)) if second else (date(year, 1, 1), date(year, 6, 30))
            span = "half"
        else:
            first, last, span = date(year or ref.year, 1, 1), date(year or ref.year, 12, 31), "year"
    except ValueError:  # 31 February
        return None
    at = _at(m)
    return DateMention(m.start(at), m.end(), first, last, span, m.group(at))


def _at(m: re.Match[str]) -> str | int:
    return "at" if m.groupdict().get("at") else 0


def find_dates(text: str, ref: date | None = None) -> list[DateMention]:
    """Every date expression in ``text``, in the order they appear (yearless ones resolved on
    or before ``ref``, today by default)."""
    ref = ref or date.today()
    taken: list[tuple[int, int]] = []
    found: list[DateMention] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start(_at(m)) < b and a < m.end() for a, b in taken):
                continue
            mention = _mention(kind, m, ref)
            if mention is not None:
                taken.append((mention.start, mention.end))
                found.append(mention)
    return sorted(found, key=lambda d: d.start)


_DATELINE = re.compile(r"^[^\n\d]{0,60}?,\s*(?P<date>[^\n]{4,40})$")


def dateline(text: str, lines: int = 3) -> str:
    """The date an article states in its first lines, as ``YYYY-MM-DD`` (or ``YYYY-MM`` for a
    month), "" when there is none. Reads "Jakarta, 5 Desember 2023", "Redmond, January 2024",
    or a line that is a date alone ("5 December 2023"); a date inside a sentence does not count."""
    for line in [ln.strip() for ln in text.split("\n") if ln.strip()][:lines]:
        m = _DATELINE.match(line)
        candidate = m.group("date").strip() if m else line
        found = find_dates(candidate, date.max - timedelta(days=1))
        if len(found) == 1 and found[0].start == 0 and found[0].end >= len(candidate.rstrip(" .")):
            d = found[0]
            if d.kind == "day" and re.search(r"(?:19|20)\d\d", d.text):
                return d.first.isoformat()
            if d.kind == "month" and re.search(r"(?:19|20)\d\d", d.text):
                return d.first.isoformat()[:7]
    return ""
