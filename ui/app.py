"""The Kabar web app: :func:`build_app` makes the Gradio page, :func:`serve` serves it.

    from rag import Assistant
    from ui.app import build_app, serve
    app = build_app(Assistant())          # nothing runs yet
    url = serve(app, host="127.0.0.1")    # serves in the background
    app.block_thread()                    # until Ctrl-C

Four tabs: Chat (streamed answers, their numbered sources, examples), Timeline (a story's
articles in date order), Documents (upload, table, delete) and Settings (top-k, temperature,
the models in use). The page holds each
browser session's state (the chat, the sliders); everything it does goes through the
:class:`~rag.assistant.Assistant` in :mod:`ui.handlers`. Bound to a non-loopback address the
app requires a user and password (:func:`check_auth`). Gradio's analytics are off.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import gradio as gr

from rag.assistant import Assistant
from rag.errors import ConfigError
from rag.settings import ENV, Settings
from ui import render
from ui.desks import is_loopback, login_check, parse_users
from ui.handlers import Handlers

log = logging.getLogger("kabar.ui")

#: Questions over the sample corpus (examples/articles), English and Indonesian.
EXAMPLES = [
    "Who leads hybrid cloud?",
    "Siapa yang memimpin divisi cloud publik Alibaba?",
    "How much is Huawei Cloud investing in Indonesia through 2026?",
    "Siapa yang akan memimpin entitas baru pusat data Telkom?",
]

#: Answers streamed at once across all sessions; more wait in the queue (their pages stay live).
ANSWER_CONCURRENCY = 2
USER_ENV, PASSWORD_ENV = ENV["ui_user"], ENV["ui_password"]

_SOURCES_CSS = """
.kabar-sources { font-size: 0.92em; line-height: 1.45; }
.kabar-sources h3 { margin: 0 0 0.5em 0; font-size: 1.05em; }
.kabar-muted { color: var(--body-text-color-subdued); font-weight: normal; }
.kabar-source-list { list-style: none; padding: 0; margin: 0; }
.kabar-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.5em 0.7em;
  margin-bottom: 0.6em; opacity: 0.8; }
.kabar-cited { border-color: var(--color-accent); border-width: 2px; opacity: 1; }
.kabar-cited .kabar-title { font-weight: 700; }
.kabar-star { color: var(--color-accent); }
.kabar-unsupported { font-size: 0.85em; }
.kabar-query { margin: 0 0 0.5em 0; font-size: 0.88em; }
.kabar-flags { font-size: 0.85em; margin: 0.2em 0; padding-left: 1.2em; }
.kabar-num { font-weight: 700; font-variant-numeric: tabular-nums; }
.kabar-where { font-size: 0.88em; color: var(--body-text-color-subdued); margin: 0.15em 0 0.35em 0;
  overflow-wrap: anywhere; }
.kabar-passage { margin: 0; padding: 0.1em 0.6em; border-left: 3px solid var(--border-color-primary);
  max-height: 12em; overflow-y: auto; }
.kabar-passage p { margin: 0.25em 0; }
.kabar-support { margin: 0.2em 0 0.3em 0; padding: 0.15em 0.5em; border-left: 3px solid var(--color-accent);
  font-style: italic; }
