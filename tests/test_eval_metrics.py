"""Every evaluation metric against values computed by hand (in the comments)."""

from __future__ import annotations

import math

import pytest

from eval.dataset import Question
from eval.metrics import (
    Outcome,
    aggregate,
    contains_reference,
    context_doc_recall,
    evidence_hit_at_k,
    evidence_recall,
    exact_match,
    first_gold_rank,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    percentile,
    rank_documents,
    recall_at_k,
    refusal_curve,
    refusal_scores,
    score_question,
    strip_citations,
    summarize,
    token_f1,
)
from eval.results import QuestionResult

# -- normalisation and answers -------------------------------------------------------------


def test_normalize_lowercases_drops_punctuation_articles_and_extra_space():
    assert normalize_answer("  The  Jin-Li, Inc.!  ") == "jin li inc"
    assert normalize_answer("An apple a day") == "apple day"


def test_normalize_keeps_indonesian_function_words():
    assert normalize_answer("yang pertama di Jakarta") == "yang pertama di jakarta"


def test_normalize_makes_space_tokenised_and_written_forms_agree():
    # IndoNLU passages split punctuation off; models write it attached.
    assert normalize_answer("GA - 181") == normalize_answer("GA-181") == "ga 181"
    assert normalize_answer("US$300 juta") == normalize_answer("US$ 300 juta") == "us 300 juta"
    assert normalize_answer("Badan Tenaga Atom Internasional ( IAEA )") == "badan tenaga atom internasional iaea"


def test_strip_citations_removes_markers_only():
    assert strip_citations("Jin Li [1][2], lalu [1, 3] dan [2; 4].").split() == ["Jin", "Li", ",", "lalu", "dan", "."]
    assert "[a]" in strip_citations("[a] stays")


def test_exact_match_is_best_over_references_and_none_without_any():
    assert exact_match("the Jin Li.", ["Jin Li"]) == 1.0
    assert exact_match("Jin Li memimpin", ["Jin Li"]) == 0.0
    assert exact_match("Helen Qiao", ["Dr. Helen Qiao", "Helen Qiao"]) == 1.0
    assert exact_match("anything", []) is None


def test_token_f1_by_hand():
    # pred [jin, li, memimpin], ref [jin, li]: P = 2/3, R = 1, F1 = 2PR/(P+R) = 0.8
    assert token_f1("Jin Li memimpin", ["Jin Li"]) == pytest.approx(0.8)
    # pred [helen, qiao], ref [dr, helen, qiao]: P = 1, R = 2/3, F1 = 0.8; the second reference gives 1.0
    assert token_f1("Helen Qiao", ["Dr. Helen Qiao"]) == pytest.approx(0.8)
    assert token_f1("Helen Qiao", ["Dr. Helen Qiao", "Helen Qiao"]) == 1.0
    # repeated tokens count once per occurrence: common = {y: 2}, P = R = 2/3
    assert token_f1("x y y", ["y y z"]) == pytest.approx(2 / 3)
    assert token_f1("", ["Jin Li"]) == 0.0
    assert token_f1("zzz", ["Jin Li"]) == 0.0
    assert token_f1("Jin Li", []) is None


def test_contains_reference_matches_whole_words_only():
    assert contains_reference("Pemimpinnya adalah Jin Li.", ["Jin Li"]) == 1.0
    assert contains_reference("Jin Lin", ["Jin Li"]) == 0.0
    assert contains_reference("It cost US$ 300 juta.", ["US$300 juta"]) == 1.0
    assert contains_reference("Weiguang Liu", ["Jin Li", "Weiguang Liu"]) == 1.0
    assert contains_reference("x", ["..."]) is None  # nothing left of the reference
    assert contains_reference("x", []) is None


# -- retrieval -----------------------------------------------------------------------------


def test_documents_rank_by_their_best_chunk():
    assert rank_documents(["d3", "d1", "d3", "d2", "d5"]) == ["d3", "d1", "d2", "d5"]
    assert rank_documents([]) == []


