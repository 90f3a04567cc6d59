"""Citations: find the ``[n]`` markers in an answer, check them, resolve them to sources.

:func:`verify_citations` checks each cited sentence against the passage it cites: most
of the sentence's content words (names, numbers, key terms, compared as raw words and as
English and Indonesian stems, without diacritics, so an English answer can cite an
Indonesian passage) must occur in it. A marker that names no source, or a passage that
does not support its sentence, is repaired to the source that does, or flagged when none
does. An answer with
no marker gets one when a single source clearly supports it. Also recognises refusals
("I don't know", "tidak tahu") in either language, and computes the two refusal gates,
:func:`grounding` and :func:`coverage`, over :func:`judged_sources`.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Iterable, Sequence

from rag.lang import detect_lang
from rag.lexical import STOPWORDS, _stemmer
from rag.types import Citation, Hit

_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)(?:\s*\[[\d,;\s]+\])*")
_WORD = re.compile(r"[^\W_]+")
_GROUP = re.compile(r"(?:\[\d+(?:\s*[,;]\s*\d+)*\]\s*)+")
_REPEATED = re.compile(r"(\[\d+\])(?:\s*\1)+")
_REFUSAL = re.compile(
    r"\b(i don'?t know|i do not know|do(?:es)? not (?:say|mention|contain)|no information"
    r"|tidak tahu|tidak (?:menyebutkan|disebutkan|ada informasi)|tidak diketahui)\b",
    re.IGNORECASE,
)
# Share of a sentence's content words its cited passage must contain.
SUPPORT = 0.5


def cited_numbers(text: str) -> list[int]:
    """Source numbers cited in ``text``, in order of first appearance."""
    numbers: list[int] = []
    for m in _MARKER.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if n not in numbers:
                numbers.append(n)
    return numbers


def is_refusal(text: str) -> bool:
    """True when the answer declines rather than answers."""
    return bool(_REFUSAL.search(text[:200]))


@lru_cache(maxsize=4096)
def forms(word: str) -> frozenset[str]:
    """A content word with its English and Indonesian stems."""
    return frozenset({word, _stemmer("en").stemWord(word), _stemmer("id").stemWord(word)})


def fold(text: str) -> str:
    """``text`` without diacritics ("Shōnen" -> "Shonen"), as the lexical index compares words."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def content_words(text: str) -> list[str]:
    words = (w.lower() for w in _WORD.findall(fold(_MARKER.sub(" ", text))))
    return [w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def vocabulary(text: str) -> frozenset[str]:
    """Every form of every content word in ``text``."""
    return frozenset(f for w in content_words(text) for f in forms(w))


# A question term missing from the sources still counts when a word there is a spelling
# variant of it: "Prancis"/"Perancis", "Shilla"/"Silla", "television"/"televisi", a typo.
VARIANT_MIN_LENGTH = 5
VARIANT_SIMILARITY = 0.85


def _variant_in(word: str, words: Iterable[str]) -> bool:
    if len(word) < VARIANT_MIN_LENGTH or word.isdigit():
        return False
    return any(abs(len(w) - len(word)) <= 2 and w[0] == word[0]
               and SequenceMatcher(None, word, w).ratio() >= VARIANT_SIMILARITY for w in words)


def support(sentence: str, passage_vocabulary: frozenset[str]) -> float:
    """Share of the sentence's content words found (in some form) in the passage."""
    words = content_words(sentence)
    if not words:
        return 1.0
    return sum(bool(forms(w) & passage_vocabulary) for w in words) / len(words)


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
    known = vocabulary(" ".join(h.chunk.title + " " + h.chunk.text for h in sources))
    return sum(bool(forms(w) & known) for w in new) / len(new)


# Words that shape a question rather than name what it is about ("where", "what is meant by").
QUESTION_WORDS = frozenset(
    "siapakah apakah berapakah kapankah dimana dimanakah manakah bagaimanakah mengapakah kenapakah "
    "sebutkan jelaskan dimaksud maksud arti disebut letak lokasi nama kepanjangan bila bilamana "
    "name named called mean meant many much kind type".split()
)
# The noun that names the kind of thing asked for is the answer's, not the passage's: "negara"
# in "Negara apakah...", "provinsi" in "Di provinsi manakah...", "country" in "Which country...".
_ASKS_AFTER = frozenset("which what nama".split())
_ASKS_BEFORE = frozenset("apa apakah mana manakah siapa siapakah berapa berapakah".split())
# "Berapa lama" is "how long": the passage gives a duration, not the word "lama".
_HOW = frozenset("berapa berapakah".split())
_MEASURES = frozenset("lama lamanya".split())


def question_terms(question: str) -> list[str]:
    """What a question is about: its content words less question words and the asked-for kind."""
    words = [w.lower() for w in _WORD.findall(fold(_MARKER.sub(" ", question)))]
    kind = {words[i + 1] for i, w in enumerate(words[:-1]) if w in _ASKS_AFTER}
    kind |= {words[i - 1] for i, w in enumerate(words) if i and w in _ASKS_BEFORE}
    kind |= {w for i, w in enumerate(words) if i and w in _MEASURES and words[i - 1] in _HOW}
    return [w for w in dict.fromkeys(content_words(question)) if w not in QUESTION_WORDS and w not in kind]


# A question counts as at most this many terms: a long question ("which company, according
# to Fortune ... and as The Age reported ...") spreads over several articles, and the ones an
# answer cites hold only their part of it.
COVERAGE_TERMS = 8


def coverage(question: str, sources: Sequence[Hit]) -> float:
    """Share of the question's own terms that occur, in some form, in ``sources``; a question
    with more than ``COVERAGE_TERMS`` terms counts as that many (at most 1.0).

    A passage that answers a question nearly always repeats what the question is about; a
    question about something the passage never mentions ("the smallest shark" over a
    passage on the smallest country) scores low however fluent the model's answer is.
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
    found = len(terms) - len(missing)
    return min(1.0, found / min(len(terms), COVERAGE_TERMS))


def judged_sources(sources: Sequence[Hit], cited: Iterable[int]) -> list[Hit]:
    """The sources the refusal gates judge: every source from the articles the answer cites
    (numbers as in the prompt), or all sources when it cites none.

    Judged against every source of a full prompt, nearly any question's terms are found
    somewhere and the coverage gate stops working; judged against the cited chunk alone,
    an answer from an article's third paragraph would miss the subject its first one names.
    """
    docs = {sources[n - 1].chunk.doc_id for n in cited if 1 <= n <= len(sources)}
    return [h for h in sources if h.chunk.doc_id in docs] or list(sources)


def _citation(n: int, hit: Hit, verified: bool) -> Citation:
    c = hit.chunk
    return Citation(number=n, doc_id=c.doc_id, title=c.title, source=c.source, text=c.text, chunk_id=c.id,
                    url=c.url, verified=verified, published=c.published, author=c.author, page=c.page,
                    alternatives=list(c.alternatives))


def resolve_citations(text: str, sources: Sequence[Hit]) -> tuple[list[Citation], list[int]]:
    """Citations for the markers that name a source, and the numbers that name none (no checking)."""
    citations = [_citation(n, sources[n - 1], True) for n in cited_numbers(text) if 1 <= n <= len(sources)]
    invalid = [n for n in cited_numbers(text) if not 1 <= n <= len(sources)]
    return citations, invalid


def verify_citations(text: str, sources: Sequence[Hit]) -> tuple[str, list[Citation], list[str]]:
    """Check every citation; return the (possibly repaired) text, its citations and flags."""
    if not sources or is_refusal(text):
        stripped = _MARKER.sub("", text).strip() if is_refusal(text) else text
        return stripped, [], []
    vocab = [vocabulary(h.chunk.title + " " + h.chunk.text) for h in sources]
    flags: list[str] = []
    verified: dict[int, bool] = {}

    def best_source(sentence: str) -> tuple[int, float]:
        scores = [support(sentence, v) for v in vocab]
        best = max(range(len(scores)), key=lambda i: scores[i])
        return best + 1, scores[best]

    previous = ""  # the last sentence with words of its own

    def fix_sentence(m: re.Match[str]) -> str:
        nonlocal previous
        sentence = m.group(0)
        groups = list(_GROUP.finditer(sentence))
        has_words = bool(content_words(sentence))
        if has_words:
            previous = sentence
        if not groups or not previous:
            return sentence
        out, prev_end = [], 0
        for group in groups:
            # The claim a group of markers vouches for: the text since the previous group,
            # else the whole sentence, else (markers after a sentence with no words of its
            # own: "... khas. Yaitu: [8]") the sentence before. Sources cited together share it.
            claim = sentence[prev_end : group.start()]
            if not content_words(claim):
                claim = sentence if has_words else previous
            numbers = cited_numbers(group.group(0))
            needed = SUPPORT / len(numbers)
            kept: list[int] = []
            for n in numbers:
                if 1 <= n <= len(sources) and support(claim, vocab[n - 1]) >= needed:
                    verified[n] = True
                    kept.append(n)
                    continue
                best, score = best_source(claim)
                if score >= SUPPORT:
                    flags.append(f"citation [{n}] repaired to [{best}]")
                    verified[best] = True
                    kept.append(best)
                elif 1 <= n <= len(sources):
                    flags.append(f"citation [{n}] does not support its sentence")
                    verified.setdefault(n, False)
                    kept.append(n)
                else:
                    flags.append(f"citation [{n}] names no source and was removed")
            trailing = group.group(0)[len(group.group(0).rstrip()) :]
            markers = "".join(f"[{k}]" for k in dict.fromkeys(kept))
            out.append(sentence[prev_end : group.start()] + markers + trailing)
            prev_end = group.end()
        out.append(sentence[prev_end:])
        return "".join(out)

    repaired = _REPEATED.sub(r"\1", _SENTENCE.sub(fix_sentence, text))
    if not cited_numbers(repaired):
        best, score = best_source(repaired)
        if score >= SUPPORT:
            repaired = repaired.rstrip() + f" [{best}]"
            verified[best] = True
            flags.append(f"citation [{best}] added: the answer cited nothing")
        else:
            flags.append("the answer cites no source")
    citations = [_citation(n, sources[n - 1], verified.get(n, False))
                 for n in cited_numbers(repaired) if 1 <= n <= len(sources)]
    return repaired, citations, flags
