"""Benchmark answering: server start, time to sources and first token, total time, peak memory.

    .venv/bin/python scripts/bench_ask.py examples/articles "who leads hybrid cloud?" --repeat 3
    .venv/bin/python scripts/bench_ask.py examples/articles "Q1" "Q2" ... [--cold-prefix]

Ingests PATH into a fresh temporary data directory, then asks the questions in turn, REPEAT
times, with the configured LLM (the local llama.cpp server by default) and prints the timings
of each answer, the answer itself, and the peak memory of this process and of the server.

llama.cpp's server keeps the state of the last prompt it read and reads only what differs,
so a question after another one re-reads little of the shared system prompt.
``--cold-prefix`` sends a short unrelated request before each question, so that nothing of
the last prompt is left to reuse: the difference to a run without it is what that saves.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import ingest  # noqa: E402
from rag.assistant import Assistant  # noqa: E402
from rag.settings import Settings  # noqa: E402

UNRELATED = [{"role": "system", "content": "Reply with one word."}, {"role": "user", "content": "Say yes."}]


def _server_peak_mb(kabar: Assistant) -> float | None:
    server = getattr(kabar.llm, "server", None)
    if server is None or server.pid is None:
        return None
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("questions", nargs="+")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cold-prefix", action="store_true",
                        help="an unrelated request before each question: no prompt state to reuse")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # A fresh store, but the usual model directory: the model is assembled only once.
        settings = Settings.from_env(data_dir=Path(tmp), model_dir=Settings.from_env().models_dir)
        with Assistant(settings) as kabar:
            ingest([args.path], kabar)
            started = time.perf_counter()
            _ = kabar.llm  # assemble the model (first time) and start the server
            print(f"LLM ready in {time.perf_counter() - started:.1f}s: {kabar.describe_llm()}")
            first_tokens = []
            for i in range(args.repeat):
                for question in args.questions:
                    if args.cold_prefix:
                        kabar.llm.complete(UNRELATED, max_tokens=1)
                    a = kabar.ask(question)
                    t = a.timings
                    first_tokens.append(t.first_token_s)
                    print(f"run {i + 1}: sources {t.sources_s * 1000:.0f} ms, first token {t.first_token_s:.2f}s, "
                          f"total {t.total_s:.2f}s, prompt {a.usage.prompt_tokens} tokens, "
                          f"answer {a.usage.completion_tokens} tokens: {question!r} -> {a.text!r}")
            server = _server_peak_mb(kabar)
        print(f"first token: median {statistics.median(first_tokens):.2f}s over {len(first_tokens)} answers"
              + (" (cold prefix)" if args.cold_prefix else ""))
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory: this process {rss_mb:.0f} MB"
              + (f", LLM server {server:.0f} MB" if server else ""))


if __name__ == "__main__":
    main()
