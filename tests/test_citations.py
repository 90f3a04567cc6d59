"""Citation checking and repair."""

from __future__ import annotations

from rag.answer import is_refusal
from rag.answer.citations import cited_numbers, verify_citations
from rag.types import Chunk, Hit


def sources(*texts: str) -> list[Hit]:
    return [Hit(Chunk(id=f"c{i}", doc_id=f"d{i}", text=t, position=0, start=0, end=len(t), title=""), 1.0)
            for i, t in enumerate(texts)]


SRC = sources("Weiguang Liu akan memimpin divisi cloud publik.", "Jin Li akan memimpin unit cloud hybrid.")


def test_cited_numbers_in_order():
    assert cited_numbers("a [2] b [1, 3] c [2][4]") == [2, 1, 3, 4]


def test_correct_citation_is_kept_and_verified():
    text, cites, flags = verify_citations("Jin Li leads hybrid cloud [2].", SRC)
    assert text == "Jin Li leads hybrid cloud [2]."
    assert [(c.number, c.doc_id, c.verified) for c in cites] == [(2, "d1", True)]
    assert flags == []


def test_wrong_number_is_repaired_to_the_supporting_source():
    text, cites, flags = verify_citations("Jin Li leads hybrid cloud [1].", SRC)
    assert text == "Jin Li leads hybrid cloud [2]."
    assert [c.number for c in cites] == [2]
    assert flags == ["citation [1] repaired to [2]"]


def test_number_naming_no_source_is_repaired_or_removed():
    assert verify_citations("Jin Li leads hybrid cloud [7].", SRC)[0] == "Jin Li leads hybrid cloud [2]."
    text, cites, flags = verify_citations("Bananas are yellow [7].", SRC)
    assert "[7]" not in text and cites == []
    assert "citation [7] names no source and was removed" in flags


def test_unsupported_citation_is_flagged_not_verified():
    text, cites, flags = verify_citations("Bananas are yellow [1].", SRC)
    assert [(c.number, c.verified) for c in cites] == [(1, False)]
    assert flags == ["citation [1] does not support its sentence"]


def test_each_claim_is_checked_against_its_own_marker():
    text, cites, flags = verify_citations(
        "Weiguang Liu leads public cloud [1], and Jin Li leads hybrid cloud [2].", SRC)
    assert flags == [] and [c.number for c in cites] == [1, 2]


def test_markers_after_a_sentence_with_no_words_vouch_for_the_sentence_before():
    text, cites, flags = verify_citations("Jin Li leads hybrid cloud. Yaitu: [1]", SRC)
    assert text == "Jin Li leads hybrid cloud. Yaitu: [2]" and [c.number for c in cites] == [2]
    assert flags == ["citation [1] repaired to [2]"]
    assert verify_citations("Jin Li leads hybrid cloud. [2]", SRC)[2] == []


def test_missing_citation_is_added_when_one_source_supports_the_answer():
    text, cites, flags = verify_citations("Jin Li leads hybrid cloud.", SRC)
    assert text.endswith("[2]") and [c.number for c in cites] == [2]
    assert flags == ["citation [2] added: the answer cited nothing"]


def test_refusals_carry_no_citations():
    text, cites, flags = verify_citations("I don't know: the articles do not say. [1]", SRC)
    assert cites == [] and "[1]" not in text
    assert is_refusal("Saya tidak tahu: artikel-artikel ini tidak menyebutkannya.")
    assert not is_refusal("Jin Li leads hybrid cloud [2].")
