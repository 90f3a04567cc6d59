"""Prompt assembly: numbered sources fitted to a token budget, rendered from files.

Templates live in ``rag/answer/prompts/*.txt`` and use ``${name}`` placeholders; a missing
variable is an error, never an empty string. Sources are wrapped in ``<source>`` tags,
the system prompt tells the model that their content is data, not instructions, and
sentences in them that address an AI assistant are masked before the model sees them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Sequence

from rag.answer.context import assemble_context
from rag.errors import ConfigError
from rag.models import Message
from rag.tokens import count_tokens
from rag.types import Hit, also_published, is_path

PROMPTS = Path(__file__).parent / "prompts"

LANGUAGES = {"id": "Indonesian", "en": "English"}
REFUSALS = {
    "en": "I don't know: the articles do not say.",
    "id": "Saya tidak tahu: artikel-artikel ini tidak menyebutkannya.",
}

def refusal_text(lang: str) -> str:
    """How Kabar declines, in the question's language."""
    return REFUSALS.get(lang, REFUSALS["en"])


@lru_cache(maxsize=None)
def _template(name: str) -> Template:
    return Template((PROMPTS / f"{name}.txt").read_text(encoding="utf-8"))


def render(name: str, **values: object) -> str:
    """Render ``rag/answer/prompts/<name>.txt``; every placeholder must be given."""
    try:
        return _template(name).substitute(values)
    except KeyError as e:
        raise ConfigError(f"prompt {name!r} needs a value for {e.args[0]!r}") from None


# Sentences in an article that address the assistant rather than report news. They are
# masked in the prompt (the stored article is untouched): a small model cannot be relied
# on to ignore them just because the system prompt says so.
_INSTRUCTION = re.compile(
    r"\b(?:"
    r"(?:ignore|disregard|forget) (?:all |any |the |your )*(?:previous |prior |above |earlier |other )*"
    r"(?:instructions?|prompts?|rules|sources|messages|context|directions)"
    r"|you are now|new instructions?|system prompt"
    r"|(?:ai|language model|assistant)s?,? (?:must|should) (?:answer|say|reply)"
    r"|(?:answer|reply|respond) (?:every|all|any) questions?"
    r"|abaikan (?:semua |seluruh )?(?:instruksi|perintah|petunjuk|sumber)|instruksi baru|kamu sekarang adalah"
    r"|jawab (?:setiap|semua) pertanyaan"
    r")",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?\n]")
MASK = "[instruction-like text removed]"


def _mask_instructions(text: str) -> str:
    """Replace each sentence holding an instruction-like phrase with :data:`MASK`.

    The phrase is searched for, then widened to its sentence by hand: a pattern that also
    matched the sentence around the phrase backtracked over every position of every
    sentence, and cost a millisecond per chunk.
    """
    out: list[str] = []
    pos = 0
    for m in _INSTRUCTION.finditer(text):
        if m.start() < pos:
            continue
        start = max(pos, *(text.rfind(c, 0, m.start()) + 1 for c in ".!?\n"))
        end_at = _SENTENCE_END.search(text, m.end())
        end = len(text) if end_at is None else end_at.end() if end_at.group(0) != "\n" else end_at.start()
        out += [text[pos:start], MASK]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _neutralise(text: str) -> str:
    text = _mask_instructions(text)
    # An article must not be able to close its own <source> tag and speak outside it.
    return text.replace("</source", "</ source").replace("<source", "< source")


def format_source(n: int, hit: Hit) -> str:
    c = hit.chunk
    header = f"Title: {_neutralise(c.title)}\n" if c.title else ""
    header += f"Source: {_neutralise(c.source)}\n" if c.source and not is_path(c.source) else ""
    header += f"Author: {_neutralise(c.author)}\n" if c.author else ""
    header += f"Date: {c.published[:10]}\n" if c.published else ""
    header += f"Page: {c.page}\n" if c.page else ""
    also = also_published(c.alternatives)
    header += f"Also published by: {_neutralise(also.removeprefix('also: '))}\n" if also else ""
    return render("source", n=n, header=header, text=_neutralise(c.text)).strip()


def select_sources(hits: Sequence[Hit], budget_tokens: int, per_doc: int = 3) -> list[Hit]:
    """The sources that reach the prompt (see :func:`rag.answer.context.assemble_context`)."""
    return assemble_context(hits, budget_tokens, lambda h: count_tokens(format_source(99, h)) + 2, per_doc)


#: Added to the question when it names a time ("in December 2023", "terbaru"): the answer says
#: when, shown in the answer's language.
DATED = " The question is about time: also say the date of the source the answer comes from, like: {example}."
DATED_EXAMPLE = {"en": "Telkom, on 5 December 2023 [1]", "id": "Telkom, pada 5 Desember 2023 [1]"}
#: Added to a question asking yes or no: the small model otherwise restates the question as a
#: sentence, or answers another question, and the yes or no is nowhere to be read.
YES_NO = " The question asks yes or no: start the answer with Yes or No, then the fact that decides it, cited as [n]."


def build_messages(question: str, sources: Sequence[Hit], lang: str,
                   history: Sequence[Message] | None = None,
                   numbered: Sequence[tuple[int, Hit]] | None = None, dated: bool = False,
                   yes_no: bool = False) -> list[Message]:
    """System prompt, the given conversation turns, then the sources and the question.

    ``numbered``: the sources to show instead, each with its own number (an evidence-first
    prompt shows some sources, cut to their evidence, under the numbers of ``sources``).
    ``dated``: the question names a time, so the answer is asked to name its source's date.
    ``yes_no``: the question asks yes or no, so the answer is asked to start with it."""
    language = LANGUAGES.get(lang, "English")
    shown = numbered if numbered is not None else list(enumerate(sources, start=1))
    blocks = "\n\n".join(format_source(i, hit) for i, hit in shown)
    # The system prompt is the same for every question and language: llama.cpp's server keeps the
    # previous prompt's state, so an unchanged prefix is not read again.
    messages: list[Message] = [{"role": "system", "content": render("system")}]
    for turn in history or []:
        if turn.get("role") in ("user", "assistant") and turn.get("content"):
            messages.append({"role": turn["role"], "content": str(turn["content"])})
    guide = YES_NO if yes_no else DATED.format(example=DATED_EXAMPLE.get(lang, DATED_EXAMPLE["en"])) if dated else ""
    messages.append({"role": "user", "content": render("question", sources=blocks or "(no sources)",
                                                       question=question, language=language, guide=guide)})
    return messages


def condense_messages(question: str, history: Sequence[Message]) -> list[Message]:
    """Messages asking the model to turn a follow-up into a standalone question.

    Only the user's earlier questions are shown: small models rewrite more reliably
    without the answers in the way.
    """
    previous = [" ".join(str(t["content"]).split())[:300] for t in history
                if t.get("role") == "user" and t.get("content")][-3:]
    return [{"role": "user", "content": render("condense", previous=" / ".join(previous), question=question)}]
