"""Brief answers: the question's echo in front of the answer is dropped, nothing else."""

from __future__ import annotations

from rag.answer import asks_yes_no, brief
from tests.test_grounding import kabar_replying


def test_the_echo_of_the_question_is_dropped():
    assert brief("Istri Abimanyu adalah Utari. [1]", "Siapa nama istri Abimanyu?") == "Utari. [1]"
    assert brief("Ketua Komisi A DPRD di Sumatera Utara adalah Muh Nuh [1].",
                 "Siapakah ketua Komisi A DPRD di Sumatera Utara ?") == "Muh Nuh [1]."
    assert brief("Sony Entertainment Television berada di Culver City, California. [2]",
                 "Dimana lokasi Sony Entertainment Television?") == "Culver City, California. [2]"
    assert brief("The head of Alibaba's hybrid cloud is Jin Li [1].",
                 "Who is the head of Alibaba's hybrid cloud?") == "Jin Li [1]."
    assert brief("The new data centre is located in Batam [3].", "Where is the new data centre?") == "Batam [3]."
    # what follows the echo keeps its words, capitalised as a sentence start
    assert brief("Korvet adalah jenis kapal perang yang lebih kecil dari fregat [1].",
                 "Apakah yang dimaksud dengan korvet?") == "Jenis kapal perang yang lebih kecil dari fregat [1]."


def test_an_answer_that_is_not_an_echo_is_left_alone():
    # the words before "adalah" are the answer's own, not the question's
    assert brief("92% penduduknya adalah Kristen [1].", "apakah agama mayoritas di Filipina?") == \
        "92% penduduknya adalah Kristen [1]."
    assert brief("Jin Li [1]", "who leads hybrid cloud?") == "Jin Li [1]"
    assert brief("Jin Li leads hybrid cloud. [1]", "who leads hybrid cloud?") == "Jin Li leads hybrid cloud. [1]"
    # an echo reaching over a sentence or a citation is not an echo
    assert brief("Alibaba reorganised. [1] Hybrid cloud is led by Jin Li [1].", "who leads Alibaba hybrid cloud?") \
        == "Alibaba reorganised. [1] Hybrid cloud is led by Jin Li [1]."


def test_a_yes_no_question_is_known_by_its_auxiliary_first_or_after_a_leading_phrase():
    assert asks_yes_no("Is Jin Li the head of hybrid cloud?")
    assert asks_yes_no("Between the TechCrunch report published on November 6, 2023, and the report of "
                       "December 15, 2023, was there inconsistency in the portrayal of Google?")
    assert asks_yes_no("After the Polygon report of November 9, 2023, did Engadget agree?")
    assert not asks_yes_no("Who leads hybrid cloud?")
    assert not asks_yes_no("In December 2023, who was named CEO?")
    assert not asks_yes_no("Between Alibaba and Tencent, which changed its leaders first?")
    assert not asks_yes_no("Siapa, menurut artikel, CEO baru RajaPay?")


def test_yes_no_questions_keep_their_subject():
    # in English the subject is the answer
    assert brief("Jin Li is the head of hybrid cloud [1].", "Is Jin Li the head of hybrid cloud?") == \
        "Jin Li is the head of hybrid cloud [1]."
    # in Indonesian: what follows adds nothing the question did not say
    assert brief("Jin Li adalah pemimpin hybrid cloud [1].", "Apakah Jin Li memimpin hybrid cloud?") == \
        "Jin Li adalah pemimpin hybrid cloud [1]."


def test_kabar_shows_the_brief_answer_and_keeps_the_models(settings, hash_embedder):
    kabar = kabar_replying("The leader of Alibaba's hybrid cloud is Jin Li [1].", settings, hash_embedder)
    answer = kabar.ask("Who is the leader of Alibaba's hybrid cloud?")
    assert not answer.refused
    assert answer.text == "Jin Li [1]." and answer.model_text == "The leader of Alibaba's hybrid cloud is Jin Li [1]."
    assert [c.doc_id for c in answer.citations] == ["ali"]
