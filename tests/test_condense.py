"""Elliptical follow-ups are made standalone without the LLM."""

from __future__ import annotations

import pytest

from rag.condense import resolve_ellipsis


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
