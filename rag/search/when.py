"""Time in a question: which articles' dates it asks about.

Entry point: :func:`read_time` turns "what did Telkom announce in December 2023?", "apa kabar
terbaru soal IPO cloud Alibaba?", "siapa CEO Alibaba sebelum September?" or "the report by
Fortune on October 10th" into a :class:`TimeQuery`:

- ``since``/``until``: the period the question names ("in December 2023", "Q3 2023", "tahun
  lalu", "last month", "pekan lalu"), narrowed by before/after/since/until/between
  ("sebelum September": up to 31 August);
- ``days``: single days it names without such a word ("on October 10th"), each a report to find;
- ``latest``: it asks for the newest ("latest", "most recent", "terbaru", "paling baru").

Relative expressions are resolved against ``as_of`` (today by default); a date written
without its year against the archive's newest article when that is older (in an archive of
2023, "12 Desember" is 12 December 2023). A period or day after the archive's newest article
is what the story is about ("investasi hingga 2037"), not when it was published, and is not
read as time. Retrieval weighs each of them (:mod:`rag.search.retrieval`); nothing here
touches the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

from rag.dates import DateMention, find_dates


@dataclass(frozen=True)
class TimeQuery:
    """The dates a question asks about (see the module doc); empty when it names none."""

    since: date | None = None
    until: date | None = None
    days: tuple[date, ...] = ()
    latest: bool = False
    said: tuple[str, ...] = ()  # the expressions read, as written

    def __bool__(self) -> bool:
        return bool(self.since or self.until or self.days or self.latest)

    def describe(self) -> str:
        """What retrieval favoured, for the reader of an answer: "articles from 2023-12-01 to 2023-12-31"."""
        parts = []
        if self.since and self.until:
            parts.append(f"articles from {self.since} to {self.until}")
        elif self.since:
            parts.append(f"articles from {self.since} on")
        elif self.until:
            parts.append(f"articles up to {self.until}")
        if self.days:
            parts.append("articles of " + ", ".join(str(d) for d in self.days))
        if self.latest:
            parts.append("the newest articles")
        return "; ".join(parts)


def _week_start(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _prev_month(d: date) -> tuple[date, date]:
    last = _month_start(d) - timedelta(days=1)
    return _month_start(last), last


def _back(n: int, unit: str, ref: date) -> date:
    days = {"d": 1, "w": 7, "m": 30}[unit]
    return ref - timedelta(days=n * days)


_UNITS = {"day": "d", "days": "d", "hari": "d", "week": "w", "weeks": "w", "pekan": "w", "minggu": "w",
          "month": "m", "months": "m", "bulan": "m"}
_UNIT = r"(?P<unit>days?|weeks?|months?|hari|pekan|minggu|bulan)"

#: Relative expressions: pattern -> the period it means against the reference date.
_RELATIVE: list[tuple[re.Pattern[str], Callable[[re.Match[str], date], tuple[date, date]]]] = [
    (re.compile(r"\b(?:today|hari ini)\b", re.I), lambda m, r: (r, r)),
    (re.compile(r"\b(?:yesterday|kemarin)\b", re.I), lambda m, r: (r - timedelta(1), r - timedelta(1))),
    (re.compile(r"\b(?:this week|pekan ini|minggu ini)\b", re.I), lambda m, r: (_week_start(r), r)),
    (re.compile(r"\b(?:last week|pekan lalu|minggu lalu)\b", re.I),
     lambda m, r: (_week_start(r) - timedelta(7), _week_start(r) - timedelta(1))),
    (re.compile(r"\b(?:this month|bulan ini)\b", re.I), lambda m, r: (_month_start(r), r)),
    (re.compile(r"\b(?:last month|bulan lalu)\b", re.I), lambda m, r: _prev_month(r)),
    (re.compile(r"\b(?:this year|tahun ini)\b", re.I), lambda m, r: (date(r.year, 1, 1), r)),
    (re.compile(r"\b(?:last year|tahun lalu)\b", re.I),
     lambda m, r: (date(r.year - 1, 1, 1), date(r.year - 1, 12, 31))),
    (re.compile(r"\b(?:(?:in )?the )?(?:past|last) (?P<n>\d{1,3}) " + _UNIT + r"\b", re.I),
     lambda m, r: (_back(int(m.group("n")), _UNITS[m.group("unit").lower()], r), r)),
    (re.compile(r"\b(?P<n>\d{1,3}) " + _UNIT + r" terakhir\b", re.I),
     lambda m, r: (_back(int(m.group("n")), _UNITS[m.group("unit").lower()], r), r)),
    (re.compile(r"\b(?P<n>\d{1,3}) " + _UNIT + r" (?:ago|(?:yang )?lalu)\b", re.I),
     lambda m, r: _ago(int(m.group("n")), _UNITS[m.group("unit").lower()], r)),
]


def _ago(n: int, unit: str, ref: date) -> tuple[date, date]:
    at = _back(n, unit, ref)
    spread = {"d": 0, "w": 3, "m": 15}[unit]
    return at - timedelta(spread), at + timedelta(spread)


_LATEST = re.compile(r"\b(?:latest|most recent(?:ly)?|newest|recently|terbaru|terkini|paling baru|paling akhir"
                     r"|baru-baru ini|belakangan ini)\b", re.I)
# The word just before a date that makes it a bound.
_FILL = r"\s+(?:the\s+|tanggal\s+|bulan\s+|tahun\s+)?$"
_BEFORE = re.compile(r"\b(?:before|prior to|earlier than|sebelum|sebelumnya)" + _FILL, re.I)
_AFTER = re.compile(r"\b(?:after|later than|sesudah|setelah|selepas|usai)" + _FILL, re.I)
_SINCE = re.compile(r"\b(?:since|from|between|sejak|dari|antara)" + _FILL, re.I)
_UNTIL = re.compile(r"\b(?:until|till|up to|through|by|to|and|hingga|sampai|dan|s\.d\.|sd)\s+"
                    r"(?:the\s+|tanggal\s+|bulan\s+|tahun\s+|dengan\s+)?$", re.I)


def _bound(text: str, m: DateMention, previous: str) -> str:
    """"before", "after", "since", "until" or "" for the word in front of mention ``m``.
    "and"/"dan"/"to" bound a date only after a since-bound ("between X and Y")."""
    head = text[max(0, m.start - 24) : m.start]
    if _BEFORE.search(head):
        return "before"
    if _AFTER.search(head):
        return "after"
    if _SINCE.search(head):
        return "since"
    if _UNTIL.search(head):
        word = _UNTIL.search(head).group(0).split()[0].lower()  # type: ignore[union-attr]
        return "until" if word not in ("and", "dan", "to") or previous == "since" else ""
    return ""


def read_time(question: str, as_of: date | None = None, newest: date | None = None) -> TimeQuery:
    """The dates ``question`` asks about (see the module doc): relative ones against ``as_of``
    (today by default), yearless ones against ``newest`` (the archive's newest article) when older."""
    as_of = as_of or date.today()
    ref = min(as_of, newest) if newest else as_of
    latest = bool(_LATEST.search(question))
    periods: list[tuple[date, date]] = []
    days: list[date] = []
    low: date | None = None
    high: date | None = None
    said: list[str] = []

    def later_than_archive(first: date) -> bool:
        return newest is not None and first > newest

    previous = ""
    for m in find_dates(question, ref):
        if later_than_archive(m.first):
            continue
        bound = _bound(question, m, previous)
        previous = bound
        said.append(m.text)
        if bound == "before":
            high = min(high or m.first, m.first - timedelta(1))
        elif bound == "after":
            low = max(low or m.last, m.last + timedelta(1))
        elif bound == "since":
            low = max(low or m.first, m.first)
        elif bound == "until":
            high = min(high or m.last, m.last)
        elif m.kind == "day":
            days.append(m.first)
        else:
            periods.append((m.first, m.last))
    for pattern, period in _RELATIVE:
        for rm in pattern.finditer(question):
            first, last = period(rm, as_of)
            if not later_than_archive(first):
                periods.append((first, last))
                said.append(rm.group(0))
    since = min(p[0] for p in periods) if periods else None
    until = max(p[1] for p in periods) if periods else None
    if low:
        since = max(since, low) if since else low
    if high:
        until = min(until, high) if until else high
    if since and until and since > until:  # "after December, in November": nothing can match; keep the bounds read last
        since, until = low, high
    return TimeQuery(since, until, tuple(sorted(set(days))), latest, tuple(said))


# Words that tie a time expression to the question ("pada", "in", "sebelum"): removed with it.
_TIED = re.compile(r"(?:\b(?:pada|on|in|at|di|during|selama|sebelum|before|prior to|sesudah|setelah|after|"
                   r"sejak|since|from|dari|hingga|sampai|until|by|tanggal|bulan|tahun|the)\s+)+$", re.I)


def without_time(question: str, when: TimeQuery) -> str:
    """``question`` without the time it names ("Siapa CEO baru yang ditunjuk pada 4 Desember
    2023?" -> "Siapa CEO baru yang ditunjuk?"): retrieval has already kept to those dates, and
    an article's passages seldom repeat its date, so whoever reads the passages for the answer
    reads the rest. The question itself when nothing would be left of it."""
    out = question
    for said in sorted(set(when.said), key=len, reverse=True):
        at = out.find(said)
        if at < 0:
            continue
        head = _TIED.sub("", out[:at])
        out = head.rstrip() + " " + out[at + len(said):].lstrip()
    if when.latest:
        out = _LATEST.sub(" ", out)
    out = re.sub(r"\s+([?.!,])", r"\1", " ".join(out.split()))
    return out if len(re.findall(r"\w+", out)) >= 2 else question

