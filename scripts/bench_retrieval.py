"""Kabar's retrieval against plain dense retrieval (and nanoranker) on the tuning and checking halves.

    KABAR_DATA_DIR=... .venv/bin/python scripts/bench_retrieval.py ../shared/data/xling-en-id [--nanoranker]

For each question with gold documents, in each half (``eval.dataset.half``), against the
set's cached eval collection (``kabar eval run`` builds it):

- ``dense``: the embedding alone (:func:`rag.search.retrieval.dense_search`), same chunks;
- ``kabar``: :func:`rag.search.retrieval.hybrid_search` as the chat uses it;
- with ``--nanoranker`` (``pip install nanoranker``): Kabar's top ``--rerank-k`` reordered
  by nanoranker's score (``rerank``), and nanoranker's score as one more fused signal of
  weight 0.25 / 0.5 over the same candidates (``+nanoranker w``); its seconds per question.

Rows: hit@1, hit@5, MRR@10 (documents ranked by their best chunk among the top 10, as in
``eval.metrics``) and, for the dense and Kabar rows, context document and evidence recall
of the sources that fit the prompt budget (``rag.answer.prompt.select_sources``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval import metrics as M  # noqa: E402
from eval.collection import ensure_collection  # noqa: E402
from eval.dataset import HALVES, half, load_set  # noqa: E402
from rag.answer.prompt import select_sources  # noqa: E402
from rag.lang import detect_lang  # noqa: E402
from rag.models.embeddings import make_embedder  # noqa: E402
from rag.search.fusion import Signal, fuse  # noqa: E402
from rag.search.retrieval import gather, rank  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.types import Hit  # noqa: E402


def scores(q, hits, sources=None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    ranked = M.rank_documents([h.chunk.doc_id for h in hits[: M.RANK_DEPTH]])
    row = {"hit@1": M.hit_at_k(ranked, q.doc_ids, 1), "hit@5": M.hit_at_k(ranked, q.doc_ids, 5),
           "mrr@10": M.mrr_at_k(ranked, q.doc_ids, 10)}
    if sources is not None:
        row["ctx_doc"] = M.context_doc_recall([h.chunk.doc_id for h in sources], q.doc_ids)
        if q.evidence:
            row["ctx_evidence"] = M.evidence_recall([h.chunk.text for h in sources], q.evidence)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", type=Path)
    parser.add_argument("--half", choices=HALVES, nargs="+", default=list(HALVES))
    parser.add_argument("--limit", type=int, help="the first N questions of each half")
    parser.add_argument("--nanoranker", action="store_true")
    parser.add_argument("--rerank-k", type=int, default=20)
    args = parser.parse_args()
    settings = Settings.from_env()
    eval_set = load_set(args.set)
    embedder = make_embedder(settings)
    collection = ensure_collection(eval_set, settings, embedder)
    store, s = collection.store, collection.settings
    nr = None
    if args.nanoranker:
        import nanoranker as nr  # type: ignore[import-not-found,no-redef]
    for name in args.half:
        rows: dict[str, list[dict[str, float]]] = defaultdict(list)
        ranker_s = 0.0
        questions = [q for q in half(eval_set.questions, name) if q.doc_ids][: args.limit]
        for q in questions:
            candidates = gather(store, embedder, q.question, max(s.top_k, 30), None, detect_lang(q.question))
            # dense_search's ranking, from the same query embedding
            dense = [Hit(h.chunk, h.score, dense_score=h.score) for h in candidates.dense[: s.top_k]]
            rows["dense"].append(scores(q, dense, select_sources(dense, s.context_tokens, s.per_doc)))
            kabar = rank(candidates, s.top_k)
            rows["kabar"].append(scores(q, kabar, select_sources(kabar, s.context_tokens, s.per_doc)))
            if nr is None:
                continue
            top = kabar[: args.rerank_k]
            started = time.perf_counter()
            ranked = nr.rank(q.question, [h.chunk.title + "\n" + h.chunk.text for h in top], top_n=len(top),
                             normalize_scores=False)
            ranker_s += time.perf_counter() - started
            by_text = {h.chunk.title + "\n" + h.chunk.text: h for h in top}
            score_of = {by_text[text].chunk.id: float(p) for text, p in ranked}
            rows["rerank"].append(scores(q, [by_text[text] for text, _ in ranked] + kabar[args.rerank_k:]))
            for w in (0.25, 0.5):
                signals = [Signal("dense", {h.chunk.id: h.score for h in candidates.dense}),
                           Signal("lexical", {h.chunk.id: h.score for h in candidates.lexical},
                                  candidates.lexical_weight), Signal("nanoranker", score_of, w)]
                fused = fuse(signals)
                pool = {h.chunk.id: h for h in candidates.dense + candidates.lexical}
                rows[f"+nanoranker {w}"].append(scores(q, sorted(pool.values(), key=lambda h: -fused[h.chunk.id])))
        for label, values in rows.items():
            keys = list(dict.fromkeys(k for r in values for k in r))
            means = {k: sum(r[k] for r in values if k in r) / max(1, sum(1 for r in values if k in r)) for k in keys}
            print(f"{eval_set.name} {name:5s} {label:16s} n={len(values)} "
                  + " ".join(f"{k} {v:.3f}" for k, v in means.items()), flush=True)
        if nr is not None and questions:
            print(f"{eval_set.name} {name:5s} nanoranker {ranker_s / len(questions):.3f} s/question "
                  f"({args.rerank_k} passages)", flush=True)


if __name__ == "__main__":
    main()
