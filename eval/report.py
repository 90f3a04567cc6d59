"""Reports for a run folder: ``report.md`` and one self-contained ``report.html``.

The HTML page has no scripts, fonts or images to fetch: its plots are inline SVG drawn
here (grouped bars of the metrics by language and by type, the latency distribution, the
rank of the first gold document). Both reports read only what the run folder holds
(:class:`eval.results.Run`), so ``kabar eval report RUN`` can redraw them later.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval import metrics
from eval.results import QuestionResult, Run

RETRIEVAL_HEADLINE = ("hit@1", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10", "evidence_hit@10",
                      "context_doc_recall", "context_evidence_recall")
ANSWER_HEADLINE = ("em", "f1", "contains", "citation_accuracy", "refusal_precision", "refusal_recall", "refusal_f1")
CURVE_KEYS = ["min_grounding", "min_coverage", "refusal_precision", "refusal_recall", "refusal_f1", "refusal_rate",
              "answer_f1"]
COST_KEYS = ("context_tokens_p50", "context_tokens_p95", "retrieval_ms_p50", "retrieval_ms_p95", "sources_ms_p50",
             "sources_ms_p95", "ttft_ms_p50", "ttft_ms_p95", "latency_ms_p50", "latency_ms_p95", "tokens_in_mean",
             "tokens_out_mean")
PLOTTED = ("hit@1", "hit@10", "mrr@10", "context_doc_recall", "context_evidence_recall", "contains", "f1",
           "refusal_f1")
COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
MAX_LISTED = 25


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _present(groups: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[str]:
    """The keys that have a value in at least one group."""
    return [k for k in keys if any(g.get(k) is not None for g in groups)]


def _headline(run: Run) -> list[str]:
    return list(RETRIEVAL_HEADLINE) + (list(ANSWER_HEADLINE) if run.info.answers else [])


def _header_items(run: Run) -> list[tuple[str, str]]:
    i = run.info
    sampled = (f"{i.questions_sampled} of {i.questions_total}" + (f", the {i.half} half" if i.half else "")
               + (f" (--limit {i.limit}, seed {i.seed})" if i.limit else ""))
    items = [("set", f"{i.set_name} ({i.set_path})"), ("mode", "full answers" if i.answers else "retrieval only"),
             ("questions", sampled + f"; {i.finished} finished"), ("collection", i.collection
                                                                  + (" (reused)" if i.collection_reused else
                                                                     f" (ingested in {i.ingest_s:.0f}s)")),
             ("embedding model", i.embedding_model)]
    if i.answers:
        items.append(("LLM", i.llm or "?"))
    s = i.settings
    items.append(("settings", ", ".join(f"{k}={v}" for k, v in s.items() if v not in ("", None))))
    items.append(("started", f"{i.started_at}; wall time {i.wall_s:.0f}s, of which questions {i.questions_s:.0f}s "
                             f"with {i.workers} worker(s)"))
    if i.resumed:
        items.append(("resumed", f"{i.resumed} question(s) came from an interrupted run of the same folder"))
    if i.interrupted:
        items.append(("interrupted", "yes: the metrics cover the questions that finished"))
    if i.fatal_error:
        items.append(("stopped by", i.fatal_error))
    return items


def _misses(run: Run) -> list[QuestionResult]:
    return [r for r in run.results if not r.error and r.gold_doc_ids and r.first_gold_rank is None]


def _wrong(run: Run) -> list[QuestionResult]:
    out = []
    for r in run.results:
        if r.error or r.answer is None:
            continue
        if (r.answerable and not r.refused and not r.scores.get("contains")) or (r.answerable and r.refused) or (
                not r.answerable and not r.refused):
            out.append(r)
    return out


def _short(text: str | None, width: int = 120) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# -- Markdown ----------------------------------------------------------------------------


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return lines


def _md_groups(section: dict[str, dict[str, Any]], keys: Sequence[str], title: str) -> list[str]:
    if not section:
        return []
    cols = ["n"] + _present(list(section.values()), keys)
    rows = [[name] + [fmt(m.get(k)) for k in cols] for name, m in section.items()]
    return [f"## {title}", "", *_md_table([title.split()[-1]] + cols, rows), ""]


def markdown_report(run: Run) -> str:
    m = run.metrics
    overall = m.get("overall", {})
    lines = [f"# Kabar evaluation: {run.info.set_name}", ""]
    lines += [f"- **{k}**: {v}" for k, v in _header_items(run)]
    lines += ["", "## Overall", ""]
    counts = ["n", "n_errors", "n_retrieval", "n_evidence", "n_answerable", "n_unanswerable"]
    keys = counts + _present([overall], _headline(run)) + ["refusal_rate"] * run.info.answers
    lines += _md_table(["metric", "value"], [[k, fmt(overall.get(k))] for k in keys if k in overall])
    lines.append("")
    lines += _md_groups(m.get("by_lang", {}), _headline(run), "By language")
    lines += _md_groups(m.get("by_type", {}), _headline(run), "By type")
    cost = [k for k in COST_KEYS if overall.get(k) is not None]
    lines += ["## Latency and cost", "", *_md_table(["metric", "value"], [[k, fmt(overall[k])] for k in cost]), ""]
    if run.judge:
        j = run.judge.get("overall", {})
        lines += ["## LLM judge (opinions, apart from the exact metrics)", "",
                  f"Judge model: {run.info.judge_model or '?'}", ""]
        lines += _md_table(["metric", "value"], [[k, fmt(v)] for k, v in j.items()])
        lines.append("")
    misses = _misses(run)
    if misses:
        lines += [f"## Gold document not in the top 10 ({len(misses)})", ""]
        lines += _md_table(["id", "question", "gold", "retrieved (first 3)"],
                           [[r.id, _short(r.question, 90), ", ".join(r.gold_doc_ids), ", ".join(r.ranked_docs[:3])]
                            for r in misses[:MAX_LISTED]])
        lines.append("")
    wrong = _wrong(run)
    if wrong:
        lines += [f"## Answers that missed ({len(wrong)})", ""]
        lines += _md_table(["id", "question", "gold", "answer"],
                           [[r.id, _short(r.question, 80), " / ".join(r.gold_answers) or "(refuse)",
                             _short(r.answer, 100)] for r in wrong[:MAX_LISTED]])
        lines.append("")
    curve = metrics.refusal_curve(run.results)
    if curve and overall.get("n_unanswerable"):
        lines += ["## Refusal trade-off (KABAR_MIN_GROUNDING and KABAR_MIN_COVERAGE replayed)", ""]
        lines += _md_table(CURVE_KEYS, [[fmt(p[k]) for k in CURVE_KEYS] for p in curve])
        lines.append("")
    errors = [r for r in run.results if r.error]
    if errors:
        lines += [f"## Errors ({len(errors)})", ""] + [f"- {r.id}: {r.error}" for r in errors[:MAX_LISTED]] + [""]
    return "\n".join(lines)


# -- SVG ---------------------------------------------------------------------------------


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def svg_bars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | int | None]]], title: str,
             ymax: float | None = None, width: int = 720, height: int = 280, value_labels: bool = True,
             label_every: int = 1) -> str:
    """Grouped vertical bars: one group per category, one bar per series; None draws no bar."""
    left, right, top, bottom = 48, 12, 30, 52
    legend = len(series) > 1
    if legend:
        right = 170
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, vs in series for v in vs if v is not None]
    top_value = ymax if ymax is not None else _nice_max(max(values) if values else 1.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
             f'<text x="{left}" y="18" font-size="14" font-weight="bold">{_e(title)}</text>']
    for i in range(5):
        v = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        label = f"{v:.2f}" if top_value <= 1.0 else f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{label}</text>')
    n_cat = max(1, len(categories))
    group_w = plot_w / n_cat
    bar_w = max(1.0, group_w * 0.8 / max(1, len(series)))
    for ci, cat in enumerate(categories):
        gx = left + ci * group_w + group_w * 0.1
        for si, (_name, vs) in enumerate(series):
            v = vs[ci] if ci < len(vs) else None
            if v is None:
                continue
            h = plot_h * min(v, top_value) / top_value if top_value else 0
            x, y = gx + si * bar_w, top + plot_h - h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                         f'fill="{COLORS[si % len(COLORS)]}"><title>{_e(cat)} {_e(_name)}: {fmt(v)}</title></rect>')
            if value_labels and bar_w >= 14 and v:
                text = f"{v:.2f}" if isinstance(v, float) else fmt(v)
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 2:.1f}" font-size="8" '
                             f'text-anchor="middle">{_e(text)}</text>')
        if ci % label_every == 0:
            cx = left + ci * group_w + group_w / 2
            parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 14}" font-size="10" '
                         f'text-anchor="middle">{_e(_short(cat, 18))}</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>')
    if legend:
        for si, (name, _vs) in enumerate(series):
            y = top + si * 16
            parts.append(f'<rect x="{width - right + 10}" y="{y}" width="10" height="10" '
                         f'fill="{COLORS[si % len(COLORS)]}"/>')
            parts.append(f'<text x="{width - right + 24}" y="{y + 9}" font-size="11">{_e(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _nice_max(value: float) -> float:
    """An axis top at or above ``value`` whose quarters are round numbers."""
    if value <= 0:
        return 1.0
    if value <= 1.0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (0.4, 0.8, 1.2, 2, 4, 8, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def histogram(values: Sequence[float], bins: int = 20) -> tuple[list[str], list[int]]:
    """Bin labels (lower edges) and counts over [min, max]."""
    if not values:
        return [], []
    lo, hi = min(values), max(values)
    step = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / step), bins - 1)] += 1
    digits = 0 if step >= 10 else 1 if step >= 1 else 2
    return [f"{lo + i * step:.{digits}f}" for i in range(bins)], counts


def rank_counts(results: Sequence[QuestionResult]) -> tuple[list[str], list[int]]:
    """How many questions had their first gold document at rank 1..10, or not in the top 10."""
    counts = [0] * 11
    for r in results:
        if r.error or not r.gold_doc_ids:
            continue
        rank = r.first_gold_rank
        counts[rank - 1 if rank and rank <= 10 else 10] += 1
    return [str(i) for i in range(1, 11)] + ["miss"], counts


def _group_chart(section: dict[str, dict[str, Any]], title: str) -> str:
    if not section:
        return ""
    keys = _present(list(section.values()), PLOTTED)
    series = [(k, [section[g].get(k) for g in section]) for k in keys]
    return svg_bars(list(section), series, title, ymax=1.0)


def plots(run: Run) -> list[str]:
    ok = [r for r in run.results if not r.error]
    charts = [_group_chart(run.metrics.get("by_lang", {}), "Metrics by language"),
              _group_chart(run.metrics.get("by_type", {}), "Metrics by type")]
    latency = [r.total_ms for r in ok]
    if latency:
        labels, counts = histogram(latency)
        charts.append(svg_bars(labels, [("questions", counts)], "Latency per question (ms, total)",
                               value_labels=True, label_every=4))
    ttft = [r.ttft_ms for r in ok if r.ttft_ms]
    if ttft:
        labels, counts = histogram(ttft)
        charts.append(svg_bars(labels, [("questions", counts)], "Time to first token (ms)", label_every=4))
    labels, counts = rank_counts(ok)
    if sum(counts):
        charts.append(svg_bars(labels, [("questions", counts)], "Rank of the first gold document (top 10 chunks)"))
    return [c for c in charts if c]


# -- HTML --------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:14px}dt{font-weight:bold}dd{margin:0}
svg{display:block;margin:1em 0;font-family:inherit}.note{color:#666;font-size:13px}
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = [f'<td class="num">{_e(fmt(c))}</td>' if i >= numeric_from else f"<td>{_e(c)}</td>"
                 for i, c in enumerate(row)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _html_groups(section: dict[str, dict[str, Any]], keys: Sequence[str], title: str) -> str:
    if not section:
        return ""
    cols = ["n"] + _present(list(section.values()), keys)
    rows = [[name] + [m.get(k) for k in cols] for name, m in section.items()]
    return f"<h2>{_e(title)}</h2>" + _html_table([title.split()[-1]] + cols, rows)


def html_report(run: Run) -> str:
    m = run.metrics
    overall = m.get("overall", {})
    body = [f"<h1>Kabar evaluation: {_e(run.info.set_name)}</h1>", "<dl>"]
    body += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _header_items(run)]
    body.append("</dl>")
    counts = ["n", "n_errors", "n_retrieval", "n_evidence", "n_answerable", "n_unanswerable"]
    keys = counts + _present([overall], _headline(run)) + ["refusal_rate"] * run.info.answers
    body.append("<h2>Overall</h2>" + _html_table(["metric", "value"], [[k, overall.get(k)] for k in keys
                                                                       if k in overall]))
    body.append(_html_groups(m.get("by_lang", {}), _headline(run), "By language"))
    body.append(_html_groups(m.get("by_type", {}), _headline(run), "By type"))
    body.append("<h2>Plots</h2>")
    body += plots(run)
    cost = [k for k in COST_KEYS if overall.get(k) is not None]
    body.append("<h2>Latency and cost</h2>" + _html_table(["metric", "value"], [[k, overall[k]] for k in cost]))
    if run.judge:
        body.append("<h2>LLM judge</h2><p class='note'>Opinions of "
                    f"{_e(run.info.judge_model or 'the judge model')}, kept apart from the exact metrics.</p>")
        body.append(_html_table(["metric", "value"], list(run.judge.get("overall", {}).items())))
        body.append(_html_groups(run.judge.get("by_lang", {}), ("judge_correct", "judge_faithful"),
                                 "Judge by language"))
    misses = _misses(run)
    if misses:
        body.append(f"<h2>Gold document not in the top 10 ({len(misses)})</h2>")
        body.append(_html_table(["id", "question", "gold", "retrieved (first 3)"],
                                [[r.id, r.question, ", ".join(r.gold_doc_ids), ", ".join(r.ranked_docs[:3])]
                                 for r in misses[:MAX_LISTED]], numeric_from=99))
    wrong = _wrong(run)
    if wrong:
        body.append(f"<h2>Answers that missed ({len(wrong)})</h2>")
        body.append(_html_table(["id", "question", "gold", "answer"],
                                [[r.id, r.question, " / ".join(r.gold_answers) or "(refuse)", r.answer or ""]
                                 for r in wrong[:MAX_LISTED]], numeric_from=99))
    curve = metrics.refusal_curve(run.results)
    if curve and overall.get("n_unanswerable"):
        body.append("<h2>Refusal trade-off (KABAR_MIN_GROUNDING and KABAR_MIN_COVERAGE replayed)</h2>"
                    + _html_table(CURVE_KEYS, [[p[k] for k in CURVE_KEYS] for p in curve]))
    errors = [r for r in run.results if r.error]
    if errors:
        body.append(f"<h2>Errors ({len(errors)})</h2><ul>"
                    + "".join(f"<li>{_e(r.id)}: {_e(r.error)}</li>" for r in errors[:MAX_LISTED]) + "</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Kabar evaluation: {_e(run.info.set_name)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(b for b in body if b) + "\n</body></html>\n")


def write_reports(run: Run) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into the run folder."""
    md, page = run.path / "report.md", run.path / "report.html"
    md.write_text(markdown_report(run), encoding="utf-8")
    page.write_text(html_report(run), encoding="utf-8")
    return md, page
