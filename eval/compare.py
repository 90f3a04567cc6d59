"""Comparing two runs of one question set: metric differences and the questions whose outcome changed.

``kabar eval compare RUN_A RUN_B`` prints :func:`format_comparison` of :func:`compare_runs`.
Reading the runs is :mod:`eval.results`'; the metrics are :mod:`eval.metrics`'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eval.metrics import summarize
from eval.results import QuestionResult, Run


def outcome(r: QuestionResult) -> str:
    """A one-word verdict for a question, so changes between runs are easy to list.

    Retrieval: where the first gold document ranked (``top1``, ``top5``, ``top10``, ``miss``).
    Answers: ``correct`` (a reference is contained), ``wrong``, ``refused``; for
    unanswerable questions ``refused`` is right and ``answered`` is wrong.
    """
    if r.error:
        return "error"
    parts = []
    if r.gold_doc_ids:
        rank = r.first_gold_rank
        parts.append("miss" if rank is None or rank > 10 else "top1" if rank == 1 else "top5" if rank <= 5
                     else "top10")
    if r.answer is not None:
        if not r.answerable:
            parts.append("refused" if r.refused else "answered")
        elif r.refused:
            parts.append("refused")
        else:
            parts.append("correct" if r.scores.get("contains") else "wrong")
    return "/".join(parts) or "-"


@dataclass
class Comparison:
    """Metric differences (B - A) and the questions whose outcome changed."""

    a: Run
    b: Run
    rows: list[tuple[str, str, Any, Any]]  # (group, metric, a, b)
    changed: list[tuple[QuestionResult, str, str]]  # (result in B, outcome in A, outcome in B)
    only_a: list[str]
    only_b: list[str]


def compare_runs(a: Run, b: Run) -> Comparison:
    """Compare two runs. When they hold different questions (another ``--limit`` sample, an
    interrupted run), both are scored again on the questions they share, so that the
    differences are about the system and not about the sample."""
    ids_a, ids_b = {r.id for r in a.results}, {r.id for r in b.results}
    ma_all, mb_all = a.metrics, b.metrics
    if ids_a != ids_b:
        common = ids_a & ids_b
        ma_all = summarize([r for r in a.results if r.id in common], a.info.answers)
        mb_all = summarize([r for r in b.results if r.id in common], b.info.answers)
    rows: list[tuple[str, str, Any, Any]] = []
    groups = [("overall", ma_all.get("overall", {}), mb_all.get("overall", {}))]
    for section in ("by_lang", "by_type"):
        sa, sb = ma_all.get(section, {}), mb_all.get(section, {})
        for name in sorted(set(sa) | set(sb)):
            groups.append((f"{section[3:]}={name}", sa.get(name, {}), sb.get(name, {})))
    for group, ma, mb in groups:
        for key in list(dict.fromkeys([*ma, *mb])):
            rows.append((group, key, ma.get(key), mb.get(key)))
    by_a = {r.id: r for r in a.results}
    by_b = {r.id: r for r in b.results}
    changed = []
    for r in b.results:
        old = by_a.get(r.id)
        if old is not None and outcome(old) != outcome(r):
            changed.append((r, outcome(old), outcome(r)))
    return Comparison(a, b, rows, changed, sorted(set(by_a) - set(by_b)), sorted(set(by_b) - set(by_a)))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}"
    return str(v)


def format_comparison(c: Comparison, groups: bool = False, max_questions: int = 50) -> str:
    """The comparison as plain text; per-group rows only with ``groups``."""
    lines = [f"A: {c.a.path}  ({c.a.info.set_name}, {c.a.info.mode}, {c.a.info.finished} questions)",
             f"B: {c.b.path}  ({c.b.info.set_name}, {c.b.info.mode}, {c.b.info.finished} questions)", ""]
    lines.append(f"{'group':22} {'metric':24} {'A':>9} {'B':>9} {'B-A':>9}")
    for group, key, va, vb in c.rows:
        if group != "overall" and not groups:
            continue
        if va is None and vb is None:
            continue
        diff = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        if diff is None:
            sign = ""
        elif isinstance(diff, float):
            sign = f"{diff:+.3f}" if abs(diff) < 10 else f"{diff:+.0f}"
        else:
            sign = f"{diff:+d}"
        lines.append(f"{group:22} {key:24} {_fmt(va):>9} {_fmt(vb):>9} {sign:>9}")
    lines.append("")
    lines.append(f"{len(c.changed)} question(s) changed outcome")
    for r, was, now in c.changed[:max_questions]:
        lines.append(f"  {r.id}: {was} -> {now}   {r.question[:80]}")
    if len(c.changed) > max_questions:
        lines.append(f"  ... and {len(c.changed) - max_questions} more")
    if c.only_a or c.only_b:
        lines.insert(2, f"note: {len(c.only_a)} question(s) only in A and {len(c.only_b)} only in B; "
                        f"both runs are scored on the {len(c.a.results) - len(c.only_a)} they share")
    return "\n".join(lines)
