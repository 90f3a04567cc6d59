"""The prompt's source budget per question: a few passages for a fact, the whole budget across articles."""

from __future__ import annotations

from typing import Any

import pytest

from ingest import ingest
from rag.assistant import Assistant
from rag.budget import SPAN_TERMS, source_budget, spans_articles
from rag.prompt import format_source
from rag.settings import Settings
from rag.tokens import count_tokens
from tests.conftest import SAMPLE_ARTICLES

MULTIHOP = ("Which company, reported by TechCrunch as cutting its cloud prices and by The Verge as hiring a new "
            "chief of its artificial intelligence unit, also announced a data centre in Jakarta last year?")


@pytest.mark.parametrize("question", [
    "who leads hybrid cloud?",
    "Siapa yang memimpin divisi cloud publik Alibaba?",
    "Siapakah perebut medali emas 400 m putri di Kejuaraan Dunia Atletik Ke - 10 di Helsinki , Finlandia ?",
    "Pada tanggal berapakah , Than Shwe terakhir muncul di publik?",  # a name, not a comparison
    "Siapa raja kedua Dinasti Candra?",  # "kedua": second
])
def test_a_single_fact_gets_the_fact_budget(question: str) -> None:
    assert not spans_articles(question)
    assert source_budget(question, 2000, 600) == 600


@pytest.mark.parametrize("question", [
    MULTIHOP,
    "Is Huawei investing more in Indonesia than AWS?",
    "Apa perbedaan rencana Huawei dan AWS di Indonesia?",
    "Which of the two companies opened a data centre first, compared to the other?",
])
def test_questions_across_articles_get_the_whole_budget(question: str) -> None:
    assert spans_articles(question)
    assert source_budget(question, 2000, 600) == 2000


def test_a_named_outlet_gets_the_whole_budget_and_zero_turns_it_off() -> None:
    assert source_budget("who leads hybrid cloud?", 2000, 600, outlets=1) == 2000
    assert source_budget("who leads hybrid cloud?", 2000, 0) == 2000
    assert source_budget("who leads hybrid cloud?", 500, 600) == 500  # never above the whole budget
    assert SPAN_TERMS >= 8


def test_prepare_sends_a_fact_question_fewer_tokens(settings: Settings, hash_embedder: Any) -> None:
    kabar = Assistant(settings.with_(fact_context_tokens=400), embedder=hash_embedder)
    ingest([SAMPLE_ARTICLES], kabar)
    fact = kabar.prepare("who leads hybrid cloud?")
    broad = kabar.prepare("Is Huawei investing more in Indonesia than AWS, and who leads Alibaba's hybrid cloud?")
    used = [sum(count_tokens(format_source(99, h)) + 2 for h in p.sources) for p in (fact, broad)]
    assert fact.budget == 400 and used[0] <= 400
    assert broad.budget == settings.context_tokens and used[1] > 400