.kabar-support-mark { background: var(--color-accent-soft); color: inherit; }
.kabar-timing { font-size: 0.85em; margin-top: 0.3em; }
.kabar-events { padding-left: 1.6em; }
.kabar-event { margin-bottom: 0.6em; }
.kabar-event-date { font-weight: 700; font-variant-numeric: tabular-nums; }
"""


def build_app(assistant: Assistant) -> gr.Blocks:
    """The chat page over ``assistant``; returns without launching or starting anything."""
    s = assistant.settings
    h = Handlers(assistant, parse_users(s.ui_users) if s.ui_users.strip() else None)
    with gr.Blocks(title="Kabar", analytics_enabled=False) as app:
        gr.Markdown("## Kabar\nAsk about the news articles in the collection, in English or Indonesian. "
                    "Answers cite their sources as [1], [2], …")
        desk = gr.Dropdown(label="Desk", choices=[], value=None, visible=False, elem_id="kabar-desk",
                           info="the archive this page asks, lists and adds to")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(label="Kabar", elem_id="kabar-chat", height=520,
                                             latex_delimiters=[], feedback_options=None, buttons=["copy"],
                                             placeholder="Ask a question below, or pick an example.")
                        with gr.Row():
                            question = gr.Textbox(show_label=False, placeholder="Ask about the news…", scale=6,
                                                  elem_id="kabar-question", autofocus=True, max_lines=6)
                            ask = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="kabar-ask")
                        with gr.Row():
                            stop = gr.Button("Stop", size="sm", elem_id="kabar-stop")
                            clear = gr.Button("Clear chat", size="sm", elem_id="kabar-clear")
                        gr.Examples(EXAMPLES, inputs=[question], label="Examples (sample corpus)")
                    with gr.Column(scale=2):
                        sources = gr.HTML(render.EMPTY_SOURCES, css_template=_SOURCES_CSS, js_on_load=None,
                                          elem_id="kabar-sources", max_height=760, padding=True)
            with gr.Tab("Timeline", id="timeline"):
                with gr.Row(equal_height=True):
                    tl_topic = gr.Textbox(label="Topic", placeholder="e.g. Alibaba cloud", scale=4,
                                          elem_id="kabar-timeline-topic", max_lines=1)
                    tl_since = gr.Textbox(label="Since", placeholder="YYYY-MM-DD", scale=1, max_lines=1,
                                          elem_id="kabar-timeline-since")
                    tl_until = gr.Textbox(label="Until", placeholder="YYYY-MM-DD", scale=1, max_lines=1,
                                          elem_id="kabar-timeline-until")
                    tl_go = gr.Button("Show timeline", variant="primary", scale=1, elem_id="kabar-timeline-go")
                timeline = gr.HTML(render.EMPTY_TIMELINE, css_template=_SOURCES_CSS, js_on_load=None,
                                   elem_id="kabar-timeline", padding=True)
            with gr.Tab("Documents", id="documents"):
                upload = gr.File(label="Add articles: .txt/.md, .jsonl, web pages, PDFs, feeds, .warc archives",
                                 file_count="multiple", type="filepath", elem_id="kabar-upload", height=140)
                doc_status = gr.Markdown(elem_id="kabar-doc-status")
                table = gr.Dataframe(headers=render.DOCUMENT_HEADERS, datatype=["str", "str", "number", "str", "str"],
                                     interactive=False, wrap=True, elem_id="kabar-documents", label="Documents",
                                     column_widths=["38%", "26%", "8%", "14%", "14%"])
                with gr.Row():
                    picked = gr.Dropdown(label="Document to delete", choices=[], value=None, scale=4,
                                         elem_id="kabar-pick")
                    delete = gr.Button("Delete", variant="stop", scale=1, elem_id="kabar-delete")
                    refresh = gr.Button("Refresh", scale=1, elem_id="kabar-refresh")
            with gr.Tab("Settings", id="settings"):
                top_k = gr.Slider(1, 30, value=s.top_k, step=1, label="Passages to retrieve (top-k)",
                                  info="more passages: more context, slower answers", elem_id="kabar-top-k")
                temperature = gr.Slider(0.0, 1.5, value=s.temperature, step=0.05, label="Temperature",
                                        info="0 is the most deterministic", elem_id="kabar-temperature")
                gr.Markdown("These apply to this browser session only.")
                models = gr.Markdown(elem_id="kabar-models")

        # Chat: show the question at once (no queue), stream the answer (queued, a few at a time).
        asked = gr.on([question.submit, ask.click], h.add_question, [question, chatbot], [question, chatbot, ask],
                      queue=False, show_progress="hidden", api_visibility="private")
        answering = asked.then(h.answer, [chatbot, top_k, temperature, desk], [chatbot, sources],
                               concurrency_limit=ANSWER_CONCURRENCY, concurrency_id="answer",
                               show_progress="minimal", show_progress_on=[chatbot], api_name="answer")
        answering.then(h.ready, None, [question, ask], queue=False, show_progress="hidden", api_visibility="private")
        stop.click(h.ready, None, [question, ask], cancels=[answering], queue=False, api_visibility="private")
        clear.click(h.clear, None, [chatbot, sources, question, ask], cancels=[answering], queue=False,
                    api_visibility="private")
        chatbot.clear(h.clear, None, [chatbot, sources, question, ask], cancels=[answering], queue=False,
                      api_visibility="private")

        # Timeline: streamed like answers, a few at a time (it asks no model: a search each).
        gr.on([tl_topic.submit, tl_go.click], h.timeline, [tl_topic, tl_since, tl_until, desk], [timeline],
              concurrency_limit=4, concurrency_id="timeline", show_progress="minimal", api_name="timeline")

        # Documents and settings.
        doc_outputs = [doc_status, table, picked]
        upload.upload(h.upload, [upload, desk], [*doc_outputs, upload], concurrency_limit=1,
                      concurrency_id="ingest", show_progress_on=[doc_status], api_name="upload")
        delete.click(h.delete, [picked, desk], doc_outputs, concurrency_limit=1, concurrency_id="ingest",
                     api_name="delete")
        refresh.click(h.show_documents, [desk], doc_outputs, concurrency_limit=None, api_visibility="private")
        # The login's desks first; the table and the models then follow the chosen one.
        loaded = app.load(h.desks, None, [desk], queue=False, api_visibility="private")
        loaded.then(h.show_documents, [desk], doc_outputs, concurrency_limit=None, api_visibility="private")
        loaded.then(h.models, [desk], [models], concurrency_limit=None, api_visibility="private")
        # Only a user's pick (not the login's first desk set at load) changes the desk: a question
        # asked while the page loads keeps its chat.
        desk.input(h.show_documents, [desk], doc_outputs, concurrency_limit=None, api_visibility="private")
        desk.input(h.clear, None, [chatbot, sources, question, ask], cancels=[answering], queue=False,
                   api_visibility="private")
    app.queue(default_concurrency_limit=1)
    app.kabar_handlers = h  # type: ignore[attr-defined]  # for serve(): warm-up, upload limit
    return app


def check_auth(host: str, settings: Settings) -> tuple[str, str] | Callable[[str, str], bool] | None:
    """The (user, password) the app must require, or None on loopback without them; with
    ``KABAR_UI_USERS``, a check of its logins (each with its desks: :mod:`ui.desks`).

    Bound to any other address (the LAN, ``0.0.0.0``) the app is reachable by others, so
    a login is required; set on loopback too, it is used there as well.
    """
    if settings.ui_users.strip():
        return login_check(parse_users(settings.ui_users))
    user, password = settings.ui_user, settings.ui_password
    if user and password:
        return user, password
    if user or password:
        missing = PASSWORD_ENV if user else USER_ENV
        raise ConfigError(f"{missing} is not set; set both {USER_ENV} and {PASSWORD_ENV}, or neither (loopback only)")
    if not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without a login: set {USER_ENV} and {PASSWORD_ENV} (or KABAR_UI_USERS), "
            "or bind to 127.0.0.1 (the default)"
        )
    return None


def serve(app: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, *, open_browser: bool = False,
          warm_up: bool = False, **options: Any) -> str:
    """Start serving ``app`` in the background on ``host:port``; returns its URL.

    ``port`` None takes the first free port from 7860. ``warm_up`` starts the LLM in the
    background so that the first question does not wait for it. Stop with ``app.close()``,
    or block with ``app.block_thread()`` (returns on Ctrl-C).
    """
    handlers: Handlers | None = getattr(app, "kabar_handlers", None)
    auth = check_auth(host, handlers.assistant.settings if handlers else Settings.from_env())
    if handlers is not None:
        options.setdefault("max_file_size", int(handlers.assistant.settings.max_file_mb * 1_000_000))
    try:
        app.launch(server_name=host, server_port=port, auth=auth, inbrowser=open_browser, share=False,
                   prevent_thread_lock=True, quiet=True, show_error=False, footer_links=[], run_history=False,
                   **options)
    except OSError as e:
        raise ConfigError(f"cannot serve on {host}:{port or 7860}: {e}") from None
    if warm_up and handlers is not None:
        threading.Thread(target=_warm, args=(handlers,), name="kabar-warm-up", daemon=True).start()
    return str(app.local_url or f"http://{host}:{port}/")


def _warm(handlers: Handlers) -> None:
    try:
        handlers.warm_up()
    except Exception as e:  # the first question shows the error to the user
        log.warning("could not start the LLM ahead of the first question: %s", e)
