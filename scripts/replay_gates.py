"""Replay the refusal gates of full-answer runs with other bases and thresholds.

    .venv/bin/python scripts/replay_gates.py runs/defaults/idkmrc-id-answers-100 runs/defaults/facqa-id-answers-100

For each run folder, every question is prepared again against the run's collection (the
same sources the model saw, retrieval being deterministic), the model's recorded reply is
checked as Kabar checks it, and the grounding and coverage gates are applied with the
sources judged being: ``all`` of them, the ``cited`` ones (the default), or the cited ones
plus the first k. Prints refusal F1, refusal rate and answer F1 per basis, term cap
(``--terms``, ``rag.answer.refusal.COVERAGE_TERMS``), coverage threshold (grounding
threshold 0.5) and confidence threshold (``--confidence``: the model's per-token probability
of its answer, ``KABAR_MIN_CONFIDENCE``, from the log-probabilities that runs made with
``KABAR_MIN_CONFIDENCE`` above 0 record), so a change can be weighed on answerable and
unanswerable sets together without asking the model again. ``--basis`` limits the bases;
``--unweighted`` weighs every question term alike in the coverage gate (Kabar weighs them by
their IDF in the collection, :func:`rag.answer.refusal.term_weights`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.metrics import refusal_scores, strip_citations, token_f1  # noqa: E402
from rag.answer import refusal  # noqa: E402
from rag.answer.brief import brief  # noqa: E402
from rag.answer.citations import verify_citations  # noqa: E402
from rag.answer.refusal import answer_confidence, coverage, grounding, is_refusal  # noqa: E402
from rag.assistant import Assistant  # noqa: E402
from rag.settings import Settings  # noqa: E402

BASES = ("all", "cited", "cited articles", "cited+top1", "cited+top2", "cited+top3")


def basis(name: str, sources: list, cited: set[int]) -> list:
    chosen = [h for n, h in enumerate(sources, start=1) if n in cited]
    if name == "all":
        return sources
    if name == "cited":
        return chosen or sources
    if name == "cited articles":
        docs = {h.chunk.doc_id for h in chosen}
        return [h for h in sources if h.chunk.doc_id in docs] or sources
    k = int(name.rsplit("top", 1)[1])
    return chosen + [h for h in sources[:k] if h not in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--coverage", type=float, nargs="+", default=[0.5, 0.6, 0.75])
    parser.add_argument("--terms", type=int, nargs="+", default=[refusal.COVERAGE_TERMS],
                        help="the most terms a question counts as in the coverage gate")
    parser.add_argument("--confidence", type=float, nargs="+", default=[0.0],
                        help="confidence thresholds (an answer written less surely is declined)")
    parser.add_argument("--basis", nargs="+", choices=BASES, default=list(BASES))
    parser.add_argument("--unweighted", action="store_true",
                        help="every question term weighs the same in the coverage gate (as before IDF weights)")
    parser.add_argument("--raw", action="store_true",
                        help="score the checked reply as the model wrote it, without brief answers")
    args = parser.parse_args()
    prepared = {}
    for run in args.runs:
        meta = json.loads((run / "run.json").read_text())
        kabar = Assistant(Settings.from_env(collection=meta["collection"]))
        records = []
        for line in (run / "questions.jsonl").open():
            q = json.loads(line)
            sources = kabar.prepare(q["question"]).sources
            text, cites, _ = verify_citations(q["model_answer"] or "", sources)
            records.append((q, text, sources, {c.number for c in cites}, kabar.term_weights(q["question"])))
        prepared[run.name] = records
    for name, terms, min_coverage, min_confidence in itertools.product(args.basis, args.terms, args.coverage,
                                                                        args.confidence):
        refusal.COVERAGE_TERMS = terms
        row = f"{name:14s} terms {terms:2d} coverage {min_coverage:.2f} confidence {min_confidence:.2f}"
        for run, records in prepared.items():
            refused, answerable, f1 = [], [], []
            for q, text, sources, cited, weights in records:
                declined = is_refusal(text)
                if not declined:
                    judged = basis(name, sources, cited)
                    sure = answer_confidence([(t, lp) for t, lp in q.get("answer_logprobs") or []])
                    declined = (grounding(text, q["question"], judged) < 0.5
                                or coverage(q["question"], judged, None if args.unweighted else weights) < min_coverage
                                or (sure is not None and sure < min_confidence))
                refused.append(declined)
                answerable.append(q["answerable"])
                if q["answerable"]:
                    shown = strip_citations(text if args.raw else brief(text, q["question"]))
                    f1.append(0.0 if declined else token_f1(shown, q["gold"]["answers"]) or 0.0)
            s = refusal_scores(answerable, refused)
            rf = "-" if s["refusal_f1"] is None else f"{s['refusal_f1']:.3f}"
            row += f" | {run}: refusal F1 {rf}, rate {s['refusal_rate']:.2f}, answer F1 {sum(f1) / len(f1):.3f}"
        print(row)


if __name__ == "__main__":
    main()
