"""``kabar eval``: run question sets, compare runs, redraw reports.

    kabar eval run FOLDER [--retrieval-only] [--half tune|check] [--limit N] [--out DIR [--resume]] [--judge] ...
    kabar eval compare RUN_A RUN_B
    kabar eval report RUN

:func:`register` adds the subcommands to ``kabar``'s parser; it imports nothing heavy
(the runner, Chroma and the models load only when a command runs). Errors are rendered
by ``ui.main.main``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

SUMMARY_KEYS = ("hit@1", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10", "evidence_hit@10",
                "context_doc_recall", "context_evidence_recall", "context_tokens_p50", "em", "f1", "contains",
                "refusal_precision", "refusal_recall", "refusal_f1", "citation_accuracy", "retrieval_ms_p50",
                "latency_ms_p50", "latency_ms_p95", "sources_ms_p50", "ttft_ms_p50", "ttft_ms_p95", "tokens_in_mean",
                "tokens_out_mean")


def register(subparsers: Any) -> None:
    """Add ``eval run``, ``eval compare`` and ``eval report``."""
    p = subparsers.add_parser("eval", help="run question sets and report retrieval and answer quality")
    sub = p.add_subparsers(dest="eval_command", required=True)

    r = sub.add_parser("run", help="run a question set (a folder, or a questions.jsonl against the current collection)",
                       description="Run a question set through Kabar and write a run folder with per-question "
                                   "results, metrics.json and reports.")
    r.add_argument("path", metavar="FOLDER", help="folder with questions.jsonl and corpus.jsonl (or articles/); "
                                                  "or a questions .jsonl file to run against the current collection")
    r.add_argument("--retrieval-only", action="store_true",
                   help="retrieve and assemble the prompt context, without calling the LLM (fast)")
    r.add_argument("--half", choices=("tune", "check"),
                   help="only one half of the set, split by a hash of the question id: tune on one, check on the other")
    r.add_argument("--limit", type=int, help="a fixed random sample of N questions (of the half, with --half)")
    r.add_argument("--seed", type=int, default=0, help="seed of the --limit sample (default 0)")
    r.add_argument("--out", help="the run folder to write (default runs/<set>-<mode>-<time>)")
    r.add_argument("--workers", type=int, default=0,
                   help="questions in parallel (default: 4 for retrieval only and remote LLMs, 1 for a local model)")
    r.add_argument("--judge", action="store_true",
                   help="grade answers with an LLM judge "
                        "(KABAR_JUDGE_BASE_URL, KABAR_JUDGE_MODEL, KABAR_JUDGE_API_KEY)")
    r.add_argument("--rebuild", action="store_true", help="ingest the corpus again even if a cached collection exists")
    r.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out: finished questions are kept, failed ones run again")
    for flag, env in (("top-k", "KABAR_TOP_K"), ("chunk-tokens", "KABAR_CHUNK_TOKENS"),
                      ("chunk-overlap", "KABAR_CHUNK_OVERLAP"), ("context-tokens", "KABAR_CONTEXT_TOKENS"),
                      ("fact-context-tokens", "KABAR_FACT_CONTEXT_TOKENS")):
        r.add_argument(f"--{flag}", type=int, help=f"override {env}")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("compare", help="metric differences between two runs and the questions whose outcome changed")
    c.add_argument("run_a", metavar="RUN_A")
    c.add_argument("run_b", metavar="RUN_B")
    c.add_argument("--groups", action="store_true", help="also compare by language and by type")
    c.add_argument("--max-questions", type=int, default=50, help="changed questions to list (default 50)")
    c.set_defaults(func=cmd_compare)

    rep = sub.add_parser("report", help="write report.md and report.html of a run folder again")
    rep.add_argument("run", metavar="RUN")
    rep.set_defaults(func=cmd_report)


def _settings(args: argparse.Namespace) -> Any:
    from rag.settings import Settings

    return Settings.from_args(args, top_k=args.top_k, chunk_tokens=args.chunk_tokens, chunk_overlap=args.chunk_overlap,
                             context_tokens=args.context_tokens, fact_context_tokens=args.fact_context_tokens)


def _ingest_progress() -> Any:
    """tqdm on a terminal; in a log, a line every 30 seconds."""
    if sys.stderr.isatty():
        return True
    import time

    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 30 or done == total:
            last[0] = now
            print(f"[ingest] {done}/{total} chunks embedded", file=sys.stderr, flush=True)

    return show


def format_summary(metrics: dict[str, Any]) -> str:
    from eval.report import fmt

    overall = metrics.get("overall", {})
    shown = [(k, overall[k]) for k in SUMMARY_KEYS if overall.get(k) is not None]
    head = f"{overall.get('n', 0)} question(s)" + (f", {overall['n_errors']} failed" if overall.get("n_errors") else "")
    return head + "\n" + "\n".join(f"  {k:24} {fmt(v)}" for k, v in shown)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    from eval.dataset import half, load_set, sample
    from eval.runner import Progress, RunOptions, default_out_dir, previous_run, run_eval
    from rag.errors import KabarError

    settings = _settings(args)
    eval_set = load_set(args.path)
    judge = None
    if args.judge:
        from eval.judge import Judge, JudgeSettings

        judge = Judge.from_settings(JudgeSettings.from_settings(settings))
    if args.resume and not args.out:
        raise ValueError("--resume needs --out: the folder of the run to continue")
    out = Path(args.out) if args.out else default_out_dir(eval_set.name, args.retrieval_only)
    options = RunOptions(retrieval_only=args.retrieval_only, limit=args.limit, seed=args.seed, half=args.half,
                         workers=args.workers,
                         rebuild=args.rebuild, resume=args.resume)
    questions = sample(half(eval_set.questions, args.half), args.limit, args.seed)
    before = []
    if args.resume:
        wanted = {q.id for q in questions}
        before = [r for r in previous_run(out, args.retrieval_only)[0] if r.id in wanted]
    progress = Progress(len(questions), answers=not args.retrieval_only, before=before)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    # A terminated run (SIGTERM: a closed session, a job scheduler) keeps what finished, like Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        run = run_eval(eval_set, settings, out, options, judge=judge, on_result=progress,
                       ingest_progress=_ingest_progress(), log=log)
    except KabarError:
        if (out / "metrics.json").is_file():
            log(f"partial results written to {out}")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.close()
    print(format_summary(run.metrics))
    print(f"run folder: {run.path}  (report: {run.path / 'report.html'})")
    if run.info.interrupted:
        print(f"interrupted: {run.info.finished} of {run.info.questions_sampled} question(s) finished and reported",
              file=sys.stderr)
        return 130
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from eval.compare import compare_runs, format_comparison
    from eval.results import load_run

    comparison = compare_runs(load_run(args.run_a), load_run(args.run_b))
    print(format_comparison(comparison, groups=args.groups, max_questions=args.max_questions))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from eval.report import write_reports
    from eval.results import load_run

    md, page = write_reports(load_run(args.run))
    print(f"wrote {md} and {page}")
    return 0