def test_ranking_metrics_by_hand():
    ranked = ["d3", "d1", "d2", "d5"]
    gold = ["d1", "d2"]
    assert hit_at_k(ranked, gold, 1) == 0.0
    assert hit_at_k(ranked, gold, 5) == 1.0
    assert recall_at_k(ranked, gold, 2) == 0.5
    assert recall_at_k(ranked, gold, 10) == 1.0
    assert mrr_at_k(ranked, gold, 10) == 0.5
    # DCG = 1/log2(3) + 1/log2(4) = 1.13093; IDCG = 1 + 1/log2(3) = 1.63093
    assert ndcg_at_k(ranked, gold, 10) == pytest.approx(0.693426, abs=1e-6)
    assert first_gold_rank(ranked, gold) == 2


def test_ranking_metrics_with_gold_documents_not_retrieved():
    ranked = ["d1", "x"]
    gold = ["d1", "d8", "d9"]
    assert recall_at_k(ranked, gold, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(ranked, gold, 10) == 1.0
    # DCG = 1; IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.13093
    assert ndcg_at_k(ranked, gold, 10) == pytest.approx(1 / (1 + 1 / math.log2(3) + 0.5))


def test_ranking_metrics_stop_at_k():
    ranked = [f"x{i}" for i in range(10)] + ["gold"]
    assert hit_at_k(ranked, ["gold"], 10) == 0.0
    assert mrr_at_k(ranked, ["gold"], 10) == 0.0
    assert ndcg_at_k(ranked, ["gold"], 10) == 0.0
    assert first_gold_rank(ranked, ["gold"]) == 11
    assert first_gold_rank(ranked, ["nowhere"]) is None


def test_ranking_metrics_refuse_empty_gold():
    with pytest.raises(ValueError, match="gold documents must not be empty"):
        hit_at_k(["d1"], [], 1)


# -- evidence and context ------------------------------------------------------------------


CHUNKS = ["Intro text.  No apartment in New York City has ever\nsold for close to that amount, James said. More.",
          "Other text.",
          "THE PROSECUTION argues that was to mask a drop in the value of one of his other properties."]
EVIDENCE = ["No apartment in New York City has ever sold for close to that amount, James said.",
            "The prosecution argues that was to mask a drop in the value of one of his other properties.",
            "A sentence that no chunk holds."]


def test_evidence_is_a_case_and_space_insensitive_substring():
    assert evidence_recall(CHUNKS, EVIDENCE) == pytest.approx(2 / 3)
    assert evidence_hit_at_k(CHUNKS, EVIDENCE, 1) == 1.0
    assert evidence_hit_at_k(CHUNKS[1:], EVIDENCE, 1) == 0.0
    assert evidence_hit_at_k(CHUNKS[1:], EVIDENCE, 2) == 1.0


def test_evidence_split_across_two_chunks_does_not_count():
    halves = ["No apartment in New York City has ever", "sold for close to that amount, James said."]
    assert evidence_recall(halves, EVIDENCE[:1]) == 0.0


def test_context_doc_recall():
    assert context_doc_recall(["d1", "d1", "d4"], ["d1", "d2"]) == 0.5
    assert context_doc_recall([], ["d1"]) == 0.0


# -- one question --------------------------------------------------------------------------


def _q(**kw):
    base = dict(id="q", question="?", answers=["Jin Li"], doc_ids=["d1"], answerable=True, lang="en",
                type="factoid", evidence=[])
    base.update(kw)
    return Question(**base)


def _o(**kw):
    base = dict(ranked_doc_ids=["d2", "d1", "d1"], ranked_texts=["b", "Jin Li leads hybrid cloud.", "c"],
                source_doc_ids=["d2"], source_texts=["b"])
    base.update(kw)
    return Outcome(**base)


def test_score_question_retrieval_only_has_no_answer_scores():
    scores = score_question(_q(), _o())
    assert scores == {"hit@1": 0.0, "hit@5": 1.0, "hit@10": 1.0, "recall@10": 1.0, "mrr@10": 0.5,
                      "ndcg@10": pytest.approx(1 / math.log2(3)), "context_doc_recall": 0.0}


def test_score_question_with_evidence():
    scores = score_question(_q(evidence=["jin li leads  hybrid cloud."]), _o())
    assert scores["evidence_hit@1"] == 0.0
    assert scores["evidence_hit@5"] == 1.0
    assert scores["context_evidence_recall"] == 0.0


def test_score_question_answer_with_citation_markers_and_a_gold_citation():
    scores = score_question(_q(), _o(answer="Jin Li [2].", cited_doc_ids=["d1"]))
    assert (scores["em"], scores["f1"], scores["contains"], scores["citation_accuracy"]) == (1.0, 1.0, 1.0, 1.0)


def test_score_question_citation_of_another_document_is_wrong():
    scores = score_question(_q(), _o(answer="Jin Li [1].", cited_doc_ids=["d2"]))
    assert scores["citation_accuracy"] == 0.0
    assert score_question(_q(), _o(answer="Jin Li."))["citation_accuracy"] == 0.0


def test_score_question_refusal_on_answerable_scores_zero_and_has_no_citation_score():
    scores = score_question(_q(), _o(answer="I don't know: the articles do not say.", refused=True))
    assert (scores["em"], scores["f1"], scores["contains"]) == (0.0, 0.0, 0.0)
    assert "citation_accuracy" not in scores


def test_score_question_unanswerable_has_no_retrieval_or_answer_scores():
    q = _q(answers=[], doc_ids=[], answerable=False, type="unanswerable")
    assert score_question(q, _o(answer="Jin Li.")) == {}


# -- a run ---------------------------------------------------------------------------------


def test_percentile_interpolates_linearly():
    assert percentile([40, 10, 30, 20], 50) == 25.0
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)  # 30 + 0.85 * 10
    assert percentile([10, 20, 30, 40], 0) == 10
    assert percentile([10, 20, 30, 40], 100) == 40
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_refusal_scores_by_hand():
    # unanswerable = positive: TP = 2 (items 3, 4), refused = 3, unanswerable = 3
    s = refusal_scores([True, True, False, False, False], [True, False, True, True, False])
    assert s == {"refusal_precision": pytest.approx(2 / 3), "refusal_recall": pytest.approx(2 / 3),
                 "refusal_f1": pytest.approx(2 / 3), "refusal_rate": 0.6}


