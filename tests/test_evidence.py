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
