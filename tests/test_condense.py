"""Elliptical follow-ups are made standalone without the LLM."""

from __future__ import annotations

import pytest

from rag.answer.condense import resolve_ellipsis


@pytest.mark.parametrize("previous, follow_up, expected", [
    ("who leads hybrid cloud?", "and public cloud?", "who leads public cloud?"),
    ("What is the population of Jakarta?", "and Surabaya?", "What is the population of Surabaya?"),
    ("How much is AWS investing in Indonesia?", "what about Huawei?", "How much is Huawei investing in Indonesia?"),
    ("Siapa direktur utama Telkom?", "kalau BRI?", "Siapa direktur utama BRI?"),
    ("Siapa yang memimpin divisi cloud publik Alibaba?", "bagaimana dengan cloud hybrid?",
     "Siapa yang memimpin divisi cloud hybrid Alibaba?"),
])
def test_elliptical_follow_ups_take_the_place_of_the_matching_words(previous, follow_up, expected):
    assert resolve_ellipsis(previous, follow_up) == expected


@pytest.mark.parametrize("follow_up", ["who does he report to?", "Berapa nilai yang hilang?", "and?"])
def test_other_follow_ups_are_left_to_the_llm(follow_up):
    assert resolve_ellipsis("who leads hybrid cloud?", follow_up) is None


@pytest.mark.parametrize("keep, turns", [(0, 0), (2, 2)])
def test_the_answer_prompt_gets_the_standalone_question_and_answer_history_turns(settings, hash_embedder, keep, turns):
    from ingest.pipeline import ingest_documents
    from rag.assistant import Assistant
    from rag.types import Document

    kabar = Assistant(settings.with_(answer_history=keep), embedder=hash_embedder)
    text = "Jin Li leads hybrid cloud. Weiguang Liu leads public cloud."
    ingest_documents([Document(id="a", title="Alibaba", text=text, source="Kompas")], kabar.store, hash_embedder)
    history = [{"role": "user", "content": "who leads hybrid cloud?"}, {"role": "assistant", "content": "Jin Li [1]"}]
    prep = kabar.prepare("and public cloud?", history)  # elliptical: condensed without the LLM
    assert prep.query == "who leads public cloud?"
    assert "who leads public cloud?" in prep.messages[-1]["content"]
    assert len(prep.messages) == 2 + turns and prep.messages[1:1 + turns] == (history if turns else [])
