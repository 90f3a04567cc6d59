"""Kabar: question answering over news articles, with cited answers.

The public API is :class:`Assistant`; the dataclasses it returns; :class:`Settings`;
and the errors in :mod:`rag.errors`. Importing ``rag`` loads no model and starts nothing.
"""

from rag.assistant import Assistant, Prepared
from rag.errors import (
    ConfigError,
    EmbeddingError,
    EmbeddingMismatchError,
    EmptyCollectionError,
    InputError,
    KabarError,
    LLMError,
    LLMServerStoppedError,
    LLMTimeoutError,
    LLMUnavailableError,
    ModelError,
    StoreError,
)
from rag.settings import Settings
from rag.types import Answer, Chunk, Citation, Document, Filters, Hit, SourceArticle, Timings, Usage

__all__ = [
    "Answer",
    "Assistant",
    "Chunk",
    "Citation",
    "ConfigError",
    "Document",
    "EmbeddingError",
    "EmbeddingMismatchError",
    "EmptyCollectionError",
    "Filters",
    "Hit",
    "InputError",
    "KabarError",
    "LLMError",
    "LLMServerStoppedError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "ModelError",
    "Prepared",
    "Settings",
    "SourceArticle",
    "StoreError",
    "Timings",
    "Usage",
]
