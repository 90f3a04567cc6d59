"""Loading question sets: folder layouts, the sample set, conventions and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.dataset import half, half_of, load_questions, load_set, sample
from rag.errors import InputError
from tests.conftest import ROOT, SAMPLE_QUESTIONS


def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_sample_set_is_the_examples_folder_keyed_by_file_stem():
    s = load_set(ROOT / "examples")
    docs = s.documents()
    assert len(docs) == 14 and len(s.questions) == 24
    ids = {d.id for d in docs}
    assert "alibaba-cloud-reshuffle-id" in ids
    for q in s.questions:
        assert set(q.doc_ids) <= ids, q.id
    langs = {(q.lang, q.answerable) for q in s.questions}
    assert langs == {("en", True), ("en", False), ("id", True), ("id", False)}
    assert len(s.corpus_digest) == 64


def test_corpus_folder(tmp_path: Path):
    _jsonl(tmp_path / "corpus.jsonl", [{"id": "d1", "title": "T", "text": "Body text.", "lang": "en"}])
    _jsonl(tmp_path / "questions.jsonl", [{"id": "q1", "question": "What?", "answers": ["Body"],
                                           "doc_ids": ["d1"], "answerable": True, "lang": "en"}])
    s = load_set(tmp_path)
    assert s.name == tmp_path.name and s.has_corpus
    [doc] = s.documents()
    assert (doc.id, doc.title, doc.text) == ("d1", "T", "Body text.")


def test_digest_changes_with_the_corpus_bytes(tmp_path: Path):
    _jsonl(tmp_path / "questions.jsonl", [{"id": "q1", "question": "What?"}])
    _jsonl(tmp_path / "corpus.jsonl", [{"id": "d1", "text": "one"}])
    first = load_set(tmp_path).corpus_digest
    assert load_set(tmp_path).corpus_digest == first
    _jsonl(tmp_path / "corpus.jsonl", [{"id": "d1", "text": "two"}])
    assert load_set(tmp_path).corpus_digest != first


def test_bare_questions_file_has_no_corpus():
    s = load_set(SAMPLE_QUESTIONS)
    assert not s.has_corpus and s.documents() == [] and len(s.questions) == 24


def test_conventions_unanswerable_has_no_answers_and_type_defaults(tmp_path: Path):
    path = _jsonl(tmp_path / "q.jsonl", [
        {"id": "a", "question": "Q1?", "answers": ["Insufficient information."], "doc_ids": [], "answerable": False},
        {"id": "b", "question": "Siapa yang memimpin divisi itu?", "answers": ["X"], "doc_ids": ["d"]},
        {"id": 3, "question": "Q3?", "answers": ["Y"], "type": "comparison_query", "evidence": ["E."], "lang": "en"},
    ])
    a, b, c = load_questions(path)
    assert (a.answers, a.type, a.answerable) == ([], "unanswerable", False)
    assert (b.type, b.lang, b.answerable) == ("answerable", "id", True)
    assert (c.id, c.type, c.evidence) == ("3", "comparison_query", ["E."])


@pytest.mark.parametrize("line, problem", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"question": "Q?"}', 'no "id"'),
    ('{"id": "x", "question": " "}', 'no "question"'),
    ('{"id": "x", "question": "Q?", "answerable": "yes"}', "must be true or false"),
    ('{"id": "x", "question": "Q?", "answers": "Jin Li"}', "must be a list of strings"),
])
def test_bad_records_name_file_and_line(tmp_path: Path, line: str, problem: str):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "ok", "question": "Fine?"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=problem) as e:
        load_questions(path)
    assert e.value.source == f"{path}:3"


def test_duplicate_ids_and_empty_files_are_errors(tmp_path: Path):
    path = _jsonl(tmp_path / "q.jsonl", [{"id": "a", "question": "Q?"}, {"id": "a", "question": "Q2?"}])
    with pytest.raises(InputError, match="duplicate question id 'a'"):
        load_questions(path)
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no questions"):
        load_questions(tmp_path / "empty.jsonl")


def test_folder_without_questions_or_corpus_says_what_it_needs(tmp_path: Path):
    with pytest.raises(InputError, match="has no questions.jsonl"):
        load_set(tmp_path)
    _jsonl(tmp_path / "questions.jsonl", [{"id": "a", "question": "Q?"}])
    with pytest.raises(InputError, match="has no corpus.jsonl"):
        load_set(tmp_path)
    with pytest.raises(InputError, match="no such folder"):
        load_set(tmp_path / "missing")


def test_sample_is_fixed_ordered_and_seeded():
    questions = load_questions(SAMPLE_QUESTIONS)
    first = sample(questions, 5)
    assert [q.id for q in first] == [q.id for q in sample(questions, 5)]
    positions = [questions.index(q) for q in first]
    assert positions == sorted(positions) and len(set(positions)) == 5
    assert [q.id for q in sample(questions, 5, seed=1)] != [q.id for q in first]
    assert sample(questions, None) == questions and sample(questions, 100) == questions
    with pytest.raises(ValueError, match="limit must be greater than 0"):
        sample(questions, 0)


def test_halves_split_by_the_id_hash_alone():
    # sha256("a") starts with 0xca (even: tune), sha256("b") with 0x3e (even), sha256("x") with 0x2d (odd: check).
    assert [half_of(i) for i in ("a", "b", "x")] == ["tune", "tune", "check"]
    questions = load_questions(SAMPLE_QUESTIONS)
    tune, check = half(questions, "tune"), half(questions, "check")
    assert tune and check and sorted(q.id for q in tune + check) == sorted(q.id for q in questions)
    assert [questions.index(q) for q in tune] == sorted(questions.index(q) for q in tune)
    # A question keeps its half whatever else the file holds.
    assert [q.id for q in half(questions[::-1], "check")] == [q.id for q in check][::-1]
    assert half(questions, None) == questions
    with pytest.raises(ValueError, match="half must be one of tune, check"):
        half(questions, "train")
