"""What Kabar's reader costs a question in the answer path: seconds over the prompt's sources.

    KABAR_DATA_DIR=/tmp/kabar-eval .venv/bin/python scripts/bench_reader.py ../shared/data/idkmrc-id --limit 60
    KABAR_DATA_DIR=/tmp/kabar-eval .venv/bin/python scripts/bench_reader.py ../shared/data/multihop-en --limit 30

For each question (the set's checking half, the first ``--limit``): the question is
prepared as the chat prepares it (retrieval, the sources that fit), then the reader reads
those sources ``--repeat`` times (:func:`rag.answer.evidence.find_evidence`, at most
:data:`~rag.answer.evidence.READ_TOKENS` tokens); the best of the repeats is the question's
cost. Prints p50 / p95 / max seconds, tokens read and the sources' tokens, and the same
for the embedding of the question (what retrieval already spends) as a yardstick measured
in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.collection import ensure_collection  # noqa: E402
from eval.dataset import half, load_set  # noqa: E402
from eval.metrics import percentile  # noqa: E402
from rag.answer.evidence import READ_TOKENS, find_evidence  # noqa: E402
from rag.assistant import Assistant  # noqa: E402
from rag.models.embeddings import make_embedder  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.tokens import count_tokens  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("set")
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--half", default="check")
    args = ap.parse_args(argv)
    settings = Settings.from_env()
    embedder = make_embedder(settings)
    eval_set = load_set(args.set)
    collection = ensure_collection(eval_set, settings, embedder)
    kabar = Assistant(collection.settings, store=collection.store, embedder=embedder)
    reader = kabar.reader
    questions = half(eval_set.questions, args.half)[: args.limit]
    reads, embeds, tokens = [], [], []
    for q in questions:
        prep = kabar.prepare(q.question)
        reads.append(_best(args.repeat, find_evidence, reader, prep.query, prep.sources))
        embeds.append(_best(args.repeat, embedder.embed_query, q.question))
        tokens.append(sum(count_tokens(h.chunk.text) for h in prep.sources))
    print(f"{eval_set.name}, {args.half} half, {len(questions)} questions, best of {args.repeat}; "
          f"reader reads at most {READ_TOKENS} tokens of sources")
    for name, values in (("reader s", reads), ("question embedding s", embeds), ("sources tokens", tokens)):
        print(f"  {name:22s} p50 {percentile(values, 50):8.3f}  p95 {percentile(values, 95):8.3f}  "
              f"max {max(values):8.3f}")
    return 0


def _best(repeat: int, fn, *args) -> float:  # type: ignore[no-untyped-def]
    """The fastest of ``repeat`` calls of ``fn(*args)``, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - started)
    return min(times)


if __name__ == "__main__":
    raise SystemExit(main())
