"""Prompt-eval and generation speed of the local model in this process, for comparing llama.cpp builds.

    python scripts/bench_llm.py [--prompt-tokens 900] [--gen-tokens 64] [--threads N] [--runs 3]
                                [--no-repack] [--model PATH]

Loads the default model (assembled under KABAR_MODEL_DIR or the data directory) with the
llama-cpp-python installed here (``LLAMA_CPP_LIB_PATH=DIR`` loads another build's libraries),
evaluates a prompt of N tokens of news text, then generates M tokens greedily, and prints
tokens/s for both, best of ``--runs``, with the build's system info. ``--no-repack`` loads
the model without llama.cpp's extra buffer types (no AMX, but no repacked Q4_K weights either).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.models.local_llm import ensure_model, usable_cores  # noqa: E402
from rag.settings import Settings  # noqa: E402

TEXT = (Path(__file__).resolve().parent.parent / "examples" / "articles" / "alibaba-cloud-reshuffle-id.txt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt-tokens", type=int, default=900)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-repack", action="store_true")
    parser.add_argument("--model")
    args = parser.parse_args()

    import llama_cpp

    model = Path(args.model) if args.model else ensure_model(Settings.from_env().models_dir)
    threads = args.threads or usable_cores()
    options = {"use_extra_bufts": False} if args.no_repack else {}
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=4096, n_threads=threads, n_threads_batch=threads,
                          n_batch=512, verbose=False, **options)
    words = TEXT.read_text(encoding="utf-8")
    tokens = llm.tokenize(words.encode())
    while len(tokens) < args.prompt_tokens:
        tokens += tokens
    tokens = tokens[: args.prompt_tokens]
    best_pp = best_tg = 0.0
    for _ in range(args.runs):
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        pp = len(tokens) / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(args.gen_tokens):
            token = llm.sample(temp=0.0)
            llm.eval([token])
        tg = args.gen_tokens / (time.perf_counter() - started)
        best_pp, best_tg = max(best_pp, pp), max(best_tg, tg)
    info = llama_cpp.llama_print_system_info().decode()
    print(json.dumps({"prompt_tokens": len(tokens), "prompt_tokens_per_s": round(best_pp, 1),
                      "gen_tokens": args.gen_tokens, "generation_tokens_per_s": round(best_tg, 1),
                      "threads": threads, "repack": not args.no_repack, "runs": args.runs,
                      "system_info": info}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
