"""English versions of Kabar's Indonesian training questions, written by the local model.

    .venv/bin/python scripts/translate_train_questions.py [--n 3000] [--out rag/models/data/train-en-questions.jsonl]

The reader learned on Indonesian questions only, so over an English question its no-answer
score separates nothing. This gives it English questions to learn from: a seeded sample of
``../shared/data/train`` questions (idkmrc-id-train and facqa-id-train, the same files the
reader trains on, so no dev question is near them), translated ten at a time by the local
model (temperature 0), each line kept with the original's id, answers and paragraph. A
translation is kept only when it is a question of its own (not the Indonesian copied back),
keeps the original's digits, and, in e5's embedding space, lies close to the original
(cosine >= ``--min-sim``, 0.87): the filter against translations that drifted to another question.
Appends and resumes: ids already in ``--out`` are skipped. ``rag.models.train_reader
--english`` reads the file.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"
OUT = Path(__file__).resolve().parent.parent / "rag" / "models" / "data" / "train-en-questions.jsonl"
SYSTEM = ("Translate each numbered Indonesian question into English. Keep names, numbers and dates "
          "exactly as written. Answer with the numbered English questions only, one per line.")
NUMBERED = re.compile(r"^\s*(\d+)[.)]\s*(.+?)\s*$")


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def sample(data: Path, n: int, seed: int, facqa_share: float) -> list[dict]:
    rng = random.Random(seed)
    picked = []
    for name, share in (("idkmrc-id-train", 1 - facqa_share), ("facqa-id-train", facqa_share)):
        qs = [dict(q, set=name) for q in _jsonl(data / name / "questions.jsonl") if q.get("context_id")]
        rng.shuffle(qs)
        picked += qs[: round(n * share)]
    rng.shuffle(picked)
    return picked


def parse(reply: str, count: int) -> dict[int, str]:
    out = {}
    for line in reply.splitlines():
        m = NUMBERED.match(line)
        if m and 1 <= int(m.group(1)) <= count:
            out.setdefault(int(m.group(1)), m.group(2).strip().strip('"'))
    return out


def acceptable(source: str, english: str) -> bool:
    if not english.endswith("?") or len(english) < 8 or english.lower() == source.lower().strip():
        return False
    digits = re.findall(r"\d+", source)
    return all(d in english for d in digits)


def main(argv: list[str] | None = None) -> int:
    from rag.models.embeddings import make_embedder
    from rag.models.local_llm import local_chat
    from rag.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=29)
    ap.add_argument("--facqa-share", type=float, default=0.15)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--min-sim", type=float, default=0.87)
    args = ap.parse_args(argv)
    done = {json.loads(line)["id"] for line in args.out.open(encoding="utf-8")} if args.out.exists() else set()
    todo = [q for q in sample(args.data, args.n, args.seed, args.facqa_share) if q["id"] not in done]
    print(f"{len(done)} already translated, {len(todo)} to go", flush=True)
    settings = Settings()
    embedder = make_embedder(settings)
    chat = local_chat(settings).start()
    kept = dropped = 0
    began = time.time()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with args.out.open("a", encoding="utf-8") as out:
            for a in range(0, len(todo), args.batch):
                batch = todo[a : a + args.batch]
                body = "\n".join(f"{i + 1}. {' '.join(q['question'].split())}" for i, q in enumerate(batch))
                reply = chat.complete([{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}],
                                      max_tokens=40 * len(batch))
                got = parse(reply, len(batch))
                pairs = [(q, got[i + 1]) for i, q in enumerate(batch)
                         if i + 1 in got and acceptable(q["question"], got[i + 1])]
                if pairs:
                    texts = [q["question"] for q, _ in pairs] + [e for _, e in pairs]
                    vecs = np.asarray(embedder.embed_batch(texts, "query"))
                    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                    for j, (q, english) in enumerate(pairs):
                        sim = float(vecs[j] @ vecs[len(pairs) + j])
                        if sim < args.min_sim:
                            continue
                        row = {k: q[k] for k in ("id", "answers", "answer_starts", "answerable", "context_id", "set")}
                        row.update(question=english, source_question=q["question"], lang="en", sim=round(sim, 3))
                        out.write(json.dumps(row, ensure_ascii=False) + "\n")
                        kept += 1
                dropped += len(batch) - sum(1 for _ in pairs)
                out.flush()
                if (a // args.batch) % 10 == 0:
                    rate = (a + len(batch)) / (time.time() - began)
                    print(f"{a + len(batch)}/{len(todo)} read, {kept} kept, {rate:.2f} q/s", flush=True)
    finally:
        chat.close()
    print(f"done: {kept} kept in {time.time() - began:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
