"""Declining ungrounded answers, and retrieval from the publications a question names.

The model's reply is fixed at the network boundary (an ``httpx.MockTransport`` behind a
real ``openai`` client); the store, the lexical index and the assistant are real.
"""

from __future__ import annotations

import json
import re

import pytest

from ingest.pipeline import ingest_documents
from rag.answer import refusal_text
from rag.answer.refusal import coverage, grounding, judged_sources, term_weights
from rag.assistant import Assistant
from rag.search import hybrid_search, mentioned_publications
from rag.settings import Settings
from rag.text import question_terms
from rag.types import Chunk, Document, Hit
from tests.test_llm_errors import chat, event, sse

ALIBABA = ("Alibaba reshuffled its cloud unit. Jin Li will lead hybrid cloud and Weiguang Liu public cloud, "
           "both reporting to Eddie Wu.")


def hit(text: str) -> Hit:
    return Hit(Chunk(id="c", doc_id="d", text=text, position=0, start=0, end=len(text)), 1.0)


def test_grounding_counts_only_the_words_the_answer_adds_to_the_question():
    sources = [hit(ALIBABA)]
    assert grounding("Jin Li leads hybrid cloud. [1]", "who leads hybrid cloud?", sources) == 1.0
    assert grounding("Argentina won the final. [1]", "who won the World Cup final?", sources) == 0.0
    # three new words: "jin" and "li" are in the source, "argentina" is not
    assert grounding("Jin Li and Argentina.", "who?", sources) == pytest.approx(2 / 3)
    assert grounding("The World Cup final.", "who won the World Cup final?", sources) == 1.0
    # Indonesian stems: "memimpin" in the answer, "pimpin" forms in the source
    assert grounding("Jin Li memimpin.", "siapa?", [hit("Jin Li dipimpin oleh dia.")]) == 1.0


def kabar_replying(reply: str, settings: Settings, hash_embedder) -> Assistant:
    llm = chat(lambda request: sse([event(reply), event(usage={"prompt_tokens": 9, "completion_tokens": 5,
                                                               "total_tokens": 14})]))
    kabar = Assistant(settings, embedder=hash_embedder, llm=llm)
    ingest_documents([Document(id="ali", title="Alibaba cloud", text=ALIBABA, source="Kompas")], kabar.store,
                     hash_embedder)
    return kabar


def test_an_answer_from_the_models_memory_is_declined_and_says_why(settings, hash_embedder):
    answer = kabar_replying("Argentina won the 2022 final. [1]", settings, hash_embedder).ask(
        "Who won the 2022 World Cup final?")
    assert answer.refused and answer.text == refusal_text("en") and not answer.citations
    assert answer.grounding == 0.0
    assert any("declined" in f and "Argentina" in f for f in answer.flags), answer.flags


def test_a_grounded_answer_is_kept(settings, hash_embedder):
    answer = kabar_replying("Jin Li leads hybrid cloud. [1]", settings, hash_embedder).ask("who leads hybrid cloud?")
    assert not answer.refused and answer.text == "Jin Li leads hybrid cloud. [1]" and answer.grounding == 1.0


def test_the_threshold_is_a_setting(settings, hash_embedder):
    lenient = settings.with_(min_grounding=0.0, min_coverage=0.0)
    answer = kabar_replying("Argentina won. [1]", lenient, hash_embedder).ask("Who won the 2022 World Cup final?")
    assert not answer.refused and "Argentina" in answer.text


VATICAN = ("Vatikan adalah negara terkecil di dunia, baik luas wilayah maupun jumlah penduduknya. "
           "Kota Vatikan terletak di tengah kota Roma.")


def id_hit(text: str) -> Hit:
    return Hit(Chunk(id="v", doc_id="v", text=text, position=0, start=0, end=len(text), lang="id"), 1.0)


