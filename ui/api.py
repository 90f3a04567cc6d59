"""The HTTP API: :func:`build_api` makes one FastAPI app over an :class:`~rag.assistant.Assistant`.

    from rag import Assistant
    from ui.api import build_api
    app = build_api(Assistant())       # an ASGI app; `kabar serve` runs it with uvicorn

Endpoints (the schema is at ``/openapi.json``, a reader at ``/docs``):

- ``POST /v1/ask``: a question; streamed as server-sent events in the order
  :meth:`Assistant.stream` yields them: ``sources`` (articles with their numbered passages),
  ``delta`` (text as generated), ``answer`` (text, citations, refusal, timings); an
  ``error`` event if the model fails mid-answer. ``"stream": false`` returns one JSON answer.
- ``POST /v1/retrieve``: the passages a question finds, without asking the model.
- ``POST /v1/timeline``: a story's articles in date order, streamed (``event``..., ``timeline``).
- ``POST /v1/ingest`` (URLs, JSON) and ``POST /v1/ingest/files`` (multipart upload).
- ``GET /v1/documents``, ``DELETE /v1/documents/{doc_id}``; ``GET /health``.
- ``POST /v1/chat/completions`` and ``GET /v1/models``: OpenAI-compatible (:mod:`ui.openai_compat`).
- ``/mcp/``: the Model Context Protocol, streamable HTTP (:mod:`ui.mcp_server`).

Desks (:mod:`ui.desks`): each token reads and writes the collections ``KABAR_API_TOKENS``
gives it; a request names one with ``?desk=`` or ``X-Kabar-Desk``, else it uses the token's first.

Handlers are thin: they validate, call the desk's Assistant or :func:`ingest.ingest`, and shape
JSON (:mod:`ui.api_json`). With tokens set (``KABAR_API_TOKEN[S]``) every request but ``/health``,
the schema and the chat page (which has its own login) needs ``Authorization: Bearer
<token>``; bodies over ``KABAR_API_MAX_BODY_MB`` are refused with 413; every error is JSON
``{"error": {"message", "type"}}``, an unexpected one a single line (the details go to the
log). Does not serve the chat page itself: :func:`ui.server.server_app` mounts it beside.
"""

from __future__ import annotations

import itertools
import re
import threading
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, AsyncIterator, Iterator, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest import ingest
from rag.assistant import Assistant, Prepared
from rag.errors import KabarError
from rag.timeline import Timeline
from rag.types import Answer, Filters
from ui.api_json import (
    answer_json,
    answer_with_sources_json,
    document_json,
    error_body,
    error_message,
    error_status,
    hits_json,
    report_json,
    sources_json,
    sse,
    timeline_json,
)
from ui.desks import DESK_HEADER, DeskDenied, Grant, Tokens, desk_assistant, is_loopback, open_grant, upload_folder

#: Paths served without the token: a health probe, the schema and its reader, the chat page.
OPEN_PATHS = ("/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
OPEN_PREFIXES = ("/ui",)
MAX_QUESTION_CHARS = 4000
MAX_HISTORY = 40
DESK = Query("", max_length=80, description="the desk (collection) to use; default: the token's first "
             "(or the X-Kabar-Desk header)")


# -- request bodies ------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FiltersIn(_Body):
    """Only these outlets, documents, or publication dates (``YYYY-MM-DD``, both ends inclusive)."""

    sources: list[str] = Field(default_factory=list, max_length=100)
    doc_ids: list[str] = Field(default_factory=list, max_length=1000)
    since: str = Field("", pattern=r"^(\d{4}-\d{2}-\d{2})?$")
    until: str = Field("", pattern=r"^(\d{4}-\d{2}-\d{2})?$")

    def filters(self) -> Filters:
        return Filters(sources=list(self.sources), doc_ids=list(self.doc_ids), since=self.since, until=self.until)


class MessageIn(_Body):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class RetrieveIn(_Body):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int | None = Field(None, ge=1, le=100, description="chunks to retrieve (default KABAR_TOP_K)")
    filters: FiltersIn | None = None


class AskIn(RetrieveIn):
    history: list[MessageIn] = Field(default_factory=list, max_length=MAX_HISTORY,
                                     description="the conversation so far, oldest first")
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    stream: bool = Field(True, description="server-sent events (sources, delta..., answer); false: one JSON answer")


class TimelineIn(_Body):
    topic: str = Field(min_length=1, max_length=500, description="what the story is about, e.g. 'Alibaba cloud'")
    since: str = Field("", pattern=r"^(\d{4}-\d{2}-\d{2})?$")
    until: str = Field("", pattern=r"^(\d{4}-\d{2}-\d{2})?$")
    sources: list[str] = Field(default_factory=list, max_length=100)
    limit: int = Field(20, ge=1, le=100, description="the most relevant articles to place")
    stream: bool = Field(True, description="server-sent events (event..., timeline); false: one JSON timeline")


class IngestUrlsIn(_Body):
    urls: list[str] = Field(min_length=1, max_length=100,
                            description="http(s) URLs of articles, pages, feeds or PDFs")
    dedupe: bool = Field(True, description="fold a near-duplicate of a stored article into it")


_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)


