"""Score HTML ingestion on html-news: main text (gold snippets in / out) and publication dates.

    .venv/bin/python scripts/score_html_news.py [../shared/data/html-news] [--verbose]

Ingests every page of the set's ``pages/`` through ``ingest.ingest`` (as ``kabar ingest``
would, into a fresh temporary store, hash embeddings: the model plays no part in what is
extracted), rebuilds each page's whole stored text from its chunks, and scores it as the
set's README says: a page passes when every ``with`` snippet is in the text and no
``without`` snippet is (whitespace-normalised substrings); a date is right when the stored
``published`` equals the gold ``YYYY-MM-DD``. Works on any folder of the same format (the
held-out set too). Prints one line per failing page, then the totals.
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

from ingest import ingest  # noqa: E402
from rag.assistant import Assistant
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
    parser.add_argument("--verbose", action="store_true", help="print the missing and unwanted snippets")
    args = parser.parse_args()
    folder = Path(args.folder)
    items = [json.loads(line) for line in (folder / "expected.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        embedder = _HashEmbedder()
        store = ChromaStore.from_settings(settings, embedder.model_id)
        pages = [folder / "pages" / item["file"] for item in items]
        # Dedupe off: every page is scored on its own text, even one that repeats another.
        report = ingest(pages, Assistant(settings, store=store, embedder=embedder), dedupe=False)
        errors = {Path(e.source).name: e.problem for e in report.errors}
        passed = dated = dated_ok = 0
        for item, page in zip(items, pages):
            doc_id = content_hash("file", str(page.resolve()))
            text = norm(stored_text(store, doc_id))
            chunks = store.get_chunks(doc_id)
            published = chunks[0].published if chunks else ""
            missing = [w for w in item["with"] if norm(w) not in text]
            unwanted = [w for w in item["without"] if norm(w) in text]
            ok = bool(text) and not missing and not unwanted
            passed += ok
            if not ok:
                why = errors.get(item["file"], "") or f"{len(missing)} missing, {len(unwanted)} unwanted"
                print(f"FAIL text {item['file']}: {why}")
                if args.verbose:
                    for w in missing:
                        print(f"     missing:  {w[:90]}")
                    for w in unwanted:
                        print(f"     unwanted: {w[:90]}")
            if item.get("published"):
                dated += 1
                dated_ok += published == item["published"]
                if published != item["published"]:
                    print(f"FAIL date {item['file']}: gold {item['published']}, stored {published or '(none)'}")
    print(f"text: {passed}/{len(items)} pages pass ({passed / len(items):.0%}); "
          f"dates: {dated_ok}/{dated} right ({dated_ok / max(dated, 1):.0%}); {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
