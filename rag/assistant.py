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

import math
import threading
import time
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterator, Sequence, Union

from rag.answer import (
    answer_confidence,
    asks_yes_no,
    brief,
    build_messages,
    condense,
    refusal_text,
    select_sources,
    term_weights,
    verify_citations,
)
from rag.answer import decide as decide_refusal
from rag.answer.evidence import (
    Findings,
    check_answer,
    evidence_excerpts,
    find_evidence,
    highlight,
    split_sentences,
)
from rag.answer.refusal import Decision
from rag.errors import EmptyCollectionError
from rag.lang import detect_lang
from rag.models import Embedder, Message, OpenAIChat, make_embedder
from rag.models.reader import CROSS as READER_CROSS
from rag.models.reader import LANGS as READER_LANGS
from rag.search import hybrid_search, source_budget
from rag.search.when import TimeQuery, read_time
from rag.settings import Settings
from rag.store import ChromaStore, DocumentInfo
from rag.text import question_terms
from rag.timeline import Timeline, TimelineEvent, timeline_events
from rag.types import (
    Answer,
    Chunk,
    Filters,
    Hit,
    Retrieval,
    SourceArticle,
    Timings,
    Usage,
    published_day,
    source_articles,
)


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
    #: What Kabar's reader found in the sources (None: the reader is off).
    findings: Findings | None = None
    #: True when the question asks for one fact (it got the short budget): the reader's gate,
    #: check and evidence-first prompt apply.
    one_fact: bool = False
    time_window: str = ""  # what retrieval favoured for the dates the question names (Retrieval.time_window)
    #: The question as the reader and the coverage gate judge it: without the dates it names
    #: (retrieval kept to them; passages seldom repeat them).
    read_as: str = ""

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
                 embedder: Embedder | None = None, llm: OpenAIChat | None = None,
                 as_of: date | str | None = None) -> None:
        self.settings = settings or Settings.from_env()
        #: The day questions are asked on: "last week", "kemarin" are read against it (None: today).
        #: An archive's own day, as ``kabar ask --as-of 2023-12-06``.
        self.as_of = date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
        self._embedder = embedder
        self._store = store
        self._llm = llm
        self._reader: Any = None
        self._owned_llm: Any = None  # the chat model this assistant made, with the local server it started
        # Several threads (web sessions) may ask at once; each component is created once.
        # Two locks: listing documents must not wait for the local LLM server to start.
        self._store_lock = threading.RLock()
        self._llm_lock = threading.Lock()
        self._parent: Assistant | None = None  # the assistant a desk shares its models with
        self._desks: dict[str, Assistant] = {}

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

    def desk(self, collection: str) -> "Assistant":
        """The assistant over another collection of this deployment (a newsroom desk's archive),
        sharing this one's embedder, reader and LLM; made once per collection."""
        if self._parent is not None:
            return self._parent.desk(collection)
        if collection == self.settings.collection:
            return self
        with self._store_lock:
            other = self._desks.get(collection)
            if other is None:
                other = Assistant(self.settings.with_(collection=collection), embedder=self.embedder,
                                  as_of=self.as_of)
                other._parent = self
                self._desks[collection] = other
            return other

    @property
    def reader(self) -> Any:
        """Kabar's reader (:class:`rag.models.reader.Reader`), sharing the embedder's e5 engine
        when it runs in numpy; None when ``settings.reader`` is off."""
        if not self.settings.reader:
            return None
        if self._parent is not None:
            return self._parent.reader
        with self._store_lock:
            if self._reader is None:
                from rag.models.reader import load_reader

                share = getattr(self.embedder, "numpy_model", None)
                self._reader = load_reader(share() if share else None, self.settings.reader_weights or None)
            return self._reader

    @property
    def llm(self) -> OpenAIChat:
        """The chat model; starts the local server on first use when none is configured."""
        if self._parent is not None:
            return self._parent.llm
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
        if self._parent is not None:
            return self._parent.llm_state()
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
        """As :meth:`retrieve`, with what the search learned (language, named outlets, term counts,
        the dates the question asks about)."""
        where = filters.where() if filters else None
        return hybrid_search(self.store, self.embedder, query, k or self.settings.top_k, where=where, lang=lang,
                             topic=topic, when=self.read_time(query))

    def read_time(self, question: str) -> TimeQuery:
        """The dates ``question`` asks about (:func:`rag.search.when.read_time`), read against
        :attr:`as_of` and this archive's newest article. A question naming no time costs a regex."""
        first = read_time(question, self.as_of)
        if not first:
            return first
        return read_time(question, self.as_of, self.store.newest_day())

    def timeline(self, topic: str, since: str = "", until: str = "", limit: int = 20,
                 filters: Filters | None = None) -> Iterator[TimelineEvent | Timeline]:
        """The story of ``topic`` in date order (:mod:`rag.timeline`): each :class:`TimelineEvent`
        as it is ready, oldest first, then the whole :class:`Timeline`.

        ``since``/``until`` (``YYYY-MM-DD``, inclusive) bound the articles' dates, as do dates the
        topic names ("Alibaba cloud in December 2023"); ``limit``: the most relevant articles kept.
        """
        started = time.perf_counter()
        topic = " ".join(topic.split())[:500]
        if not topic:
            raise ValueError("a timeline needs a topic, e.g. 'Alibaba cloud'")
        if limit < 1:
            raise ValueError(f"limit must be at least 1. Currently, limit is {limit}.")
        base = filters or Filters()
        # A period the topic names ("Alibaba cloud in December 2023") bounds the timeline, unless
        # the caller gave bounds; its words then say nothing of what the articles are about.
        when = self.read_time(topic)
        about = topic
        for said in when.said if (when.since or when.until) else ():
            about = about.replace(said, " ")
        bounded = Filters(sources=list(base.sources), doc_ids=list(base.doc_ids),
                          since=since or base.since or (str(when.since) if when.since else ""),
                          until=until or base.until or (str(when.until) if when.until else ""))
        found = self.search(topic, max(3 * limit, 40), bounded)
        if not found.hits and self.store.count() == 0:
            raise EmptyCollectionError(f"collection {self.settings.collection!r} is empty: ingest articles first, "
                                       "e.g. `kabar ingest examples/articles`")
        weights = term_weights(topic, found.doc_counts, found.total, found.lang)
        def lead(doc_id: str) -> Chunk | None:
            chunks = self.store.get_chunks(doc_id)
            return min(chunks, key=lambda c: c.position) if chunks else None

        events, undated = timeline_events(about, found.hits, weights, limit, lead)
        yield from events
        window = TimeQuery(since=_day(bounded.since), until=_day(bounded.until)).describe()
        yield Timeline(topic, events, window, undated, time.perf_counter() - started)

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
        one_fact = budget < self.settings.context_tokens
        reader = self.reader
        # The reader and the coverage gate judge the question without its dates: retrieval kept
        # to them, and an article's passages seldom repeat its date.
        read_as = found.timeless or query
        findings = find_evidence(reader, read_as, sources) if reader is not None and sources else None
        # A one-fact question reads the sentences around the reader's best spans, not whole passages.
        numbered = (evidence_excerpts(sources, findings)
                    if findings and findings.evidence and one_fact and self.settings.reader_evidence else None)
        # The model answers the standalone form; ``answer_history`` earlier messages go with it.
        keep = self.settings.answer_history
        # A yes/no question is answered yes or no first; one naming a time, with its source's date.
        yes_no = asks_yes_no(query)
        messages = build_messages(query, sources, lang, list(history or [])[-keep:] if keep else None, numbered,
                                  dated=bool(found.time_window) and not yes_no, yes_no=yes_no)
        weights = term_weights(read_as, found.doc_counts, found.total, found.lang)
        return Prepared(question, query, lang, hits, sources, messages, retrieval_s, budget, weights, findings,
                        one_fact, found.time_window, read_as)

    def stream(self, question: str, history: Sequence[Message] | None = None, top_k: int | None = None,
               temperature: float | None = None, filters: Filters | None = None) -> Iterator[StreamEvent]:
        """Yield the :class:`Prepared` question as soon as its sources are known, then the answer
        text as it is checked, then the final :class:`Answer`.

        The sources come first so that a reader sees what Kabar found while the model is still
        reading it. What is streamed is checked text: a one-fact answer is checked against
        Kabar's reader and the refusal gates before any of it is shown; a longer one is shown
        sentence by sentence, each with its citations checked. The final Answer is the word
        of record (a gate applied to the whole answer may still decline it: see ``Answer.flags``).
        """
        started = time.perf_counter()
        prep = self.prepare(question, history, top_k, filters)
        sources_s = time.perf_counter() - started
        yield prep
        declined, answered = self._reader_declines(prep), self._reader_answers(prep)
        if declined or answered:  # the reader settled a one-fact question: the model is not asked
            answer = self._finish(prep, answered, Usage(), declined, by_reader=True)
            yield answer.text
            done_s = time.perf_counter() - started
            answer.timings = Timings(prep.retrieval_s, done_s, done_s, sources_s)
            yield answer
            return
        temp = self.settings.temperature if temperature is None else temperature
        llm = self.llm
        parts: list[str] = []
        usage = Usage()
        shown_s = 0.0
        # A one-fact answer the reader may repair is held until it is checked.
        hold = prep.one_fact and prep.findings is not None and math.isfinite(self.settings.reader_repair)
        pending = ""
        for item in llm.stream(prep.messages, temp, self.settings.max_answer_tokens,
                               logprobs=self.settings.min_confidence > 0):
            if isinstance(item, Usage):
                usage = item
                continue
            parts.append(item)
            if hold:
                continue
            if prep.findings is None:  # the reader is off: the model's text as it comes, as before
                if not shown_s:
                    shown_s = time.perf_counter() - started
                yield item
                continue
            pending += item
            done, pending = split_sentences(pending)
            if done:
                checked = verify_citations(done, prep.sources)[0]
                if not shown_s:
                    shown_s = time.perf_counter() - started
                    checked = brief(checked, prep.query)
                yield checked
        raw = "".join(parts).strip()
        answer = self._finish(prep, raw, usage)
        if hold or pending.strip():
            tail = answer.text if hold else verify_citations(pending, prep.sources)[0]
            if not shown_s:
                shown_s = time.perf_counter() - started
                tail = tail if hold else brief(tail, prep.query)
            yield tail
        answer.timings = Timings(prep.retrieval_s, shown_s, time.perf_counter() - started, sources_s)
        yield answer

    @staticmethod
    def _reader_langs(prep: Prepared) -> tuple[str, str] | None:
        """(question, source) languages of a one-fact question, the source being the one the
        reader read best; None for a longer question or when the reader found nothing."""
        best = prep.findings.best if prep.findings else None
        if not prep.one_fact or best is None:
            return None
        src = prep.sources[best.number - 1].chunk
        return prep.lang, src.lang or detect_lang(src.text)

    @staticmethod
    def _same_language(langs: tuple[str, str] | None) -> bool:
        """Whether the question and its best source share a language the reader learned."""
        return langs is not None and langs[0] in READER_LANGS and langs[0] == langs[1]

    def _reader_judges(self, prep: Prepared) -> bool:
        """Whether Kabar's reader may settle this question: one fact, asked in a language the
        reader learned, over a source in that language (the one it read best)."""
        return self._same_language(self._reader_langs(prep))

    def _reader_declines(self, prep: Prepared) -> str:
        """Why Kabar's reader declines a one-fact question before the model reads it ("": it does not).

        Below ``settings.reader_margin`` the reader found no answer in the sources, for a
        question it may settle (:meth:`_reader_judges`); across the languages it learned to
        read across (an English question, an Indonesian source) below
        ``settings.reader_cross_margin``. Other languages it does not judge.
        """
        f, langs = prep.findings, self._reader_langs(prep)
        if f is None or langs is None:
            return ""
        if self._same_language(langs):
            floor = self.settings.reader_margin
        elif langs in READER_CROSS:
            floor = self.settings.reader_cross_margin
        else:
            return ""
        if f.margin >= floor:
            return ""
        return f"Kabar's reader found no answer in the sources (margin {f.margin:.1f})"

    def _reader_answers(self, prep: Prepared) -> str:
        """The reader's span as the answer, with its citation, when the reader is sure of it
        (margin at least ``settings.reader_answer``) for a question it may settle; else ""."""
        best = prep.findings.best if prep.findings else None
        if best is None or best.margin < self.settings.reader_answer or not self._reader_judges(prep):
            return ""
        return f"{best.text.strip()} [{best.number}]"

    def _finish(self, prep: Prepared, raw: str, usage: Usage, declined: str = "", by_reader: bool = False) -> Answer:
        """The model's whole reply checked: citations, the refusal gates, the reader's check.

        ``by_reader``: the model was not asked; ``raw`` is the reader's answer, or ``declined``
        the reader's reason to decline.
        """
        s = self.settings
        text, citations, flags = verify_citations(raw, prep.sources)
        findings = prep.findings if prep.one_fact else None
        if by_reader:
            decision = Decision(refused=bool(declined), reason=declined)
            if not declined:
                flags.append(f"answered by Kabar's reader (margin {prep.findings.margin:.1f}); the model was not asked"
                             if prep.findings else "answered by Kabar's reader")
        else:
            decision = decide_refusal(prep.read_as, text, [c.number for c in citations], prep.sources, s,
                                      answer_confidence(usage.logprobs) if usage.logprobs else None, prep.weights)
        refused = decision.refused
        if findings is not None and not decision.reason and not by_reader:
            # The model answered (or declined by itself): does it say what the reader found?
            check = check_answer("" if refused else text, [c.number for c in citations], findings, s.reader_repair,
                                 self._reader_judges(prep))
            if check.flag:
                flags.append(check.flag)
            if check.text != ("" if refused else text):
                text, citations = verify_citations(check.text, prep.sources)[:2]
                refused = False
        if decision.reason:
            flags.append(f"declined: {decision.reason} (the model said: {text!r})")
            text, citations = refusal_text(prep.lang), []
        elif not refused and not by_reader:
            text = brief(text, prep.query)
        return Answer(
            question=prep.question,
            text=text,
            citations=highlight(citations, prep.findings, text),
            hits=prep.hits,
            sources=prep.sources,
            usage=usage,
            timings=Timings(),
            refused=refused,
            grounding=decision.grounding,
            coverage=decision.coverage,
            confidence=decision.confidence,
            model_text=raw,
            model="" if by_reader and self._llm is None else self.llm.model,  # the reader starts no model
            query=prep.query,
            flags=flags,
            reader_margin=prep.findings.margin if prep.findings and math.isfinite(prep.findings.margin) else None,
            reader_span=prep.findings.best.text if prep.findings and prep.findings.best else "",
            reader_s=prep.findings.read_s if prep.findings else None,
            one_fact=prep.one_fact,
            time_window=prep.time_window,
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


def _day(value: str) -> date | None:
    """A filter's date bound as a date ("2023-12" is its first day, as the filter reads it)."""
    n = published_day(value) if value else None
    return date(n // 10000, n // 100 % 100, n % 100) if n else None
