"""Benchmark ingestion: wall time, time inside the embedder and the rest, chunks/s, peak memory.

    .venv/bin/python scripts/bench_ingest.py examples/articles
    .venv/bin/python scripts/bench_ingest.py ../shared/data/multihop-en/corpus.jsonl
    .venv/bin/python scripts/bench_ingest.py --html-pages 1000        # news pages made from the dev corpora

Ingests into a fresh temporary data directory with the configured settings (environment),
then ingests again to time the no-change path. Prints one line per run, splitting the
time between the embedder and everything else (reading, extraction, chunking, near-
duplicate checks, writing to Chroma and the lexical index).

``--html-pages N`` first writes N web pages to a temporary folder: articles from the
development corpora (multihop-en, idkmrc-id, facqa-id, cut to their first
``--words`` words) inside a page of the weight of a real news page (about 100 kB:
navigation, scripts, styles, a cookie banner, related articles, comments, footer).
"""

from __future__ import annotations

import argparse
import html
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import ingest  # noqa: E402
from rag.assistant import Assistant  # noqa: E402
from rag.settings import Settings  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _page(record: dict, n: int, words: int, rng: random.Random) -> str:
    text = " ".join(record["text"].split()[:words])
    sentences = [s.strip() for s in text.replace("? ", "?\n").replace(". ", ".\n").split("\n") if s.strip()]
    paragraphs = ["".join(f"{s} " for s in sentences[i : i + 3]) for i in range(0, len(sentences), 3)]
    nav = "".join(f'<li><a href="/section/{i}">Section {i}</a></li>' for i in range(120))
    related = "".join(f'<li><a href="/news/{rng.randrange(10**6)}">Related story {rng.randrange(10**6)} about '
                      f"markets, politics and sport</a></li>" for _ in range(25))
    comments = "".join(f'<div class="comment"><p>Reader {i}: I disagree with this take, number {rng.random()}.</p>'
                       "</div>" for i in range(15))
    script = "var cfg = " + json.dumps({f"k{i}": rng.random() for i in range(1500)}) + ";"
    style = "".join(f".c{i}{{margin:{i}px;padding:{i % 7}px;color:#{i:06x}}}" for i in range(900))
    title = html.escape(record.get("title") or f"Story {n}")
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="{record.get("lang", "en")}"><head><meta charset="utf-8">'
            f"<title>{title} | The Bench Times</title><meta property=\"og:site_name\" content=\"The Bench Times\">"
            f'<meta property="article:published_time" content="2023-11-{1 + n % 28:02d}T08:00:00Z">'
            f'<link rel="canonical" href="https://bench.example/news/{n}"><style>{style}</style>'
            f"<script>{script}</script></head><body>"
            f'<div class="cookie">We use cookies to improve your experience. <a href="#">Accept</a></div>'
            f"<header><nav><ul>{nav}</ul></nav></header><main><article><h1>{title}</h1>"
            f'<p class="byline">By Staff Writer</p>{body}</article>'
            f'<aside class="related"><h2>Related</h2><ul>{related}</ul></aside>'
            f'<section class="comments"><h3>Comments</h3>{comments}</section></main>'
            f"<footer><p>© The Bench Times. All rights reserved.</p><ul>{nav}</ul></footer></body></html>")


def write_pages(folder: Path, count: int, words: int) -> None:
    records = []
    for name in ("multihop-en", "idkmrc-id", "facqa-id", "xling-en-id"):
        path = DATA / name / "corpus.jsonl"
        if path.is_file():
            records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records:
        sys.exit(f"no corpora under {DATA}: --html-pages needs ../shared/data")
    rng = random.Random(14)
    for n in range(count):
        (folder / f"page-{n:04d}.html").write_text(_page(records[n % len(records)], n, words, rng), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--html-pages", type=int, default=0, help="also ingest this many generated news pages")
    parser.add_argument("--words", type=int, default=300, help="words of article text per generated page")
    parser.add_argument("--once", action="store_true", help="skip the re-ingest run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = list(args.paths)
        if args.html_pages:
            pages = Path(tmp) / "pages"
            pages.mkdir()
            write_pages(pages, args.html_pages, args.words)
            size = sum(p.stat().st_size for p in pages.iterdir())
            print(f"{args.html_pages} pages, {size / args.html_pages / 1000:.0f} kB each on average")
            paths.append(str(pages))
        # A fresh store, but the usual model directory: the model is assembled only once.
        settings = Settings.from_env(data_dir=Path(tmp) / "data", model_dir=Settings.from_env().models_dir)
        kabar = Assistant(settings)
        for label in ("first ingest", "re-ingest")[: 1 if args.once else 2]:
            started = time.perf_counter()
            report = ingest(paths, kabar, progress=True)
            wall = time.perf_counter() - started
            rest = wall - report.embed_seconds
            print(f"{label}: {len(report.new) + len(report.updated)} documents written, "
                  f"{len(report.unchanged)} unchanged, {len(report.duplicates)} near-duplicates, "
                  f"{report.chunks_written} chunks in {wall:.1f}s ({report.chunks_written / wall:.1f} chunks/s), "
                  f"errors: {len(report.errors)}")
            print(f"  inside the embedder {report.embed_seconds:.1f}s, everything else {rest:.1f}s "
                  f"({rest / wall:.1%} of the time)")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory (this process): {rss_mb:.0f} MB; chunk_tokens={settings.chunk_tokens} "
              f"overlap={settings.chunk_overlap} embedder={kabar.embedder.model_id}")


if __name__ == "__main__":
    main()
