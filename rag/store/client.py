"""Chroma beside the store: opening a client (embedded or server), its failures as
:class:`~rag.errors.StoreError`, and a guard around its calls. Filters: :mod:`rag.store.where`.

:mod:`rag.store.chroma` builds on these; nothing here knows about documents or chunks.
"""

from __future__ import annotations

from typing import Any

from rag.errors import StoreError
from rag.settings import Settings


def store_location(settings: Settings) -> str:
    return f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(settings.data_dir)


def make_client(settings: Settings, fresh: bool = False) -> Any:
    """A Chroma client: a server when ``chroma_host`` is set, else the data directory.

    ``fresh``: for the data directory, a client that reads the store from disk anew instead
    of sharing this process's cached one (whose vector index misses other processes' writes).
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_host:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
        path = settings.data_dir / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        if fresh:
            from chromadb.api.shared_system_client import SharedSystemClient

            # Clients already made keep the old system; the next one reads the files again.
            SharedSystemClient._identifier_to_system.pop(str(path), None)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as e:  # chromadb raises several unrelated types here
        hint = (f"; check that the server is running (`chroma run --path DIR --host {settings.chroma_host} "
                f"--port {settings.chroma_port}`) and KABAR_CHROMA_HOST / KABAR_CHROMA_PORT"
                if settings.chroma_host else "")
        raise StoreError(f"cannot open the Chroma store at {store_location(settings)}: {e}{hint}") from e


def store_error(e: Exception, where: str, server: bool) -> StoreError:
    """A Chroma failure as a StoreError that says what to check."""
    import httpx

    if server and isinstance(e, httpx.TimeoutException):
        return StoreError(f"the Chroma server at {where} did not answer in time ({type(e).__name__}); "
                          "check that it is not overloaded, then try again")
    if server and isinstance(e, (httpx.TransportError, ConnectionError)):
        return StoreError(f"cannot reach the Chroma server at {where} ({e}); check that it is running "
                          "(`chroma run --path DIR --host HOST --port PORT`) and KABAR_CHROMA_HOST / "
                          "KABAR_CHROMA_PORT, then try again")
    return StoreError(f"the Chroma store at {where} failed: {type(e).__name__}: {e}")


def is_server(client: Any) -> bool:
    """Whether a Chroma client talks to a server (``HttpClient``) rather than a local folder."""
    try:
        return "fastapi" in str(client.get_settings().chroma_api_impl).lower()
    except Exception:
        return False


class Guarded:
    """A Chroma collection whose failures are :class:`StoreError` (attributes pass through).

    A ValueError or TypeError is the caller's (a ``where`` Chroma rejects) and passes as it is.
    """

    def __init__(self, target: Any, where: str, server: bool) -> None:
        self._target, self._where, self._server = target, where, server

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except (StoreError, ValueError, TypeError):
                raise
            except Exception as e:
                raise store_error(e, self._where, self._server) from e

        return call
