"""Measure the near-duplicate detector (ingest.dedupe): precision and recall on a built set.

    .venv/bin/python scripts/eval_dedupe.py [--data ../shared/data] [--per-kind 150] [--seed 14]

The set is built from the development corpora (multihop-en: English news; idkmrc-id and
facqa-id: Indonesian passages of at least 60 words):

- positives: copies of sampled articles as other outlets run them: with about 3% of the
  words changed, with another outlet's dateline and footer around it, truncated to its
  first 60%, with a sixth of its sentences dropped, and all of those together (header,
  5% edits, first 80%);
- negatives: every corpus article against all the others (none is a copy: each added
  article must find nothing), and the multihop-en articles that one question draws on,
  pairwise: separate write-ups of the same event, the hardest case not to merge.

Prints recall per kind of copy, the wrong merges (with their similarity), and precision
over every merge the detector made.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.dedupe import NearDuplicates, is_same_story, signature, similarity  # noqa: E402

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
HEADERS = [
    ("JAKARTA (Antara) - ", " (Antara/ed.)"),
    ("WASHINGTON (Reuters) - ", " Reporting by staff; editing by desk."),
    ("Kompas.com - ", " Baca berita lainnya di Kompas.com."),
    ("", " This story was originally published by the Associated Press."),
]
FILLERS = ["pun", "juga", "itu", "the", "a", "said", "also", "kata"]


def load(data: Path) -> list[dict]:
    docs = []
    for name in ("multihop-en", "idkmrc-id", "facqa-id"):
        for line in (data / name / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if len(record["text"].split()) >= 60:
                docs.append(record)
    return docs


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


def edit(text: str, rate: float, rng: random.Random) -> str:
    words = text.split()
    for i in range(len(words)):
        if rng.random() < rate:
            words[i] = rng.choice(FILLERS + [words[i].upper(), words[i][:-1] or words[i]])
    return " ".join(words)


def variants(text: str, rng: random.Random) -> dict[str, str]:
    head, foot = rng.choice(HEADERS)
    sents = sentences(text)
    keep = [s for s in sents if rng.random() > 1 / 6] or sents[:1]
    words = text.split()
    return {
        "3% words edited": edit(text, 0.03, rng),
        "other outlet's header and footer": head + text + foot,
        "truncated to 60%": " ".join(words[: int(len(words) * 0.6)]),
        "a sixth of sentences dropped": " ".join(keep),
        "header + 5% edits + first 80%": head + edit(" ".join(words[: int(len(words) * 0.8)]), 0.05, rng) + foot,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT))
    parser.add_argument("--per-kind", type=int, default=150, help="sampled articles copied, per kind of copy")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    data = Path(args.data)
    rng = random.Random(args.seed)
    docs = load(data)
    sigs = {d["id"]: signature(d["text"]) for d in docs}

    index = NearDuplicates()
    wrong: list[tuple[str, str, float, float]] = []
    for d in docs:  # every corpus article is distinct: adding one must find nothing
        found = index.find(d["id"], sigs[d["id"]])
        if found is not None:
            wrong.append((d["id"], found, *similarity(sigs[d["id"]], sigs[found])))
        index.add(d["id"], sigs[d["id"]])
    corpus_merges = len(wrong)

    groups = [json.loads(line)["doc_ids"] for line in (data / "multihop-en" / "questions.jsonl")
              .read_text(encoding="utf-8").splitlines() if line.strip()]
    pairs = {tuple(sorted(p)) for g in groups for p in itertools.combinations(set(g), 2) if all(x in sigs for x in p)}
    pair_merges = [(a, b, *similarity(sigs[a], sigs[b])) for a, b in sorted(pairs) if is_same_story(sigs[a], sigs[b])]
    wrong += pair_merges

    sample = rng.sample(docs, min(args.per_kind, len(docs)))
    found_by_kind: dict[str, list[int]] = {}
    variant_wrong = 0
    for d in sample:
        for kind, text in variants(d["text"], rng).items():
            got = index.find("copy-of-" + d["id"], signature(text))
            found_by_kind.setdefault(kind, []).append(got == d["id"])
            if got is not None and got != d["id"]:
                variant_wrong += 1
                wrong.append(("copy-of-" + d["id"], got, 0.0, 0.0))
    tp = sum(sum(v) for v in found_by_kind.values())
    positives = sum(len(v) for v in found_by_kind.values())
    merges = tp + len(wrong)
    print(f"corpus: {len(docs)} articles (multihop-en, idkmrc-id and facqa-id with >= 60 words); "
          f"{len(pairs)} same-event pairs from multihop-en questions; {len(sample)} articles copied 5 ways")
    for kind, hits in found_by_kind.items():
        print(f"  recall, {kind:34s} {sum(hits)}/{len(hits)} = {sum(hits) / len(hits):.3f}")
    print(f"recall (all copies): {tp}/{positives} = {tp / positives:.3f}")
    print(f"wrong merges: {corpus_merges} among distinct corpus articles, {len(pair_merges)} of {len(pairs)} "
          f"same-event pairs, {variant_wrong} copies matched to another article")
    for a, b, j, c in wrong[:10]:
        print(f"  {a} ~ {b}: jaccard {j:.2f}, containment {c:.2f}")
    print(f"precision (all merges): {tp}/{merges} = {tp / merges:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
