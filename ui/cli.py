"""``kabar ui`` (the chat page), ``kabar serve`` (the HTTP API, the chat page at /ui, MCP at
/mcp) and ``kabar mcp`` (Kabar's MCP tools on stdio, for a desktop assistant).

Registered by :mod:`ui.main` without importing Gradio. Both bind to 127.0.0.1 unless told
otherwise; any other address needs KABAR_UI_USER and KABAR_UI_PASSWORD for the page and
KABAR_API_TOKEN for the API. No public share links: put a reverse proxy in front to publish it.
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

    p = subparsers.add_parser("serve", help="serve the HTTP API (and the chat page at /ui) on http://127.0.0.1:8080")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; any other needs KABAR_API_TOKEN, and the chat page "
                        "KABAR_UI_USER and KABAR_UI_PASSWORD)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--no-ui", action="store_true", help="the API only, without the chat page at /ui")
    p.add_argument("--no-warm-up", action="store_true", help="start the LLM on the first question, not at start")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("mcp", help="serve Kabar's tools over MCP on stdin/stdout, for a desktop assistant")
    p.set_defaults(func=cmd_mcp)


def cmd_ui(args: argparse.Namespace) -> int:
    # Before Gradio is imported: no usage analytics, no version check.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ingest.guard import serving_on
    from rag.assistant import Assistant
    from rag.settings import Settings
    from ui.app import build_app, check_auth, serve

    settings = Settings.from_args(args)
    check_auth(args.host, settings)  # fail before loading anything
    with Assistant(settings) as kabar:
        app = build_app(kabar)
        url = serve(app, args.host, args.port, open_browser=args.open, warm_up=True)
        serving_on(int(url.rstrip("/").rsplit(":", 1)[1]))
        login = " (login required)" if check_auth(args.host, settings) else ""
        print(f"Kabar chat at {url}{login}  (Ctrl-C to stop)", flush=True)
        print(f"LLM: {kabar.describe_llm()}", file=sys.stderr, flush=True)
        try:
            app.block_thread()
        finally:
            app.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import threading

    import uvicorn

    from ingest.guard import serving_on
    from rag.assistant import Assistant
    from rag.settings import Settings
    from ui.server import UI_PATH, check_token, server_app

    settings = Settings.from_args(args)
    check_token(args.host, settings)  # fail before loading anything
    with Assistant(settings) as kabar:
        app = server_app(kabar, args.host, ui=not args.no_ui)
        if not args.no_warm_up:
            threading.Thread(target=_warm, args=(kabar,), name="kabar-warm-up", daemon=True).start()
        base = f"http://{args.host}:{args.port}"
        print(f"Kabar API at {base}/v1 (schema: {base}/openapi.json)"
              + ("" if args.no_ui else f", chat page at {base}{UI_PATH}/") + "  (Ctrl-C to stop)", flush=True)
        print(f"LLM: {kabar.describe_llm()}", file=sys.stderr, flush=True)
        serving_on(args.port)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


def _warm(kabar: Any) -> None:
    try:
        kabar.warm_up()
    except Exception as e:  # the first question reports it
        print(f"kabar: could not start the LLM ahead of the first question: {e}", file=sys.stderr, flush=True)


def cmd_mcp(args: argparse.Namespace) -> int:
    """MCP over stdio: stdout carries the protocol, so everything else goes to stderr."""
    from rag.assistant import Assistant
    from rag.settings import Settings
    from ui.mcp_server import build_mcp

    settings = Settings.from_args(args)
    with Assistant(settings) as kabar:
        print(f"Kabar MCP on stdio over {settings.collection!r}; LLM: {kabar.describe_llm()}", file=sys.stderr,
              flush=True)
        build_mcp(kabar).run("stdio")
    return 0