# -- the app ---------------------------------------------------------------------------------


def build_api(assistant: Assistant, *, token: str | None = None, max_body_bytes: int | None = None) -> FastAPI:
    """The API over ``assistant``; returns without serving. ``token`` and ``max_body_bytes``
    default to ``KABAR_API_TOKEN`` and ``KABAR_API_MAX_BODY_MB`` from its settings."""
    from ui.openai_compat import add_openai_routes

    s = assistant.settings
    tokens = Tokens.from_settings(s, token)
    everyone = open_grant(s)
    limit = int(s.api_max_body_mb * 1_000_000) if max_body_bytes is None else max_body_bytes
    mcp_app, mcp_sessions = _mcp(assistant)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with mcp_sessions.run():
            yield

    app = FastAPI(title="Kabar", version="0.1.0", lifespan=lifespan,
                  description="Question answering over news articles (Indonesian and English) with cited answers.")
    _install_errors(app)
    ingest_lock = threading.Lock()  # one ingest at a time; questions go on meanwhile

    @app.get("/health", summary="Is Kabar up? (no token needed)")
    def health() -> dict[str, Any]:
        return {"status": "ok", "llm": assistant.llm_state(), "documents_url": "/v1/documents"}

    def grant_of(request: Request) -> Grant:
        return getattr(request.state, "grant", None) or everyone

    def desk_of(request: Request, desk: str, write: bool = False) -> Assistant:
        """The request's desk (``?desk=``, the X-Kabar-Desk header, or the token's first)."""
        try:
            return desk_assistant(assistant, grant_of(request), desk or request.headers.get(DESK_HEADER, ""), write)
        except DeskDenied as e:
            raise StarletteHTTPException(e.status, str(e)) from None

    @app.get("/v1/documents", summary="The ingested documents of a desk, newest first")
    def documents(request: Request, desk: str = DESK) -> dict[str, Any]:
        return {"documents": [document_json(d) for d in desk_of(request, desk).documents()]}

    @app.delete("/v1/documents/{doc_id}", summary="Remove a document")
    def delete_document(request: Request, doc_id: str, desk: str = DESK) -> dict[str, Any]:
        target = desk_of(request, desk, write=True)
        with ingest_lock:
            removed = target.delete_document(doc_id)
        if not removed:
            raise StarletteHTTPException(404, f"no document with id {doc_id!r} (see GET /v1/documents)")
        return {"deleted": doc_id, "chunks": removed}

    @app.post("/v1/retrieve", summary="The passages a question finds, without asking the model")
    def retrieve(request: Request, body: RetrieveIn, desk: str = DESK) -> dict[str, Any]:
        prep = desk_of(request, desk).prepare(body.question, top_k=body.top_k, filters=_filters(body.filters))
        return {**sources_json(prep), "hits": hits_json(prep.hits)}

    @app.post("/v1/ask", summary="Ask a question: server-sent events (sources, delta, answer) or one JSON answer",
              responses={200: {"content": {"text/event-stream": {}, "application/json": {}}}})
    def ask(request: Request, body: AskIn, desk: str = DESK) -> Any:
        target = desk_of(request, desk)
        history = [m.model_dump() for m in body.history]
        options: dict[str, Any] = {"filters": _filters(body.filters)}
        if body.top_k:
            options["top_k"] = body.top_k
        if body.temperature is not None:
            options["temperature"] = body.temperature
        if not body.stream:
            return answer_with_sources_json(target.ask(body.question, history, **options))
        stream = target.stream(body.question, history, **options)
        first = next(stream)  # retrieval happens here: its errors get their own HTTP status
        return StreamingResponse(_ask_events(first, stream), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/timeline", summary="A story's articles in date order, one cited line each: server-sent "
                                      "events (event..., timeline) or one JSON timeline",
              responses={200: {"content": {"text/event-stream": {}, "application/json": {}}}})
    def timeline(request: Request, body: TimelineIn, desk: str = DESK) -> Any:
        items = desk_of(request, desk).timeline(body.topic, limit=body.limit,
                                                filters=Filters(sources=list(body.sources), since=body.since,
                                                                until=body.until))
        first = next(items)  # the search happens here: its errors get their own HTTP status
        if not body.stream:
            *_, whole = [first, *items]
            return timeline_json(whole)
        return StreamingResponse(_timeline_events(first, items), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/ingest", summary="Ingest articles from http(s) URLs (pages, feeds, PDFs)")
    def ingest_urls(request: Request, body: IngestUrlsIn, desk: str = DESK) -> dict[str, Any]:
        target = desk_of(request, desk, write=True)
        bad = [u for u in body.urls if not _URL.match(u)]
        if bad:
            raise ValueError(f"not an http(s) URL: {bad[0][:200]!r}; upload files with POST /v1/ingest/files")
        with ingest_lock:
            report = ingest(body.urls, target, dedupe=body.dedupe)
        return report_json(report)

    @app.post("/v1/ingest/files", summary="Ingest uploaded files (.txt .md .jsonl .html .pdf feeds .warc)")
    def ingest_files(request: Request, files: list[UploadFile] = File(...), dedupe: bool = True,  # noqa: B008
                     desk: str = DESK) -> dict[str, Any]:
        target = desk_of(request, desk, write=True)
        folder = upload_folder(s, target.settings)
        with ingest_lock:
            kept = [_keep_upload(f, folder) for f in files]
            report = ingest(kept, target, dedupe=dedupe)
        return report_json(report, strip_prefix=str(folder) + "/")

    add_openai_routes(app, desk_of, grant_of)
    app.mount("/mcp", mcp_app)
    app.add_middleware(BodyLimit, limit=limit)
    app.add_middleware(TokenAuth, tokens=tokens)
    return app


def _mcp(assistant: Assistant) -> tuple[Any, Any]:
    """The MCP endpoint (streamable HTTP, stateless, JSON replies) and its session manager.

    :class:`TokenAuth` guards it as every other route: the token with tokens, loopback Host
    and Origin without (so the SDK's own DNS-rebinding check, which would only repeat that, is off).
    """
    from mcp.server.transport_security import TransportSecuritySettings

    from ui.mcp_server import build_mcp

    server = build_mcp(assistant)
    app = server.streamable_http_app(streamable_http_path="/", stateless_http=True, json_response=True,
                                     transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    return app, server.session_manager


def _filters(body: FiltersIn | None) -> Filters | None:
    return body.filters() if body is not None else None


def _ask_events(first: Any, stream: Iterator[Any]) -> Iterator[str]:
    """The SSE body: the first item (already taken), the rest, an ``error`` event on failure."""
    try:
        item = first
        while True:
            if isinstance(item, Prepared):
                yield sse("sources", sources_json(item))
            elif isinstance(item, Answer):
                yield sse("answer", answer_json(item))
            else:
                yield sse("delta", {"text": item})
            item = next(stream)
    except StopIteration:
        return
    except Exception as e:  # the status is sent already: say it in the stream
        status, kind = error_status(e)
        yield sse("error", error_body(error_message(e, status), kind))
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()


def _timeline_events(first: Any, items: Iterator[Any]) -> Iterator[str]:
    """The timeline's SSE body: an ``event`` per line as it is ready, then the ``timeline``."""
    try:
        for item in itertools.chain([first], items):
            yield sse("timeline", timeline_json(item)) if isinstance(item, Timeline) else sse("event", asdict(item))
    except Exception as e:  # the status is sent already: say it in the stream
        status, kind = error_status(e)
        yield sse("error", error_body(error_message(e, status), kind))


def _keep_upload(upload: UploadFile, folder: Path) -> Path:
    """Save an upload under its own name (without any folder part) in ``folder``; a document's
    id comes from its path, so uploading the same file again updates that document."""
    name = Path((upload.filename or "").replace("\\", "/")).name.strip()
    name = re.sub(r"[\x00-\x1f]", "", name)[:200]
    if not name or name in (".", "..") or name.startswith("."):
        raise ValueError(f"an uploaded file needs a plain file name; got {upload.filename!r}")
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / name
    with dest.open("wb") as out:
        while block := upload.file.read(1 << 20):
            out.write(block)
    return dest


# -- errors ----------------------------------------------------------------------------------


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


_HTTP_TYPES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(_validation_message(exc), "invalid_request"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse(error_body(message, _HTTP_TYPES.get(exc.status_code, "http_error")),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(KabarError)
    @app.exception_handler(ValueError)
    async def kabar_error(request: Request, exc: Exception) -> JSONResponse:
        status, kind = error_status(exc)
        return JSONResponse(error_body(error_message(exc, status), kind), status_code=status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(error_message(exc, 500), "internal_error"), status_code=500)


# -- middleware ------------------------------------------------------------------------------


class TokenAuth:
    """Requires ``Authorization: Bearer <token>`` when tokens are set, and hands the route the
    token's :class:`~ui.desks.Grant` (``request.state.grant``); compared in constant time."""

    def __init__(self, app: Any, tokens: Tokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _is_open(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        if not self.tokens:  # loopback, no token: only this machine's own pages and programs
            problem = _not_local(dict(scope.get("headers") or []))
            if problem:
                await JSONResponse(error_body(problem, "forbidden"), status_code=403)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, value = header.partition(b" ")
        grant = self.tokens.grant(value.strip()) if scheme.lower() == b"bearer" else None
        if grant is not None:
            scope.setdefault("state", {})["grant"] = grant
            await self.app(scope, receive, send)
            return
        response = JSONResponse(error_body("missing or wrong API token: send the header 'Authorization: Bearer "
                                           "<token>' with a token of KABAR_API_TOKEN or KABAR_API_TOKENS",
                                           "unauthorized"),
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


def _not_local(headers: dict[bytes, bytes]) -> str:
    """Why a request to the token-less API is refused ("" when it is not): its Host must name
    loopback (a page elsewhere cannot reach the API by DNS rebinding) and its Origin, when a
    browser sends one, must be loopback too (another site's page cannot post to it)."""
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    name = host[: host.find("]") + 1] if host.startswith("[") else host.rsplit(":", 1)[0]
    if not is_loopback(name.strip("[]")):
        return (f"refused: Host {host[:100]!r} is not this machine; without KABAR_API_TOKEN the API answers "
                "only requests to 127.0.0.1 or localhost")
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    if origin and not is_loopback(urlsplit(origin).hostname or ""):
        return (f"refused: a page from {origin[:100]!r} may not call this API; without KABAR_API_TOKEN it "
                "answers only this machine's own pages and programs")
    return ""


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or any(path == p or path.startswith(p + "/") for p in OPEN_PREFIXES)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, by Content-Length or as they arrive."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _refusal(self) -> JSONResponse:
        return JSONResponse(error_body(f"request body is larger than {self.limit / 1_000_000:g} MB; "
                                       "raise KABAR_API_MAX_BODY_MB to allow more", "too_large"), status_code=413)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refusal()(scope, receive, send)
            return
        received = 0
        refused = False

        async def limited_receive() -> Any:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Answer 413 now; the app sees the client gone, and its own reply is dropped.
                    refused = True
                    await self._refusal()(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Any) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)
