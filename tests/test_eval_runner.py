"""The eval runner: the collection cache, runs, Ctrl-C, errors and the judge.

The deterministic hash embedder stands in for e5 and a fake OpenAI-compatible server
(httpx.MockTransport, at the network boundary) for the LLM; everything between them is
the real Assistant, Chroma store and lexical index.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import httpx
import openai
import pytest

from eval.collection import collection_key, collection_name, ensure_collection, marker_path
from eval.dataset import EvalSet, load_set
from eval.judge import Judge, JudgeSettings, parse_grades
from eval.runner import RunOptions, default_workers, run_eval
from rag.errors import ConfigError, InputError, LLMUnavailableError, StoreError
from rag.models import OpenAIChat
from rag.settings import Settings
from tests.conftest import HashEmbedder

CORPUS = [
    {"id": "alpha", "title": "Alpha Cloud", "lang": "en",
     "text": "Jin Li leads hybrid cloud at Alpha. The unit was reorganised in December."},
    {"id": "beta", "title": "Bank Beta", "lang": "id",
     "text": "Bank Beta memiliki anggaran teknologi Rp2,5 triliun untuk tahun 2024."},
    {"id": "gamma", "title": "Gamma Chips", "lang": "en", "text": "Gamma cut chip exports by 40% after new curbs."},
]
QUESTIONS = [
    {"id": "q-en", "question": "Who leads hybrid cloud at Alpha?", "answers": ["Jin Li"], "doc_ids": ["alpha"],
     "answerable": True, "lang": "en", "type": "factoid", "evidence": ["Jin Li leads hybrid cloud at Alpha."]},
    {"id": "q-id", "question": "Berapa anggaran teknologi Bank Beta?", "answers": ["Rp2,5 triliun"],
     "doc_ids": ["beta"], "answerable": True, "lang": "id", "type": "factoid"},
    {"id": "q-un", "question": "Who leads Gamma's cloud unit in Europe?", "answers": [], "doc_ids": [],
     "answerable": False, "lang": "en", "type": "unanswerable"},
    {"id": "q-un-id", "question": "Siapa CEO Bank Beta?", "answers": [], "doc_ids": [], "answerable": False,
     "lang": "id", "type": "unanswerable"},
]
# What the fake LLM says to each question: (text with {n} for the source number of the title, title).
REPLIES = {
    "Who leads hybrid cloud at Alpha?": ("Jin Li [{n}].", "Alpha Cloud"),
    "Berapa anggaran teknologi Bank Beta?": ("Anggarannya Rp2,5 triliun [{n}].", "Bank Beta"),
    "Who leads Gamma's cloud unit in Europe?": ("I don't know: the articles do not say.", None),
    "Siapa CEO Bank Beta?": ("Gamma [{n}].", "Gamma Chips"),
}


class CountingEmbedder(HashEmbedder):
    """The hash embedder, counting the passages it embeds."""

    def __init__(self, model_id: str = "test/hash-embedder") -> None:
        super().__init__()
        self.model_id = model_id
        self.passages = 0

    def embed_batch(self, texts, kind):  # type: ignore[no-untyped-def]
        if kind == "passage":
            self.passages += len(texts)
        return super().embed_batch(texts, kind)


def write_set(folder: Path, corpus: list | None = None, questions: list | None = None) -> EvalSet:
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in (("corpus.jsonl", corpus or CORPUS), ("questions.jsonl", questions or QUESTIONS)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return load_set(folder)


def sse(text: str, prompt_tokens: int = 50) -> httpx.Response:
    """A streamed chat completion, as an OpenAI-compatible server sends it."""
    events = [{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake",
               "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
              for piece in re.findall(r"\S+\s*", text)]
    events.append({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake", "choices": [],
                   "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(events),
                             "total_tokens": prompt_tokens + len(events)}})
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())


def answering(request: httpx.Request) -> httpx.Response:
    """The fake LLM: answers from REPLIES, citing the source whose title it names."""
    prompt = json.loads(request.content)["messages"][-1]["content"]
    question = prompt.split("Question: ", 1)[1].split("\n", 1)[0]
    text, title = REPLIES[question]
    if title:
        m = re.search(r'<source n="(\d+)">\s*Title: ' + re.escape(title), prompt)
        text = text.format(n=m.group(1) if m else 99)
    return sse(text)


def fake_chat(handler: Callable[[httpx.Request], httpx.Response], model: str = "fake",
              base_url: str = "http://llm.test/v1") -> OpenAIChat:
    client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    return OpenAIChat(model, base_url, "test", timeout_s=10, client=client)


# -- the collection cache ----------------------------------------------------------------


def test_collection_is_ingested_once_then_reused(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    first, second = CountingEmbedder(), CountingEmbedder()
    built = ensure_collection(s, settings, first)
    assert not built.reused and first.passages == 3 and built.store.count() == 3
    assert built.settings.collection.startswith("eval-set-")
    assert marker_path(built.settings, built.settings.collection).is_file()
    again = ensure_collection(s, settings, second)
    assert again.reused and second.passages == 0
    assert again.settings.collection == built.settings.collection


def test_chunking_corpus_or_embedding_model_changes_make_a_new_collection(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    base = ensure_collection(s, settings, CountingEmbedder()).settings.collection
    e = CountingEmbedder()
    other = ensure_collection(s, settings.with_(chunk_tokens=120), e)
    assert not other.reused and e.passages == 3 and other.settings.collection != base
    e = CountingEmbedder()
    assert not ensure_collection(s, settings.with_(chunk_overlap=10), e).reused and e.passages == 3
    e = CountingEmbedder("test/another-model")
    assert not ensure_collection(s, settings, e).reused and e.passages == 3
    changed = write_set(tmp_path / "set", corpus=CORPUS[:2])
    e = CountingEmbedder()
    c = ensure_collection(changed, settings, e)
    assert not c.reused and e.passages == 2 and c.settings.collection != base
    # Back to the first corpus and settings: the first collection is found again.
    restored = write_set(tmp_path / "set")
    e = CountingEmbedder()
    assert ensure_collection(restored, settings, e).reused and e.passages == 0


def test_collection_key_covers_each_setting():
    keys = {collection_key("c", 200, 40, "m"), collection_key("c2", 200, 40, "m"),
            collection_key("c", 201, 40, "m"), collection_key("c", 200, 41, "m"), collection_key("c", 200, 40, "m2"),
            collection_key("c", 200, 40, "m", "chunker-v2")}
    assert len(keys) == 6
    assert collection_name("Fac QA/id!", "abc") == "eval-fac-qa-id-abc"


def test_a_change_to_the_chunker_code_makes_a_new_collection(tmp_path: Path, settings: Settings,
                                                            monkeypatch: pytest.MonkeyPatch):
    s = write_set(tmp_path / "set")
    first = ensure_collection(s, settings, CountingEmbedder()).settings.collection
    monkeypatch.setattr("eval.collection.chunker_fingerprint", lambda: "edited chunker")
    e = CountingEmbedder()
    again = ensure_collection(s, settings, e)
    assert not again.reused and e.passages == 3 and again.settings.collection != first


def test_ingestion_without_a_marker_resumes_without_embedding_again(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    built = ensure_collection(s, settings, CountingEmbedder())
    marker_path(built.settings, built.settings.collection).unlink()  # as if interrupted before the marker
    e = CountingEmbedder()
    resumed = ensure_collection(s, settings, e)
    assert not resumed.reused and e.passages == 0 and resumed.store.count() == 3
    assert ensure_collection(s, settings, CountingEmbedder()).reused


def test_rebuild_ingests_again(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    ensure_collection(s, settings, CountingEmbedder())
    e = CountingEmbedder()
    rebuilt = ensure_collection(s, settings, e, rebuild=True)
    assert not rebuilt.reused and e.passages == 3 and rebuilt.store.count() == 3


# -- runs --------------------------------------------------------------------------------


def test_retrieval_only_run_writes_the_run_folder(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    out = tmp_path / "run"
    seen = []
    run = run_eval(s, settings, out, RunOptions(retrieval_only=True), embedder=CountingEmbedder(),
                   on_result=seen.append)
    assert {p.name for p in out.iterdir()} == {"questions.jsonl", "metrics.json", "run.json", "report.md",
                                               "report.html"}
    assert len(seen) == 4
    records = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["q-en", "q-id", "q-un", "q-un-id"]  # file order
    first = records[0]
    assert first["gold"] == {"answers": ["Jin Li"], "doc_ids": ["alpha"],
                             "evidence": ["Jin Li leads hybrid cloud at Alpha."]}
    assert first["answer"] is None and first["hits"] and first["sources"] and first["context_tokens"] > 0
    assert set(first["timings"]) == {"retrieval_ms", "sources_ms", "ttft_ms", "total_ms"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"overall", "by_lang", "by_type"}
    o = metrics["overall"]
    assert (o["n"], o["n_retrieval"], o["n_evidence"]) == (4, 2, 1)
    assert o["hit@10"] == 1.0 and o["recall@10"] == 1.0 and o["evidence_hit@10"] == 1.0
    assert o["context_doc_recall"] == 1.0 and o["context_evidence_recall"] == 1.0
    assert "em" not in o and o["latency_ms_p50"] > 0
    assert set(metrics["by_lang"]) == {"en", "id"} and set(metrics["by_type"]) == {"factoid", "unanswerable"}
    info = json.loads((out / "run.json").read_text())
    assert info["mode"] == "retrieval" and info["finished"] == 4 and not info["interrupted"]
    assert run.info.collection.startswith("eval-set-")
    with pytest.raises(InputError, match="already exists"):
        run_eval(s, settings, out, RunOptions(retrieval_only=True), embedder=CountingEmbedder())


def test_full_answer_run_scores_answers_refusals_and_citations(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    run = run_eval(s, settings, tmp_path / "run", embedder=CountingEmbedder(), llm=fake_chat(answering))
    assert run.info.workers == 4 and run.info.llm == "fake"
    by_id = {r.id: r for r in run.results}
    assert [c.doc_id for c in by_id["q-en"].citations] == ["alpha"]
    assert [c.doc_id for c in by_id["q-id"].citations] == ["beta"]
    assert by_id["q-un"].refused and not by_id["q-un-id"].refused
    o = run.metrics["overall"]
    # em: q-en 1, q-id 0; f1: q-id pred [anggarannya rp2 5 triliun] vs [rp2 5 triliun] = 2*.75*1/1.75
    assert o["em"] == 0.5
    assert o["f1"] == pytest.approx((1 + 2 * 0.75 / 1.75) / 2)
    assert o["contains"] == 1.0 and o["citation_accuracy"] == 1.0
    # refused: q-un only -> precision 1, recall 1/2, F1 2/3
    assert (o["refusal_precision"], o["refusal_recall"]) == (1.0, 0.5)
    assert o["refusal_f1"] == pytest.approx(2 / 3)
    assert o["tokens_in_mean"] == 50 and o["ttft_ms_p50"] > 0
    assert run.metrics["by_lang"]["id"]["refusal_recall"] == 0.0


def test_ctrl_c_keeps_and_reports_what_finished(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    seen = []

    def interrupt_on_second(result):  # type: ignore[no-untyped-def]
        seen.append(result)
        if len(seen) == 2:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    run = run_eval(s, settings, out, RunOptions(workers=1), embedder=CountingEmbedder(), llm=fake_chat(answering),
                   on_result=interrupt_on_second)
    assert run.info.interrupted and 2 <= run.info.finished < 4
    lines = (out / "questions.jsonl").read_text().splitlines()
    assert len(lines) == run.info.finished == run.metrics["overall"]["n"]
    assert json.loads((out / "run.json").read_text())["interrupted"] is True
    assert "interrupted" in (out / "report.md").read_text()


def test_a_failing_answer_is_recorded_and_the_run_goes_on(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    llm = fake_chat(lambda request: httpx.Response(500, json={"error": {"message": "overloaded"}}))
    run = run_eval(s, settings, tmp_path / "run", embedder=CountingEmbedder(), llm=llm)
    assert run.metrics["overall"]["n_errors"] == 4 and run.metrics["overall"]["n"] == 0
    assert all("HTTP 500" in (r.error or "") for r in run.results)


def test_an_unreachable_llm_stops_the_run_but_keeps_the_folder(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    out = tmp_path / "run"
    with pytest.raises(LLMUnavailableError):
        run_eval(s, settings, out, embedder=CountingEmbedder(), llm=fake_chat(refuse))
    info = json.loads((out / "run.json").read_text())
    assert info["fatal_error"].startswith("LLMUnavailableError") and (out / "report.html").is_file()


def test_default_workers(settings: Settings):
    assert 1 <= default_workers(True, settings, None) <= 4
    assert default_workers(False, settings, None) == 1  # the local model
    assert default_workers(False, settings, fake_chat(answering)) == 4
    assert default_workers(False, settings, fake_chat(answering, base_url="http://127.0.0.1:8765/v1")) == 1
    remote = settings.with_(llm_base_url="https://api.example.com/v1")
    assert default_workers(False, remote, None) == 4


def test_limit_runs_a_fixed_sample(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    a = run_eval(s, settings, tmp_path / "a", RunOptions(retrieval_only=True, limit=2), embedder=CountingEmbedder())
    b = run_eval(s, settings, tmp_path / "b", RunOptions(retrieval_only=True, limit=2), embedder=CountingEmbedder())
    assert [r.id for r in a.results] == [r.id for r in b.results] and len(a.results) == 2
    assert a.info.questions_sampled == 2 and a.info.questions_total == 4 and b.info.collection_reused


def test_a_half_runs_its_questions_and_says_so(tmp_path: Path, settings: Settings):
    from eval.dataset import half_of

    s = write_set(tmp_path / "set")
    runs = {h: run_eval(s, settings, tmp_path / h, RunOptions(retrieval_only=True, half=h), embedder=CountingEmbedder())
            for h in ("tune", "check")}
    for h, run in runs.items():
        assert [r.id for r in run.results] == [q.id for q in s.questions if half_of(q.id) == h]
        assert json.loads((tmp_path / h / "run.json").read_text())["half"] == h
    assert sorted(r.id for run in runs.values() for r in run.results) == sorted(q.id for q in s.questions)



# -- the judge ---------------------------------------------------------------------------


def judging(request: httpx.Request) -> httpx.Response:
    prompt = json.loads(request.content)["messages"][0]["content"]
    unanswerable = "\n(none: unanswerable)\n" in prompt
    correct = 0 if unanswerable and "I don't know" not in prompt else 1
    return sse(f'Grade: {{"correct": {correct}, "faithful": 1, "reason": "checked"}}')


def test_judge_grades_go_to_their_own_file(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    judge = Judge(fake_chat(judging, model="judge-model", base_url="http://judge.test/v1"))
    out = tmp_path / "run"
    run = run_eval(s, settings, out, embedder=CountingEmbedder(), llm=fake_chat(answering), judge=judge)
    judged = json.loads((out / "judge.json").read_text())
    assert set(judged) == {"overall", "by_lang", "by_type"}
    # q-un-id answered an unanswerable question: judged wrong; the refusal has no faithfulness grade.
    assert judged["overall"] == {"n_judged": 4, "judge_correct": 0.75, "judge_faithful": 1.0}
    assert "judge_correct" not in run.metrics["overall"]
    assert {r.id: r.judge["faithful"] for r in run.results}["q-un"] is None
    assert run.info.judge_model == "judge-model"
    assert "LLM judge" in (out / "report.md").read_text()


def test_judge_needs_configuration_and_answers():
    with pytest.raises(ConfigError, match="KABAR_JUDGE_BASE_URL"):
        Judge.from_settings(JudgeSettings.from_settings(Settings.from_env({})))
    settings = Settings.from_env({"KABAR_JUDGE_BASE_URL": "http://j/v1", "KABAR_JUDGE_MODEL": "m",
                                  "KABAR_JUDGE_API_KEY": "secret-key"})
    js = JudgeSettings.from_settings(settings)
    assert js.configured and js.model == "m" and "secret-key" not in repr(js) + repr(settings)


def test_judge_with_retrieval_only_is_an_error(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    with pytest.raises(ConfigError, match="--retrieval-only"):
        run_eval(s, settings, tmp_path / "run", RunOptions(retrieval_only=True), embedder=CountingEmbedder(),
                 judge=Judge(fake_chat(judging)))


@pytest.mark.parametrize("reply, expected", [
    ('{"correct": 1, "faithful": 0, "reason": "x"}', (1.0, 0.0)),
    ('Sure! ```json\n{"correct": true, "faithful": "yes"}\n```', (1.0, 1.0)),
    ('{"correct": 0.5, "faithful": 2}', (None, None)),
    ("no idea", (None, None)),
])
def test_parse_grades(reply: str, expected: tuple):
    grades = parse_grades(reply)
    assert (grades["correct"], grades["faithful"]) == expected


def test_an_llm_that_fails_before_the_first_question_leaves_no_run_folder(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    out = tmp_path / "run"
    with pytest.raises(LLMUnavailableError):  # asking the server for its model name fails
        run_eval(s, settings, out, embedder=CountingEmbedder(), llm=fake_chat(refuse, model=""))
    assert not out.exists()


def test_a_questions_file_runs_against_the_current_collection(tmp_path: Path, settings: Settings):
    from ingest.pipeline import ingest_documents
    from rag.store import ChromaStore

    s = write_set(tmp_path / "set")
    embedder = CountingEmbedder()
    ingest_documents(s.documents(), ChromaStore.from_settings(settings, embedder.model_id), embedder)
    run = run_eval(load_set(tmp_path / "set" / "questions.jsonl"), settings, tmp_path / "run",
                   RunOptions(retrieval_only=True), embedder=embedder)
    assert run.info.collection == settings.collection == "kabar"
    assert run.metrics["overall"]["hit@10"] == 1.0
    empty = settings.with_(collection="empty")
    with pytest.raises(StoreError, match="is empty"):
        run_eval(load_set(tmp_path / "set" / "questions.jsonl"), empty, tmp_path / "run2",
                 RunOptions(retrieval_only=True), embedder=embedder)


def test_cli_run_treats_sigterm_like_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    import os
    import signal

    from ui.main import main

    write_set(tmp_path / "set")
    monkeypatch.setattr("eval.runner.make_embedder", lambda settings: CountingEmbedder())

    class TerminatingProgress:
        def __init__(self, total: int, answers: bool, before: list) -> None:
            self.seen = 0

        def __call__(self, result) -> None:  # type: ignore[no-untyped-def]
            self.seen += 1
            if self.seen == 2:
                os.kill(os.getpid(), signal.SIGTERM)

        def close(self) -> None:
            pass

    monkeypatch.setattr("eval.runner.Progress", TerminatingProgress)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "run"
    code = main(["eval", "run", str(tmp_path / "set"), "--retrieval-only", "--workers", "1", "--out", str(out)])
    assert code == 130, capsys.readouterr().err
    info = json.loads((out / "run.json").read_text())
    assert info["interrupted"] and 2 <= info["finished"] < 4
    assert signal.getsignal(signal.SIGTERM) == before


def test_resume_finishes_an_interrupted_run(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    out = tmp_path / "run"
    seen = []

    def interrupt_on_second(result):  # type: ignore[no-untyped-def]
        seen.append(result.id)
        if len(seen) == 2:
            raise KeyboardInterrupt

    first = run_eval(s, settings, out, RunOptions(workers=1), embedder=CountingEmbedder(), llm=fake_chat(answering),
                     on_result=interrupt_on_second)
    done_before = {r.id for r in first.results}
    later = []
    run = run_eval(s, settings, out, RunOptions(resume=True), embedder=CountingEmbedder(), llm=fake_chat(answering),
                   on_result=lambda r: later.append(r.id))
    assert not run.info.interrupted and run.info.resumed == len(done_before) and run.info.finished == 4
    assert set(later) == {"q-en", "q-id", "q-un", "q-un-id"} - done_before
    lines = [json.loads(line)["id"] for line in (out / "questions.jsonl").read_text().splitlines()]
    assert lines == ["q-en", "q-id", "q-un", "q-un-id"]
    assert run.metrics["overall"]["n"] == 4 and run.metrics["overall"]["contains"] == 1.0
    assert run.info.started_at == first.info.started_at


def test_resume_runs_failed_questions_again(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    out = tmp_path / "run"
    failing = fake_chat(lambda request: httpx.Response(500, json={"error": {"message": "overloaded"}}))
    assert run_eval(s, settings, out, embedder=CountingEmbedder(), llm=failing).metrics["overall"]["n_errors"] == 4
    run = run_eval(s, settings, out, RunOptions(resume=True), embedder=CountingEmbedder(), llm=fake_chat(answering))
    assert run.info.resumed == 0 and run.metrics["overall"]["n"] == 4 and run.metrics["overall"]["n_errors"] == 0


def test_resume_refuses_another_mode_or_other_settings(tmp_path: Path, settings: Settings):
    s = write_set(tmp_path / "set")
    out = tmp_path / "run"
    with pytest.raises(InputError, match="holds no questions.jsonl"):
        run_eval(s, settings, out, RunOptions(resume=True), embedder=CountingEmbedder())
    run_eval(s, settings, out, RunOptions(retrieval_only=True), embedder=CountingEmbedder())
    with pytest.raises(InputError, match="resume it in the same mode"):
        run_eval(s, settings, out, RunOptions(resume=True), embedder=CountingEmbedder(), llm=fake_chat(answering))
    with pytest.raises(InputError, match="top_k"):
        run_eval(s, settings.with_(top_k=3), out, RunOptions(retrieval_only=True, resume=True),
                 embedder=CountingEmbedder())
    same = run_eval(s, settings.with_(llm_threads=1), out, RunOptions(retrieval_only=True, resume=True),
                    embedder=CountingEmbedder())
    assert same.info.resumed == 4 and same.info.finished == 4
