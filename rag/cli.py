"""The library's subcommands of ``kabar``: ask, timeline, docs, delete, info, doctor, serve-llm.

Every command goes through the Python API. :func:`register` adds them to the parser that
:mod:`ui.main` (the ``kabar`` command itself) builds, beside those of ingest/, eval/ and ui/;
rag/ imports none of those. Errors are raised and rendered there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from rag.settings import Settings


def _print_articles(articles: Any, cited: set[int]) -> None:
    """One line per article: its passage numbers, title, where and what is known; ``*`` if cited."""
    from rag.types import also_published, display_title, source_facts

    for article in articles:
        c = article.chunk
        numbers = "".join(f"[{n}]" for n in article.numbers)
        mark = "*" if cited & set(article.numbers) else " "
        facts = source_facts(c.source, c.published, c.author, c.page)
        print(f" {mark}{numbers} {display_title(c.title, c.text)} — {c.url or c.source}"
              + (f" ({facts})" if facts else ""))
        also = also_published(c.alternatives)
        if also:
            print(f"       {also}")


def _iso_date(value: str) -> str:
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date like 2023-12-06. Currently, it is {value!r}.") from None
    return value


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.assistant import Assistant, Prepared
    from rag.types import Answer, Filters, source_articles

    settings = Settings.from_args(args)
    if args.top_k:
        settings = settings.with_(top_k=args.top_k)
    filters = Filters(sources=args.source or [], doc_ids=args.doc or [], since=args.since or "",
                      until=args.until or "")
    streamed: list[str] = []
    with Assistant(settings, as_of=args.as_of) as kabar:
        answer: Answer | None = None
        for item in kabar.stream(args.question, filters=filters):
            if isinstance(item, Answer):
                answer = item
            elif args.json:
                continue
            elif isinstance(item, Prepared):
                # The sources first: they are known in a fraction of a second, the answer takes longer.
                articles = item.articles
                print(f"Reading {len(articles)} article(s):" if articles else "No passage matched the question.")
                if item.time_window:
                    print(f"  (favouring {item.time_window})")
                _print_articles(articles, set())
                print(flush=True)
            else:
                streamed.append(item)
                print(item, end="", flush=True)
    assert answer is not None
    if args.json:
        print(json.dumps(asdict(answer), ensure_ascii=False, indent=2))
        return 0
    print()
    if answer.text != "".join(streamed).strip():
        # A repaired citation, or an answer declined as ungrounded: the final word is Kabar's.
        for flag in answer.flags:
            print(f"  note: {flag}")
        print(answer.text)
    cited = {c.number for c in answer.citations}
    if cited:
        print("\nCited:")
        _print_articles([a for a in source_articles(answer.sources) if cited & set(a.numbers)], cited)
        for c in answer.citations:
            if c.supporting_sentence:
                print(f"  [{c.number}] supports it: \"{' '.join(c.supporting_sentence.split())}\"")
    t = answer.timings
    print(f"\n({t.sources_s:.1f}s to sources, {t.first_token_s:.1f}s to first token, {t.total_s:.1f}s in all; "
          f"{answer.model})", file=sys.stderr)
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from rag.assistant import Assistant

    with Assistant(Settings.from_args(args)) as kabar:
        docs = kabar.documents()
    for d in docs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.ingested_at))
        print(f"{d.doc_id}  {d.chunks:3d} chunks  {when}  {d.title[:60]}  ({d.source})")
    print(f"{len(docs)} document(s)", file=sys.stderr)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from rag.assistant import Assistant

    missing = 0
    with Assistant(Settings.from_args(args)) as kabar:
        for doc_id in args.doc_ids:
            removed = kabar.delete_document(doc_id)
            if removed:
                print(f"deleted {doc_id} ({removed} chunks)")
            else:
                print(f"kabar: error: no document with id {doc_id!r} (see `kabar docs`)", file=sys.stderr)
                missing += 1
    return 1 if missing else 0


def cmd_info(args: argparse.Namespace) -> int:
    from rag.assistant import Assistant

    with Assistant(Settings.from_args(args)) as kabar:
        info = kabar.info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key.replace('_', ' '):16} {value}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from rag.doctor import Check, run_checks

    def show(check: Check) -> None:
        if not args.json:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:16} {check.summary}", flush=True)

    checks = run_checks(Settings.from_args(args), llm=not args.no_llm, full_hash=args.full_hash, report=show)
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2, ensure_ascii=False))
    return 0 if all(c.ok for c in checks) else 1


def cmd_serve_llm(args: argparse.Namespace) -> int:
    from rag.errors import LLMServerStoppedError
    from rag.models.local_llm import LocalLlamaServer, ensure_model, stopped_message

    settings = Settings.from_args(args)
    model = ensure_model(settings.models_dir)
    log = settings.data_dir / "logs" / "llama-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = LocalLlamaServer(model, port=args.port or settings.llm_port, threads=settings.llm_threads,
                              context_tokens=settings.llm_context_tokens, log_path=log)
    with server:
        print(f"local LLM serving at {server.base_url} (log: {log})", flush=True)
        print(f"use it from other Kabar processes with: export OPENAI_BASE_URL={server.base_url}", flush=True)
        assert server.proc is not None
        code = server.proc.wait()
    if code:
        raise LLMServerStoppedError(stopped_message(code, log), code)
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    from rag.assistant import Assistant
    from rag.timeline import Timeline, TimelineEvent
    from rag.types import Filters

    filters = Filters(sources=args.source or [], since=args.since or "", until=args.until or "")
    events: list[TimelineEvent] = []
    with Assistant(Settings.from_args(args), as_of=args.as_of) as kabar:
        for item in kabar.timeline(args.topic, limit=args.limit, filters=filters):
            if isinstance(item, Timeline):
                if args.json:
                    print(json.dumps(asdict(item), ensure_ascii=False, indent=2))
                    return 0
                _print_timeline_end(item)
            elif not args.json:
                events.append(item)
                print(item.text(), flush=True)
    return 0


def _print_timeline_end(timeline: Any) -> None:
    print(("\n" if timeline.events else "") + timeline.summary())
    for event in timeline.events:
        print(f"  [{event.number}] {event.title} — {', '.join(event.urls) or ', '.join(event.outlets)}")
    if timeline.undated:
        print(f"  ({timeline.undated} article(s) about it have no date and are left out)")


def register(sub: Any) -> None:
    """Add the library's own subcommands to the ``kabar`` command's subparsers (see :mod:`ui.main`)."""
    p = sub.add_parser("ask", help="ask a question; streams the answer, then lists the sources")
    p.add_argument("question")
    p.add_argument("--top-k", type=int, help="chunks to retrieve (env KABAR_TOP_K)")
    p.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    p.add_argument("--source", action="append", help="only articles from this source (repeatable)")
    p.add_argument("--doc", action="append", help="only this document id (repeatable)")
    p.add_argument("--since", help="only articles published on or after YYYY-MM-DD")
    p.add_argument("--as-of", type=_iso_date, default=None,
                   help="read 'last week', 'kemarin', 'this year' as if asked on YYYY-MM-DD (default: today)")
    p.add_argument("--until", help="only articles published on or before YYYY-MM-DD")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("timeline", help="a story's articles in date order, one cited line each")
    p.add_argument("topic")
    p.add_argument("--since", type=_iso_date, help="only articles published on or after YYYY-MM-DD")
    p.add_argument("--until", type=_iso_date, help="only articles published on or before YYYY-MM-DD")
    p.add_argument("--source", action="append", help="only articles from this source (repeatable)")
    p.add_argument("--limit", type=int, default=20, help="the most relevant articles to place (default 20)")
    p.add_argument("--as-of", type=_iso_date, default=None,
                   help="read 'last month', 'tahun ini' in the topic as if asked on YYYY-MM-DD (default: today)")
    p.add_argument("--json", action="store_true", help="print the whole Timeline as JSON")
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("docs", help="list the ingested documents")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("delete", help="remove documents by id (see `kabar docs`)")
    p.add_argument("doc_ids", nargs="+")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("info", help="documents, chunks, models and data directory in use")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("doctor", help="check the CPU, llama.cpp build, model, LLM and embedder speed, and store")
    p.add_argument("--json", action="store_true", help="print every check's details as JSON")
    p.add_argument("--no-llm", action="store_true", help="skip the answer speed check (starts the local model)")
    p.add_argument("--full-hash", action="store_true", help="recompute the model file's SHA-256 (1.1 GB)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("serve-llm", help="run the local LLM server in the foreground for other processes to share")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (env KABAR_LLM_PORT, default 8765)")
    p.set_defaults(func=cmd_serve_llm)
