"""Running a question set through the Python API: :func:`run_eval`.

1. The set's corpus goes into its own collection, reused while nothing that shapes it
   changes (:mod:`eval.collection`).
2. Each question goes through :class:`rag.Assistant` like a chat question:
   ``prepare`` (retrieval only: the exact context an answer would get, without the LLM)
   or ``stream`` (full answers). The ranking metrics need the top 10 chunks; when the
   chat's ``top_k`` is smaller they come from one more ``retrieve`` call, so the context
   stays exactly what the chat would use.
3. Questions run on a thread pool: several workers for retrieval only and for remote LLMs,
   one for a local model (llama.cpp answers one request at a time; queueing would only
   inflate latencies). Latencies are measured per question, so they include waiting for
   the shared embedder when several workers run.
4. Results are appended to ``questions.jsonl`` as they finish. Ctrl-C stops: queued
   questions are cancelled, an answer in flight is dropped (the local server is stopped to
   end it at once), finished ones are kept, scored and reported (``interrupted`` in
   run.json). A second Ctrl-C quits without the summary.

What is scored is :mod:`eval.metrics`'s business; the files are :mod:`eval.results`'s;
the pictures :mod:`eval.report`'s.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval import metrics
from eval.collection import EvalCollection, ensure_collection
from eval.dataset import EvalSet, Question, half, sample
from eval.results import (
    QUESTIONS,
    RUN,
    ChunkRef,
    CitationRef,
    QuestionResult,
    ResultWriter,
    Run,
    RunInfo,
    ordered,
    read_results,
    write_results,
    write_summary,
)
from rag.answer import format_source
from rag.assistant import Assistant
from rag.errors import ConfigError, EmbeddingError, InputError, KabarError, LLMUnavailableError, ModelError, StoreError
from rag.models import Embedder, OpenAIChat, make_embedder
from rag.settings import Settings
from rag.tokens import count_tokens
from rag.types import Answer, Hit

if TYPE_CHECKING:
    from eval.judge import Judge

#: Errors that no later question would escape: the run stops (keeping what finished).
FATAL = (LLMUnavailableError, StoreError, EmbeddingError, ConfigError, ModelError)


# -- one question ------------------------------------------------------------------------


class _Abandoned(Exception):
    """A question stopped midway because the run is stopping."""


def _refs(hits: Sequence[Hit]) -> list[ChunkRef]:
    return [ChunkRef(h.chunk.doc_id, h.chunk.id, round(h.score, 5)) for h in hits]


def context_tokens(sources: Sequence[Hit]) -> int:
    """Tokens of the source blocks in the prompt, as the budget counts them."""
    return sum(count_tokens(format_source(i, h)) for i, h in enumerate(sources, start=1))


def _reader_fields(prep: Any, answer: Answer | None) -> dict[str, Any]:
    """What the reader found, from the prepared question (retrieval-only) or the answer."""
    findings = prep.findings if prep is not None else None
    if answer is not None:
        margin, span, one_fact, read_s = answer.reader_margin, answer.reader_span, answer.one_fact, answer.reader_s
    elif findings is not None:
        best = findings.best
        margin, span, one_fact, read_s = findings.margin, best.text if best else "", prep.one_fact, findings.read_s
    else:
        return {}
    return {"reader_margin": margin if margin is not None and math.isfinite(margin) else None,
            "reader_span": span, "one_fact": one_fact,
            "reader_ms": round(read_s * 1000, 2) if read_s is not None else None}


def run_question(assistant: Assistant, q: Question, answers: bool, judge: Judge | None = None,
                 stop: threading.Event | None = None) -> QuestionResult:
    """Ask one question through the Python API and score it."""
    if stop is not None and stop.is_set():
        raise _Abandoned(q.id)
    started = time.perf_counter()
    answer: Answer | None = None
    if answers:
        stream = assistant.stream(q.question)
        try:
            for item in stream:
                if stop is not None and stop.is_set():
                    raise _Abandoned(q.id)
                if isinstance(item, Answer):
                    answer = item
        finally:
            stream.close()
        assert answer is not None
        hits, sources = answer.hits, answer.sources
        t = answer.timings
        retrieval_s, sources_s, ttft_s, total_s = t.retrieval_s, t.sources_s, t.first_token_s, t.total_s
        prep = None
    else:
        prep = assistant.prepare(q.question)
        total_s = time.perf_counter() - started
        hits, sources, retrieval_s, sources_s, ttft_s = prep.hits, prep.sources, prep.retrieval_s, None, None
    if assistant.settings.top_k >= metrics.RANK_DEPTH:
        ranking = hits[: metrics.RANK_DEPTH]
    else:
        ranking = assistant.retrieve(q.question, metrics.RANK_DEPTH)
    cited = answer.citations if answer else []
    outcome = metrics.Outcome(
        ranked_doc_ids=[h.chunk.doc_id for h in ranking], ranked_texts=[h.chunk.text for h in ranking],
        source_doc_ids=[h.chunk.doc_id for h in sources], source_texts=[h.chunk.text for h in sources],
        answer=answer.text if answer else None, refused=bool(answer and answer.refused),
        cited_doc_ids=[c.doc_id for c in cited],
    )
    ranked_docs = metrics.rank_documents(outcome.ranked_doc_ids)
    result = QuestionResult(
        id=q.id, question=q.question, lang=q.lang, type=q.type, answerable=q.answerable,
        gold_answers=q.answers, gold_doc_ids=q.doc_ids, gold_evidence=q.evidence,
        answer=outcome.answer, refused=answer.refused if answer else None,
        grounding=answer.grounding if answer else None, coverage=answer.coverage if answer else None,
        confidence=answer.confidence if answer else None,
        **_reader_fields(prep, answer),
        answer_logprobs=list(answer.usage.logprobs) if answer else [],
        model_answer=answer.model_text if answer else None,
        flags=list(answer.flags) if answer else [],
        citations=[CitationRef(c.number, c.doc_id, c.chunk_id) for c in cited],
        hits=_refs(ranking), sources=_refs(sources), ranked_docs=ranked_docs,
        first_gold_rank=metrics.first_gold_rank(ranked_docs, q.doc_ids),
        context_tokens=context_tokens(sources), scores=metrics.score_question(q, outcome),
        retrieval_ms=round(retrieval_s * 1000, 2), ttft_ms=round(ttft_s * 1000, 2) if ttft_s is not None else None,
        total_ms=round(total_s * 1000, 2), sources_ms=round(sources_s * 1000, 2) if sources_s is not None else None,
        tokens_in=answer.usage.prompt_tokens if answer else 0,
        tokens_out=answer.usage.completion_tokens if answer else 0,
        tokens_estimated=answer.usage.estimated if answer else False,
    )
    if judge is not None and answer is not None:
        try:
            result.judge = judge.grade(q.question, q.answers, answer.text, [c.text for c in cited], answer.refused)
        except KabarError as e:
            result.judge = {"correct": None, "faithful": None, "reason": f"judge failed: {e}"}
    return result


def failed_result(q: Question, error: BaseException) -> QuestionResult:
    return QuestionResult(id=q.id, question=q.question, lang=q.lang, type=q.type, answerable=q.answerable,
                          gold_answers=q.answers, gold_doc_ids=q.doc_ids, gold_evidence=q.evidence,
                          error=f"{type(error).__name__}: {error}")


# -- progress ----------------------------------------------------------------------------


def running_metrics(results: Sequence[QuestionResult], answers: bool) -> dict[str, float]:
    """The few numbers the progress bar shows as questions finish."""
    ok = [r for r in results if not r.error]
    keys = ("hit@10", "mrr@10", "context_doc_recall") + (("contains", "f1") if answers else ())
    shown: dict[str, float] = {}
    for key in keys:
        values = [r.scores[key] for r in ok if key in r.scores]
        if values:
            shown[key] = sum(values) / len(values)
    if answers and any(not r.answerable for r in ok):
        shown["refusal_recall"] = sum(1 for r in ok if not r.answerable and r.refused) / sum(
            1 for r in ok if not r.answerable)
    return shown


class Progress:
    """A tqdm bar on a terminal; elsewhere (logs, nohup) a line every ``every_s`` seconds."""

    def __init__(self, total: int, answers: bool, stream: Any = None, every_s: float = 30.0,
                 before: Sequence[QuestionResult] = ()) -> None:
        self.total, self.answers, self.every_s = total, answers, every_s
        self.stream = stream or sys.stderr
        self.done: list[QuestionResult] = list(before)  # a resumed run's results count too
        self._new = 0
        self.started = self._last = time.monotonic()
        self._bar = None
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=len(self.done), unit="q", desc="eval", file=self.stream,
                             dynamic_ncols=True)

    def __call__(self, result: QuestionResult) -> None:
        if not self._new:  # the clock starts with the questions, not with the ingestion before them
            self.started = self._last = time.monotonic()
        self._new += 1
        self.done.append(result)
        shown = running_metrics(self.done, self.answers)
        errors = sum(1 for r in self.done if r.error)
        if errors:
            shown["errors"] = errors
        if self._bar is not None:
            self._bar.set_postfix({k: round(v, 3) for k, v in shown.items()}, refresh=False)
            self._bar.update(1)
            return
        now = time.monotonic()
        if now - self._last >= self.every_s or len(self.done) == self.total:
            self._last = now
            rate = (self._new - 1) / max(now - self.started, 1e-9)
            text = " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())
            print(f"[eval] {len(self.done)}/{self.total} {text} ({rate:.2f} q/s)", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# -- a run -------------------------------------------------------------------------------


@dataclass
class RunOptions:
    """How to run a set; see ``kabar eval run --help``."""

    retrieval_only: bool = False
    limit: int | None = None
    seed: int = 0
    half: str | None = None  # "tune" or "check": one half of the set (eval.dataset.half)
    workers: int = 0  # 0: chosen from the backend
    rebuild: bool = False
    resume: bool = False  # continue the interrupted run in the out folder


def default_workers(retrieval_only: bool, settings: Settings, llm: OpenAIChat | None) -> int:
    if retrieval_only:
        return min(4, os.cpu_count() or 1)
    base_url = llm.base_url if llm is not None else settings.llm_base_url
    local = (llm is None and settings.local_llm) or any(h in base_url for h in ("127.0.0.1", "localhost"))
    return 1 if local else 4


def default_out_dir(set_name: str, retrieval_only: bool, root: Path = Path("runs")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", set_name).strip("-") or "set"
    return root / f"{safe}-{'retrieval' if retrieval_only else 'answers'}-{stamp}"


def recorded_settings(settings: Settings) -> dict[str, Any]:
    """Every setting that shapes the results, for run.json; keys (``repr=False``) never."""
    skip = {"data_dir", "model_dir", "collection", "chroma_host", "chroma_port", "llm_port", "max_file_mb"}
    recorded = {f.name: getattr(settings, f.name) for f in fields(settings) if f.repr and f.name not in skip}
    return {k: str(v) if isinstance(v, Path) else v for k, v in recorded.items()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_out(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(str(out_dir), "already exists and is not empty; pick another --out or remove it")


# Settings that change timings only: a run may be resumed with other values.
_TIMING_ONLY = {"llm_threads", "llm_timeout_s"}


def previous_run(out_dir: Path, retrieval_only: bool) -> tuple[list[QuestionResult], RunInfo | None]:
    """What an interrupted run in ``out_dir`` finished, for ``--resume`` (failed questions run again)."""
    path = out_dir / QUESTIONS
    if not path.is_file():
        raise InputError(str(out_dir), "holds no questions.jsonl to resume; drop --resume to start a run there")
    info = None
    if (out_dir / RUN).is_file():
        try:
            info = RunInfo(**json.loads((out_dir / RUN).read_text(encoding="utf-8")))
        except (ValueError, TypeError) as e:
            raise InputError(str(out_dir / RUN), f"cannot read the run to resume: {e}") from None
    done = {r.id: r for r in read_results(path) if not r.error}
    mode = "retrieval" if retrieval_only else "answers"
    modes = {info.mode} if info else {"retrieval" if r.answer is None else "answers" for r in done.values()}
    if modes - {mode}:
        raise InputError(str(out_dir), f"holds a {'/'.join(sorted(modes))} run; resume it in the same mode")
    return list(done.values()), info


def _check_resumable(out_dir: Path, prior: RunInfo | None, info: RunInfo) -> None:
    if prior is None:
        return
    same = ((prior.set_name, prior.half, prior.limit, prior.seed, prior.collection)
            == (info.set_name, info.half, info.limit, info.seed, info.collection))
    changed = sorted(k for k in set(prior.settings) & set(info.settings)
                     if k not in _TIMING_ONLY and prior.settings[k] != info.settings[k])
    if not same or changed:
        what = ", ".join(changed) or "the set, its sample, or its collection (corpus, chunking, embedding)"
        raise InputError(str(out_dir), f"was run with other settings ({what}); resume it with the same ones, "
                                       "or start a new run")


@dataclass
class _Plan:
    """Which questions a run asks: the sample, and of it what an earlier run already did."""

    questions: list[Question]
    todo: list[Question]
    prior: list[QuestionResult]
    prior_info: RunInfo | None


def run_eval(eval_set: EvalSet, settings: Settings, out_dir: Path, options: RunOptions | None = None, *,
             embedder: Embedder | None = None, llm: OpenAIChat | None = None, judge: Judge | None = None,
             on_result: Callable[[QuestionResult], None] | None = None,
             ingest_progress: Callable[[int, int], None] | bool = False,
             log: Callable[[str], None] | None = None) -> Run:
    """Run ``eval_set`` and write the run folder ``out_dir``; see the module docstring.

    ``embedder`` and ``llm`` replace the ones the settings would make (tests pass the
    deterministic embedder or the shared local server). ``on_result`` sees each finished
    question (the progress bar). Fatal errors are raised after what finished is written.
    Steps: plan (sample, resume), build (the collection), start (the models), ask, report.
    """
    options = options or RunOptions()
    say = log or (lambda _msg: None)
    if judge is not None and options.retrieval_only:
        raise ConfigError("--judge grades answers; it cannot be used with --retrieval-only")
    plan = _plan_run(eval_set, out_dir, options)
    embedder = embedder or make_embedder(settings)
    started_at = _now()
    t0 = time.perf_counter()
    collection = _build(eval_set, settings, embedder, options, ingest_progress, say)
    workers = options.workers or default_workers(options.retrieval_only, settings, llm)
    info = RunInfo(set_name=eval_set.name, set_path=str(eval_set.path),
                   mode="retrieval" if options.retrieval_only else "answers",
                   collection=collection.settings.collection, questions_total=len(eval_set.questions),
                   questions_sampled=len(plan.questions), half=options.half, limit=options.limit, seed=options.seed,
                   workers=workers, embedding_model=embedder.model_id, settings=recorded_settings(settings),
                   started_at=started_at, ingest_s=round(collection.ingest_s, 2),
                   collection_reused=collection.reused, resumed=len(plan.prior))
    _check_resumable(out_dir, plan.prior_info, info)
    assistant = Assistant(collection.settings, store=collection.store, embedder=embedder, llm=llm)
    _start(assistant, info, plan.todo, llm, judge, say)
    say(f"{len(plan.todo)} question(s)" + (f" ({len(plan.prior)} done before)" if plan.prior else "")
        + f", {workers} worker(s), {'retrieval only' if options.retrieval_only else 'full answers'}")
    results, fatal, questions_s = _ask(assistant, plan, out_dir, options, info, judge, workers, on_result)
    info.questions_s = round(questions_s + (plan.prior_info.questions_s if plan.prior_info else 0.0), 2)
    info.wall_s = round(time.perf_counter() - t0 + (plan.prior_info.wall_s if plan.prior_info else 0.0), 2)
    run = _report(out_dir, info, plan, results, fatal, not options.retrieval_only, judge)
    if fatal is not None:
        raise fatal
    return run


def _plan_run(eval_set: EvalSet, out_dir: Path, options: RunOptions) -> _Plan:
    """The sampled questions, less those a resumed run already finished."""
    questions = sample(half(eval_set.questions, options.half), options.limit, options.seed)
    prior: list[QuestionResult] = []
    prior_info: RunInfo | None = None
    if options.resume:
        prior, prior_info = previous_run(out_dir, options.retrieval_only)
        wanted = {q.id for q in questions}
        prior = [r for r in prior if r.id in wanted]
    else:
        _check_out(out_dir)
    done_ids = {r.id for r in prior}
    return _Plan(questions, [q for q in questions if q.id not in done_ids], prior, prior_info)


def _build(eval_set: EvalSet, settings: Settings, embedder: Embedder, options: RunOptions,
           ingest_progress: Callable[[int, int], None] | bool, say: Callable[[str], None]) -> EvalCollection:
    """The set's collection, reused from the cache or ingested now."""
    collection = ensure_collection(eval_set, settings, embedder, options.rebuild, ingest_progress)
    for note in collection.notes:
        say(f"note: {note}")
    say(f"collection {collection.settings.collection}: "
        + ("reused" if collection.reused else f"ingested in {collection.ingest_s:.1f}s")
        + f" ({collection.store.count()} chunks)")
    return collection


