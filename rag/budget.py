"""How many tokens of sources a question gets: as many as it needs, no more.

Entry point: :func:`source_budget`. On a laptop the prompt's length is most of the wait for
the first word (the local model reads ~100 tokens a second on two cores), and a question
after a single fact rarely needs more than the few passages ranked first. A question that
spans several articles needs room for each, and gets the whole budget:

- it names publications in the collection ("according to Fortune ... as The Age reported"):
  each named outlet is an article to find;
- it is long: more than :data:`SPAN_TERMS` content words, twice the count above which the
  coverage gate stops expecting one article to hold them all (a single-fact question
  written out in full has up to ~15: "Siapakah perebut medali emas 400 m putri di
  Kejuaraan Dunia Atletik ke-10 di Helsinki, Finlandia?");
- it compares ("than", "both", "versus", "dibandingkan", "keduanya", ...).

Does not look at the retrieved passages: the decision is the question's, made before
anything is read, so it is the same for every collection.
"""

from __future__ import annotations

import re

from rag.citations import COVERAGE_TERMS, question_terms

#: A question of more content terms than this is taken to span several articles.
SPAN_TERMS = 2 * COVERAGE_TERMS

# Lower case only: "Than Shwe" is a name. Not "kedua" (also "second") or "sama dengan" ("bekerja
# sama dengan": to work with).
_COMPARES = re.compile(
    r"\b(?:than|both|versus|vs\.?|compared?|comparing|difference|differ|same as|either|"
    r"daripada|dibanding(?:kan|kannya)?|perbedaan|berbeda|keduanya)\b"
)


def spans_articles(question: str, outlets: int = 0) -> bool:
    """Whether a question needs several articles (see the module docstring)."""
    return outlets > 0 or len(question_terms(question)) > SPAN_TERMS or bool(_COMPARES.search(question))


def source_budget(question: str, max_tokens: int, fact_tokens: int, outlets: int = 0) -> int:
    """Tokens of sources for ``question``: ``fact_tokens`` for a single fact, else ``max_tokens``.

    ``fact_tokens`` of 0 (or not below ``max_tokens``) gives every question ``max_tokens``.
    ``outlets``: how many publications in the collection the question names.
    """
    if fact_tokens <= 0 or fact_tokens >= max_tokens or spans_articles(question, outlets):
        return max_tokens
    return fact_tokens