def test_refusal_scores_edge_cases():
    never = refusal_scores([True, False], [False, False])
    assert never["refusal_precision"] is None and never["refusal_recall"] == 0.0 and never["refusal_f1"] is None
    no_unanswerable = refusal_scores([True, True], [True, False])
    assert no_unanswerable["refusal_precision"] == 0.0 and no_unanswerable["refusal_recall"] is None
    all_wrong = refusal_scores([True, False], [True, False])
    assert all_wrong["refusal_f1"] == 0.0
    assert refusal_scores([], [])["refusal_rate"] is None


def _r(id, lang, answerable=True, scores=None, refused=None, answer=None, error=None, total=100.0, ttft=None,
       ctx=1000, tin=0, tout=0):
    return QuestionResult(id=id, question="?", lang=lang, type="t" if answerable else "unanswerable",
                          answerable=answerable, answer=answer, refused=refused, scores=scores or {},
                          retrieval_ms=total / 10, total_ms=total, ttft_ms=ttft, context_tokens=ctx,
                          tokens_in=tin, tokens_out=tout, error=error)


def test_aggregate_excludes_questions_without_gold_and_failed_ones():
    results = [
        _r("a", "en", scores={"hit@1": 1.0, "mrr@10": 1.0}, total=100, ctx=1000),
        _r("b", "id", scores={"hit@1": 0.0, "mrr@10": 0.5}, total=300, ctx=2000),
        _r("c", "id", answerable=False, total=200, ctx=1500),
        _r("d", "en", error="LLMError: boom", total=9999),
    ]
    m = aggregate(results, answers=False)
    assert (m["n"], m["n_errors"], m["n_retrieval"], m["n_answerable"], m["n_unanswerable"]) == (3, 1, 2, 2, 1)
    assert m["hit@1"] == 0.5 and m["mrr@10"] == 0.75
    assert m["hit@10"] is None and m["evidence_hit@10"] is None
    assert m["latency_ms_p50"] == 200 and m["context_tokens_p50"] == 1500
    assert "em" not in m and "refusal_f1" not in m and "ttft_ms_p50" not in m


