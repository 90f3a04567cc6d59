"""Benchmark answering: server start, time to first token, total time and peak memory.

    .venv/bin/python scripts/bench_ask.py examples/articles "who leads hybrid cloud?" --repeat 3

Ingests PATH into a fresh temporary data directory, then asks the question REPEAT times
with the configured LLM (the local llama.cpp server by default) and prints the timings of
each answer, the answer itself, and the peak memory of this process and of the server.
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


def _server_peak_mb(kabar: Assistant) -> float | None:
    server = kabar._server
    if server is None or server.proc is None:
        return None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("question")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # A fresh store, but the usual model directory: the model is assembled only once.
        settings = Settings.from_env(data_dir=Path(tmp), model_dir=Settings.from_env().models_dir)
        with Assistant(settings) as kabar:
            ingest([args.path], kabar)
            started = time.perf_counter()
            _ = kabar.llm  # assemble the model (first time) and start the server
            print(f"LLM ready in {time.perf_counter() - started:.1f}s: {kabar.describe_llm()}")
            for i in range(args.repeat):
                a = kabar.ask(args.question)
                t = a.timings
                print(f"run {i + 1}: retrieval {t.retrieval_s * 1000:.0f} ms, first token {t.first_token_s:.2f}s, "
                      f"total {t.total_s:.2f}s, prompt {a.usage.prompt_tokens} tokens, "
                      f"answer {a.usage.completion_tokens} tokens: {a.text!r}")
            server = _server_peak_mb(kabar)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory: this process {rss_mb:.0f} MB"
              + (f", LLM server {server:.0f} MB" if server else ""))


if __name__ == "__main__":
    main()
