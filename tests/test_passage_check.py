"""Asking the model whether the cited passage states its answer, and declining when it does not.

The model's replies are fixed at the network boundary (an ``httpx.MockTransport`` behind a
real ``openai`` client); the store, the index and the assistant are real.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

from ingest.pipeline import ingest_documents
from rag.assistant import Assistant
from rag.llm import next_token_logprobs
from rag.passage_check import passage_states_answer, yes_probability
from rag.prompt import refusal_text
from rag.types import Document
from tests.test_llm_errors import MESSAGES, chat, event, sse

ALIBABA = ("Alibaba reshuffled its cloud unit. Jin Li will lead hybrid cloud and Weiguang Liu public cloud, "
           "both reporting to Eddie Wu.")


def completion(top: dict[str, float]) -> httpx.Response:
    """A one-token chat completion with the given first-token log-probabilities (llama.cpp's shape)."""
    first = next(iter(top))
    body = {"id": "c1", "object": "chat.completion", "created": 1700000000, "model": "test-model",
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": first},
                         "logprobs": {"content": [{"token": first, "logprob": top[first], "bytes": None,
                                                   "top_logprobs": [{"token": t, "logprob": p, "bytes": None}
                                                                    for t, p in top.items()]}]}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}
    return httpx.Response(200, json=body)


def test_yes_probability_by_hand():
    # yes-like tokens 0.6 + 0.1, no 0.2: 0.7 / 0.9; other tokens do not count
    top = {"yes": math.log(0.6), " Yes": math.log(0.1), "no": math.log(0.2), "The": math.log(0.05)}
    assert yes_probability(top) == pytest.approx(0.7 / 0.9)
    assert yes_probability({"Tidak": math.log(0.5), "Ya": math.log(0.5)}) == pytest.approx(0.5)
    assert yes_probability({"The": -0.1}) is None and yes_probability({}) is None


def test_the_check_continues_the_answer_conversation_with_one_token_and_logprobs():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return completion({"no": math.log(0.8), "yes": math.log(0.2)})

    p = passage_states_answer(chat(handler), MESSAGES, "Jin Li [2]", "Who leads?", 2)
    assert p == pytest.approx(0.2)
    sent = seen[0]
    assert sent["max_tokens"] == 1 and sent["logprobs"] is True and sent["top_logprobs"] == 10
    assert sent["messages"][: len(MESSAGES)] == MESSAGES  # the answer's prompt, reused from the server's cache
    assert sent["messages"][-2] == {"role": "assistant", "content": "Jin Li [2]"}
    assert "source [2]" in sent["messages"][-1]["content"] and "Who leads?" in sent["messages"][-1]["content"]


def test_a_server_without_logprobs_leaves_the_check_undecided():
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"id": "c1", "object": "chat.completion", "created": 1700000000, "model": "test-model",
                "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant",
                                                                              "content": "yes"}}]}
        return httpx.Response(200, json=body)

    assert next_token_logprobs(chat(handler), MESSAGES) == {}
    assert passage_states_answer(chat(handler), MESSAGES, "Jin Li [1]", "Who leads?", 1) == 0.5


def kabar(settings, hash_embedder, reply: str, yes: float) -> tuple[Assistant, list[dict]]:
    requests: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append(body)
        if body.get("stream"):
            return sse([event(reply)])
        return completion({"yes": math.log(yes), "no": math.log(1 - yes)})

    assistant = Assistant(settings, embedder=hash_embedder, llm=chat(handler))
    ingest_documents([Document(id="ali", title="Alibaba cloud", text=ALIBABA, source="Kompas")], assistant.store,
                     hash_embedder)
    return assistant, requests


def test_an_answer_the_model_does_not_find_in_its_cited_passage_is_declined(settings, hash_embedder):
    strict = settings.with_(min_support=0.5)
    assistant, requests = kabar(strict, hash_embedder, "Weiguang Liu. [1]", yes=0.1)
    answer = assistant.ask("Who leads Alibaba's public cloud?")
    assert answer.refused and answer.text == refusal_text("en") and answer.support == pytest.approx(0.1)
    assert any("10% that source [1] states the answer" in f for f in answer.flags), answer.flags
    assert len(requests) == 2
    kept, _ = kabar(strict, hash_embedder, "Weiguang Liu. [1]", yes=0.9)
    answer = kept.ask("Who leads Alibaba's public cloud?")
    assert not answer.refused and answer.support == pytest.approx(0.9)


def test_the_check_is_not_asked_when_off(settings, hash_embedder):
    assistant, requests = kabar(settings, hash_embedder, "Weiguang Liu. [1]", yes=0.1)
    answer = assistant.ask("Who leads Alibaba's public cloud?")
    assert not answer.refused and answer.support is None and len(requests) == 1
