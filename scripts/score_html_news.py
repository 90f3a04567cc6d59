"""Score HTML ingestion on html-news: main text (gold snippets in / out) and publication dates.

    .venv/bin/python scripts/score_html_news.py [../shared/data/html-news] [--half tune|check] [--verbose]

Ingests every page of the set's ``pages/`` through ``ingest.ingest`` (as ``kabar ingest``
would, into a fresh temporary store, hash embeddings: the model plays no part in what is
extracted), rebuilds each page's whole stored text from its chunks, and scores it as the
set's README says: a page passes when every ``with`` snippet is in the text and no
``without`` snippet is (whitespace-normalised substrings); a date is right when the stored
``published`` names the gold day ``YYYY-MM-DD`` (its first ten characters: a stored date
keeps the time and offset the page states). Works on any folder of the same format (the
held-out set too). Prints one line per failing page, then the totals for each half (split by
:func:`eval.dataset.half_of` of the file name: extraction rules are tuned on ``tune`` and kept
only when ``check`` does not lose) and for the whole set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import tempfile
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.dataset import HALVES, half_of  # noqa: E402
from ingest import ingest  # noqa: E402
from rag.assistant import Assistant  # noqa: E402
from rag.models.embeddings import Embedder  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store.chroma import ChromaStore  # noqa: E402
from rag.types import content_hash  # noqa: E402

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "html-news"


class _HashEmbedder(Embedder):
    model_id = "score/hash"

    def embed_batch(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        out = []
        for text in texts:
            v = [0.0] * 32
            for word in text.split():
                v[int(hashlib.md5(word.encode()).hexdigest(), 16) % 32] += 1.0
            n = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / n for x in v])
        return out


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def stored_text(store: ChromaStore, doc_id: str) -> str:
    chunks = store.get_chunks(doc_id)
    if not chunks:
        return ""
    text = [" "] * max(c.end for c in chunks)
    for c in chunks:
        text[c.start : c.end] = c.text
    return "".join(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT))
    parser.add_argument("--half", choices=HALVES, help="score only one half of the pages")
    parser.add_argument("--verbose", action="store_true", help="print the missing and unwanted snippets")
    args = parser.parse_args()
    folder = Path(args.folder)
    items = [json.loads(line) for line in (folder / "expected.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    items = [item for item in items if args.half in (None, half_of(item["file"]))]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        embedder = _HashEmbedder()
        store = ChromaStore.from_settings(settings, embedder.model_id)
        pages = [folder / "pages" / item["file"] for item in items]
        # Dedupe off: every page is scored on its own text, even one that repeats another.
        report = ingest(pages, Assistant(settings, store=store, embedder=embedder), dedupe=False)
        errors = {Path(e.source).name: e.problem for e in report.errors}
        tally = {h: [0, 0, 0, 0] for h in (*HALVES, "all")}  # pages, text right, dated, date right
        for item, page in zip(items, pages):
            doc_id = content_hash("file", str(page.resolve()))
            text = norm(stored_text(store, doc_id))
            chunks = store.get_chunks(doc_id)
            published = chunks[0].published if chunks else ""
            missing = [w for w in item["with"] if norm(w) not in text]
            unwanted = [w for w in item["without"] if norm(w) in text]
            ok = bool(text) and not missing and not unwanted
            dated, date_ok = bool(item.get("published")), published[:10] == item.get("published")
            for key in (half_of(item["file"]), "all"):
                row = tally[key]
                row[0] += 1
                row[1] += ok
                row[2] += dated
                row[3] += dated and date_ok
            if not ok:
                why = errors.get(item["file"], "") or f"{len(missing)} missing, {len(unwanted)} unwanted"
                print(f"FAIL text {item['file']} ({half_of(item['file'])}): {why}")
                if args.verbose:
                    for w in missing:
                        print(f"     missing:  {w[:90]}")
                    for w in unwanted:
                        print(f"     unwanted: {w[:90]}")
            if dated and not date_ok:
                print(f"FAIL date {item['file']} ({half_of(item['file'])}): gold {item['published']}, "
                      f"stored {published or '(none)'}")
    for key, (pages_n, passed, dated_n, dated_ok) in tally.items():
        if pages_n:
            print(f"{key:>5}: text {passed}/{pages_n} pages pass ({passed / pages_n:.0%}); "
                  f"dates {dated_ok}/{dated_n} right ({dated_ok / max(dated_n, 1):.0%})")
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
