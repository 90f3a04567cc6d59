"""The prompt's source budget per question: a few passages for a fact, the whole budget across articles."""

from __future__ import annotations

from typing import Any

import pytest

from ingest import ingest
from rag.answer import format_source
from rag.assistant import Assistant
from rag.search.budget import SPAN_TERMS, article_share, source_budget, spans_articles
from rag.settings import Settings
from rag.text import question_terms
from rag.tokens import count_tokens
from rag.types import Chunk, Hit
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
    assert source_budget(question, [], 2000, 600) == 600


@pytest.mark.parametrize("question", [
    "Is Huawei investing more in Indonesia than AWS?",
    "Apa perbedaan rencana Huawei dan AWS di Indonesia?",
    "Which of the two companies opened a data centre first, compared to the other?",
])
def test_comparisons_get_the_whole_budget(question: str) -> None:
    assert spans_articles(question)
    assert source_budget(question, [], 2000, 600) == 2000


@pytest.mark.parametrize("question", [
    "Apa kabar terbaru soal pusat data?",
    "Ada kabar apa soal IPO cloud Alibaba?",
    "Berita terkini tentang Telkom?",
    "What's the latest on Tencent Cloud?",
    "Any news about the Hanmart IPO?",
])
def test_a_request_for_the_news_gets_the_whole_budget_and_its_words_are_not_terms(question: str) -> None:
    assert spans_articles(question)
    assert source_budget(question, [], 2000, 600) == 2000
    assert not {"kabar", "berita", "news", "soal", "tentang"} & set(question_terms(question))


def test_a_fact_about_the_news_is_still_a_fact() -> None:  # "kantor berita": a news agency
    assert not spans_articles("Siapa pemimpin redaksi kantor berita Antara?")
    assert not spans_articles("Who founded the news site?")


def hit(doc: str, text: str) -> Hit:
    return Hit(Chunk(id=f"{doc}-0", doc_id=doc, text=text, position=0, start=0, end=len(text)), 1.0)


def test_a_long_question_spread_over_articles_gets_the_whole_budget() -> None:
    one = [hit("a", "TechCrunch reported the company cut its cloud prices."),
           hit("b", "The Verge reported the company hired a new chief of its artificial intelligence unit."),
           hit("c", "The company announced a data centre in Jakarta last year.")]
    assert article_share(MULTIHOP, one) < 0.8
    assert source_budget(MULTIHOP, one, 2000, 600) == 2000
    # The same long question, its terms together in one article: a single fact.
    together = [hit("a", " ".join(h.chunk.text for h in one))]
    assert article_share(MULTIHOP, together) == 1.0
    assert source_budget(MULTIHOP, together, 2000, 600) == 600


def test_a_short_question_is_not_judged_by_spread() -> None:
    spread = [hit("a", "Christiaan Snouck Hurgronje was a Dutch scholar."), hit("b", "He died in Leiden.")]
    question = "When did Christiaan Snouck Hurgronje die?"
    assert article_share(question, spread) < 0.8 and not spans_articles(question, 0, article_share(question, spread))


def test_a_named_outlet_gets_the_whole_budget_and_zero_turns_it_off() -> None:
    assert source_budget("who leads hybrid cloud?", [], 2000, 600, outlets=1) == 2000
    assert source_budget("who leads hybrid cloud?", [], 2000, 0) == 2000
    assert source_budget("who leads hybrid cloud?", [], 500, 600) == 500  # never above the whole budget
    assert SPAN_TERMS >= 8


def test_prepare_sends_a_fact_question_fewer_tokens(settings: Settings, hash_embedder: Any) -> None:
    kabar = Assistant(settings.with_(fact_context_tokens=400), embedder=hash_embedder)
    ingest([SAMPLE_ARTICLES], kabar)
    fact = kabar.prepare("who leads hybrid cloud?")
    broad = kabar.prepare("Is Huawei investing more in Indonesia than AWS, and who leads Alibaba's hybrid cloud?")
    used = [sum(count_tokens(format_source(99, h)) + 2 for h in p.sources) for p in (fact, broad)]
    assert fact.budget == 400 and used[0] <= 400
    assert broad.budget == settings.context_tokens and used[1] > 400
