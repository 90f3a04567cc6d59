"""Evaluation metrics: pure functions, each small enough to check by hand.

Per question, :func:`score_question` turns a :class:`~eval.dataset.Question` and what the
assistant produced (:class:`Outcome`) into a dict of scores; :func:`summarize` averages
them over a run, overall, by ``lang`` and by ``type``. Definitions (docs/EVALUATION.md
repeats them):

Retrieval (questions with gold ``doc_ids`` only; the others are left out and
``n_retrieval`` counts those that are in):
    The top :data:`RANK_DEPTH` retrieved chunks are turned into a ranked list of documents
    by first occurrence (a document ranks by its best chunk). ``hit@k``: a gold document is
    among the first k documents. ``recall@10``: share of gold documents among the first 10.
    ``mrr@10``: 1/rank of the first gold document (0 if none in 10). ``ndcg@10``: binary
    relevance, ideal DCG from min(#gold, 10) relevant documents.
Evidence (questions with ``evidence`` only): ``evidence_hit@k``: one of the first k
    chunks contains a gold sentence, compared after Unicode NFC, whitespace collapsing and
    case folding, as a plain substring. A sentence split across two chunks does not count.
Context (what reached the prompt, after the token budget): ``context_doc_recall``:
    share of gold documents among the prompt's sources; ``context_evidence_recall``: share
    of gold sentences contained in some source chunk.
Answers (answerable questions with references, full-answer runs only): citation markers
    ``[n]`` are removed and a refusal counts as the empty answer; then ``em`` and ``f1``
    (SQuAD: token overlap after :func:`normalize_answer`, best over references) and
    ``contains`` (a normalised reference appears as whole words in the normalised answer).
Refusals (over the whole group): precision = unanswerable among refused; recall = refused
    among unanswerable; F1 of the two. ``None`` where a denominator is zero.
Citations: ``citation_accuracy`` over answerable questions with gold documents that were
    answered (not refused): the answer cites at least one gold document.

Does not call any model: the LLM judge lives in :mod:`eval.judge`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eval.dataset import Question
from rag.answer import is_refusal

if TYPE_CHECKING:
    from eval.results import QuestionResult

#: Chunks retrieved for the ranking metrics, whatever ``top_k`` the chat uses.
RANK_DEPTH = 10
HIT_KS = (1, 5, 10)

RETRIEVAL_KEYS = ("hit@1", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10")
EVIDENCE_KEYS = ("evidence_hit@1", "evidence_hit@5", "evidence_hit@10")
CONTEXT_KEYS = ("context_doc_recall", "context_evidence_recall")
ANSWER_KEYS = ("em", "f1", "contains", "citation_accuracy")
REFUSAL_KEYS = ("refusal_precision", "refusal_recall", "refusal_f1", "refusal_rate")

# SQuAD drops English articles only. Indonesian has no articles; its function words
# ("yang", "di", "ke", "si") carry meaning inside answer spans, so they are kept, as the
# SQuAD-v2 scorer that IDK-MRC reports with keeps them.
_ARTICLES = frozenset({"a", "an", "the"})
_CITATION = re.compile(r"\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]")


# -- answers -----------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """Lowercase, punctuation and symbols to spaces, drop a/an/the, collapse whitespace.

    Unlike SQuAD, punctuation becomes a space instead of vanishing, so "GA-181" and the
    space-tokenised "GA - 181" of IndoNLU normalise alike; "Rp2,5" and "Rp 2.5" too.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(t for t in text.split() if t not in _ARTICLES)


def strip_citations(text: str) -> str:
    """The answer without its ``[n]`` citation markers."""
    return _CITATION.sub(" ", text)


def exact_match(prediction: str, references: Sequence[str]) -> float | None:
    """1.0 if the normalised prediction equals a normalised reference; None without references."""
    if not references:
        return None
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(r) for r in references))


