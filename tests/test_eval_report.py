"""Reports (Markdown, self-contained HTML with SVG plots) and comparing runs."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from eval.compare import compare_runs, format_comparison, outcome
from eval.report import histogram, html_report, markdown_report, rank_counts, svg_bars
from eval.results import QuestionResult, load_run
from eval.runner import RunOptions, run_eval
from rag.settings import Settings
from tests.test_eval_runner import CountingEmbedder, answering, fake_chat, sse, write_set


def _refusing(request: httpx.Request) -> httpx.Response:
    return sse("I don't know: the articles do not say.")


def test_html_report_is_self_contained_with_plots(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    run = run_eval(s, settings, tmp_path / "run", embedder=CountingEmbedder(), llm=fake_chat(answering))
    page = (tmp_path / "run" / "report.html").read_text()
    assert page == html_report(load_run(tmp_path / "run"))
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"(?:src|href)\s*=", page)
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    titles = re.findall(r'<svg[^>]*aria-label="([^"]+)"', page)
    assert titles == ["Metrics by language", "Metrics by type", "Latency per question (ms, total)",
                      "Time to first token (ms)", "Rank of the first gold document (top 10 chunks)"]
    md = markdown_report(run)
    assert "| en |" in md and "## By type" in md and "## Answers that missed (1)" in md
    assert "q-un-id" in md  # answered an unanswerable question


def test_svg_helpers():
    svg = svg_bars(["en", "id"], [("hit@1", [0.5, None]), ("mrr@10", [1.0, 0.25])], "T <&>", ymax=1.0)
    assert svg.count("<rect") == 3 + 2  # three bars, two legend swatches
    assert "T &lt;&amp;&gt;" in svg
    labels, counts = histogram([10.0, 20.0, 30.0, 40.0], bins=3)
    assert labels == ["10", "20", "30"] and counts == [1, 1, 2]
    assert histogram([], 5) == ([], [])
    results = [QuestionResult("a", "?", "en", "t", True, gold_doc_ids=["d"], first_gold_rank=1),
               QuestionResult("b", "?", "en", "t", True, gold_doc_ids=["d"], first_gold_rank=None),
               QuestionResult("c", "?", "en", "t", True, gold_doc_ids=["d"], first_gold_rank=3),
               QuestionResult("d", "?", "en", "t", False)]
    labels, counts = rank_counts(results)
    assert labels[-1] == "miss" and counts[0] == 1 and counts[2] == 1 and counts[10] == 1 and sum(counts) == 3


def test_outcome_labels():
    def r(**kw):  # type: ignore[no-untyped-def]
        base = dict(id="x", question="?", lang="en", type="t", answerable=True, gold_doc_ids=["d"])
        base.update(kw)
        return QuestionResult(**base)

    assert outcome(r(first_gold_rank=1)) == "top1"
    assert outcome(r(first_gold_rank=7)) == "top10"
    assert outcome(r(first_gold_rank=None, answer="x", refused=False, scores={"contains": 1.0})) == "miss/correct"
    assert outcome(r(first_gold_rank=2, answer="x", refused=True)) == "top5/refused"
    assert outcome(r(answerable=False, gold_doc_ids=[], answer="x", refused=False)) == "answered"
    assert outcome(r(error="boom")) == "error"


def test_compare_lists_metric_differences_and_changed_questions(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    run_eval(s, settings, tmp_path / "a", embedder=CountingEmbedder(), llm=fake_chat(answering))
    run_eval(s, settings, tmp_path / "b", embedder=CountingEmbedder(), llm=fake_chat(_refusing))
    c = compare_runs(load_run(tmp_path / "a"), load_run(tmp_path / "b"))
    rows = {(g, k): (a, b) for g, k, a, b in c.rows}
    assert rows[("overall", "contains")] == (1.0, 0.0)
    assert rows[("overall", "refusal_recall")] == (0.5, 1.0)
    changed = {r.id: (was, now) for r, was, now in c.changed}
    assert changed == {"q-en": ("top1/correct", "top1/refused"), "q-id": ("top1/correct", "top1/refused"),
                       "q-un-id": ("answered", "refused")}
    text = format_comparison(c)
    assert "contains" in text and "-1.000" in text and "3 question(s) changed outcome" in text
    assert "lang=id" not in text and "lang=id" in format_comparison(c, groups=True)


def test_compare_scores_different_samples_on_the_questions_they_share(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    run_eval(s, settings, tmp_path / "all", RunOptions(retrieval_only=True), embedder=CountingEmbedder())
    run_eval(s, settings, tmp_path / "two", RunOptions(retrieval_only=True, limit=2), embedder=CountingEmbedder())
    c = compare_runs(load_run(tmp_path / "all"), load_run(tmp_path / "two"))
    rows = {(g, k): (a, b) for g, k, a, b in c.rows}
    assert rows[("overall", "n")] == (2, 2)
    assert len(c.only_a) == 2 and not c.only_b
    assert "scored on the 2 they share" in format_comparison(c)
