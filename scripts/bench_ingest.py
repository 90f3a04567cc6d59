"""Benchmark ingestion: wall time, chunks/s and peak memory for a folder or corpus file.

    .venv/bin/python scripts/bench_ingest.py examples/articles
    .venv/bin/python scripts/bench_ingest.py ../shared/data/multihop-en/corpus.jsonl

Ingests into a fresh temporary data directory with the configured settings (environment),
then ingests again to time the no-change path. Prints one line per run.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import ingest
from rag.assistant import Assistant  # noqa: E402
from rag.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # A fresh store, but the usual model directory: the model is assembled only once.
        settings = Settings.from_env(data_dir=Path(tmp), model_dir=Settings.from_env().models_dir)
        kabar = Assistant(settings)
        for label in ("first ingest", "re-ingest"):
            started = time.perf_counter()
            report = ingest(args.paths, kabar, progress=True)
            wall = time.perf_counter() - started
            print(f"{label}: {len(report.new) + len(report.updated)} documents written, "
                  f"{len(report.unchanged)} unchanged, {report.chunks_written} chunks in {wall:.1f}s "
                  f"({report.chunks_written / wall:.1f} chunks/s), errors: {len(report.errors)}")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory (this process): {rss_mb:.0f} MB; chunk_tokens={settings.chunk_tokens} "
              f"overlap={settings.chunk_overlap} embedder={kabar.embedder.model_id}")


if __name__ == "__main__":
    main()