def test_coverage_is_the_share_of_the_question_found_in_the_passage():
    vatican = [id_hit(VATICAN)]
    assert coverage("Apa nama negara terkecil di dunia?", vatican) == 1.0  # "nama" only shapes the question
    # the passage is about the smallest country, not the smallest shark: "jenis" and "hiu" are missing
    assert coverage("Apakah jenis hiu terkecil di dunia?", vatican) == pytest.approx(2 / 4)
    # across languages even names change ("Vatican", "Vatikan"): not compared
    assert coverage("Is the Vatican smaller than Monaco?", vatican) == 1.0
    assert coverage("anything?", []) == 0.0


def test_a_long_question_needs_only_its_part_in_the_cited_article():
    """A question spread over several articles counts as eight terms: the cited one must hold five."""
    sources = [hit(ALIBABA)]
    two_articles = ("Which executive will lead hybrid cloud after Alibaba's reshuffle, according to Reuters, "
                    "while Tencent's founder hired bankers in Singapore?")
    assert len(question_terms(two_articles)) == 14
    assert coverage(two_articles, sources) == pytest.approx(5 / 8)  # lead, hybrid, cloud, alibaba, reshuffle
    elsewhere = ("Which executive will lead the quantum lab after Tencent's reshuffle, according to Reuters, "
                 "while its founder hired bankers in Singapore?")
    assert coverage(elsewhere, sources) == pytest.approx(2 / 8)  # lead, reshuffle
    # a question of up to eight terms counts them all
    assert coverage("Who will lead Alibaba's hybrid cloud unit after the reshuffle?", sources) == pytest.approx(6 / 7)


def test_a_missing_rare_term_weighs_more_than_a_missing_common_one():
    """Weighed by IDF, the gate hears a question changed to ask about a name no article holds."""
    sources = [hit(ALIBABA)]
    question = "Who leads Alibaba's hybrid cloud in Zorblatistan?"  # leads, alibaba, hybrid, cloud, zorblatistan
    assert coverage(question, sources) == pytest.approx(4 / 5)  # unweighted: kept at 0.6
    # a collection of 1,000 chunks: the article's words are common, the made-up place in none
    counts = {"leads": 300, "lead": 300, "alibaba": 200, "hybrid": 100, "cloud": 250}
    weights = term_weights(question, counts, 1000)
    assert set(weights) == {"leads", "alibaba", "hybrid", "cloud", "zorblatistan"}
    assert weights["zorblatistan"] > 2.5 * max(w for t, w in weights.items() if t != "zorblatistan")
    assert coverage(question, sources, weights) < 0.6  # declined at the default
    # a common word missing costs less than a rare one would: "announced" is in a third of the chunks
    common = "Who leads Alibaba's hybrid cloud, as announced?"
    weights = term_weights(common, {**counts, "announced": 330, "announc": 330}, 1000)
    assert coverage(common, sources) == pytest.approx(4 / 5)
    assert coverage(common, sources, weights) > 4 / 5
    # equal weights are the unweighted gate; no index to ask gives no weights
    assert coverage(question, sources, dict.fromkeys(question_terms(question), 2.0)) == pytest.approx(4 / 5)
    assert term_weights(question, {}, 0) is None


def test_the_assistant_weighs_question_terms_by_their_rarity_in_the_collection(settings, hash_embedder):
    kabar = kabar_replying("Jin Li. [1]", settings, hash_embedder)
    news = [Document(id=f"n{i}", title=f"Cloud news {i}", source="Kompas",
                     text=f"Alibaba leads cloud market number {i}; its hybrid cloud grew.") for i in range(8)]
    ingest_documents(news, kabar.store, hash_embedder)
    weights = kabar.term_weights("Who leads Alibaba's hybrid cloud in Zorblatistan?")
    assert weights["zorblatistan"] > 2.5 * weights["cloud"]
    answer = kabar.ask("Who leads Alibaba's hybrid cloud in Zorblatistan?")
    assert answer.refused and answer.coverage < settings.min_coverage, answer.flags
    assert any("question's terms" in f for f in answer.flags), answer.flags
    kept = kabar.ask("Who leads Alibaba's hybrid cloud?")
    assert not kept.refused and kept.text.startswith("Jin Li.") and kept.citations


