"""Kabar's reader with its shipped weights, alone and in the answer path.

The reader and the e5 engine under it are real; the answer-path pieces are also checked on
hand-made findings, so what they do does not hang on the weights' quality.
"""

from __future__ import annotations

import json
import shutil

import pytest

from rag.answer.evidence import (
    Evidence,
    Findings,
    check_answer,
    evidence_excerpts,
    find_evidence,
    sentence_bounds,
    split_sentences,
)
from rag.models.reader import WEIGHTS, ReaderWeightsError, load_reader
from rag.types import Chunk, Hit
from tests.conftest import ALIBABA

ARTICLE = ALIBABA.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def reader(e5):
    return load_reader(e5.numpy_model())


def _hit(text: str, n: int = 0, lang: str = "id") -> Hit:
    chunk = Chunk(id=f"c{n}", doc_id=f"d{n}", text=text, title="", source="s", position=0, start=0, end=len(text),
                  lang=lang)
    return Hit(chunk, 1.0)


def test_damaged_shipped_weights_are_refused_naming_the_file(tmp_path, e5):
    damaged = tmp_path / "reader.npz"
    raw = bytearray(WEIGHTS.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    shutil.copy(WEIGHTS.with_suffix(".json"), tmp_path / "reader.json")
    with pytest.raises(ReaderWeightsError, match="reader.npz.*damaged"):
        load_reader(e5.numpy_model(), damaged)


def test_the_shipped_manifest_matches_the_weights():
    manifest = json.loads(WEIGHTS.with_suffix(".json").read_text(encoding="utf-8"))
    assert manifest["frozen_layers"] + manifest["trained_layers"] == 12
    assert WEIGHTS.stat().st_size < 25 * 2**20


def _findings(*spans: tuple[int, str, float], text: str) -> Findings:
    evidence = []
    for n, span, margin in spans:
        start = text.index(span)
        s, e = sentence_bounds(text, start, start + len(span))
        evidence.append(Evidence(n, start, start + len(span), span, s, e, margin))
    return Findings(evidence, max(m for _, _, m in spans))


def test_check_answer_keeps_an_answer_that_says_the_span():
    text = "Jin Li memimpin hybrid cloud. Eddie Wu adalah CEO."
    found = _findings((1, "Jin Li", 8.0), text=text)
    assert check_answer("Unit itu dipimpin Jin Li [1].", [1], found, 4.0, True).flag == ""


def test_check_answer_leaves_an_unsure_reader_alone_and_flags_across_languages():
    text = "Jin Li memimpin hybrid cloud."
    found = _findings((1, "Jin Li", 2.0), text=text)
    assert check_answer("Eddie Wu [1]", [1], found, 4.0, True).text == "Eddie Wu [1]"
    sure = _findings((1, "Jin Li", 8.0), text=text)
    across = check_answer("Eddie Wu [1]", [1], sure, 4.0, same_language=False)
    assert across.text == "Eddie Wu [1]" and "Jin Li" in across.flag


def test_split_sentences_waits_for_the_citation_after_a_full_stop():
    assert split_sentences("Jin Li memimpin. ") == ("", "Jin Li memimpin. ")
    assert split_sentences("Jin Li memimpin. [1] Dia") == ("Jin Li memimpin. [1] ", "Dia")
    assert split_sentences("Rp2.5 juta") == ("", "Rp2.5 juta")


def test_evidence_excerpts_keep_the_source_numbers_and_the_sentence():
    text = "Satu kalimat awal. Jin Li memimpin hybrid cloud. Kalimat ketiga. Kalimat keempat. Kalimat kelima."
    sources = [_hit("Tidak relevan sama sekali.", 1), _hit(text, 2)]
    found = _findings((2, "Jin Li", 8.0), text=text)
    shown = evidence_excerpts(sources, found, neighbours=1)
    assert [n for n, _ in shown] == [2]
    excerpt = shown[0][1].chunk.text
    assert "Jin Li memimpin hybrid cloud." in excerpt and "Satu kalimat awal." in excerpt
    assert "Kalimat keempat" not in excerpt


def test_the_sources_panel_quotes_and_marks_the_supporting_sentence():
    from rag.types import Answer, Citation
    from ui.api_json import answer_json
    from ui.render import sources_html

    text = "Kalimat pembuka yang panjang. Jin Li memimpin unit hybrid cloud. Kalimat penutup."
    hit = _hit(text, 1)
    s = text.index("Jin Li memimpin")
    sentence = (s, text.index("cloud.") + len("cloud."))
    cite = Citation(1, "d1", "", "s", text, "c1", span=(s, s + 6), sentence=sentence)
    answer = Answer(question="q", text="Jin Li [1]", citations=[cite], sources=[hit])
    page = sources_html(answer)
    quote = page.split('<blockquote class="kabar-support" data-n="1">', 1)[1].split("</blockquote>", 1)[0]
    assert quote == "Jin Li memimpin unit hybrid cloud."
    marked = page.split('<mark class="kabar-support-mark">', 1)[1].split("</mark>", 1)[0]
    assert marked == "Jin Li memimpin unit hybrid cloud."
    data = answer_json(answer)["citations"][0]
    assert data["supporting_sentence"] == "Jin Li memimpin unit hybrid cloud."
    assert data["span"] == (s, s + 6) or data["span"] == [s, s + 6]


# -- the shipped weights, on the Alibaba article ---------------------------------------------

PARAGRAPHS = [p for p in ARTICLE.split("\n\n") if len(p) > 100]
LEADERS = next(p for p in PARAGRAPHS if "Jin Li" in p)


def test_the_reader_finds_the_span_that_answers(reader):
    reading = reader.read("Siapa yang memimpin unit hybrid cloud?", [LEADERS])[0]
    assert reading.spans[0].text == "Jin Li"
    assert reading.margin > 2.0


def test_the_reader_scores_an_unanswerable_question_as_such(reader):
    # The paragraph names the leaders, not what any of them earns.
    reading = reader.read("Berapa gaji Jin Li per tahun?", [LEADERS])[0]
    assert reading.margin < 0.0


def test_the_reader_answers_an_english_question_from_an_indonesian_passage(reader):
    reading = reader.read("Who leads hybrid cloud?", [LEADERS])[0]
    assert reading.spans[0].text == "Jin Li"
    assert reading.margin > 0.0


def test_find_evidence_reads_each_paragraph_and_keeps_offsets_in_the_source(reader):
    text = "\n\n".join(PARAGRAPHS[:3])
    found = find_evidence(reader, "Siapa yang memimpin unit hybrid cloud?", [_hit(text, 1)])
    best = found.best
    assert best is not None and best.text == "Jin Li"
    assert text[best.start : best.end] == "Jin Li"
    assert "memimpin unit hybrid cloud" in text[best.sentence_start : best.sentence_end]


def test_a_wrong_answer_is_repaired_to_the_readers_span(settings, e5):
    """The LLM (scripted at the network boundary) names the CEO the leader reports to; the
    reader is sure of Jin Li, so the answer streamed and returned is the repaired one."""
    from ingest import ingest
    from rag import Assistant
    from rag.models import OpenAIChat
    from tests.flaky_server import FlakyServer, Step, chunk_event

    wrong = [chunk_event("Unit hybrid cloud dipimpin Eddie Wu [1]."), chunk_event(finish="stop")]
    with FlakyServer([Step(events=wrong)]) as server:
        kabar = Assistant(settings.with_(reader=True, reader_repair=3.0, reader_answer=float("inf")), embedder=e5,
                          llm=OpenAIChat("m", server.base_url, retries=0))
        ingest([ALIBABA], kabar)
        events = list(kabar.stream("Siapa yang memimpin unit hybrid cloud?"))
    answer = events[-1]
    shown = "".join(e for e in events if isinstance(e, str))
    assert "Jin Li" in answer.text and "Eddie Wu" not in answer.text
    assert "Eddie Wu" not in shown and "Jin Li" in shown
    assert any(f.startswith("repaired to the reader's answer 'Jin Li'") for f in answer.flags)
    assert answer.citations and answer.citations[0].title == kabar.documents()[0].title
    assert "Jin Li" in answer.citations[0].supporting_sentence


def test_the_reader_declines_before_the_model_is_asked(settings, e5):
    """An Indonesian question the Indonesian article does not answer: below the reader's
    margin Kabar declines without a request to the LLM (the scripted server would answer)."""
    from ingest import ingest
    from rag import Assistant
    from rag.models import OpenAIChat
    from tests.flaky_server import FlakyServer, Step, chunk_event

    invented = [chunk_event("Gaji Jin Li Rp10 miliar [1]."), chunk_event(finish="stop")]
    with FlakyServer([Step(events=invented)]) as server:
        kabar = Assistant(settings.with_(reader=True, reader_margin=0.0), embedder=e5,
                          llm=OpenAIChat("m", server.base_url, retries=0))
        ingest([ALIBABA], kabar)
        answer = kabar.ask("Berapa gaji tahunan Jin Li?")
        asked = len(server.requests)
    assert answer.refused and "Rp10" not in answer.text and not answer.citations
    assert any("Kabar's reader found no answer" in f for f in answer.flags)
    assert asked == 0


def test_a_sure_reader_answers_an_indonesian_fact_without_the_model(settings, e5):
    """Above ``reader_answer`` the reader's span is the answer, cited, with its supporting
    sentence: no request reaches the LLM (the scripted server would name Eddie Wu)."""
    from ingest import ingest
    from rag import Assistant
    from rag.models import OpenAIChat
    from tests.flaky_server import FlakyServer, Step, chunk_event

    wrong = [chunk_event("Unit hybrid cloud dipimpin Eddie Wu [1]."), chunk_event(finish="stop")]
    with FlakyServer([Step(events=wrong)]) as server:
        kabar = Assistant(settings.with_(reader=True, reader_margin=0.0, reader_answer=4.0), embedder=e5,
                          llm=OpenAIChat("m", server.base_url, retries=0))
        ingest([ALIBABA], kabar)
        events = list(kabar.stream("Siapa yang memimpin unit hybrid cloud?"))
        asked = len(server.requests)
    answer = events[-1]
    assert asked == 0
    assert answer.text == "Jin Li [1]" and not answer.refused
    assert [e for e in events if isinstance(e, str)] == ["Jin Li [1]"]
    assert any(f.startswith("answered by Kabar's reader") for f in answer.flags)
    assert answer.citations[0].title == kabar.documents()[0].title
    assert "memimpin unit hybrid cloud" in answer.citations[0].supporting_sentence
    assert answer.reader_margin is not None and answer.reader_margin >= 4.0


def test_the_reader_does_not_settle_an_english_question(settings, e5):
    """The reader learned Indonesian only: an English question over the Indonesian article goes
    to the model however sure the reader is, and the model's answer is what is given."""
    from ingest import ingest
    from rag import Assistant
    from rag.models import OpenAIChat
    from tests.flaky_server import FlakyServer, Step, chunk_event

    reply = [chunk_event("Jin Li leads the hybrid cloud unit [1]."), chunk_event(finish="stop")]
    with FlakyServer([Step(events=reply)]) as server:
        kabar = Assistant(settings.with_(reader=True, reader_margin=0.0, reader_answer=-100.0), embedder=e5,
                          llm=OpenAIChat("m", server.base_url, retries=0))
        ingest([ALIBABA], kabar)
        answer = kabar.ask("Who leads the hybrid cloud unit?")
        asked = len(server.requests)
    assert asked == 1
    assert answer.text.startswith("Jin Li leads the hybrid cloud unit")
    assert not any("Kabar's reader" in f for f in answer.flags)


def test_a_question_naming_a_day_is_read_without_it(settings, e5, reader):
    """The article says who was appointed, not the day (its dateline and date do): the reader
    reads the question without "pada 4 Desember 2023", which retrieval has already kept to,
    so it does not decline; the model is asked to name the source's date."""
    from datetime import date

    from ingest import ingest
    from rag import Assistant
    from rag.models import OpenAIChat
    from tests.conftest import SAMPLE_ARTICLES as EXAMPLES
    from tests.flaky_server import FlakyServer, Step, chunk_event

    question = "Siapa CEO baru yang ditunjuk pada 4 Desember 2023?"
    paragraph = next(p for p in (EXAMPLES / "rajawali-fintech-reorg-id.txt").read_text(encoding="utf-8")
                     .split("\n\n") if "Dimas Prasetyo" in p)
    assert reader.read(question, [paragraph])[0].margin < 0  # read with its date, it finds no answer
    reply = [chunk_event("Dimas Prasetyo, pada 4 Desember 2023 [1]."), chunk_event(finish="stop")]
    with FlakyServer([Step(events=reply)] * 2) as server:
        kabar = Assistant(settings.with_(reader=True, reader_margin=0.0, reader_answer=4.0), embedder=e5,
                          llm=OpenAIChat("m", server.base_url, retries=0), as_of=date(2024, 1, 15))
        ingest([EXAMPLES / "rajawali-fintech-reorg-id.txt", ALIBABA], kabar)
        answer = kabar.ask(question)
        prompts = [r["body"]["messages"][-1]["content"] for r in server.requests if r["body"]]
    assert not answer.refused, answer.flags
    assert answer.text.startswith("Dimas Prasetyo")
    assert answer.time_window == "articles of 2023-12-04"
    assert answer.reader_margin is not None and answer.reader_margin > 0
    assert prompts and "also say the date of the source" in prompts[-1]


def test_a_request_for_the_news_is_answered_by_the_model_not_declined_as_a_missing_fact(settings, e5, reader):
    """ "Apa kabar terbaru soal pusat data?" asks what the articles report, not for a span: it
    gets the whole source budget, so the reader, which finds no span to answer it, does not
    decline it before the model reads the sources."""
    from datetime import date

    from ingest import ingest
    from rag import Assistant
    from rag.models import OpenAIChat
    from tests.conftest import SAMPLE_ARTICLES as EXAMPLES
    from tests.flaky_server import FlakyServer, Step, chunk_event

    question = "Apa kabar terbaru soal pusat data?"
    reply = [chunk_event("Telkom memisahkan bisnis pusat datanya ke PT Nusantara Data Infra, pada 4 Desember "
                         "2023 [1]."), chunk_event(finish="stop")]
    with FlakyServer([Step(events=reply)] * 2) as server:
        kabar = Assistant(settings.with_(reader=True, reader_margin=0.0, reader_answer=4.0), embedder=e5,
                          llm=OpenAIChat("m", server.base_url, retries=0), as_of=date(2024, 1, 15))
        ingest([EXAMPLES / "telkom-data-center-spinoff-id.txt", ALIBABA], kabar)
        prep = kabar.prepare(question)
        answer = kabar.ask(question)
        asked = len(server.requests)
    assert not prep.one_fact and prep.budget == settings.context_tokens
    assert asked == 1
    assert not answer.refused, answer.flags
    assert "Nusantara Data Infra" in answer.text
    assert [c.number for c in answer.citations] == [1]


def test_an_english_question_the_indonesian_article_does_not_answer_is_declined_by_the_cross_gate(settings, e5):
    """Across languages the reader judges with its own floor (``reader_cross_margin``): an
    English question over the Indonesian article that names no European unit is declined
    before the model is asked; the same question with the cross gate off reaches the model."""
    from ingest import ingest
    from rag import Assistant
    from rag.models import OpenAIChat
    from tests.flaky_server import FlakyServer, Step, chunk_event

    invented = [chunk_event("Jin Li leads Alibaba's cloud unit in Europe [1]."), chunk_event(finish="stop")]
    question = "Who leads Alibaba's cloud unit in Europe?"
    asked = {}
    for floor in (0.0, float("-inf")):
        with FlakyServer([Step(events=invented)]) as server:
            kabar = Assistant(settings.with_(reader=True, reader_cross_margin=floor), embedder=e5,
                              llm=OpenAIChat("m", server.base_url, retries=0))
            ingest([ALIBABA], kabar)
            answer = kabar.ask(question)
            asked[floor] = (len(server.requests), answer)
    declined = asked[0.0][1]
    assert asked[0.0][0] == 0 and declined.refused and "Europe" not in declined.text
    assert any("Kabar's reader found no answer" in f for f in declined.flags)
    assert asked[float("-inf")][0] == 1
