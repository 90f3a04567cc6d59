"""Kabar over the Model Context Protocol: tools a desktop assistant or an editor can call.

    kabar mcp                     # stdio, for a desktop assistant on this machine
    kabar serve                   # also serves MCP at /mcp (streamable HTTP), behind the API's tokens

:func:`build_mcp` makes one MCP server (the ``mcp`` SDK's :class:`MCPServer`) over an
:class:`~rag.assistant.Assistant` with five tools:

- ``ask``: a question answered from the articles: the answer, whether Kabar declined, its
  citations (with the sentence that supports each) and the articles it read;
- ``search``: the passages a question finds, without asking the model;
- ``timeline``: a story's articles in date order, one line each (:mod:`rag.timeline`);
- ``list_documents``: the desk's documents;
- ``ingest_url``: fetch and ingest http(s) URLs (pages, feeds, PDFs), where the token may write.

Each tool takes an optional ``desk``. Over HTTP the token's grant decides (:mod:`ui.desks`:
a desk it does not read is "no desk" whether it exists or not); over stdio the user of this
machine reaches every desk. URLs are fetched under the same policy as the API's
(:mod:`ingest.guard`): the public web only, unless ``KABAR_FETCH_ALLOW`` opens more.
A failure is a tool error with Kabar's own message, never a traceback.
"""

from __future__ import annotations

import threading
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from ingest import ingest
from rag.assistant import Assistant
from rag.errors import KabarError
from rag.types import Filters, source_articles
from ui.api_json import answer_json, article_json, document_json, hits_json, report_json, timeline_json
from ui.desks import DESK_HEADER, DeskDenied, Grant, desk_assistant, open_grant

INSTRUCTIONS = ("Kabar answers questions from a news archive (Indonesian and English) with cited sources, "
                "or says it does not know. Use `ask` for a question, `search` to read passages, "
                "`list_documents` to see what is in the archive.")
MAX_URLS = 20


def build_mcp(assistant: Assistant) -> MCPServer:
    """The MCP server over ``assistant`` (its desks reached through the request's grant)."""
    server = MCPServer("kabar", instructions=INSTRUCTIONS, log_level="WARNING")
    everyone = open_grant(assistant.settings)
    ingest_lock = threading.Lock()

    def desk_for(ctx: Context, desk: str, write: bool = False) -> Assistant:
        request = getattr(ctx.request_context, "request", None) if ctx is not None else None
        grant: Grant = everyone
        if request is not None:  # over HTTP: what the token may use (set by the API's TokenAuth)
            grant = request.scope.get("state", {}).get("grant") or everyone
            desk = desk or request.headers.get(DESK_HEADER, "")
        try:
            return desk_assistant(assistant, grant, desk or "", write)
        except DeskDenied as e:
            raise ToolError(str(e)) from None

    def kabar_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (KabarError, ValueError) as e:
            raise ToolError(str(e)) from None

    @server.tool(description="Answer a question from the news archive, with citations [n] of the articles it "
                             "read; 'refused' is true when the articles do not answer it.")
    def ask(question: str, ctx: Context, desk: str = "") -> dict[str, Any]:
        target = desk_for(ctx, desk)
        answer = kabar_call(target.ask, question.strip()[:4000])
        body = answer_json(answer)
        return {"answer": body["text"], "refused": body["refused"], "citations": body["citations"],
                "flags": body["flags"], "articles": [article_json(a) for a in source_articles(answer.sources)]}

    @server.tool(description="The passages of the archive a question finds (no model is asked).")
    def search(question: str, ctx: Context, desk: str = "", top_k: int = 8) -> dict[str, Any]:
        target = desk_for(ctx, desk)
        prep = kabar_call(target.prepare, question.strip()[:4000], top_k=max(1, min(int(top_k), 50)))
        return {"query": prep.query, "passages": hits_json(prep.hits)}

    @server.tool(description="A story's articles in date order (oldest first), each one line with its date, "
                             "outlets and number; since/until as YYYY-MM-DD.")
    def timeline(topic: str, ctx: Context, desk: str = "", since: str = "", until: str = "",
                 limit: int = 20) -> dict[str, Any]:
        target = desk_for(ctx, desk)

        def whole() -> Any:
            filters = Filters(since=since.strip(), until=until.strip())
            *_, result = target.timeline(topic, limit=max(1, min(int(limit), 100)), filters=filters)
            return result

        return timeline_json(kabar_call(whole))

    @server.tool(description="The documents of the archive, newest first.")
    def list_documents(ctx: Context, desk: str = "") -> dict[str, Any]:
        target = desk_for(ctx, desk)
        return {"documents": [document_json(d) for d in kabar_call(target.documents)]}

    @server.tool(description="Fetch http(s) URLs (article pages, feeds, PDFs) and add them to the archive.")
    def ingest_url(urls: list[str], ctx: Context, desk: str = "") -> dict[str, Any]:
        target = desk_for(ctx, desk, write=True)
        bad = [u for u in urls if not u.startswith(("http://", "https://"))]
        if not urls or bad or len(urls) > MAX_URLS:
            raise ToolError(f"give 1 to {MAX_URLS} http(s) URLs" + (f"; not one: {bad[0][:200]!r}" if bad else ""))
        with ingest_lock:
            report = kabar_call(ingest, urls, target)
        return report_json(report)

    return server
