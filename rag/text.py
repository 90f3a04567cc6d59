"""Words for comparison: stop words, stems, diacritics, as the lexical index and the checks see them.

Kabar compares words in four places: the BM25 index (:mod:`rag.store.lexical`), citation
checking (:mod:`rag.answer.citations`), the refusal gates (:mod:`rag.answer.refusal`) and brief answers
(:mod:`rag.answer.brief`). They share these helpers so that a word counts as the same word
everywhere: lowercased, without diacritics ("Shōnen" is "shonen"), and with its English
and Indonesian Snowball stems (PyStemmer) beside it. Does not detect languages
(:mod:`rag.lang`) or tokenise for the model (:mod:`rag.tokens`).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

STOPWORDS = frozenset(
    # English
    "a an and are as at be been but by can could did do does for from had has have he her his how i if in into "
    "is it its me my not of on or our she so than that the their them then there these they this those to "
    "us was we were what when where which who whom why will with would you your".split()
    # Indonesian
    + "ada adalah agar akan aku anda apa apakah atau bagaimana bahwa beberapa belum berapa bisa dalam dan dari "
    "dengan di dia ia ini itu juga kalau kami kapan karena ke kenapa kita lagi maka mana masih mengapa mereka "
    "nya oleh pada para saja sangat sebagai sedang sejak setelah siapa sudah tapi telah tentang tersebut "
    "tetapi untuk yaitu yakni yang".split()
)

# Citation markers ("[2]", "[1, 3]") are not words of the text they follow.
MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=4)
def stemmer(lang: str):  # type: ignore[no-untyped-def]
    """The Snowball stemmer of ``lang`` (``"id"``: Indonesian, anything else: English)."""
    import Stemmer

    return Stemmer.Stemmer("indonesian" if lang == "id" else "english")


def fold(text: str) -> str:
    """``text`` without diacritics ("Shōnen" -> "Shonen"), as the lexical index compares words."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=4096)
def forms(word: str) -> frozenset[str]:
    """A content word with its English and Indonesian stems."""
    return frozenset({word, stemmer("en").stemWord(word), stemmer("id").stemWord(word)})


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry content: lowercased, folded, no stop words or markers."""
    words = (w.lower() for w in _WORD.findall(fold(MARKER.sub(" ", text))))
    return [w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def vocabulary(text: str) -> frozenset[str]:
    """Every form of every content word in ``text``."""
    return frozenset(f for w in content_words(text) for f in forms(w))


# Words that shape a question rather than name what it is about ("where", "what is meant by").
QUESTION_WORDS = frozenset(
    "siapakah apakah berapakah kapankah dimana dimanakah manakah bagaimanakah mengapakah kenapakah "
    "sebutkan jelaskan dimaksud maksud arti disebut letak lokasi nama kepanjangan bila bilamana "
    "name named called mean meant many much kind type "
    # a request for the news on a topic ("kabar terbaru soal ...", "news on ...")
    "kabar berita news soal mengenai seputar".split()
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
    words = [w.lower() for w in _WORD.findall(fold(MARKER.sub(" ", question)))]
    kind = {words[i + 1] for i, w in enumerate(words[:-1]) if w in _ASKS_AFTER}
    kind |= {words[i - 1] for i, w in enumerate(words) if i and w in _ASKS_BEFORE}
    kind |= {w for i, w in enumerate(words) if i and w in _MEASURES and words[i - 1] in _HOW}
    return [w for w in dict.fromkeys(content_words(question)) if w not in QUESTION_WORDS and w not in kind]
