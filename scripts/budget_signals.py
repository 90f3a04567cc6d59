"""Calibrate rag.search.budget without the model: which questions get the whole source budget, and what it costs.

    KABAR_DATA_DIR=... python scripts/budget_signals.py FOLDER --collection eval-<set>-<key>
        [--shares 0.6,0.7,0.8,0.9] [--facts 400,600,800]

Retrieves every question of the set once (the collection an earlier `kabar eval run` built),
then for each candidate policy (the fact budget, and the share of the question's terms one
article must hold for the question to count as a single fact) prints, per half of the set
(tune/check, by question-id hash as `kabar eval run --half`), the share of questions given the
whole budget, the context tokens p50/p95 and the context document recall: the share of
answerable questions with a gold article among the sources.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.dataset import load_set  # noqa: E402
from rag.answer.prompt import select_sources  # noqa: E402
from rag.assistant import Assistant  # noqa: E402
from rag.search.budget import article_share, spans_articles  # noqa: E402
from rag.search.retrieval import mentioned_publications  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.tokens import count_tokens  # noqa: E402


def half_of(question_id: str) -> str:
    """As eval.dataset.half_of: the parity of the first byte of the id's SHA-256."""
    return ("tune", "check")[hashlib.sha256(question_id.encode("utf-8")).digest()[0] % 2]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--shares", default="0.5,0.6,0.7,0.8,0.9,1.0")
    parser.add_argument("--facts", default="400,600,800")
    args = parser.parse_args()

    settings = Settings.from_env(collection=args.collection)
    kabar = Assistant(settings)
    qset = load_set(Path(args.folder))
    rows: list[dict[str, Any]] = []
    publications = kabar.store.publications()
    for q in qset.questions:
        hits = kabar.retrieve(q.question)
        rows.append({"id": q.id, "half": half_of(q.id), "gold": set(q.doc_ids), "answerable": q.answerable,
                     "hits": hits, "outlets": len(mentioned_publications(q.question, publications)),
                     "question": q.question, "share": article_share(q.question, hits)})
    print(f"{qset.name}: {len(rows)} questions, top_k {settings.top_k}, whole budget {settings.context_tokens}")
    print("fact  share  half   whole%  tokens_p50  tokens_p95  doc_recall")
    for fact in [int(x) for x in args.facts.split(",")]:
        for share in [float(x) for x in args.shares.split(",")]:
            for name in ("tune", "check"):
                part = [r for r in rows if r["half"] == name]
                whole, tokens, found, gold = 0, [], 0, 0
                for r in part:
                    spans = spans_articles(r["question"], r["outlets"], r["share"], share)
                    whole += spans
                    budget = settings.context_tokens if spans else fact
                    sources = select_sources(r["hits"], budget, settings.per_doc)
                    tokens.append(sum(count_tokens(h.chunk.text) for h in sources))
                    if r["answerable"] and r["gold"]:
                        gold += 1
                        found += bool(r["gold"] & {h.chunk.doc_id for h in sources})
                print(f"{fact:4d}  {share:4.2f}  {name:5}  {whole / max(len(part), 1):6.1%}  "
                      f"{percentile(tokens, 50):10.0f}  {percentile(tokens, 95):10.0f}  {found / max(gold, 1):10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
