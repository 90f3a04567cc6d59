"""``kabar ingest``: files, folders, URLs, feeds (registered by :mod:`ui.main`).

Prints the report's summary; exits 1 when nothing at all could be ingested.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("ingest", help="ingest articles: .txt/.md/.jsonl, web pages, PDFs, feeds, WARC "
                                             "archives, folders and http(s) URLs")
    p.add_argument("paths", nargs="+", metavar="PATH_OR_URL")
    p.add_argument("--no-dedupe", action="store_true",
                   help="store near-duplicate articles separately instead of as other sources of the first")
    p.set_defaults(func=cmd_ingest)


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.pipeline import ingest
    from rag.assistant import Assistant
    from rag.settings import Settings

    with Assistant(Settings.from_args(args)) as kabar:
        # On the user's own machine a URL they type may name it (a folder served on localhost);
        # public pages and feeds still never lead into it (ingest/guard.py).
        report = ingest(args.paths, kabar, progress=True, dedupe=not args.no_dedupe, loopback=True)
    print(report.summary())
    return 1 if report.errors and not (report.new or report.updated or report.unchanged or report.duplicates) else 0
