"""End to end on the shipped sample set (examples/): the real e5 embedder, and the local LLM."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval.dataset import load_set
from eval.runner import RunOptions, run_eval
from rag.settings import Settings
from tests.conftest import ROOT, SAMPLE_ARTICLES, SAMPLE_QUESTIONS
from ui.main import main

EXAMPLES = ROOT / "examples"


def test_retrieval_only_run_on_the_sample_set_then_the_cli_reuses_it(tmp_path: Path, settings: Settings, e5, capsys):
    run = run_eval(load_set(EXAMPLES), settings, tmp_path / "api", RunOptions(retrieval_only=True), embedder=e5)
    assert not run.info.collection_reused and run.info.finished == 24
    for name in ("questions.jsonl", "metrics.json", "run.json", "report.md", "report.html"):
        assert (tmp_path / "api" / name).is_file(), name
    m = json.loads((tmp_path / "api" / "metrics.json").read_text())
    o = m["overall"]
    assert (o["n"], o["n_retrieval"], o["n_unanswerable"], o["n_errors"]) == (24, 16, 8, 0)
    for key in ("hit@1", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10", "context_doc_recall",
                "context_tokens_p50", "latency_ms_p50", "latency_ms_p95"):
        assert o[key] is not None, key
    # Loose floors: the sample questions are easy; a drop below these is a real regression.
    assert o["hit@10"] >= 0.9 and o["mrr@10"] >= 0.6 and o["context_doc_recall"] >= 0.8
    assert set(m["by_lang"]) == {"en", "id"} and set(m["by_type"]) == {"cross-lingual", "factoid", "unanswerable"}
    assert len((tmp_path / "api" / "questions.jsonl").read_text().splitlines()) == 24

    out = tmp_path / "cli"
    code = main(["eval", "run", str(EXAMPLES), "--retrieval-only", "--limit", "6", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "reused" in printed.err and "hit@10" in printed.out and str(out) in printed.out
    assert json.loads((out / "run.json").read_text())["collection_reused"] is True
    assert main(["eval", "compare", str(tmp_path / "api"), str(out)]) == 0
    assert "scored on the 6 they share" in capsys.readouterr().out


def test_cli_reports_a_bad_folder_in_one_line(tmp_path: Path, capsys):
    assert main(["eval", "run", str(tmp_path), "--retrieval-only"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kabar: error:") and "questions.jsonl" in err


@pytest.mark.llm
def test_full_answers_with_the_local_model(tmp_path: Path, settings: Settings, e5, local_llm):
    folder = tmp_path / "sample"
    shutil.copytree(SAMPLE_ARTICLES, folder / "articles")
    wanted = {"en-01", "id-01", "un-en-01", "un-id-01"}
    lines = [line for line in SAMPLE_QUESTIONS.read_text().splitlines() if json.loads(line)["id"] in wanted]
    (folder / "questions.jsonl").write_text("\n".join(lines) + "\n")
    # Four sources instead of eight: half the prompt, half the time on two cores.
    run = run_eval(load_set(folder), settings.with_(top_k=4), tmp_path / "run", embedder=e5, llm=local_llm)
    assert run.info.workers == 1 and run.info.mode == "answers"
    assert [r.error for r in run.results] == [None] * 4
    by_id = {r.id: r for r in run.results}
    assert all(r.answer and r.ttft_ms and r.total_ms >= r.ttft_ms and r.tokens_out > 0 for r in run.results)
    assert by_id["en-01"].scores["contains"] == 1.0, by_id["en-01"].answer
    o = run.metrics["overall"]
    for key in ("em", "f1", "contains", "refusal_precision", "refusal_recall", "citation_accuracy", "ttft_ms_p50",
                "latency_ms_p95", "tokens_in_mean"):
        assert key in o, key
    assert o["n_answerable"] == 2 and o["n_unanswerable"] == 2
    page = (tmp_path / "run" / "report.html").read_text()
    assert "Time to first token" in page
