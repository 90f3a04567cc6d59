"""The answer: what the model reads, and what Kabar checks of what it wrote.

Before the model: a follow-up condensed into a standalone question
(:mod:`~rag.answer.condense`), the sources grouped by article within the budget
(:mod:`~rag.answer.context`), the messages rendered from ``prompts/*.txt``
(:mod:`~rag.answer.prompt`). After it: citations checked against the passages they cite
(:mod:`~rag.answer.citations`), the refusal gates (:mod:`~rag.answer.refusal`), and the answer
cut to its first sentences (:mod:`~rag.answer.brief`).

Leaves finding the passages to :mod:`rag.search` and talking to the model to :mod:`rag.models`.
"""

from rag.answer.brief import asks_yes_no, brief
from rag.answer.citations import verify_citations
from rag.answer.condense import condense
from rag.answer.prompt import build_messages, format_source, refusal_text, select_sources
from rag.answer.refusal import answer_confidence, decide, is_refusal, term_weights

__all__ = [
    "answer_confidence",
    "asks_yes_no",
    "brief",
    "build_messages",
    "condense",
    "decide",
    "format_source",
    "is_refusal",
    "refusal_text",
    "select_sources",
    "term_weights",
    "verify_citations",
]