def _f1(pred_tokens: list[str], ref_tokens: list[str]) -> float:
    if not pred_tokens or not ref_tokens:
        return float(pred_tokens == ref_tokens)
    common: dict[str, int] = defaultdict(int)
    for t in ref_tokens:
        common[t] += 1
    same = 0
    for t in pred_tokens:
        if common[t] > 0:
            common[t] -= 1
            same += 1
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float | None:
    """SQuAD token F1, best over references; None without references."""
    if not references:
        return None
    pred = normalize_answer(prediction).split()
    return max(_f1(pred, normalize_answer(r).split()) for r in references)


def contains_reference(prediction: str, references: Sequence[str]) -> float | None:
    """1.0 if a normalised reference occurs as whole words in the normalised prediction.

    References that normalise to nothing (only punctuation) are ignored.
    """
    refs = [n for n in (normalize_answer(r) for r in references) if n]
    if not refs:
        return None
    pred = f" {normalize_answer(prediction)} "
    return float(any(f" {r} " in pred for r in refs))


# -- retrieval ---------------------------------------------------------------------------


def rank_documents(chunk_doc_ids: Iterable[str]) -> list[str]:
    """Document ids in order of their best (first) chunk, without repeats."""
    return list(dict.fromkeys(chunk_doc_ids))


def _gold(gold: Iterable[str]) -> set[str]:
    g = set(gold)
    if not g:
        raise ValueError("gold documents must not be empty (leave such questions out of retrieval metrics)")
    return g


def hit_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1.0 if a gold document is among the first ``k`` ranked documents."""
    g = _gold(gold)
    return float(any(d in g for d in ranked[:k]))


def recall_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """Share of the gold documents among the first ``k``."""
    g = _gold(gold)
    return len(g.intersection(ranked[:k])) / len(g)


def first_gold_rank(ranked: Sequence[str], gold: Iterable[str]) -> int | None:
    """1-based rank of the first gold document, or None."""
    g = set(gold)
    for i, d in enumerate(ranked, start=1):
        if d in g:
            return i
    return None


def mrr_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """Reciprocal rank of the first gold document within ``k`` (0.0 if none)."""
    rank = first_gold_rank(ranked[:k], _gold(gold))
    return 1.0 / rank if rank else 0.0


def ndcg_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """nDCG@k with binary relevance: sum 1/log2(rank+1) over gold hits, over the ideal."""
    g = _gold(gold)
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(ranked[:k], start=1) if d in g)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(g), k) + 1))
    return dcg / ideal


# -- evidence and context ----------------------------------------------------------------


def normalize_span(text: str) -> str:
    """How evidence is compared with chunk text: NFC, whitespace collapsed, case folded."""
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def evidence_recall(chunk_texts: Sequence[str], evidence: Sequence[str]) -> float:
    """Share of evidence sentences contained in at least one of the chunks."""
    sentences = [s for s in (normalize_span(e) for e in evidence) if s]
    if not sentences:
        raise ValueError("evidence must not be empty")
    chunks = [normalize_span(t) for t in chunk_texts]
    return sum(any(s in c for c in chunks) for s in sentences) / len(sentences)


def evidence_hit_at_k(chunk_texts: Sequence[str], evidence: Sequence[str], k: int) -> float:
    """1.0 if one of the first ``k`` chunks contains an evidence sentence."""
    return float(evidence_recall(chunk_texts[:k], evidence) > 0)


def context_doc_recall(source_doc_ids: Iterable[str], gold: Iterable[str]) -> float:
    """Share of the gold documents with at least one chunk in the prompt."""
    g = _gold(gold)
    return len(g.intersection(source_doc_ids)) / len(g)


# -- one question ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the assistant produced for one question, as the metrics need it.

    ``ranked_*``: the top :data:`RANK_DEPTH` retrieved chunks; ``source_*``: the chunks in
    the prompt. ``answer`` is None in retrieval-only runs.
    """

    ranked_doc_ids: list[str]
    ranked_texts: list[str]
    source_doc_ids: list[str]
    source_texts: list[str]
    answer: str | None = None
    refused: bool = False
    cited_doc_ids: list[str] = field(default_factory=list)


