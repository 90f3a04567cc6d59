"""The public Python API: :class:`Assistant`.

    from ingest import ingest
    from rag import Assistant
    with Assistant() as kabar:                 # settings from the environment
        ingest(["examples/articles"], kabar)   # articles go in through ingest/, into kabar's store
        answer = kabar.ask("who leads hybrid cloud?")
        print(answer.text, [c.title for c in answer.citations])

The chat page, the CLI and the evaluation runner all go through this class. It does not
ingest: :func:`ingest.ingest` writes into its store, so ``rag`` never imports ``ingest``. Components
(store, embedder, LLM) are created on first use, or passed in. Without a configured LLM
server the local llama.cpp server is started on the first question and stopped by
:meth:`close` (or at exit).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, Union

from rag.answer import (
    answer_confidence,
    brief,
    build_messages,
    condense,
    refusal_text,
    select_sources,
    term_weights,
    verify_citations,
)
from rag.answer import decide as decide_refusal
from rag.errors import EmptyCollectionError
from rag.lang import detect_lang
from rag.models import Embedder, Message, OpenAIChat, make_embedder
from rag.search import hybrid_search, source_budget
from rag.settings import Settings
from rag.store import ChromaStore, DocumentInfo
from rag.text import question_terms
from rag.types import Answer, Filters, Hit, Retrieval, SourceArticle, Timings, Usage, source_articles


@dataclass
class Prepared:
    """A question made ready for the LLM (see :meth:`Assistant.prepare`): what will be searched,
    what was found, and which of it the model reads (``sources``, numbered from 1)."""

    question: str
    query: str
    lang: str
    hits: list[Hit]
    sources: list[Hit]
    messages: list[Message]
    retrieval_s: float
    budget: int = 0  # tokens of sources this question was given (rag.search.budget)
    #: The question's terms weighed by their rarity in the collection (the coverage gate's
    #: weights, :func:`rag.answer.refusal.term_weights`), from what retrieval read.
    weights: dict[str, float] | None = None

    @property
    def articles(self) -> list[SourceArticle]:
        """The sources grouped by article (see :func:`rag.types.source_articles`)."""
        return source_articles(self.sources)


#: What :meth:`Assistant.stream` yields: the Prepared question (its sources, before the
#: model reads them), then text pieces, then the final Answer.
StreamEvent = Union[Prepared, str, Answer]


class Assistant:
    """Question answering over the ingested articles."""

    def __init__(self, settings: Settings | None = None, *, store: ChromaStore | None = None,
                 embedder: Embedder | None = None, llm: OpenAIChat | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._embedder = embedder
        self._store = store
        self._llm = llm
        self._owned_llm: Any = None  # the chat model this assistant made, with the local server it started
        # Several threads (web sessions) may ask at once; each component is created once.
        # Two locks: listing documents must not wait for the local LLM server to start.
        self._store_lock = threading.RLock()
        self._llm_lock = threading.Lock()

    # -- components ------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        with self._store_lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings)
            return self._embedder

    @property
    def store(self) -> ChromaStore:
        with self._store_lock:
            if self._store is None:
                self._store = ChromaStore.from_settings(self.settings, self.embedder.model_id)
            return self._store

    @property
    def llm(self) -> OpenAIChat:
        """The chat model; starts the local server on first use when none is configured."""
        with self._llm_lock:
            if self._llm is None:
                self._llm = self._make_llm()
                if self.settings.local_llm:
                    self._owned_llm = self._llm
            return self._llm

    def _make_llm(self) -> OpenAIChat:
        s = self.settings
        if not s.local_llm:
            return OpenAIChat(s.llm_model, s.llm_base_url, s.llm_api_key, timeout_s=s.llm_timeout_s, retries=s.retries)
        from rag.models.local_llm import local_chat

        return local_chat(s).start()

    def warm_up(self, llm: bool = True) -> None:
        """Create the store and embedder (and start the LLM) now rather than on the first question."""
        _ = self.store
        if llm:
            _ = self.llm

    def llm_state(self) -> str:
        """``"starting"`` when the next answer must first start the local model, ``"busy"`` when
        the model answers one request at a time and is answering another, else ``"ready"``."""
        llm = self._llm
        if llm is None:
            return "starting" if self.settings.local_llm else "ready"
        return "busy" if llm.serial and llm.active else "ready"

    def describe_llm(self) -> str:
        """Which LLM answers, without starting anything."""
        s = self.settings
        if s.local_llm:
            return "local: qwen2.5-coder-1.5b-instruct (llama.cpp server on 127.0.0.1)"
        return f"{s.llm_model or '(first model the server lists)'} at {s.llm_base_url or 'the OpenAI API'}"

    # -- documents -------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        return self.store.documents()

    def delete_document(self, doc_id: str) -> int:
        """Remove a document; returns the number of chunks removed."""
        return self.store.delete_document(doc_id)

    def info(self) -> dict[str, Any]:
        """What is stored and what is in use."""
        docs = self.store.documents()
        s = self.settings
        return {
            "documents": len(docs),
            "chunks": self.store.count(),
            "collection": s.collection,
            "embedding_model": self.embedder.model_id,
            "llm": self.describe_llm(),
            "llm_local": s.local_llm,
            "embedding_local": s.local_embeddings,
            "store": f"chroma server {s.chroma_host}:{s.chroma_port}" if s.chroma_host else str(s.data_dir / "chroma"),
            "data_dir": str(s.data_dir),
        }

    # -- questions -------------------------------------------------------------------

    def retrieve(self, query: str, k: int | None = None, filters: Filters | None = None,
                 topic: str = "") -> list[Hit]:
        """The ``k`` chunks that best match ``query`` (hybrid: dense + BM25), best first.

        ``topic``: the previous exchange of a conversation, which favours its articles.
        """
        return self.search(query, k, filters, topic).hits

    def search(self, query: str, k: int | None = None, filters: Filters | None = None,
               topic: str = "", lang: str = "") -> Retrieval:
        """As :meth:`retrieve`, with what the search learned (language, named outlets, term counts)."""
        where = filters.where() if filters else None
        return hybrid_search(self.store, self.embedder, query, k or self.settings.top_k, where=where, lang=lang,
                             topic=topic)

    def term_weights(self, question: str) -> dict[str, float] | None:
        """The question's terms weighed by their rarity in the collection (the coverage gate's weights)."""
        lang = detect_lang(question)
        counts, total = self.store.lexical_doc_counts(" ".join(question_terms(question)), lang)
        return term_weights(question, counts, total, lang)

    def condense(self, question: str, history: Sequence[Message]) -> str:
        """A follow-up rewritten as a standalone question (see :mod:`rag.answer.condense`)."""
        return condense(question, history, self.llm)

    def prepare(self, question: str, history: Sequence[Message] | None = None, top_k: int | None = None,
                filters: Filters | None = None) -> Prepared:
        """Everything before the answer: condensation, retrieval, the sources that fit, the messages.

        Evaluation in retrieval-only mode calls this to see exactly the context a full
        answer would get.
        """
        question = question.strip()
        if not question:
            raise ValueError("question must not be empty")
        query = self.condense(question, history) if history else question
        topic = " ".join(str(t.get("content", "")) for t in list(history or [])[-2:])
        started = time.perf_counter()
        lang = detect_lang(question)
        found = self.search(query, top_k, filters, topic, lang if query == question else detect_lang(query))
        hits = found.hits
        retrieval_s = time.perf_counter() - started
        if not hits and self.store.count() == 0:
            raise EmptyCollectionError(
                f"collection {self.settings.collection!r} is empty: ingest articles first, "
                "e.g. `kabar ingest examples/articles`"
            )
        # A single fact gets a few passages, a question across articles the whole budget (rag.search.budget).
        budget = source_budget(query, hits, self.settings.context_tokens, self.settings.fact_context_tokens,
                               len(found.outlets))
        sources = select_sources(hits, budget, self.settings.per_doc)
        # The model answers the standalone form; ``answer_history`` earlier messages go with it.
        keep = self.settings.answer_history
        messages = build_messages(query, sources, lang, list(history or [])[-keep:] if keep else None)
        weights = term_weights(query, found.doc_counts, found.total, found.lang)
        return Prepared(question, query, lang, hits, sources, messages, retrieval_s, budget, weights)

    def stream(self, question: str, history: Sequence[Message] | None = None, top_k: int | None = None,
               temperature: float | None = None, filters: Filters | None = None) -> Iterator[StreamEvent]:
        """Yield the :class:`Prepared` question as soon as its sources are known, then the answer
        text as it is generated, then the final :class:`Answer`.

        The sources come first so that a reader sees what Kabar found while the model is still
        reading it. The final Answer's text may differ from the streamed pieces where a
        citation was repaired (see ``Answer.flags``).
        """
        started = time.perf_counter()
        prep = self.prepare(question, history, top_k, filters)
        sources_s = time.perf_counter() - started
        yield prep
        temp = self.settings.temperature if temperature is None else temperature
        llm = self.llm
        parts: list[str] = []
        usage = Usage()
        first_token_s = 0.0
        for item in llm.stream(prep.messages, temp, self.settings.max_answer_tokens,
                               logprobs=self.settings.min_confidence > 0):
            if isinstance(item, Usage):
                usage = item
                continue
            if not first_token_s:
                first_token_s = time.perf_counter() - started
            parts.append(item)
            yield item
        raw = "".join(parts).strip()
        text, citations, flags = verify_citations(raw, prep.sources)
        decision = decide_refusal(prep.query, text, [c.number for c in citations], prep.sources, self.settings,
                                  answer_confidence(usage.logprobs) if usage.logprobs else None,
                                  prep.weights)
        refused, grounded, covered = decision.refused, decision.grounding, decision.coverage
        if decision.reason:
            flags.append(f"declined: {decision.reason} (the model said: {text!r})")
            text, citations = refusal_text(prep.lang), []
        elif not refused:
            text = brief(text, prep.query)
        yield Answer(
            question=prep.question,
            text=text,
            citations=citations,
            hits=prep.hits,
            sources=prep.sources,
            usage=usage,
            timings=Timings(prep.retrieval_s, first_token_s, time.perf_counter() - started, sources_s),
            refused=refused,
            grounding=grounded,
            coverage=covered,
            confidence=decision.confidence,
            model_text=raw,
            model=llm.model,
            query=prep.query,
            flags=flags,
        )

    def ask(self, question: str, history: Sequence[Message] | None = None, **options: Any) -> Answer:
        """Answer ``question`` (with the conversation so far in ``history``)."""
        answer: Answer | None = None
        for item in self.stream(question, history, **options):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    # -- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        """Stop the local LLM server if this assistant started one."""
        with self._llm_lock:
            if self._owned_llm is not None:
                self._owned_llm.close()
                self._owned_llm = self._llm = None

    def __enter__(self) -> "Assistant":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
