"""How many tokens of sources a question gets: as many as it needs, no more.

Entry point: :func:`source_budget`. On a laptop the prompt's length is most of the wait for
the first word (the local model reads ~100 tokens a second on two cores), and a question
after a single fact rarely needs more than the few passages ranked first. A question that
spans several articles needs room for each, and gets the whole budget:

- it names publications in the collection ("according to Fortune ... as The Age reported"):
  each named outlet is an article to find;
- it compares ("than", "both", "versus", "dibandingkan", "keduanya", ...);
- it asks for the news on a topic ("Apa kabar terbaru soal pusat data?", "What's the latest
  on Telkom?"): the answer is what the articles report, not one span of one of them;
- it is long (more than :data:`SPAN_TERMS` content words) and no single retrieved article
  holds most of what it asks about: of its terms that the candidates hold at all, the best
  article holds less than :data:`ONE_ARTICLE`. A single-fact question written out in full
  ("Siapakah atlet renang asal Palembang yang mencetak rekor pada Porda Sumsel 2005 ...")
  finds its terms together in one article; a question that joins facts from several finds
  them spread. A short question is not judged by spread: with four terms, one of them found
  in another article says nothing.
"""

from __future__ import annotations

import re
from typing import Sequence

from rag.text import forms, question_terms, vocabulary
from rag.types import Hit

#: Share of the question's (findable) terms one article must hold for a single-fact question.
ONE_ARTICLE = 0.8
#: Above this many content terms (twice the refusal coverage gate's cap of eight) a question
#: may span articles.
SPAN_TERMS = 16

# Lower case only: "Than Shwe" is a name. Not "kedua" (also "second") or "sama dengan" ("bekerja
# sama dengan": to work with).
_COMPARES = re.compile(
    r"\b(?:than|both|versus|vs\.?|compared?|comparing|difference|differ|same as|either|"
    r"daripada|dibanding(?:kan|kannya)?|perbedaan|berbeda|keduanya)\b"
)

# A request for the news on a topic, not for one fact.
_NEWS = re.compile(
    r"\b(?:kabar|berita|perkembangan|informasi)(?:\s+(?:terbaru|terkini|terakhir|baru|apa))?\s+"
    r"(?:soal|tentang|mengenai|seputar|terkait|dari)\b"
    r"|\bapa\s+kabar\b|\bada\s+apa\s+dengan\b"
    r"|\b(?:news|updates?)\s+(?:on|about|from|regarding|for)\b"
    r"|\bwhat(?:'s|\s+is|\s+are)\s+(?:the\s+)?(?:latest|news|new)\b|\bany\s+news\b",
    re.IGNORECASE,
)


def asks_for_news(question: str) -> bool:
    """Whether ``question`` asks what the articles report on a topic rather than for one fact."""
    return bool(_NEWS.search(question))


def article_share(question: str, hits: Sequence[Hit]) -> float:
    """Of the question's terms that the ``hits`` hold at all, the share the best single article holds
    (1.0 when the question has no such terms)."""
    terms = question_terms(question)
    texts: dict[str, list[str]] = {}
    for h in hits:
        texts.setdefault(h.chunk.doc_id, [h.chunk.title]).append(h.chunk.text)
    vocab = {doc: vocabulary(" ".join(parts)) for doc, parts in texts.items()}  # once per article, not per term
    held = {doc: {t for t in terms if forms(t) & vocab[doc]} for doc in texts}
    findable = set().union(*held.values()) if held else set()
    if not findable:
        return 1.0
    return max(len(found) for found in held.values()) / len(findable)


def spans_articles(question: str, outlets: int = 0, share: float = 1.0, one_article: float = ONE_ARTICLE) -> bool:
    """Whether a question needs several articles (see the module docstring); ``share`` is its
    :func:`article_share` over the retrieved candidates."""
    if outlets > 0 or _COMPARES.search(question) or asks_for_news(question):
        return True
    return len(question_terms(question)) > SPAN_TERMS and share < one_article


def source_budget(question: str, hits: Sequence[Hit], max_tokens: int, fact_tokens: int, outlets: int = 0) -> int:
    """Tokens of sources for ``question``: ``fact_tokens`` for a single fact, else ``max_tokens``.

    ``fact_tokens`` of 0 (or not below ``max_tokens``) gives every question ``max_tokens``.
    ``outlets``: how many publications in the collection the question names.
    """
    if fact_tokens <= 0 or fact_tokens >= max_tokens:
        return max_tokens
    if spans_articles(question, outlets, article_share(question, hits) if hits else 1.0):
        return max_tokens
    return fact_tokens
