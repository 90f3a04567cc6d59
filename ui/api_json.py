"""What the HTTP API sends: Kabar's dataclasses as JSON-ready dicts, and the errors' shape.

Plain functions over :mod:`rag.types`; the endpoints (:mod:`ui.api`, :mod:`ui.openai_compat`)
decide when each is sent. Every error the API returns has one shape,
``{"error": {"message": ..., "type": ...}}``: :func:`error_status` maps Kabar's exceptions
to an HTTP status and a type name.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any, Sequence

from rag.assistant import Prepared
from rag.errors import (
    ConfigError,
    EmbeddingError,
    EmbeddingMismatchError,
    EmptyCollectionError,
    InputError,
    KabarError,
    LLMError,
    LLMTimeoutError,
    LLMUnavailableError,
    ModelError,
    StoreError,
)
from rag.store import DocumentInfo
from rag.types import Answer, Hit, SourceArticle, source_articles

log = logging.getLogger("kabar.api")

# Most specific first: the first class an error is an instance of decides.
_STATUS: list[tuple[type[BaseException], int, str]] = [
    (EmptyCollectionError, 409, "empty_collection"),
    (EmbeddingMismatchError, 409, "embedding_mismatch"),
    (StoreError, 503, "store_unavailable"),
    (LLMTimeoutError, 504, "llm_timeout"),
    (LLMUnavailableError, 503, "llm_unavailable"),
    (LLMError, 502, "llm_error"),
    (EmbeddingError, 502, "embedding_error"),
    (ModelError, 503, "model_unavailable"),
    (InputError, 400, "invalid_input"),
    (ConfigError, 400, "invalid_request"),
    (KabarError, 500, "kabar_error"),
    (ValueError, 400, "invalid_request"),
]


def error_body(message: str, type_: str) -> dict[str, Any]:
    """The error object, in the OpenAI API's shape (``param`` and ``code`` are there, unused)."""
    return {"error": {"message": message, "type": type_, "param": None, "code": type_}}


def error_status(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and error type for one of Kabar's exceptions (or a ValueError)."""
    for cls, status, name in _STATUS:
        if isinstance(exc, cls):
            return status, name
    return 500, "internal_error"


def error_message(exc: BaseException, status: int) -> str:
    """What the client is told: Kabar's own message, or one line for the unexpected (logged here)."""
    if status >= 500 and not isinstance(exc, KabarError):
        log.error("unexpected error in the API", exc_info=exc)
        return f"unexpected error ({type(exc).__name__}); the server log has the details"
    return str(exc)


def sse(event: str, data: Any) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def passage_json(number: int, hit: Hit) -> dict[str, Any]:
    c = hit.chunk
    return {"number": number, "chunk_id": c.id, "text": c.text, "position": c.position, "page": c.page,
            "score": hit.score}


def article_json(article: SourceArticle) -> dict[str, Any]:
    c = article.chunk
    return {
        "doc_id": article.doc_id, "title": c.title, "source": c.source, "url": c.url, "published": c.published,
        "author": c.author, "lang": c.lang, "alternatives": [asdict(a) for a in c.alternatives],
        "passages": [passage_json(n, hit) for n, hit in article.passages],
    }


def sources_json(prep: Prepared) -> dict[str, Any]:
    """The ``sources`` event: what was searched and the numbered passages the model reads, by article."""
    return {"question": prep.question, "query": prep.query, "lang": prep.lang,
            "articles": [article_json(a) for a in prep.articles], "retrieval_s": prep.retrieval_s}


def hits_json(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    out = []
    for hit in hits:
        c = hit.chunk
        out.append({"chunk_id": c.id, "doc_id": c.doc_id, "title": c.title, "source": c.source, "url": c.url,
                    "published": c.published, "text": c.text, "position": c.position, "score": hit.score,
                    "dense_score": hit.dense_score, "lexical_score": hit.lexical_score})
    return out


def answer_json(answer: Answer) -> dict[str, Any]:
    """The ``answer`` event (the sources went before it): text, citations, refusal, timings."""
    return {
        "question": answer.question, "text": answer.text, "refused": answer.refused,
        "citations": [{**asdict(c), "supporting_sentence": c.supporting_sentence} for c in answer.citations],
        "query": answer.query, "flags": list(answer.flags), "reader_margin": answer.reader_margin,
        "time_window": answer.time_window,
        "grounding": answer.grounding, "coverage": answer.coverage, "confidence": answer.confidence,
        "model": answer.model,
        # Token counts; the per-token log-probabilities behind ``confidence`` stay out.
        "usage": {k: v for k, v in asdict(answer.usage).items() if k != "logprobs"},
        "timings": asdict(answer.timings),
    }


def answer_with_sources_json(answer: Answer) -> dict[str, Any]:
    """A whole answer at once (``stream: false``): the answer and its sources by article."""
    return {**answer_json(answer), "articles": [article_json(a) for a in source_articles(answer.sources)]}


def document_json(doc: DocumentInfo) -> dict[str, Any]:
    return asdict(doc)


def report_json(report: Any, strip_prefix: str = "") -> dict[str, Any]:
    """An :class:`ingest.IngestReport` (paths under ``strip_prefix`` shown by their own name)."""

    def name(source: Any) -> str:
        text = str(source)
        return text[len(strip_prefix):] if strip_prefix and text.startswith(strip_prefix) else text

    return {
        "new": list(report.new), "updated": list(report.updated), "unchanged": list(report.unchanged),
        "duplicates": [{"doc_id": d, "duplicate_of": of} for d, of in report.duplicates],
        "errors": [{"source": name(e.source), "problem": e.problem} for e in report.errors],
        "chunks_written": report.chunks_written, "chunks_removed": report.chunks_removed,
        "seconds": report.seconds, "summary": report.summary().replace(strip_prefix, ""),
    }


def timeline_json(timeline: Any) -> dict[str, Any]:
    """A :class:`rag.timeline.Timeline`: its events (date, outlets, line, number) and what was left out."""
    return asdict(timeline)
