"""The chat page's event handlers: thin calls into :class:`rag.Assistant`.

Each handler takes and returns plain values (the chat as a list of ``{"role", "content"}``
messages, HTML and Markdown strings, table rows), so tests call them without a browser.
Failures become messages on the page: Kabar's errors say what to do next, anything else
is logged on the server and shown as one line. Nothing here retrieves, prompts or ingests
by itself; the per-session state (the chat, the sliders) lives in the page.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from ingest import ingest
from rag.assistant import Assistant, Prepared
from rag.errors import KabarError
from rag.timeline import Timeline
from rag.types import Answer, Filters
from ui import render
from ui.desks import DeskDenied, Grant, desk_assistant, upload_folder

log = logging.getLogger("kabar.ui")

Chat = list[dict[str, Any]]


def _problem(e: Exception) -> str:
    """What the page says about a failure: Kabar's own message, or one line for the unexpected."""
    if isinstance(e, (KabarError, ValueError)):
        return str(e)
    log.exception("unexpected error in the web UI")
    return f"unexpected error ({type(e).__name__}); the server log has the details"


class Handlers:
    """The handlers of one app, bound to its assistant (shared by every browser session).

    ``users`` (``KABAR_UI_USERS``, :mod:`ui.desks`): each login's desks; the page's desk
    picker names one of them, and every handler works on that desk only (reading, or
    writing where the login may). Without it the page works on the default collection.
    """

    def __init__(self, assistant: Assistant, users: dict[str, tuple[str, Grant]] | None = None) -> None:
        self.assistant = assistant
        self.users = users or {}

    def grant(self, request: gr.Request | None) -> Grant:
        """What the session's login may use."""
        if self.users:
            entry = self.users.get(getattr(request, "username", None) or "")
            if entry is None:
                raise DeskDenied(404, "this login has no desk")
            return entry[1]
        name = self.assistant.settings.collection
        return Grant("page", (name,), (name,))

    def desk(self, desk: str | None, request: gr.Request | None, write: bool = False) -> Assistant:
        """The assistant of the session's chosen desk, or DeskDenied."""
        return desk_assistant(self.assistant, self.grant(request), desk or "", write)

    def desks(self, request: gr.Request) -> Any:
        """The desk picker for this login: its desks, the first chosen, hidden when there is one."""
        try:
            read = list(self.grant(request).read)
        except DeskDenied:
            read = []
        return gr.update(choices=read, value=read[0] if read else None, visible=len(read) > 1)

    def warm_up(self, llm: bool = True) -> None:
        """Create the assistant's components now (once, whichever session comes first)."""
        self.assistant.warm_up(llm)

    # -- chat ----------------------------------------------------------------------------

    def add_question(self, message: str, chat: Chat | None) -> tuple[Any, Chat, Any]:
        """Show the question at once and lock the input until the answer is done."""
        chat = list(chat or [])
        message = (message or "").strip()
        if not message:
            return gr.update(), chat, gr.update()
        chat.append({"role": "user", "content": message})
        # Shown until the answer starts: answers are queued, a few at a time across all sessions.
        chat.append(render.status_message(render.QUEUED))
        return gr.update(value="", interactive=False), chat, gr.update(interactive=False)

    def answer(self, chat: Chat | None, top_k: float | None = None, temperature: float | None = None,
               desk: str | None = None, request: gr.Request = None) -> Iterator[tuple[Chat, Any]]:
        """Stream the answer to the last question: its sources first, then the text, then the
        sources again with the cited ones marked (panel and chat)."""
        chat = [m for m in chat or [] if not render.is_status(m)]
        if not chat or chat[-1].get("role") != "user":
            yield chat, gr.skip()  # nothing asked (an empty submit)
            return
        question = render.message_text(chat[-1])
        history = render.api_history(chat[:-1])
        # Until the first word, a status line says what is happening ("Reading 4 articles…");
        # the answer's own message replaces it.
        status = render.status_message(render.SEARCHING)
        chat.append(status)
        yield chat, render.pending_sources_html([], render.SEARCHING)
        reply = {"role": "assistant", "content": ""}
        text = ""
        try:
            options: dict[str, Any] = {}
            if top_k:
                options["top_k"] = int(top_k)
            if temperature is not None:
                options["temperature"] = float(temperature)
            target = self.desk(desk, request)
            for item in target.stream(question, history, **options):
                if isinstance(item, Prepared):
                    busy = target.llm_state()
                    title = render.reading_status(len(item.articles), waiting=busy == "busy",
                                                  starting=busy == "starting")
                    status["metadata"] = {"title": title, "status": "pending"}
                    yield chat, render.pending_sources_html(item.sources, title)
                elif isinstance(item, Answer):
                    reply["content"] = item.text or "(the model returned no text)"
                    chat = [m for m in chat if m is not status]
                    if reply not in chat:
                        chat.append(reply)
                    extra = render.sources_message(item)
                    if extra:
                        chat.append(extra)
                    yield chat, render.sources_html(item)
                else:
                    if status in chat:
                        chat = [m for m in chat if m is not status] + [reply]
                    text += item
                    reply["content"] = text
                    yield chat, gr.skip()
        except Exception as e:  # every failure ends as a message, never a traceback
            problem = _problem(e)
            chat = [m for m in chat if m is not status]
            chat.append(render.error_message(f"the answer was cut off: {problem}" if text else problem))
            yield chat, render.EMPTY_SOURCES

    def ready(self) -> tuple[Any, Any]:
        """Unlock the input after an answer (or a stop)."""
        return gr.update(interactive=True), gr.update(interactive=True)

    def clear(self) -> tuple[Chat, str, Any, Any]:
        """An empty chat in this session only."""
        return [], render.EMPTY_SOURCES, gr.update(value="", interactive=True), gr.update(interactive=True)

    # -- timeline ------------------------------------------------------------------------

    def timeline(self, topic: str, since: str = "", until: str = "", desk: str | None = None,
                 request: gr.Request = None) -> Iterator[str]:
        """Stream a story's timeline: each line as it is placed, then how many and from when."""
        events: list[Any] = []
        try:
            filters = Filters(since=(since or "").strip(), until=(until or "").strip())
            for item in self.desk(desk, request).timeline(topic or "", filters=filters):
                if isinstance(item, Timeline):
                    yield render.timeline_html(events, item)
                else:
                    events.append(item)
                    yield render.timeline_html(events)
        except Exception as e:  # every failure ends as a message, never a traceback
            yield render.timeline_html(events, problem=_problem(e))

    # -- documents -----------------------------------------------------------------------

    def list_documents(self, desk: str | None = None, request: gr.Request = None) -> tuple[list[list[Any]], Any]:
        """The documents table and the delete picker's choices."""
        docs = self.desk(desk, request).documents()
        return render.document_rows(docs), gr.update(choices=render.document_choices(docs), value=None)

    def show_documents(self, desk: str | None = None, request: gr.Request = None) -> tuple[str, list[list[Any]], Any]:
        """The table on page load (or a message if the store cannot be read)."""
        try:
            self.warm_up(llm=False)
            rows, picker = self.list_documents(desk, request)
            return "", rows, picker
        except Exception as e:
            return f"{render.ERROR_MARK} {render.message_escape(_problem(e))}", [], gr.update(choices=[], value=None)

    def upload(self, files: Sequence[str] | str | None, desk: str | None = None,
               progress: Any = gr.Progress(), request: gr.Request = None,  # noqa: B008
               ) -> tuple[str, list[list[Any]], Any, None]:
        """Ingest uploaded files; returns a status message, the new table, and clears the upload box.

        The files are kept in ``<data dir>/uploads/`` under their own names: Gradio's temporary
        copies go away, and a document's id comes from its path, so uploading a file again
        updates that document instead of adding a second one.
        """
        paths = [files] if isinstance(files, str) else list(files or [])
        if not paths:
            return ("Choose one or more files first (.txt, .md, .jsonl, .html, .pdf, a feed or a web archive).",
                    *self._table_or_empty(desk, request), None)
        try:
            self.warm_up(llm=False)
            target = self.desk(desk, request, write=True)
            folder = upload_folder(self.assistant.settings, target.settings)
            kept = self._keep_uploads(paths, folder)
            progress((0, None), desc="reading files")
            report = ingest(kept, target, progress=_progress_fn(progress))
            status = _ingest_status(report, folder)
        except Exception as e:
            status = f"{render.ERROR_MARK} **Upload failed:** {render.message_escape(_problem(e))}"
        return status, *self._table_or_empty(desk, request), None

    def _keep_uploads(self, paths: Sequence[str], folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        kept = []
        for raw in paths:
            src = Path(raw)
            dest = folder / src.name
            if src.resolve() != dest.resolve():
                shutil.copyfile(src, dest)
            kept.append(dest)
        return kept

    def delete(self, doc_id: str | None, desk: str | None = None,
               request: gr.Request = None) -> tuple[str, list[list[Any]], Any]:
        """Remove the chosen document from the desk's store."""
        if not doc_id:
            return "Choose a document to delete first.", *self._table_or_empty(desk, request)
        try:
            target = self.desk(desk, request, write=True)
            title = next((d.title for d in target.documents() if d.doc_id == doc_id), doc_id)
            removed = target.delete_document(doc_id)
            status = (f"Deleted **{render.md_escape(title)}** ({removed} chunks)." if removed else
                      f"{render.ERROR_MARK} {render.md_escape(title)} was not in the store (already deleted?).")
        except Exception as e:
            status = f"{render.ERROR_MARK} **Delete failed:** {render.message_escape(_problem(e))}"
        return status, *self._table_or_empty(desk, request)

    def _table_or_empty(self, desk: str | None, request: gr.Request | None) -> tuple[list[list[Any]], Any]:
        try:
            return self.list_documents(desk, request)
        except Exception:
            log.exception("cannot list documents")
            return [], gr.update(choices=[], value=None)

    # -- settings ------------------------------------------------------------------------

    def models(self, desk: str | None = None, request: gr.Request = None) -> str:
        """Which LLM and embedding model are in use, local or remote, and what is stored."""
        s = self.assistant.settings
        try:
            self.warm_up(llm=False)
            info = self.desk(desk, request).info()
        except Exception as e:
            info = {"llm": self.assistant.describe_llm(), "embedding_model": s.embed_model,
                    "store": f"unavailable: {_problem(e)}", "collection": s.collection}
        return render.models_markdown(info, s.local_embeddings, s.local_llm)


def _progress_fn(progress: Any) -> Callable[[int, int], None]:
    def update(done: int, total: int) -> None:
        progress((done, total), desc="embedding", unit="chunks")

    return update


def _ingest_status(report: Any, upload_dir: Path) -> str:
    """One line of what was ingested, then one line per file that could not be."""
    docs = len(report.new) + len(report.updated) + len(report.unchanged)
    parts = []
    if report.new:
        parts.append(f"{len(report.new)} new")
    if report.updated:
        parts.append(f"{len(report.updated)} updated")
    if report.unchanged:
        parts.append(f"{len(report.unchanged)} unchanged")
    lines = []
    if docs:
        lines.append(f"✓ Ingested {docs} document(s) ({', '.join(parts)}): {report.chunks_written} chunk(s) "
                     f"written in {report.seconds:.1f}s.")
    prefix = str(upload_dir) + "/"
    for err in report.errors:
        where = str(err.source).removeprefix(prefix)
        lines.append(f"{render.ERROR_MARK} **{render.md_escape(where)}**: {render.message_escape(err.problem)}")
    if not lines:
        lines.append(f"{render.ERROR_MARK} Nothing was ingested.")
    return "\n\n".join(lines)
