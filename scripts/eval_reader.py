"""Kabar's reader alone, on gold paragraphs (the MRC setting): EM, F1, no-answer accuracy.

    .venv/bin/python scripts/eval_reader.py ../shared/data/idkmrc-id ../shared/data/facqa-id
    .venv/bin/python scripts/eval_reader.py ../shared/data/idkmrc-id --weights /tmp/r/reader.npz --out /tmp/mrc

Each question is read with its own paragraph only (no retrieval), as the IDK-MRC paper
(Putri and Oh, EMNLP 2022) scores its models. The reader answers with its best span when
the span outscores "no answer" by more than a threshold, else it answers nothing; an
unanswerable question answered with nothing scores EM = F1 = 1 (SQuAD 2.0's rule).

The threshold is chosen on the tuning half of the first set that has unanswerable
questions (the one maximising its F1) and reported, unchanged, on both halves of every
set; the threshold 0 (the model's own decision) is reported beside it.

IDK-MRC's unanswerable dev questions carry no paragraph id. Their paragraph is the one of
the answerable question whose id theirs extends (``X-unans-...`` was written from X's
paragraph), else the paragraph sharing most of the question's rare words.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.dataset import HALVES, half_of, load_set  # noqa: E402
from eval.metrics import exact_match, percentile, refusal_scores, token_f1  # noqa: E402
from rag.models.e5 import E5Numpy  # noqa: E402
from rag.models.reader import Reader  # noqa: E402

_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def gold_paragraphs(questions: list, docs: dict[str, str]) -> dict[str, str]:
    """Question id -> the id of the paragraph it is read against."""
    by_id = {q.id: q.doc_ids[0] for q in questions if q.doc_ids}
    df = Counter(w for text in docs.values() for w in _words(text))
    n = len(docs)
    bags = {d: _words(t) for d, t in docs.items()}
    out = dict(by_id)
    for q in questions:
        if q.id in out:
            continue
        base = re.sub(r"-(?:unans|ans)-.*$", "", q.id)
        if base in by_id:
            out[q.id] = by_id[base]
            continue
        terms = _words(q.question)
        out[q.id] = max(bags, key=lambda d: sum(math.log(n / df[w]) for w in terms & bags[d]))
    return out


def read_set(reader: Reader, path: str, limit: int) -> list[dict]:
    s = load_set(path)
    docs = {d.id: d.text for d in s.documents()}
    questions = s.questions[:limit] if limit else s.questions
    gold = gold_paragraphs(questions, docs)
    rows = []
    times = []
    for q in questions:
        started = time.perf_counter()
        reading = reader.read(q.question, [docs[gold[q.id]]], k=1)[0]
        times.append(time.perf_counter() - started)
        best = reading.spans[0].text if reading.spans else ""
        rows.append({"id": q.id, "half": half_of(q.id), "answerable": q.answerable, "answers": q.answers,
                     "margin": reading.margin, "span": best})
    print(f"{s.name}: {len(rows)} questions read in {sum(times):.0f} s "
          f"(p50 {percentile(times, 50):.3f} s, p95 {percentile(times, 95):.3f} s a question)")
    return rows


def score(rows: list[dict], threshold: float) -> dict[str, float | None]:
    ems, f1s, has_em, has_f1, no_ok = [], [], [], [], []
    refused = []
    for r in rows:
        answered = r["margin"] > threshold
        refused.append(not answered)
        if r["answerable"]:
            pred = r["span"] if answered else ""
            em, f1 = exact_match(pred, r["answers"]) or 0.0, token_f1(pred, r["answers"]) or 0.0
            has_em.append(em)
            has_f1.append(f1)
        else:
            em = f1 = float(not answered)
            no_ok.append(em)
        ems.append(em)
        f1s.append(f1)

    def mean(v: list[float]) -> float | None:
        return sum(v) / len(v) if v else None

    out = {"n": len(rows), "EM": mean(ems), "F1": mean(f1s), "HasAns EM": mean(has_em), "HasAns F1": mean(has_f1),
           "NoAns acc": mean(no_ok)}
    out["refusal F1"] = refusal_scores([r["answerable"] for r in rows], refused)["refusal_f1"]
    return out


def best_threshold(rows: list[dict]) -> float:
    margins = sorted({round(r["margin"], 2) for r in rows})
    return max(margins, key=lambda t: (score(rows, t)["F1"] or 0.0, -abs(t)))


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--weights", default=None, help="reader.npz to score (default: the shipped one)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="folder for each set's per-question readings")
    args = ap.parse_args(argv)
    reader = Reader(E5Numpy(), args.weights)
    print(f"reader: {reader.model.path} ({reader.model.manifest.get('sha256', '')[:12]})")
    readings = {}
    for path in args.sets:
        rows = read_set(reader, path, args.limit)
        readings[Path(path).name] = rows
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{Path(path).name}.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    tuning = next((rows for rows in readings.values() if any(not r["answerable"] for r in rows)), None)
    threshold = best_threshold([r for r in tuning if r["half"] == "tune"]) if tuning else 0.0
    print(f"threshold (best F1 on the first set's tuning half): {threshold:+.2f}")
    cols = ["n", "EM", "F1", "HasAns EM", "HasAns F1", "NoAns acc", "refusal F1"]
    print("| set | half | threshold | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 3) + "|")
    for name, rows in readings.items():
        for h in HALVES:
            part = [r for r in rows if r["half"] == h]
            for t in (0.0, threshold) if threshold else (0.0,):
                m = score(part, t)
                print(f"| {name} | {h} | {t:+.2f} | " + " | ".join(_fmt(m[c]) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
