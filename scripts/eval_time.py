"""Time in questions, measured: each question's sources with and without reading its dates.

    KABAR_DATA_DIR=/tmp/kabar-eval .venv/bin/python scripts/eval_time.py ../shared/data/multihop-en \
        --type temporal_query
    .venv/bin/python scripts/eval_time.py examples/dated

Both variants run in one process over the same collection (its approximate dense search can
differ between processes), question by question. Prints, per half, the context document recall
(the gold articles among the sources the model would read) and evidence recall, with time read
(:func:`rag.search.when.read_time`) and with it ignored, and how many questions named a time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.collection import ensure_collection  # noqa: E402
from eval.dataset import HALVES, half_of, load_set  # noqa: E402
from eval.metrics import context_doc_recall, evidence_recall  # noqa: E402
from rag import Assistant  # noqa: E402
from rag.models import make_embedder  # noqa: E402
from rag.search.when import TimeQuery  # noqa: E402
from rag.settings import Settings  # noqa: E402


def _mean(rows: list[dict], key: str, i: int) -> str:
    vals = [r[key][i] for r in rows if r[key][i] is not None]
    return f"{sum(vals) / len(vals):.3f}" if vals else "–"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("set")
    ap.add_argument("--type", default="", help="only questions of this type")
    ap.add_argument("--as-of", default=None, help="the day the questions are asked (default: today)")
    args = ap.parse_args()
    eval_set = load_set(args.set)
    settings = Settings.from_env()
    embedder = make_embedder(settings)
    collection = ensure_collection(eval_set, settings, embedder)
    kabar = Assistant(collection.settings, store=collection.store, embedder=embedder, as_of=args.as_of)
    questions = [q for q in eval_set.questions if q.answerable and (not args.type or q.type == args.type)]
    rows = []
    reading = kabar.read_time
    for q in questions:
        row = {"half": half_of(q.id), "timed": bool(reading(q.question))}
        for name, read in (("on", reading), ("off", lambda _q: TimeQuery())):
            kabar.read_time = read  # type: ignore[method-assign]
            prep = kabar.prepare(q.question)
            row[name] = (context_doc_recall([h.chunk.doc_id for h in prep.sources], q.doc_ids),
                         evidence_recall([h.chunk.text for h in prep.sources], q.evidence) if q.evidence else None)
        rows.append(row)
    print(f"{eval_set.name}{' ' + args.type if args.type else ''}: {len(rows)} answerable questions")
    print("| half | n | named a time | context doc recall, time read | ignored "
          "| evidence recall, time read | ignored |")
    print("|---|---|---|---|---|---|---|")
    for h in HALVES:
        part = [r for r in rows if r["half"] == h]
        if not part:
            continue

        print(f"| {h} | {len(part)} | {sum(r['timed'] for r in part)} | {_mean(part, 'on', 0)} "
              f"| {_mean(part, 'off', 0)} | {_mean(part, 'on', 1)} | {_mean(part, 'off', 1)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