def _start(assistant: Assistant, info: RunInfo, todo: Sequence[Question], llm: OpenAIChat | None,
           judge: Judge | None, say: Callable[[str], None]) -> None:
    """The models up and warm before any question is timed; nothing is written until then,
    so a failure here leaves no half run folder."""
    try:
        if info.mode == "answers":
            say(f"LLM: {assistant.describe_llm() if llm is None else llm.model + ' at ' + llm.where}")
            info.llm = assistant.llm.model  # starts the local server before any question is timed
            if judge is not None:
                info.judge_model = judge.model
        _warm_up(assistant, todo)
    except BaseException:
        assistant.close()
        raise


def _ask(assistant: Assistant, plan: _Plan, out_dir: Path, options: RunOptions, info: RunInfo, judge: Judge | None,
         workers: int, on_result: Callable[[QuestionResult], None] | None,
         ) -> tuple[list[QuestionResult], BaseException | None, float]:
    """Every question still to do, each result written as it finishes; the results (earlier
    ones included), a fatal error if one stopped the run, and the seconds the questions took."""
    answers = info.mode == "answers"
    out_dir.mkdir(parents=True, exist_ok=True)
    if options.resume:
        write_results(out_dir, plan.prior)  # without the failed ones, which run again
    results: list[QuestionResult] = list(plan.prior)
    fatal: BaseException | None = None
    writer = ResultWriter(out_dir)
    stop = threading.Event()
    t1 = time.perf_counter()
    try:
        # On Ctrl-C, stopping the local server ends an answer in flight at once instead of
        # waiting for it (its prompt alone can take a minute on a busy machine).
        fatal = _run_all(assistant, plan.todo, answers, judge, workers, stop, results, writer, on_result,
                         abort=assistant.close if answers else None)
    except KeyboardInterrupt:
        info.interrupted = True
    finally:
        writer.close()
        assistant.close()
    if isinstance(fatal, KeyboardInterrupt):
        info.interrupted, fatal = True, None
    return results, fatal, time.perf_counter() - t1


