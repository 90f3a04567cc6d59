"""A run's results on disk, and comparing two runs.

A run folder holds::

    questions.jsonl   one QuestionResult per line (question, gold, answer, citations,
                      hits, sources, scores, timings, usage)
    metrics.json      {"overall": {...}, "by_lang": {...}, "by_type": {...}}
    judge.json        the same shape, only with --judge: LLM grades, apart from the exact metrics
    run.json          what ran: set, mode, settings, collection, model, wall time, interrupted
    report.md, report.html

This module reads and writes these files and compares runs; it computes no metric
(:mod:`eval.metrics`) and draws nothing (:mod:`eval.report`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import InputError

QUESTIONS = "questions.jsonl"
METRICS = "metrics.json"
JUDGE = "judge.json"
RUN = "run.json"


@dataclass
class ChunkRef:
    """A retrieved chunk as a result records it (no text: the collection has it)."""

    doc_id: str
    chunk_id: str
    score: float = 0.0


@dataclass
class CitationRef:
    """A citation ``[number]`` resolved to its chunk."""

    number: int
    doc_id: str
    chunk_id: str


@dataclass
class QuestionResult:
    """Everything one question produced, with its gold and scores.

    ``hits`` are the top ranking chunks (:data:`eval.metrics.RANK_DEPTH`); ``sources``
    the chunks that reached the prompt. ``answer``, ``refused`` and ``ttft_ms`` are None
    in retrieval-only runs. ``error`` is set when the question failed; it then has no scores.
    """

    id: str
    question: str
    lang: str
    type: str
    answerable: bool
    gold_answers: list[str] = field(default_factory=list)
    gold_doc_ids: list[str] = field(default_factory=list)
    gold_evidence: list[str] = field(default_factory=list)
    answer: str | None = None
    refused: bool | None = None
    grounding: float | None = None
    coverage: float | None = None
    confidence: float | None = None
    answer_logprobs: list[tuple[str, float]] = field(default_factory=list)
    model_answer: str | None = None
    flags: list[str] = field(default_factory=list)
    citations: list[CitationRef] = field(default_factory=list)
    hits: list[ChunkRef] = field(default_factory=list)
    sources: list[ChunkRef] = field(default_factory=list)
    ranked_docs: list[str] = field(default_factory=list)
    first_gold_rank: int | None = None
    context_tokens: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    retrieval_ms: float = 0.0
    ttft_ms: float | None = None
    total_ms: float = 0.0
    sources_ms: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_estimated: bool = False
    judge: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSONL record: gold, timings and usage grouped."""
        return {
            "id": self.id, "question": self.question, "lang": self.lang, "type": self.type,
            "answerable": self.answerable,
            "gold": {"answers": self.gold_answers, "doc_ids": self.gold_doc_ids, "evidence": self.gold_evidence},
            "answer": self.answer, "refused": self.refused, "grounding": self.grounding,
            "coverage": self.coverage, "confidence": self.confidence,
            "answer_logprobs": [list(t) for t in self.answer_logprobs],
            "model_answer": self.model_answer, "flags": self.flags,
            "citations": [asdict(c) for c in self.citations],
            "hits": [asdict(h) for h in self.hits],
            "sources": [asdict(s) for s in self.sources],
            "ranked_docs": self.ranked_docs, "first_gold_rank": self.first_gold_rank,
            "context_tokens": self.context_tokens,
            "scores": self.scores,
            "timings": {"retrieval_ms": self.retrieval_ms, "sources_ms": self.sources_ms, "ttft_ms": self.ttft_ms,
                        "total_ms": self.total_ms},
            "usage": {"prompt_tokens": self.tokens_in, "completion_tokens": self.tokens_out,
                      "estimated": self.tokens_estimated},
            "judge": self.judge, "error": self.error,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QuestionResult:
        gold, timings, usage = d.get("gold") or {}, d.get("timings") or {}, d.get("usage") or {}
        return cls(
            id=str(d["id"]), question=d.get("question", ""), lang=d.get("lang", ""), type=d.get("type", ""),
            answerable=bool(d.get("answerable", True)),
            gold_answers=list(gold.get("answers") or []), gold_doc_ids=list(gold.get("doc_ids") or []),
            gold_evidence=list(gold.get("evidence") or []),
            answer=d.get("answer"), refused=d.get("refused"), grounding=d.get("grounding"),
            coverage=d.get("coverage"), confidence=d.get("confidence"),
            answer_logprobs=[(str(t), float(lp)) for t, lp in d.get("answer_logprobs") or []],
            model_answer=d.get("model_answer"),
            flags=list(d.get("flags") or []),
            citations=[CitationRef(**c) for c in d.get("citations") or []],
            hits=[ChunkRef(**h) for h in d.get("hits") or []],
            sources=[ChunkRef(**s) for s in d.get("sources") or []],
            ranked_docs=list(d.get("ranked_docs") or []), first_gold_rank=d.get("first_gold_rank"),
            context_tokens=int(d.get("context_tokens") or 0), scores=dict(d.get("scores") or {}),
            retrieval_ms=float(timings.get("retrieval_ms") or 0.0), ttft_ms=timings.get("ttft_ms"),
            total_ms=float(timings.get("total_ms") or 0.0), sources_ms=timings.get("sources_ms"),
            tokens_in=int(usage.get("prompt_tokens") or 0), tokens_out=int(usage.get("completion_tokens") or 0),
            tokens_estimated=bool(usage.get("estimated", False)),
            judge=d.get("judge"), error=d.get("error"),
        )


@dataclass
class RunInfo:
    """What ran, for run.json and the report header."""

    set_name: str
    set_path: str
    mode: str  # "retrieval" or "answers"
    collection: str
    questions_total: int
    questions_sampled: int
    half: str | None = None  # the half of the set that ran (eval.dataset.HALVES), None: all of it
    limit: int | None = None
    seed: int = 0
    workers: int = 1
    embedding_model: str = ""
    llm: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    wall_s: float = 0.0
    questions_s: float = 0.0
    ingest_s: float = 0.0
    collection_reused: bool = False
    finished: int = 0
    interrupted: bool = False
    resumed: int = 0  # questions carried over from an interrupted run (--resume)
    fatal_error: str | None = None
    judge_model: str = ""

    @property
    def answers(self) -> bool:
        return self.mode == "answers"


@dataclass
class Run:
    """A run folder read back."""

    path: Path
    info: RunInfo
    results: list[QuestionResult]
    metrics: dict[str, Any]
    judge: dict[str, Any] | None = None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class ResultWriter:
    """Appends results to ``questions.jsonl`` as they finish, so nothing done is lost."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / QUESTIONS
        self._f = self.path.open("a", encoding="utf-8")

    def write(self, result: QuestionResult) -> None:
        self._f.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def write_results(folder: Path, results: Iterable[QuestionResult]) -> None:
    """Rewrite ``questions.jsonl`` with ``results`` (in the order given)."""
    path = folder / QUESTIONS
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_summary(folder: Path, info: RunInfo, metrics: dict[str, Any], judge: dict[str, Any] | None) -> None:
    _write_json(folder / METRICS, metrics)
    if judge is not None:
        _write_json(folder / JUDGE, judge)
    _write_json(folder / RUN, asdict(info))


def read_results(path: Path) -> list[QuestionResult]:
    results = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                results.append(QuestionResult.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"{path}:{lineno}", f"not a result record: {e}") from None
    return results


def load_run(folder: str | Path) -> Run:
    """A run folder written by ``kabar eval run``."""
    path = Path(folder).expanduser()
    for name in (QUESTIONS, METRICS, RUN):
        if not (path / name).is_file():
            raise InputError(str(path), f"is not a Kabar eval run folder (no {name})")
    try:
        info = RunInfo(**json.loads((path / RUN).read_text(encoding="utf-8")))
        metrics = json.loads((path / METRICS).read_text(encoding="utf-8"))
        judge = json.loads((path / JUDGE).read_text(encoding="utf-8")) if (path / JUDGE).is_file() else None
    except (ValueError, TypeError) as e:
        raise InputError(str(path), f"cannot read the run: {e}") from None
    return Run(path, info, read_results(path / QUESTIONS), metrics, judge)


# -- comparing ---------------------------------------------------------------------------


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
    from eval.metrics import summarize

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


def ordered(results: Sequence[QuestionResult], ids: Sequence[str]) -> list[QuestionResult]:
    """Results in the order of ``ids`` (the question file's order)."""
    pos = {qid: i for i, qid in enumerate(ids)}
    return sorted(results, key=lambda r: pos.get(r.id, len(pos)))
