"""Ask the model whether the passage it cited states its answer.

Entry point: :func:`passage_states_answer`. The model has just read the sources to answer;
the check continues that same conversation with its reply and one more question ("Does
source [2] state the answer you gave ...? yes or no") and reads the probability of "yes"
from the first token's log-probabilities: one generated token, and a llama.cpp server
reuses the answer's prompt from its cache, so the check costs the few new tokens only.

Word overlap cannot tell an answer the passage states from a fluent answer about a
neighbouring fact that shares the passage's words ("the CEO of Tencent" answered with an
Alibaba executive the passage names); the reader of the passage can. What to do with the
probability is :mod:`rag.refusal`'s decision.
"""

from __future__ import annotations

import math
from typing import Sequence

from rag.llm import Message, OpenAIChat, next_token_logprobs
from rag.prompt import render

_YES = frozenset({"yes", "ya", "y"})
_NO = frozenset({"no", "tidak", "n"})


def yes_probability(logprobs: dict[str, float]) -> float | None:
    """P(yes) / (P(yes) + P(no)) over the first-token candidates; None when neither is among them."""
    yes = no = 0.0
    for token, logprob in logprobs.items():
        word = token.strip().strip(".,:!").lower()
        if word in _YES:
            yes += math.exp(logprob)
        elif word in _NO:
            no += math.exp(logprob)
    return yes / (yes + no) if yes + no > 0 else None


def check_messages(messages: Sequence[Message], reply: str, question: str, cited: int) -> list[Message]:
    """The answer's conversation, the model's reply, and the check question about source ``cited``."""
    return [*messages, {"role": "assistant", "content": reply},
            {"role": "user", "content": render("check", n=cited, question=question)}]


def passage_states_answer(llm: OpenAIChat, messages: Sequence[Message], reply: str, question: str,
                          cited: int) -> float:
    """The model's probability that source ``cited`` states ``reply`` (its reply to ``messages``).

    0.5 when the server returns no log-probabilities for either word: the check cannot say.
    """
    p = yes_probability(next_token_logprobs(llm, check_messages(messages, reply, question, cited)))
    return 0.5 if p is None else p