def score_question(q: Question, o: Outcome) -> dict[str, float]:
    """Every metric that applies to this question (see the module docstring)."""
    scores: dict[str, float] = {}
    if q.doc_ids:
        ranked = rank_documents(o.ranked_doc_ids)
        for k in HIT_KS:
            scores[f"hit@{k}"] = hit_at_k(ranked, q.doc_ids, k)
        scores["recall@10"] = recall_at_k(ranked, q.doc_ids, 10)
        scores["mrr@10"] = mrr_at_k(ranked, q.doc_ids, 10)
        scores["ndcg@10"] = ndcg_at_k(ranked, q.doc_ids, 10)
        scores["context_doc_recall"] = context_doc_recall(o.source_doc_ids, q.doc_ids)
    if any(normalize_span(e) for e in q.evidence):
        for k in HIT_KS:
            scores[f"evidence_hit@{k}"] = evidence_hit_at_k(o.ranked_texts, q.evidence, k)
        scores["context_evidence_recall"] = evidence_recall(o.source_texts, q.evidence)
    if o.answer is None:
        return scores
    prediction = "" if o.refused else strip_citations(o.answer)
    if q.answerable and q.answers:
        for key, fn in (("em", exact_match), ("f1", token_f1), ("contains", contains_reference)):
            value = fn(prediction, q.answers)
            if value is not None:
                scores[key] = value
    if q.answerable and q.doc_ids and not o.refused:
        scores["citation_accuracy"] = float(bool(set(o.cited_doc_ids) & set(q.doc_ids)))
    return scores


# -- a run -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linear between closest ranks (NumPy's default)."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def refusal_scores(answerable: Sequence[bool], refused: Sequence[bool]) -> dict[str, float | None]:
    """Precision, recall and F1 of declining, treating "unanswerable" as the positive class."""
    if len(answerable) != len(refused):
        raise ValueError(f"{len(answerable)} answerable flags but {len(refused)} refused flags")
    true_pos = sum(1 for a, r in zip(answerable, refused, strict=True) if r and not a)
    n_refused = sum(1 for r in refused if r)
    n_unanswerable = sum(1 for a in answerable if not a)
    precision = true_pos / n_refused if n_refused else None
    recall = true_pos / n_unanswerable if n_unanswerable else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"refusal_precision": precision, "refusal_recall": recall, "refusal_f1": f1,
            "refusal_rate": n_refused / len(refused) if refused else None}


CURVE_THRESHOLDS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0)
CURVE_GROUNDING = (0.0, 0.5)


