"""Kabar as an OpenAI-compatible chat model: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any chat client that speaks the OpenAI API can point its base URL at ``kabar serve`` and
talk to Kabar as a model (any ``model`` name is accepted; ``kabar/<desk>`` asks that desk, and
``GET /v1/models`` lists the token's desks so). The last user message is the
question; earlier user and assistant messages are the conversation (system messages are
ignored: Kabar's own prompt decides how it answers). The answer text keeps its ``[n]``
markers, and since a chat client shows only the text, a short footnote lists the cited
articles ("Sources: [1] Title — URL"); the footnote is removed again from assistant
messages that come back as history. The citations and sources are also structured data in
an extra ``kabar`` field: on the response, or on the last chunk of a stream.

A stream sends the answer as :meth:`Assistant.stream` checks it (sentence by sentence);
when the final text still differs (an answer a gate over the whole of it declined) the stream
ends with that final text after a line ``Kabar's checked answer:``. Does not support tools,
images or ``n`` > 1.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable, Iterator, Literal

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.assistant import Assistant, Prepared
from rag.types import Answer, display_title, source_articles
from ui.api_json import answer_json, article_json, error_body, error_message, error_status
from ui.desks import Grant

MODEL_ID = "kabar"
FOOTNOTE = "\n\nSources:\n"
CHECKED = "\n\nKabar's checked answer: "


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(max_length=40)
    text: str | None = Field(None, max_length=20_000)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = Field(None)

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionIn(BaseModel):
    """The OpenAI request; other fields (``top_p``, ``max_tokens``, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(MODEL_ID, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    stream_options: StreamOptions | None = None


def add_openai_routes(app: FastAPI, desk_of: Callable[..., Assistant], grant_of: Callable[[Request], Grant]) -> None:
    """Register ``/v1/models`` and ``/v1/chat/completions`` on ``app``.

    ``desk_of(request, desk)`` is the assistant of the desk a request may use and
    ``grant_of(request)`` what its token may read (:mod:`ui.desks`): model ``kabar/<desk>``
    names a desk, any other name the request's own (``?desk=``, X-Kabar-Desk, the token's first).
    """

    @app.get("/v1/models", summary="OpenAI-compatible: the model Kabar answers as, and one per desk the token reads")
    def models(request: Request) -> dict[str, Any]:
        grant = grant_of(request)
        names = [MODEL_ID] + ([] if grant.everything else [f"{MODEL_ID}/{d}" for d in grant.read])
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "kabar"}
                                           for n in names]}

    @app.post("/v1/chat/completions", summary="OpenAI-compatible chat: the answer with [n] citations",
              responses={200: {"content": {"application/json": {}, "text/event-stream": {}}}})
    def chat_completions(request: Request, body: ChatCompletionIn) -> Any:
        desk = body.model.split("/", 1)[1] if body.model.startswith(MODEL_ID + "/") else ""
        assistant = desk_of(request, desk)
        question, history = split_messages(body.messages)
        options: dict[str, Any] = {}
        if body.temperature is not None:
            options["temperature"] = body.temperature
        if not body.stream:
            answer = assistant.ask(question, history, **options)
            return completion_json(answer, body.model)
        stream = assistant.stream(question, history, **options)
        first = next(stream)  # retrieval errors get their own HTTP status, before any chunk
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_chunks(first, stream, body.model, usage), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def strip_footnote(text: str) -> str:
    """An assistant message as Kabar wrote it, without the sources footnote or the checked answer."""
    if CHECKED in text:
        text = text.split(CHECKED, 1)[1]
    return text.split(FOOTNOTE, 1)[0].strip()


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The question (the last user message) and the conversation before it."""
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise ValueError("the last message must be the user's question")
    question = turns[-1].text().strip()
    if not question:
        raise ValueError("the user's question is empty")
    history = [{"role": m.role, "content": strip_footnote(m.text()) if m.role == "assistant" else m.text()}
               for m in turns[:-1]]
    return question, [h for h in history if h["content"].strip()]


def footnote(answer: Answer) -> str:
    """``Sources:`` and one line per cited article (its passage numbers, title, URL or source)."""
    cited = {c.number for c in answer.citations}
    lines = []
    for article in source_articles(answer.sources):
        numbers = [n for n in article.numbers if n in cited]
        if not numbers:
            continue
        c = article.chunk
        where = c.url or c.source
        lines.append("".join(f"[{n}]" for n in numbers) + f" {display_title(c.title, c.text)}"
                     + (f" — {where}" if where else ""))
    return FOOTNOTE + "\n".join(lines) if lines else ""


def kabar_json(answer: Answer) -> dict[str, Any]:
    """The structured data beside the text: citations, sources by article, refusal, timings."""
    return {**answer_json(answer), "articles": [article_json(a) for a in source_articles(answer.sources)]}


def _usage(answer: Answer) -> dict[str, int]:
    u = answer.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


def completion_json(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": model or MODEL_ID,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": answer.text + footnote(answer)}}],
        "usage": _usage(answer), "kabar": kabar_json(answer),
    }


def _chunks(first: Any, stream: Iterator[Any], model: str, include_usage: bool) -> Iterator[str]:
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model or MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    streamed: list[str] = []
    try:
        yield chunk({"role": "assistant", "content": ""})
        item = first
        while True:
            if isinstance(item, Answer):
                tail = ""
                if item.text != "".join(streamed).strip():
                    tail = CHECKED + item.text
                tail += footnote(item)
                if tail:
                    yield chunk({"content": tail})
                yield chunk({}, "stop", kabar=kabar_json(item))
                if include_usage:
                    body = {"id": ident, "object": "chat.completion.chunk", "created": created,
                            "model": model or MODEL_ID, "choices": [], "usage": _usage(item)}
                    yield f"data: {json.dumps(body)}\n\n"
            elif not isinstance(item, Prepared):
                streamed.append(item)
                yield chunk({"content": item})
            item = next(stream)
    except StopIteration:
        pass
    except Exception as e:  # the status is sent already: an error object in the stream, as OpenAI does
        status, kind = error_status(e)
        yield f"data: {json.dumps(error_body(error_message(e, status), kind))}\n\n"
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()
    yield "data: [DONE]\n\n"