def test_coverage_accepts_spelling_variants_and_diacritics_but_not_other_words():
    bastille = [id_hit("Hari Bastille dirayakan di Perancis setiap 14 Juli. Manga shōnen ditujukan bagi remaja.")]
    # "Prancis" is spelled "Perancis" in the passage, "Shonen" carries a macron there
    assert coverage("Kapan hari Bastille dirayakan di Prancis?", bastille) == 1.0
    assert coverage("Apa itu manga Shonen?", bastille) == 1.0
    # a different word is still missing, however close in meaning or length
    assert coverage("Kapan hari Bastille ditutup di Prancis?", bastille) == pytest.approx(3 / 4)
    assert coverage("Kapan hari Bastille dirayakan di Pranciscus?", bastille) == pytest.approx(3 / 4)


def test_the_kind_of_thing_asked_for_is_not_a_term_the_passage_must_contain():
    assert question_terms("Negara apakah yang dituju Maria Sharapova?") == ["dituju", "maria", "sharapova"]
    assert question_terms("Di provinsi manakah Taman Nasional Lore Lindu terletak?") == [
        "taman", "nasional", "lore", "lindu", "terletak"]
    assert question_terms("Which country won the 2022 final?") == ["won", "2022", "final"]
    # "how long", "what does it stand for", "where is it located" shape the question
    assert question_terms("Berapa lama bumi mengitari matahari?") == ["bumi", "mengitari", "matahari"]
    assert question_terms("Apakah kepanjangan dari KKI?") == ["kki"]
    assert question_terms("Dimana lokasi Sony Entertainment Television?") == ["sony", "entertainment", "television"]
    assert question_terms("Apa bahasa yang paling lama dituturkan?") == ["bahasa", "paling", "lama", "dituturkan"]


def test_a_fluent_answer_about_what_the_question_did_not_ask_is_declined(settings, hash_embedder):
    kabar = kabar_replying("Weiguang Liu. [1]", settings, hash_embedder)
    answer = kabar.ask("Who leads Alibaba's quantum computing lab?")
    assert answer.refused and answer.text == refusal_text("en") and answer.coverage < settings.min_coverage
    assert any("question's terms" in f and "Weiguang Liu" in f for f in answer.flags), answer.flags
    kept = kabar.ask("Who leads Alibaba's public cloud?")
    assert not kept.refused and kept.coverage == 1.0 and kept.text == "Weiguang Liu. [1]"


def test_the_gates_judge_the_cited_articles():
    def part(doc_id: str, position: int) -> Hit:
        return Hit(Chunk(id=f"{doc_id}{position}", doc_id=doc_id, text="x", position=position, start=0, end=1), 1.0)

    first, third, other = part("a", 0), part("a", 2), part("b", 0)
    sources = [first, other, third]
    # citing the article's third chunk brings its first (where the subject is named)
    assert judged_sources(sources, [3]) == [first, third]
    assert judged_sources(sources, [2]) == [other]
    assert judged_sources(sources, []) == sources  # no citation: everything
    assert judged_sources(sources, [9]) == sources  # a number naming no source counts as none


def test_the_gates_judge_the_cited_passage_not_every_source(settings, hash_embedder):
    """A term the question needs that only an uncited source holds does not make the answer covered."""
    def reply(request) -> object:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        n = re.search(r'<source n="(\d+)">\nTitle: Alibaba cloud', prompt).group(1)
        return sse([event(f"Weiguang Liu. [{n}]")])

    kabar = Assistant(settings, embedder=hash_embedder, llm=chat(reply))
    ingest_documents([Document(id="ali", title="Alibaba cloud", text=ALIBABA, source="Kompas"),
                      Document(id="lab", title="Quantum lab", source="Kompas",
                               text="Alibaba's quantum computing lab in Hangzhou opened a new building.")],
                     kabar.store, hash_embedder)
    answer = kabar.ask("Who leads Alibaba's quantum computing lab?")
    assert {h.chunk.doc_id for h in answer.sources} == {"ali", "lab"}  # both passages were given
    assert answer.refused and answer.coverage < settings.min_coverage, answer.flags
    kept = kabar.ask("Who leads Alibaba's public cloud?")
    assert not kept.refused and kept.coverage == 1.0


