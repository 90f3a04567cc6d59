"""The optional LLM judge (``kabar eval run --judge``).

An OpenAI-compatible chat model grades each full answer for correctness against the
references and for faithfulness to the chunks it cites. Its grades are opinions, so they
go to ``judge.json`` and a report section of their own, never into the exact metrics.

Configured by environment variables, read with the rest of :class:`~rag.settings.Settings`:
``KABAR_JUDGE_BASE_URL``, ``KABAR_JUDGE_MODEL``, ``KABAR_JUDGE_API_KEY``. The prompt is
``eval/prompts/judge.txt``. A reply that is not the JSON asked for is recorded as
ungraded (``None``), not guessed at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from rag.errors import ConfigError
from rag.models import OpenAIChat
from rag.settings import Settings

PROMPT = Path(__file__).parent / "prompts" / "judge.txt"
_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)


@dataclass(frozen=True)
class JudgeSettings:
    """Where the judge model is; the key stays out of ``repr``."""

    base_url: str = ""
    model: str = ""
    api_key: str = field(default="", repr=False)
    timeout_s: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> JudgeSettings:
        return cls(settings.judge_base_url, settings.judge_model, settings.judge_api_key)

    @property
    def configured(self) -> bool:
        return bool(self.base_url or self.api_key)


def render_prompt(question: str, references: Sequence[str], answer: str, cited: Sequence[str]) -> str:
    refs = "\n".join(f"- {r}" for r in references) if references else "(none: unanswerable)"
    passages = "\n\n".join(f"[{i}] {text}" for i, text in enumerate(cited, start=1)) if cited else "(none)"
    try:
        return Template(PROMPT.read_text(encoding="utf-8")).substitute(
            question=question, references=refs, answer=answer or "(empty)", cited=passages)
    except KeyError as e:
        raise ConfigError(f"judge prompt {PROMPT} needs a value for {e.args[0]!r}") from None


def _grade(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "yes", "no", "true", "false"):
        return float(value.strip().lower() in ("1", "yes", "true"))
    return None


def parse_grades(text: str) -> dict[str, Any]:
    """``{"correct", "faithful", "reason"}`` from the judge's reply; grades None if unreadable."""
    for m in _OBJECT.finditer(text):
        try:
            data = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(data, dict) and ("correct" in data or "faithful" in data):
            return {"correct": _grade(data.get("correct")), "faithful": _grade(data.get("faithful")),
                    "reason": str(data.get("reason", ""))[:500]}
    return {"correct": None, "faithful": None, "reason": f"unreadable judge reply: {text[:200]!r}"}


class Judge:
    """Grades answers with a chat model."""

    def __init__(self, chat: OpenAIChat) -> None:
        self.chat = chat

    @classmethod
    def from_settings(cls, settings: JudgeSettings, client: Any = None) -> Judge:
        if not settings.configured:
            raise ConfigError(
                "--judge needs a judge model: set KABAR_JUDGE_BASE_URL (any OpenAI-compatible server) "
                "and KABAR_JUDGE_MODEL, plus KABAR_JUDGE_API_KEY if the server wants one"
            )
        return cls(OpenAIChat(settings.model, settings.base_url, settings.api_key, settings.timeout_s, client=client))

    @property
    def model(self) -> str:
        return self.chat.model

    def grade(self, question: str, references: Sequence[str], answer: str, cited: Sequence[str],
              refused: bool = False) -> dict[str, Any]:
        """Grades for one answer. A refusal has no claims, so its faithfulness is None."""
        prompt = render_prompt(question, references, answer, cited)
        reply = self.chat.complete([{"role": "user", "content": prompt}], temperature=0.0, max_tokens=200)
        grades = parse_grades(reply)
        if refused:
            grades["faithful"] = None
        return grades
