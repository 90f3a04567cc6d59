"""``kabar serve``'s app: the HTTP API with the chat page mounted beside it, on one server.

    app = server_app(Assistant(), host="127.0.0.1")   # the API at /, the chat page at /ui
    uvicorn.run(app, host="127.0.0.1", port=8080)

Bound to anything but loopback the API needs a token (``KABAR_API_TOKEN``) and the chat
page a login (``KABAR_UI_USER`` / ``KABAR_UI_PASSWORD``): :func:`check_token` refuses to
start without them, as :func:`ui.app.check_auth` does for the page alone. Leaves TLS to a
reverse proxy.
"""

from __future__ import annotations

from typing import Any

from rag.assistant import Assistant
from rag.errors import ConfigError
from rag.settings import ENV, Settings
from ui.app import check_auth, is_loopback
from ui.desks import parse_tokens

TOKEN_ENV = ENV["api_token"]
UI_PATH = "/ui"


def check_token(host: str, settings: Settings) -> str:
    """The single token the API must require ("" on loopback without one, or when
    ``KABAR_API_TOKENS`` gives the tokens and their desks, checked here)."""
    if settings.api_tokens.strip():
        parse_tokens(settings.api_tokens)  # a broken tokens file stops the start, not the first request
        if not settings.api_token:
            return ""
    if settings.api_token:
        if len(settings.api_token) < 16:
            raise ConfigError(f"{TOKEN_ENV} is too short to guess-proof: use 16 characters or more, "
                              "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`")
        return settings.api_token
    if not is_loopback(host):
        raise ConfigError(f"refusing to serve the API on {host} without a token: set {TOKEN_ENV} "
                          "(clients send 'Authorization: Bearer <token>'), or bind to 127.0.0.1 (the default)")
    return ""


def server_app(assistant: Assistant, host: str = "127.0.0.1", ui: bool = True) -> Any:
    """The API, and unless ``ui`` is False the chat page at ``/ui``; checks token and login first."""
    import gradio as gr

    from ui.api import build_api
    from ui.app import build_app

    settings = assistant.settings
    token = check_token(host, settings)
    app = build_api(assistant, token=token)
    if ui:
        auth = check_auth(host, settings)
        page = build_app(assistant)
        app = gr.mount_gradio_app(app, page, UI_PATH, auth=auth, show_error=False, footer_links=[],
                                  max_file_size=int(settings.max_file_mb * 1_000_000))
    return app
