"""The reader's refusal gate replayed over evaluation runs: refusal F1 per threshold, per half.

    kabar eval run ../shared/data/idkmrc-id --retrieval-only --out runs/reader/idkmrc-id
    .venv/bin/python scripts/tune_reader_gate.py runs/reader/idkmrc-id runs/reader/xling-en-id

Each run folder's ``questions.jsonl`` records the reader's margin over the sources of every
question (``reader.margin``). A question is declined when its margin is below the threshold
(and it asked for one fact: the gate applies to nothing else). Prints refusal precision,
recall and F1 for each threshold on the tuning and checking halves, and the threshold that
maximises the mean refusal F1 of the tuning halves of the sets given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.dataset import HALVES, half_of  # noqa: E402
from eval.metrics import refusal_scores  # noqa: E402
from scripts import replay_reader  # noqa: E402


def load(folder: Path) -> list[dict]:
    """replay_reader's rows, each with its half."""
    return [{**row, "half": half_of(row["id"])} for row in replay_reader.load(folder)]


def f1_at(rows: list[dict], t: float) -> dict:
    return refusal_scores([r["answerable"] for r in rows], [r["one_fact"] and r["margin"] < t for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--thresholds", default="-6,-4,-3,-2,-1.5,-1,-0.5,0,0.5,1,1.5,2,3,4,6")
    args = ap.parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    sets = {p.name: load(p) for p in args.runs}
    print("| set | half | threshold | refusal P | refusal R | refusal F1 |")
    print("|---|---|---|---|---|---|")
    tuning: dict[float, list[float]] = {t: [] for t in thresholds}
    for name, rows in sets.items():
        for h in HALVES:
            part = [r for r in rows if r["half"] == h]
            for t in thresholds:
                m = f1_at(part, t)
                f1 = m["refusal_f1"]
                if h == "tune" and f1 is not None:
                    tuning[t].append(f1)
                fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
                print(f"| {name} | {h} | {t:+.1f} | {fmt(m['refusal_precision'])} | {fmt(m['refusal_recall'])} "
                      f"| {fmt(f1)} |")
    scored = {t: sum(v) / len(v) for t, v in tuning.items() if v}
    if scored:
        best = max(scored, key=lambda t: scored[t])
        print(f"best threshold on the tuning halves: {best:+.1f} (mean refusal F1 {scored[best]:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