def _report(out_dir: Path, info: RunInfo, plan: _Plan, results: list[QuestionResult], fatal: BaseException | None,
            answers: bool, judge: Judge | None) -> Run:
    """The run folder's results, summary and reports, in the question file's order."""
    from eval.report import write_reports

    info.finished = len(results)
    if plan.prior_info is not None:
        info.started_at = plan.prior_info.started_at
    info.fatal_error = f"{type(fatal).__name__}: {fatal}" if fatal else None
    results = ordered(results, [q.id for q in plan.questions])
    write_results(out_dir, results)
    summary = metrics.summarize(results, answers)
    judged = metrics.summarize_judge(results) if judge is not None else None
    write_summary(out_dir, info, summary, judged)
    run = Run(out_dir, info, results, summary, judged)
    write_reports(run)
    return run


def _warm_up(assistant: Assistant, questions: Sequence[Question]) -> None:
    """Load the embedder, the index, the stemmers and the tokenizer before anything is timed."""
    first_by_lang = {q.lang: q for q in reversed(questions)}
    for q in first_by_lang.values():
        assistant.prepare(q.question)


def _run_all(assistant: Assistant, questions: Sequence[Question], answers: bool, judge: Judge | None,
             workers: int, stop: threading.Event, results: list[QuestionResult], writer: ResultWriter,
             on_result: Callable[[QuestionResult], None] | None,
             abort: Callable[[], None] | None = None) -> BaseException | None:
    """Run the questions on a pool; returns a fatal error (or Ctrl-C) instead of raising it."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="kabar-eval")
    futures: dict[Future[QuestionResult], Question] = {
        pool.submit(run_question, assistant, q, answers, judge, stop): q for q in questions
    }
    collected: set[Future[QuestionResult]] = set()

    def collect(fut: Future[QuestionResult]) -> BaseException | None:
        collected.add(fut)
        q = futures[fut]
        try:
            result = fut.result()
        except _Abandoned:
            return None
        except FATAL as e:
            return e
        except KabarError as e:
            result = failed_result(q, e)
        results.append(result)
        writer.write(result)
        if on_result is not None:
            on_result(result)
        return None

    outcome: BaseException | None = None
    try:
        for fut in as_completed(futures):
            outcome = collect(fut)
            if outcome is not None:
                break
    except KeyboardInterrupt as e:
        outcome = e
        stop.set()
        for fut in futures:  # before abort(): no queued question may start (and restart the server)
            fut.cancel()
        if abort is not None:
            abort()
    except BaseException as e:  # a bug: stop the pool, keep what finished, then raise
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise e
    stop.set()
    pool.shutdown(wait=True, cancel_futures=True)
    # Questions that finished while stopping are kept (retrieval-only ones finish quickly).
    for fut in futures:
        if fut not in collected and fut.done() and not fut.cancelled():
            try:
                if fut.exception() is None:
                    collect(fut)
            except BaseException:
                pass
    return outcome
