"""Fusion of scored signals: standard scores, weights, and what the lexical index can know."""

from __future__ import annotations

import math

import pytest

from rag.search.fusion import Signal, fuse, idf, lexical_weight, standard_scores


def test_standard_scores_and_floor_by_hand():
    z, floor = standard_scores({"a": 1.0, "b": 2.0, "c": 3.0})
    sd = math.sqrt(2 / 3)
    assert z == pytest.approx({"a": -1 / sd, "b": 0.0, "c": 1 / sd})
    assert floor == pytest.approx(-1 / sd)


def test_a_signal_that_cannot_tell_its_candidates_apart_adds_nothing():
    assert standard_scores({"a": 3.0, "b": 3.0}) == ({"a": 0.0, "b": 0.0}, 0.0)
    assert standard_scores({"a": 0.9}) == ({"a": 0.0}, 0.0)
    assert standard_scores({}) == ({}, 0.0)


def test_fuse_by_hand():
    # dense z: a -1.2247, b 0, c 1.2247 (floor -1.2247); lexical z: c 1, d -1 (floor -1), weight 0.5
    fused = fuse([Signal("dense", {"a": 1.0, "b": 2.0, "c": 3.0}), Signal("lexical", {"c": 10.0, "d": 0.0}, 0.5)])
    k = 1 / math.sqrt(2 / 3)
    assert fused == pytest.approx({"a": -k - 0.5, "b": -0.5, "c": k + 0.5, "d": -k - 0.5})


def test_score_gaps_count_where_ranks_would_not():
    # Dense is sure of "a" (a wide gap); BM25 ranks "b" first by a hair. Equal-vote rank fusion
    # would tie them; standard scores keep dense's certainty.
    dense = Signal("dense", {"a": 0.90, "b": 0.80, "c": 0.79, "d": 0.78})
    lexical = Signal("lexical", {"b": 10.1, "a": 10.0, "c": 2.0, "d": 1.0})
    fused = fuse([dense, lexical])
    assert max(fused, key=fused.get) == "a"


def test_a_weight_of_zero_leaves_the_other_signals_alone():
    dense = {"a": 0.9, "b": 0.8}
    assert fuse([Signal("dense", dense), Signal("lexical", {"b": 5.0, "c": 1.0}, 0.0)]) == pytest.approx(
        {"a": 1.0, "b": -1.0, "c": -1.0})


def test_lexical_weight_is_the_idf_share_of_query_terms_the_index_holds():
    # idf(0, 10) = ln(1 + 10.5 / 0.5) = ln 22; idf(5, 10) = ln(1 + 5.5 / 5.5) = ln 2
    assert idf(0, 10) == pytest.approx(math.log(22)) and idf(5, 10) == pytest.approx(math.log(2))
    assert lexical_weight({"x": 0, "y": 5}, 10) == pytest.approx(math.log(2) / (math.log(22) + math.log(2)))
    assert lexical_weight({"x": 3, "y": 5}, 10) == 1.0
    assert lexical_weight({"x": 0}, 10) == 0.0
    assert lexical_weight({}, 10) == 0.0 and lexical_weight({"x": 1}, 0) == 0.0


def test_a_candidate_no_signal_scored_gets_every_signals_floor():
    fused = fuse([Signal("dense", {"a": 1.0, "b": 3.0}), Signal("lexical", {"a": 2.0, "b": 1.0}, 0.5)], ["a", "b", "c"])
    # dense z: a -1, b 1 (floor -1); lexical z: a 1, b -1 (floor -1)
    assert fused == pytest.approx({"a": -0.5, "b": 0.5, "c": -1.5})
