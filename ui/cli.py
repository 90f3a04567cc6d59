"""``kabar ui``: serve the chat page (registered by :mod:`rag.cli` without importing Gradio).

Binds to 127.0.0.1 unless told otherwise; any other address needs KABAR_UI_USER and
KABAR_UI_PASSWORD. No public share links: put a reverse proxy in front to publish it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("ui", help="serve the chat web page (http://127.0.0.1:7860 by default)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; any other needs KABAR_UI_USER and KABAR_UI_PASSWORD)")
    p.add_argument("--port", type=int, default=None, help="port (default: the first free one from 7860)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(func=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    # Before Gradio is imported: no usage analytics, no version check.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from rag.assistant import Assistant
    from rag.cli import _settings
    from ui.app import build_app, check_auth, serve

    settings = _settings(args)
    check_auth(args.host, settings)  # fail before loading anything
    with Assistant(settings) as kabar:
        app = build_app(kabar)
        url = serve(app, args.host, args.port, open_browser=args.open, warm_up=True)
        login = " (login required)" if check_auth(args.host, settings) else ""
        print(f"Kabar chat at {url}{login}  (Ctrl-C to stop)", flush=True)
        print(f"LLM: {kabar.describe_llm()}", file=sys.stderr, flush=True)
        try:
            app.block_thread()
        finally:
            app.close()
    return 0
