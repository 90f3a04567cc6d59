"""Brief answers: drop the question's echo in front of the answer.

Asked "Siapa nama istri Abimanyu?", a small model often replies "Istri Abimanyu adalah
Utari [1]." where "Utari [1]" is the answer. :func:`brief` removes such an echo: the words
before the first link ("adalah", "merupakan", "berada di", "is", "is located in", ...)
when nearly all of them are the question's own and nothing in them is cited. It leaves
the answer alone when the echo is long or spans a sentence, when what follows adds
nothing the question did not say (a restated yes/no question), and for English yes/no
questions, whose subject is the answer.
"""

from __future__ import annotations

import re

from rag.text import content_words, forms, vocabulary

_LINK = re.compile(
    r"\s(?:adalah|ialah|merupakan|yaitu|yakni"
    r"|(?:berada|terletak|terdapat|berasal|bertempat)(?:\s+(?:di|dari|pada))?"
    r"|(?:is|are|was|were)\s+located\s+in|comes?\s+from|came\s+from|is|are|was|were)\s",
    re.IGNORECASE,
)
# A yes/no question starts with its auxiliary, or puts it after a leading phrase ("Between the
# report of 6 November, 2023, and the report of 15 December, was there ...?").
_YES_NO = re.compile(r"\s*(?:[^?]*?,\s*)?(?:is|are|was|were|do|does|did|can|could|has|have|had|will|would|should)\b",
                     re.IGNORECASE)
# Longest echo removed, in words; share of its content words the question must contain.
MAX_ECHO_WORDS = 12
ECHO_SHARE = 0.8


def asks_yes_no(question: str) -> bool:
    """Whether an English ``question`` asks yes or no ("Was there a change ...?")."""
    return bool(_YES_NO.match(question))


def brief(answer: str, question: str) -> str:
    """``answer`` without a leading restatement of ``question`` (see the module docstring)."""
    if asks_yes_no(question):
        return answer
    link = _LINK.search(answer)
    if link is None:
        return answer
    echo, rest = answer[: link.start()], answer[link.end() :].lstrip()
    if re.search(r"[.!?\n\[]", echo) or len(echo.split()) > MAX_ECHO_WORDS:
        return answer
    asked = vocabulary(question)
    echoed = content_words(echo)
    if not echoed or sum(bool(forms(w) & asked) for w in echoed) < ECHO_SHARE * len(echoed):
        return answer
    if all(forms(w) & asked for w in content_words(rest)):
        return answer
    return rest[:1].upper() + rest[1:]
