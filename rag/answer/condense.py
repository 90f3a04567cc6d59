"""Follow-up questions made standalone, so that retrieval finds what they refer to.

Entry point: :func:`condense`. Two routes:

- An elliptical follow-up ("and public cloud?", "what about Huawei?", "kalau BRI?",
  "bagaimana dengan Jin Li?") is resolved without the LLM by putting its phrase in place
  of the matching part of the previous question: "who leads hybrid cloud?" + "and public
  cloud?" -> "who leads public cloud?". A name replaces the previous question's name; other
  phrases replace as many words, aligned on a shared last (or first) word, else at the end.
- Anything else is rewritten by the LLM (``rag/answer/prompts/condense.txt``). Small models often
  return the previous question unchanged or glued to the follow-up; when the rewrite drops
  words of the follow-up, the follow-up is appended so retrieval still sees them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer.prompt import condense_messages
from rag.models import Message, OpenAIChat
from rag.text import content_words

_ELLIPSIS = re.compile(
    r"^\s*(?:and|also|or|what about|how about|dan|lalu|terus|kalau|bagaimana dengan|gimana dengan|dengan)\s+"
    r"(?P<phrase>[^?]+?)\s*\??\s*$",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"\S+")


def _is_name(word: str) -> bool:
    return word[:1].isupper() or word[:1].isdigit()


def resolve_ellipsis(previous: str, follow_up: str) -> str | None:
    """The previous question with the follow-up's phrase substituted, or None if not elliptical."""
    m = _ELLIPSIS.match(follow_up)
    if not m:
        return None
    phrase = m.group("phrase").strip().rstrip("?.!")
    new = phrase.split()
    if not new or len(new) > 6:
        return None
    words = [w.group(0) for w in _TOKEN.finditer(previous.strip())]
    end_punct = ""
    if words and words[-1][-1:] in "?.!":
        end_punct = words[-1][-1]
        words[-1] = words[-1][:-1]
    core = [w.strip(",;:").lower() for w in words]
    # A name ("Huawei", "BRI", "2024") replaces the previous question's first name.
    if all(_is_name(w) for w in new):
        for i, w in enumerate(words[1:], start=1):
            if _is_name(w) and core[i] not in ("i",):
                j = i
                while j + 1 < len(words) and _is_name(words[j + 1]):
                    j += 1
                return " ".join(words[:i] + new + words[j + 1 :]) + end_punct
    # Otherwise align on the phrase's last word ("public cloud" ~ "hybrid cloud").
    last = new[-1].lower()
    for i in range(len(core) - 1, -1, -1):
        if core[i] == last:
            start = max(0, i - len(new) + 1)
            return " ".join(words[:start] + new + words[i + 1 :]) + end_punct
    # Or on its first word ("cloud hybrid" ~ "cloud publik", Indonesian puts the modifier after).
    first = new[0].lower()
    for i, w in enumerate(core):
        if w == first and i > 0:
            return " ".join(words[:i] + new + words[i + len(new) :]) + end_punct
    # No anchor: replace as many trailing words as the phrase has.
    if len(words) > len(new):
        return " ".join(words[: len(words) - len(new)] + new) + end_punct
    return None


def condense(question: str, history: Sequence[Message], llm: OpenAIChat) -> str:
    """``question`` rewritten to stand without ``history`` (unchanged when there is no history)."""
    previous = [str(t["content"]) for t in history if t.get("role") == "user" and t.get("content")]
    if not previous:
        return question
    resolved = resolve_ellipsis(previous[-1], question)
    if resolved:
        return resolved
    rewritten = llm.complete(condense_messages(question, history), max_tokens=64)
    rewritten = " ".join(rewritten.strip().split("\n")[0].removeprefix("Standalone:").strip().strip('"').split())
    if not rewritten or len(rewritten) > 4 * len(question) + 200:
        return question
    missing = set(content_words(question)) - set(content_words(rewritten))
    return f"{rewritten} {question}" if missing else rewritten
