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
    #: Kabar's reader: its margin over the sources (None: not read, or no span), its best span,
    #: whether the question got the one-fact treatment, and the reader's time.
    reader_margin: float | None = None
    reader_span: str = ""
    one_fact: bool = False
    reader_ms: float | None = None
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
            "reader": {"margin": self.reader_margin, "span": self.reader_span, "one_fact": self.one_fact,
                       "ms": self.reader_ms},
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
            reader_margin=(d.get("reader") or {}).get("margin"), reader_span=(d.get("reader") or {}).get("span") or "",
            one_fact=bool((d.get("reader") or {}).get("one_fact")), reader_ms=(d.get("reader") or {}).get("ms"),
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


def ordered(results: Sequence[QuestionResult], ids: Sequence[str]) -> list[QuestionResult]:
    """Results in the order of ``ids`` (the question file's order)."""
    pos = {qid: i for i, qid in enumerate(ids)}
    return sorted(results, key=lambda r: pos.get(r.id, len(pos)))
