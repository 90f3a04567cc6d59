"""The reader's margin as a last reranking of retrieval's first candidates, measured per half.

    KABAR_DATA_DIR=/tmp/kd .venv/bin/python scripts/eval_reader_rank.py ../shared/data/facqa-id --limit 120

For each answerable question (the first ``--limit`` of each half): Kabar's search as the
answer path runs it, then the reader reads each of the first ``--top`` candidate passages
alone. Each candidate is rescored ``-rank + w * margin`` and the articles are reordered by
their best candidate; hit@1 and MRR of the gold article are printed for each weight ``w``
(0 is retrieval's own order) on both halves: choose ``w`` on ``tune``, read ``check``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.collection import ensure_collection  # noqa: E402
from eval.dataset import HALVES, half_of, load_set  # noqa: E402
from rag.assistant import Assistant  # noqa: E402
from rag.models.embeddings import make_embedder  # noqa: E402
from rag.settings import Settings  # noqa: E402

WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 1000.0)


def ranked(row: dict, w: float) -> list[str]:
    order = sorted(range(len(row["docs"])), key=lambda i: i - w * row["margins"][i])
    return list(dict.fromkeys(row["docs"][i] for i in order))


def scores(rows: list[dict], w: float) -> tuple[float, float]:
    hit1 = mrr = 0.0
    for row in rows:
        docs = ranked(row, w)
        rank = next((k for k, d in enumerate(docs) if d in row["gold"]), None)
        hit1 += rank == 0
        mrr += 1 / (rank + 1) if rank is not None else 0.0
    return hit1 / len(rows), mrr / len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("set")
    ap.add_argument("--limit", type=int, default=120)
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    embedder = make_embedder(settings)
    eval_set = load_set(args.set)
    collection = ensure_collection(eval_set, settings, embedder)
    kabar = Assistant(collection.settings, store=collection.store, embedder=embedder)
    taken = dict.fromkeys(HALVES, 0)
    rows = []
    for q in eval_set.questions:
        h = half_of(q.id)
        if not q.answerable or not q.doc_ids or taken[h] >= args.limit:
            continue
        taken[h] += 1
        hits = kabar.search(q.question).hits[: args.top]
        readings = kabar.reader.read(q.question, [x.chunk.text for x in hits], k=1)
        rows.append({"half": h, "docs": [x.chunk.doc_id for x in hits], "margins": [r.margin for r in readings],
                     "gold": set(q.doc_ids)})
    print(f"{eval_set.name}: {len(rows)} answerable questions, the first {args.top} candidates read")
    print("| w | " + " | ".join(f"{h} hit@1 | {h} MRR" for h in HALVES) + " |")
    for w in WEIGHTS:
        cells = [f"{v:.3f}" for h in HALVES for v in scores([r for r in rows if r["half"] == h], w)]
        print(f"| {w:g} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