# -- publications ------------------------------------------------------------------------


def test_publications_are_named_without_their_section_and_paths_are_not_publications(store, hash_embedder):
    docs = [Document(id="a", title="a", text="One.", source="The Independent - Sports"),
            Document(id="b", title="b", text="Two.", source="The Independent - Travel"),
            Document(id="c", title="c", text="Three.", source="TechCrunch"),
            Document(id="d", title="d", text="Four.", source="/home/ana/notes/four.txt")]
    ingest_documents(docs, store, hash_embedder)
    pubs = store.publications()
    assert pubs == {"The Independent": ["The Independent - Sports", "The Independent - Travel"],
                    "TechCrunch": ["TechCrunch"]}
    assert mentioned_publications("What did TechCrunch say?", pubs) == [["TechCrunch"]]
    assert mentioned_publications("what did techcrunchy say?", pubs) == []


def test_a_question_naming_two_outlets_retrieves_from_both(store, hash_embedder):
    planet = [Document(id=f"p{i}", title=f"Planet {i}", source="Daily Planet",
                       text=f"The rocket launch was delayed by storms over the coast, report {i}. "
                            "Rocket launch crews waited as storms delayed the launch.") for i in range(12)]
    bugle = Document(id="bugle", title="Bugle", source="The Bugle",
                     text="Engineers blamed a faulty valve; weather was not the main problem.")
    ingest_documents([*planet, bugle], store, hash_embedder)
    question = "Did the Daily Planet and The Bugle agree on why the rocket launch was delayed?"
    top = [h.chunk.doc_id for h in hybrid_search(store, hash_embedder, question, 8).hits]
    assert "bugle" in top
    unnamed = question.replace("The Bugle", "a rival")
    assert "bugle" not in [h.chunk.doc_id for h in hybrid_search(store, hash_embedder, unnamed, 8).hits]


