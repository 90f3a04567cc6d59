"""Several users asking at once: a bounded load test of `kabar serve`'s HTTP API on loopback.

    .venv/bin/kabar serve --port 8080 &          # over a store with examples/articles ingested
    .venv/bin/python scripts/load_test.py --users 8 --duration 180

Each simulated user asks the questions of examples/questions.jsonl in turn (POST /v1/ask,
server-sent events) and asks again as soon as an answer is complete, until ``--duration``
seconds have passed; answers still running then may finish within ``--grace`` seconds, after
which they are cancelled and counted as unfinished. ``--max-requests`` caps the total. Meanwhile
a prober fetches /health, /v1/documents and the chat page (/ui/, a new session) every
``--probe-every`` seconds, to show whether the server stays responsive while answers queue.

Reported: errors (HTTP errors, ``error`` events, dropped streams), time to sources and to the
first token (p50/p95, from the request), the model wait (first token minus sources: queueing
behind other answers plus reading the prompt) beside the same wait for one question asked
alone first, answers per minute, and the probes' latencies. Talks only to 127.0.0.1/localhost;
writes the numbers as JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass
class Ask:
    user: int
    question: str
    started: float
    status: int = 0
    sources_s: float | None = None
    first_token_s: float | None = None
    total_s: float | None = None
    error: str = ""
    refused: bool | None = None


@dataclass
class Probes:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def ask(client: httpx.AsyncClient, user: int, question: str) -> Ask:
    result = Ask(user, question, time.perf_counter())
    event = ""
    try:
        async with client.stream("POST", "/v1/ask", json={"question": question}) as response:
            result.status = response.status_code
            if response.status_code != 200:
                body = (await response.aread()).decode("utf-8", "replace")
                result.error = f"HTTP {response.status_code}: {body[:200]}"
                return result
            async for line in response.aiter_lines():
                now = time.perf_counter() - result.started
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    if event == "sources" and result.sources_s is None:
                        result.sources_s = now
                    elif event == "delta" and result.first_token_s is None:
                        result.first_token_s = now
                    elif event == "answer":
                        result.total_s = now
                        result.refused = bool(json.loads(line[6:]).get("refused"))
                    elif event == "error":
                        result.error = json.loads(line[6:])["error"]["message"][:200]
        if result.total_s is None and not result.error:
            result.error = "the stream ended without an answer"
    except asyncio.CancelledError:
        result.error = "unfinished: cancelled after the grace period"
        raise
    except httpx.HTTPError as e:
        result.error = f"{type(e).__name__}: {e}"[:200]
    return result


async def user_loop(client: httpx.AsyncClient, user: int, questions: list[str], deadline: float,
                    budget: list[int], results: list[Ask]) -> None:
    i = user
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        question = questions[i % len(questions)]
        i += 1
        task = asyncio.ensure_future(ask(client, user, question))
        try:
            results.append(await task)
        except asyncio.CancelledError:
            results.append(Ask(user, question, 0.0, error="unfinished: cancelled after the grace period"))
            raise


async def prober(client: httpx.AsyncClient, every: float, stop: asyncio.Event, probes: Probes) -> None:
    paths = ["/health", "/v1/documents", "/ui/"]
    while not stop.is_set():
        for path in list(paths):
            started = time.perf_counter()
            try:
                r = await client.get(path, timeout=30)
                if r.status_code == 404 and path == "/ui/":
                    paths.remove(path)  # served with --no-ui
                    continue
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                probes.latencies.setdefault(path, []).append(time.perf_counter() - started)
            else:
                probes.failures[path] = probes.failures.get(path, 0) + 1
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


def summarize(results: list[Ask], alone: Ask, probes: Probes, wall_s: float, args: argparse.Namespace) -> dict:
    done = [r for r in results if r.total_s is not None and not r.error]
    sources = [r.sources_s for r in results if r.sources_s is not None]
    first = [r.first_token_s for r in done if r.first_token_s is not None]
    waits = [r.first_token_s - r.sources_s for r in done if r.first_token_s is not None and r.sources_s is not None]
    totals = [r.total_s for r in done if r.total_s is not None]

    def pq(values: list[float]) -> dict[str, float | None]:
        return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values) if values else None}

    alone_wait = (alone.first_token_s - alone.sources_s) if alone.first_token_s and alone.sources_s else None
    return {
        "users": args.users, "duration_s": args.duration, "wall_s": wall_s, "requests": len(results),
        "answered": len(done), "errors": len([r for r in results if r.error]),
        "error_messages": sorted({r.error for r in results if r.error})[:10],
        "refused": len([r for r in done if r.refused]),
        "answers_per_minute": len(done) / wall_s * 60 if wall_s else 0.0,
        "time_to_sources_s": pq(sources), "time_to_first_token_s": pq(first), "model_wait_s": pq(waits),
        "total_s": pq(totals),
        "alone": {"sources_s": alone.sources_s, "first_token_s": alone.first_token_s, "total_s": alone.total_s,
                  "model_wait_s": alone_wait, "error": alone.error},
        "probes_s": {path: pq(values) | {"n": len(values)} for path, values in probes.latencies.items()},
        "probe_failures": probes.failures,
        "results": [asdict(r) for r in results],
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def report(s: dict) -> str:
    lines = [
        f"{s['users']} users, {s['duration_s']:g}s (+ grace): {s['requests']} questions, {s['answered']} answered, "
        f"{s['errors']} errors, {s['answers_per_minute']:.1f} answers/min over {s['wall_s']:.0f}s",
        f"alone first: sources {fmt(s['alone']['sources_s'])}, first token {fmt(s['alone']['first_token_s'])}, "
        f"model wait {fmt(s['alone']['model_wait_s'])}, total {fmt(s['alone']['total_s'])}",
    ]
    for key, label in (("time_to_sources_s", "time to sources"), ("time_to_first_token_s", "time to first token"),
                       ("model_wait_s", "model wait (queue + prompt)"), ("total_s", "whole answer")):
        v = s[key]
        lines.append(f"  {label:28} p50 {fmt(v['p50'])}  p95 {fmt(v['p95'])}  max {fmt(v['max'])}")
    for path, v in s["probes_s"].items():
        lines.append(f"  probe {path:22} p50 {fmt(v['p50'])}  p95 {fmt(v['p95'])}  max {fmt(v['max'])}  (n={v['n']})")
    if s["probe_failures"]:
        lines.append(f"  probe failures: {s['probe_failures']}")
    for message in s["error_messages"]:
        lines.append(f"  error: {message}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict:
    questions = [json.loads(line)["question"] for line in Path(args.questions).read_text().splitlines() if line]
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    timeout = httpx.Timeout(args.duration + args.grace, connect=10)
    limits = httpx.Limits(max_connections=args.users + 4)
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=timeout, limits=limits) as client:
        health = await client.get("/health")
        health.raise_for_status()
        alone = await ask(client, -1, questions[0])  # starts the model if needed; then the baseline
        alone = await ask(client, -1, questions[1 % len(questions)])
        print(f"alone: {json.dumps(asdict(alone))}", file=sys.stderr, flush=True)
        results: list[Ask] = []
        probes = Probes()
        stop = asyncio.Event()
        started = time.perf_counter()
        deadline = started + args.duration
        budget = [args.max_requests]
        probe = asyncio.ensure_future(prober(client, args.probe_every, stop, probes))
        users = [asyncio.ensure_future(user_loop(client, u, questions, deadline, budget, results))
                 for u in range(args.users)]
        _, pending = await asyncio.wait(users, timeout=args.duration + args.grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        stop.set()
        await probe
        return summarize(results, alone, probes, time.perf_counter() - started, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="kabar serve's address (loopback only)")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds during which new questions start")
    parser.add_argument("--grace", type=float, default=240.0, help="seconds more for answers still running")
    parser.add_argument("--max-requests", type=int, default=500, help="questions in all, at most")
    parser.add_argument("--probe-every", type=float, default=2.0)
    parser.add_argument("--questions", default=str(ROOT / "examples" / "questions.jsonl"))
    parser.add_argument("--token", default="", help="the API token, if the server requires one")
    parser.add_argument("--out", help="write the numbers (and every request) as JSON here")
    args = parser.parse_args()
    host = urlparse(args.url).hostname or ""
    if host not in LOOPBACK and not host.startswith("127."):
        parser.error(f"--url must be on this machine (127.0.0.1 or localhost), not {host!r}")
    if args.users < 1 or args.duration <= 0 or args.max_requests < 1:
        parser.error("--users, --duration and --max-requests must be positive")
    summary = asyncio.run(main_async(args))
    print(report(summary))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