def refusal_curve(results: Sequence[QuestionResult], thresholds: Sequence[float] = CURVE_THRESHOLDS,
                  groundings: Sequence[float] = CURVE_GROUNDING) -> list[dict[str, float | None]]:
    """Refusal F1 against answer F1 as Kabar's two refusal gates vary.

    Replays each full answer: the model's own reply (``model_answer``) is kept when its
    ``grounding`` reaches ``min_grounding`` (``KABAR_MIN_GROUNDING``) and its ``coverage``
    reaches ``min_coverage`` (``KABAR_MIN_COVERAGE``), and declined otherwise; a reply that
    was itself a refusal stays one. One point per pair of thresholds. ``answer_f1`` is the
    mean token F1 over the answerable questions (a refusal scores 0). Empty when the run has
    no answers with a grounding score; a run recorded before coverage existed replays as
    fully covered.
    """
    rows = [r for r in results if not r.error and r.grounding is not None and r.model_answer is not None]
    if not rows:
        return []
    # Scored once per answer; each threshold pair only decides which answers are kept.
    own_refusal = [is_refusal(r.model_answer or "") for r in rows]
    f1 = [token_f1(strip_citations(r.model_answer or ""), r.gold_answers) or 0.0 for r in rows]
    curve = []
    for g in groundings:
        for t in thresholds:
            refused = [own or (r.grounding or 0.0) < g or (1.0 if r.coverage is None else r.coverage) < t
                       for r, own in zip(rows, own_refusal, strict=True)]
            f1s = [0.0 if ref else score for r, ref, score in zip(rows, refused, f1, strict=True)
                   if r.answerable and r.gold_answers]
            point: dict[str, float | None] = {"min_grounding": g, "min_coverage": t}
            point.update(refusal_scores([r.answerable for r in rows], refused))
            point["answer_f1"] = _mean(f1s)
            curve.append(point)
    return curve


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate(results: Sequence[QuestionResult], answers: bool) -> dict[str, Any]:
    """Averages, counts, refusal scores and percentiles over ``results``.

    Questions that failed (``error``) are only counted, in ``n_errors``. ``answers``
    says whether this was a full-answer run: the answer keys appear only then.
    """
    ok = [r for r in results if not r.error]
    out: dict[str, Any] = {
        "n": len(ok),
        "n_errors": len(results) - len(ok),
        "n_retrieval": sum(1 for r in ok if "hit@1" in r.scores),
        "n_evidence": sum(1 for r in ok if "evidence_hit@1" in r.scores),
        "n_answerable": sum(1 for r in ok if r.answerable),
        "n_unanswerable": sum(1 for r in ok if not r.answerable),
    }
    keys = RETRIEVAL_KEYS + EVIDENCE_KEYS + CONTEXT_KEYS + (ANSWER_KEYS if answers else ())
    for key in keys:
        out[key] = _mean([r.scores[key] for r in ok if key in r.scores])
    if answers:
        out.update(refusal_scores([r.answerable for r in ok], [bool(r.refused) for r in ok]))
    context = [float(r.context_tokens) for r in ok]
    out["context_tokens_p50"] = percentile(context, 50)
    out["context_tokens_p95"] = percentile(context, 95)
    timed = {"retrieval_ms": [r.retrieval_ms for r in ok], "latency_ms": [r.total_ms for r in ok]}
    if answers:
        timed["sources_ms"] = [r.sources_ms for r in ok if r.sources_ms is not None]
        timed["ttft_ms"] = [r.ttft_ms for r in ok if r.ttft_ms is not None]
    for name, values in timed.items():
        out[f"{name}_p50"] = percentile(values, 50)
        out[f"{name}_p95"] = percentile(values, 95)
    if answers:
        out["tokens_in_mean"] = _mean([float(r.tokens_in) for r in ok])
        out["tokens_out_mean"] = _mean([float(r.tokens_out) for r in ok])
        out["tokens_in_total"] = sum(r.tokens_in for r in ok)
        out["tokens_out_total"] = sum(r.tokens_out for r in ok)
    return out


def _grouped(results: Sequence[QuestionResult], attr: str) -> dict[str, list[QuestionResult]]:
    groups: dict[str, list[QuestionResult]] = defaultdict(list)
    for r in results:
        groups[str(getattr(r, attr))].append(r)
    return dict(sorted(groups.items()))


def summarize(results: Sequence[QuestionResult], answers: bool) -> dict[str, Any]:
    """``{"overall": {...}, "by_lang": {lang: {...}}, "by_type": {type: {...}}}``."""
    return {
        "overall": aggregate(results, answers),
        "by_lang": {k: aggregate(v, answers) for k, v in _grouped(results, "lang").items()},
        "by_type": {k: aggregate(v, answers) for k, v in _grouped(results, "type").items()},
    }


def _judge_aggregate(results: Sequence[QuestionResult]) -> dict[str, Any]:
    graded = [r.judge for r in results if r.judge and not r.error]
    out: dict[str, Any] = {"n_judged": len(graded)}
    for key in ("correct", "faithful"):
        out[f"judge_{key}"] = _mean([float(g[key]) for g in graded if g.get(key) is not None])
    return out


def summarize_judge(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """The LLM judge's grades, shaped like :func:`summarize`, kept apart from the exact metrics."""
    return {
        "overall": _judge_aggregate(results),
        "by_lang": {k: _judge_aggregate(v) for k, v in _grouped(results, "lang").items()},
        "by_type": {k: _judge_aggregate(v) for k, v in _grouped(results, "type").items()},
    }
