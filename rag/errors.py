"""Kabar's exceptions.

The library raises these; only the edges (the CLI, the web UI, the eval runner) catch
and render them. They carry a message that says what to do next and do nothing else.

    KabarError
    ├── ConfigError              a setting has a bad value
    ├── InputError               a file or record cannot be ingested (names the file)
    ├── StoreError               the Chroma store cannot be opened or used
    │   ├── EmbeddingMismatchError  the collection was filled by another embedding model
    │   └── EmptyCollectionError    nothing has been ingested yet
    ├── EmbeddingError           the embedding backend failed
    ├── ModelError               the local model file is missing or corrupt
    └── LLMError                 the chat model failed
        ├── LLMUnavailableError  the server cannot be reached or did not start
        │   └── LLMServerStoppedError  the local server process ended (crash, kill)
        └── LLMTimeoutError      the server did not answer in time
"""

from __future__ import annotations


class KabarError(Exception):
    """Base class of every error Kabar raises on purpose."""


class ConfigError(KabarError):
    """A setting has a value Kabar cannot use."""


class InputError(KabarError):
    """A file or record cannot be ingested; the message names it and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class StoreError(KabarError):
    """The vector store cannot be opened or used."""


class EmbeddingMismatchError(StoreError):
    """The collection holds vectors from a different embedding model than the one in use."""


class EmbeddingError(KabarError):
    """The embedding backend failed."""


class ModelError(KabarError):
    """The local model file cannot be found, assembled or verified."""


class LLMError(KabarError):
    """The chat model failed to answer."""


class LLMUnavailableError(LLMError):
    """The chat model server cannot be reached or did not start."""


class LLMServerStoppedError(LLMUnavailableError):
    """The local LLM server's process ended; ``returncode`` is negative for a signal."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


class LLMTimeoutError(LLMError):
    """The chat model server did not answer in time."""


class EmptyCollectionError(StoreError):
    """A question was asked before any article was ingested."""