def test_kabar_ask_shows_that_an_ungrounded_answer_was_declined(tmp_path, monkeypatch, capsys):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from ui.main import main

    class FakeLLM(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server name
            self.rfile.read(int(self.headers["Content-Length"]))
            body = "".join(f"data: {json.dumps(e)}\n\n" for e in [event("Argentina won the 2022 final. [1]")])
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write((body + "data: [DONE]\n\n").encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
        monkeypatch.setenv("KABAR_LLM_MODEL", "fake")
        article = tmp_path / "alibaba.txt"
        article.write_text("Alibaba cloud reshuffle\n\n" + ALIBABA, encoding="utf-8")
        assert main(["ingest", str(article)]) == 0
        capsys.readouterr()
        assert main(["ask", "Who won the 2022 World Cup final?"]) == 0
        out = capsys.readouterr().out
    finally:
        server.shutdown()
    answer = out.split("\n\n", 1)[1]  # after the articles it read
    assert answer.startswith("Argentina won")  # what streamed in...
    final = answer.split("Cited:")[0].rstrip()
    assert "note: declined" in final and final.endswith(refusal_text("en"))  # ...and Kabar's final word


def scored(piece: str, logprob: float) -> dict:
    e = event(piece)
    e["choices"][0]["logprobs"] = {"content": [{"token": piece, "logprob": logprob, "bytes": None,
                                                "top_logprobs": []}]}
    return e


def kabar_scoring(pieces: list[tuple[str, float]], settings: Settings, hash_embedder) -> tuple[Assistant, list]:
    asked: list[dict] = []

    def reply(request):
        asked.append(json.loads(request.content))
        return sse([scored(p, lp) for p, lp in pieces] + [event(usage={"prompt_tokens": 9, "completion_tokens": 4,
                                                                      "total_tokens": 13})])
    kabar = Assistant(settings, embedder=hash_embedder, llm=chat(reply))
    ingest_documents([Document(id="ali", title="Alibaba cloud", text=ALIBABA, source="Kompas")], kabar.store,
                     hash_embedder)
    return kabar, asked


def test_an_answer_the_model_wrote_unsure_is_declined_below_the_confidence_setting(settings, hash_embedder):
    unsure = [("Jin", -1.2), (" Li", -0.9), (" ", -0.01), ("[1]", -0.001)]  # the citation marker does not count
    kabar, asked = kabar_scoring(unsure, settings.with_(min_confidence=0.5), hash_embedder)
    answer = kabar.ask("who leads hybrid cloud?")
    assert asked[0]["logprobs"] is True and asked[0]["top_logprobs"] == 1
    assert answer.confidence == pytest.approx(2.718281828 ** -1.05, rel=1e-6)
    assert answer.refused and any("confidence" in f for f in answer.flags), answer.flags
    sure = [("Jin", -0.05), (" Li", -0.01), (" [1]", -0.3)]
    kept = kabar_scoring(sure, settings.with_(min_confidence=0.5), hash_embedder)[0].ask("who leads hybrid cloud?")
    assert not kept.refused and kept.confidence == pytest.approx(2.718281828 ** -0.03, rel=1e-6)


def test_confidence_is_not_asked_for_when_the_setting_is_off(settings, hash_embedder):
    kabar, asked = kabar_scoring([("Jin", -3.0), (" Li [1]", -3.0)], settings.with_(min_confidence=0.0), hash_embedder)
    answer = kabar.ask("who leads hybrid cloud?")
    assert "logprobs" not in asked[0] and answer.confidence is None and not answer.refused


def test_a_server_that_refuses_log_probabilities_still_answers_and_is_not_asked_again(settings, hash_embedder):
    import httpx

    asked: list[dict] = []

    def reply(request):
        body = json.loads(request.content)
        asked.append(body)
        if body.get("logprobs"):
            return httpx.Response(400, json={"error": {"message": "logprobs is not supported with this model"}})
        return sse([event("Jin Li"), event(" [1]"), event(usage={"prompt_tokens": 9, "completion_tokens": 2,
                                                                  "total_tokens": 11})])
    kabar = Assistant(settings.with_(min_confidence=0.5), embedder=hash_embedder, llm=chat(reply))
    ingest_documents([Document(id="ali", title="Alibaba cloud", text=ALIBABA, source="Kompas")], kabar.store,
                     hash_embedder)
    first = kabar.ask("who leads hybrid cloud?")
    second = kabar.ask("who leads hybrid cloud?")
    assert [bool(a.get("logprobs")) for a in asked] == [True, False, False]
    assert "Jin Li" in first.text and "Jin Li" in second.text
    assert first.confidence is None and not first.refused  # nothing to judge by: the gate does not apply


def test_the_articles_own_date_grounds_an_answer_that_names_it():
    text = "Rajawali Digital menunjuk Dimas Prasetyo sebagai CEO baru RajaPay."
    dated = Hit(Chunk(id="c", doc_id="d", text=text, position=0, start=0, end=len(text),
                      published="2023-12-04T09:30:00+07:00"), 1.0)
    answer = "Dimas Prasetyo, pada 4 Desember 2023 [1]"
    assert grounding(answer, "Siapa CEO baru RajaPay?", [dated]) == 1.0
    assert grounding(answer, "Siapa CEO baru RajaPay?", [hit(text)]) < 1.0  # no date: "4 Desember" is new
    wrong_day = "Dimas Prasetyo, pada 9 Maret 2021 [1]"
    assert grounding(wrong_day, "Siapa CEO baru RajaPay?", [dated]) < 1.0
