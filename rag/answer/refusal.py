"""The refusal decision: keep the model's answer, or decline in the question's language.

Entry point: :func:`decide`. The model is never offered a way out in the prompt (told "if
the sources do not say, reply ...", the small default model declined answerable questions
it could answer), so Kabar decides after the answer, on word overlap between the question,
the answer and the sources the answer rests on (:func:`judged_sources`):

- grounding (``KABAR_MIN_GROUNDING``): the share of the answer's own key words found in
  those sources. An answer from the model's memory ("Argentina won...") scores low.
- coverage (``KABAR_MIN_COVERAGE``): the share of the question's own terms found there,
  each weighed by its IDF in the collection (:func:`term_weights`), when question and
  sources share a language. A fluent answer over a passage about something else ("the
  smallest shark" over a passage on the smallest country) scores low, and lower still when
  what is missing is a name or a year rather than a common word.
- confidence (``KABAR_MIN_CONFIDENCE``, 0.5; 0: not asked): the model's probability of the
  answer it wrote, per token, from the answer call's own log-probabilities
  (:func:`answer_confidence`): no second call. Word overlap cannot tell "the CEO of
  Tencent" answered with an Alibaba executive that a passage names from the right answer;
  a model that guesses among the names a passage holds writes its answer less surely.
  At 0.5 it lost no answer on the checking halves measured and declined half of the
  unanswerable multihop-en questions the word gates let through (docs/EVALUATION.md);
  higher, it trades answers for refusals. A server that refuses to send log-probabilities
  is answered without them, and the gate does not apply.

A reply that itself says it does not know (:func:`is_refusal`) is a refusal too. What the
decision returns, Kabar applies: :mod:`rag.assistant` swaps the text for
:func:`rag.answer.prompt.refusal_text`. Checking the citations is :mod:`rag.answer.citations`' business.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Iterable, Mapping, Sequence

from rag.dates import date_words
from rag.lang import detect_lang
from rag.search.fusion import idf
from rag.settings import Settings
from rag.store.lexical import analyze
from rag.text import content_words, forms, question_terms, vocabulary
from rag.types import Hit

_REFUSAL = re.compile(
    r"\b(i don'?t know|i do not know|do(?:es)? not (?:say|mention|contain)|no information"
    r"|tidak tahu|tidak (?:menyebutkan|disebutkan|ada informasi)|tidak diketahui)\b",
    re.IGNORECASE,
)


def is_refusal(text: str) -> bool:
    """True when the answer declines rather than answers."""
    return bool(_REFUSAL.search(text[:200]))


# A question term missing from the sources still counts when a word there is a spelling
# variant of it: "Prancis"/"Perancis", "Shilla"/"Silla", "television"/"televisi", a typo.
VARIANT_MIN_LENGTH = 5
VARIANT_SIMILARITY = 0.85


def _variant_in(word: str, words: Iterable[str]) -> bool:
    if len(word) < VARIANT_MIN_LENGTH or word.isdigit():
        return False
    return any(abs(len(w) - len(word)) <= 2 and w[0] == word[0]
               and SequenceMatcher(None, word, w).ratio() >= VARIANT_SIMILARITY for w in words)


def grounding(answer: str, question: str, sources: Sequence[Hit]) -> float:
    """Share of the answer's new content words (those not already in the question) that occur,
    in some form, in the sources; 1.0 when the answer adds no word of its own.

    An answer from the model's own memory ("Argentina won...") scores low: its key word is
    in no source. Kabar declines such answers (``KABAR_MIN_GROUNDING``).
    """
    asked = vocabulary(question)
    new = [w for w in content_words(answer) if not forms(w) & asked]
    if not new:
        return 1.0
    # An article's date counts as in it, in any way it is written: "pada 5 Desember 2023".
    known = vocabulary(" ".join(h.chunk.title + " " + h.chunk.text + " " + date_words(h.chunk.published)
                                for h in sources))
    return sum(bool(forms(w) & known) for w in new) / len(new)


# A question counts as at most this many terms: a long question ("which company, according
# to Fortune ... and as The Age reported ...") spreads over several articles, and the ones an
# answer cites hold only their part of it.
COVERAGE_TERMS = 8


# The coverage gate's IDF counts every term as held by one chunk more, of this many more: in
# a collection of one article every word is in all of it or in none, and a question's word
# phrased otherwise ("leader" for "lead") would outweigh the rest; from a few hundred chunks
# up this changes the weights little.
PRIOR_CHUNKS = 20


def term_weights(question: str, doc_counts: Mapping[str, int], total: int, lang: str = "") -> dict[str, float] | None:
    """Each of the question's terms (:func:`rag.text.question_terms`) weighed by its IDF in the
    collection, as BM25 weighs it, smoothed (:data:`PRIOR_CHUNKS`): ``doc_counts`` maps lexical
    index terms (:func:`rag.store.lexical.analyze` of the question's terms) to the chunks holding
    them, ``total`` is the chunks in all. None when there is no index to ask (``total`` 0):
    every term then weighs the same. ``lang``: the question's language, when already known.
    """
    if total <= 0:
        return None
    lang = lang or detect_lang(question)
    return {t: idf(1 + max((doc_counts.get(a, 0) for a in analyze(t, lang)), default=0), total + PRIOR_CHUNKS)
            for t in question_terms(question)}


def coverage(question: str, sources: Sequence[Hit], weights: Mapping[str, float] | None = None) -> float:
    """Share of the question's own terms that occur, in some form, in ``sources``, each term
    weighed by ``weights`` (:func:`term_weights`; None: all alike); a question with more than
    ``COVERAGE_TERMS`` terms counts as that many (at most 1.0).

    A passage that answers a question nearly always repeats what the question is about; a
    question about something the passage never mentions ("the smallest shark" over a
    passage on the smallest country) scores low however fluent the model's answer is.
    Weighed by rarity, a missing name or year counts for more than a missing common word
    ("jumlah", "lahir"): a question changed to ask about something no article holds differs
    from an answerable one in its rare words.
    A term counts when the sources have it in some form (raw, stemmed, without diacritics)
    or a spelling variant of it. Only passages in the question's language are compared:
    across languages even names change ("Vatican", "Vatikan"), so an English question over
    an Indonesian passage, or one with nothing left to compare, scores 1.0.
    """
    if not sources:
        return 0.0
    lang = detect_lang(question)
    terms = question_terms(question)
    if not terms or any(h.chunk.lang and h.chunk.lang != lang for h in sources):
        return 1.0
    text = " ".join(h.chunk.title + " " + h.chunk.text for h in sources)
    known = vocabulary(text)
    missing = [w for w in terms if not forms(w) & known]
    if missing:
        words = set(content_words(text))
        missing = [w for w in missing if not _variant_in(w, words)]
    weight = weights or {}
    whole = sum(weight.get(t, 1.0) for t in terms)
    found = whole - sum(weight.get(t, 1.0) for t in missing)
    return min(1.0, found / whole * len(terms) / min(len(terms), COVERAGE_TERMS)) if whole > 0 else 1.0


def judged_sources(sources: Sequence[Hit], cited: Iterable[int]) -> list[Hit]:
    """The sources the refusal gates judge: every source from the articles the answer cites
    (numbers as in the prompt), or all sources when it cites none.

    Judged against every source of a full prompt, nearly any question's terms are found
    somewhere and the coverage gate stops working; judged against the cited chunk alone,
    an answer from an article's third paragraph would miss the subject its first one names.
    """
    docs = {sources[n - 1].chunk.doc_id for n in cited if 1 <= n <= len(sources)}
    return [h for h in sources if h.chunk.doc_id in docs] or list(sources)


def answer_confidence(logprobs: Sequence[tuple[str, float]]) -> float | None:
    """The geometric mean probability of the answer's tokens: those before its first citation
    marker, without whitespace (None when there are none).

    A model that reads the answer in the passage copies it with probabilities near 1; one
    that guesses spreads its probability over the candidates the passage names.
    """
    picked: list[float] = []
    for token, logprob in logprobs:
        if token.lstrip().startswith("["):
            break
        if token.strip():
            picked.append(logprob)
    return math.exp(sum(picked) / len(picked)) if picked else None


@dataclass
class Decision:
    """What :func:`decide` found: whether the answer stands, why not, and the scores behind it."""

    refused: bool
    reason: str = ""  # why Kabar declines ("" when it keeps the answer, or the model declined itself)
    grounding: float = 0.0
    coverage: float = 0.0
    confidence: float | None = None  # the model's per-token probability of its answer; None: not asked


def decide(question: str, answer: str, cited: Sequence[int], sources: Sequence[Hit], settings: Settings,
           confidence: float | None = None, weights: Mapping[str, float] | None = None) -> Decision:
    """Whether Kabar declines ``answer`` (its citations already checked, ``cited`` its source numbers).

    The word gates judge the articles the answer rests on (:func:`judged_sources`).
    ``confidence`` (:func:`answer_confidence`, None: not asked) declines below
    ``settings.min_confidence``; ``weights`` (:func:`term_weights`) weigh the question's terms
    in the coverage gate. (Kabar's reader judges before the model writes: :mod:`rag.assistant`.)
    """
    if is_refusal(answer):
        return Decision(refused=True)
    basis = judged_sources(sources, cited)
    grounded = grounding(answer, question, basis)
    covered = coverage(question, basis, weights)
    # Below min_grounding the model answered from its own memory, not from the articles; below
    # min_coverage its answer is about something the question did not ask; below
    # min_confidence the model was guessing.
    reason = (f"only {grounded:.0%} of the answer's key words are in the sources"
              if grounded < settings.min_grounding else
              f"only {covered:.0%} of the question's terms are in the sources"
              if covered < settings.min_coverage else
              f"the model wrote its answer with {confidence:.0%} confidence a token"
              if confidence is not None and confidence < settings.min_confidence else "")
    return Decision(refused=bool(reason), reason=reason, grounding=grounded, coverage=covered, confidence=confidence)