def test_aggregate_full_answers_adds_answer_refusal_and_cost_keys():
    results = [
        _r("a", "en", scores={"em": 1.0, "f1": 1.0}, refused=False, answer="x", ttft=50, tin=100, tout=10),
        _r("b", "en", scores={"em": 0.0, "f1": 0.5}, refused=True, answer="no", ttft=70, tin=300, tout=30),
        _r("c", "en", answerable=False, refused=True, answer="no", ttft=60, tin=200, tout=20),
    ]
    m = aggregate(results, answers=True)
    assert m["em"] == 0.5 and m["f1"] == 0.75
    # refused b (answerable) and c (unanswerable): precision 1/2, recall 1/1, F1 = 2/3
    assert m["refusal_precision"] == 0.5 and m["refusal_recall"] == 1.0
    assert m["refusal_f1"] == pytest.approx(2 / 3)
    assert m["ttft_ms_p50"] == 60
    assert m["tokens_in_mean"] == 200 and m["tokens_out_total"] == 60


def test_summarize_groups_by_language_and_type():
    results = [_r("a", "en", scores={"hit@1": 1.0}), _r("b", "id", scores={"hit@1": 0.0}),
               _r("c", "id", answerable=False)]
    s = summarize(results, answers=False)
    assert set(s) == {"overall", "by_lang", "by_type"}
    assert s["by_lang"]["en"]["hit@1"] == 1.0 and s["by_lang"]["id"]["hit@1"] == 0.0
    assert s["by_type"]["unanswerable"]["n"] == 1 and s["by_type"]["unanswerable"]["hit@1"] is None
    assert s["overall"]["hit@1"] == 0.5


def test_refusal_curve_replays_both_refusal_gates():
    def q(id, answerable, gold, model, grounding, coverage=1.0):
        return QuestionResult(id=id, question="?", lang="id", type="", answerable=answerable, gold_answers=gold,
                              model_answer=model, grounding=grounding, coverage=coverage,
                              refused=grounding < 0.5)
    results = [q("a", True, ["Jin Li"], "Jin Li [1]", 1.0),
               q("b", True, ["Eddie Wu"], "Bob", 0.0),
               q("c", False, [], "Something else", 0.3),
               q("d", False, [], "I don't know: the articles do not say.", 0.0),
               q("e", False, [], "Kota Vatikan [1]", 1.0, coverage=0.5)]
    curve = {(p["min_grounding"], p["min_coverage"]): p
             for p in refusal_curve(results, (0.0, 0.6, 1.0), groundings=(0.0, 0.5))}
    # no gate: only the model's own refusal (d): precision 1, recall 1/3
    assert curve[0.0, 0.0]["refusal_precision"] == 1.0 and curve[0.0, 0.0]["refusal_recall"] == pytest.approx(1 / 3)
    assert curve[0.0, 0.0]["answer_f1"] == 0.5
    # grounding 0.5: b, c, d refused: precision 2/3, recall 2/3; a still answers (F1 1), b now 0
    assert curve[0.5, 0.0]["refusal_f1"] == pytest.approx(2 / 3) and curve[0.5, 0.0]["answer_f1"] == 0.5
    # and coverage 0.6 catches e, the fluent answer about what the question did not ask
    assert curve[0.5, 0.6]["refusal_recall"] == 1.0 and curve[0.5, 0.6]["refusal_f1"] == pytest.approx(6 / 7)
    assert curve[0.5, 0.6]["answer_f1"] == 0.5
    assert curve[0.0, 1.0]["refusal_rate"] == pytest.approx(2 / 5)
    # a run recorded before coverage existed replays as fully covered
    old = [QuestionResult(id="f", question="?", lang="id", type="", answerable=False, model_answer="X",
                          grounding=1.0)]
    assert refusal_curve(old, (1.0,), groundings=(0.0,))[0]["refusal_rate"] == 0.0
    assert refusal_curve([QuestionResult(id="x", question="?", lang="en", type="", answerable=True)]) == []
