"""Properties and edge cases of the token-aware chunker (ingest.chunk).

The guarantees in ingest/chunk.py's docstring are checked on fixed tricky inputs and on a
few hundred random strings from a mixed alphabet (emoji, Indonesian words, newlines,
punctuation), built deterministically so that a failure reproduces.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from ingest.chunk import chunk_document, chunk_text
from rag.tokens import count_tokens
from rag.types import Document

ROOT = Path(__file__).resolve().parent.parent
ALIBABA = ROOT / "examples" / "articles" / "alibaba-cloud-reshuffle-id.txt"

INDONESIAN = (
    "Alibaba Group merombak susunan manajemen unit komputasi awan (cloud computing) miliknya, tidak lama "
    "setelah raksasa teknologi asal China itu membatalkan rencana penawaran umum perdana saham (IPO). "
    "Dalam struktur yang baru, Weiguang Liu ditunjuk untuk memimpin divisi cloud publik. Sementara itu, "
    "Jin Li dipercaya memimpin unit hybrid cloud! Keduanya akan melapor langsung kepada CEO Alibaba Group, "
    "Eddie Wu… “Perombakan ini penting,” kata analis. Apakah nilai pasar Alibaba tergerus lebih dari "
    "$20 miliar?\n\nKe depan, perusahaan akan memusatkan perhatian pada kecerdasan buatan (AI)."
)

# Pieces for random texts: words in both languages, emoji (several tokens each), CJK,
# URLs and symbol runs, punctuation that ends sentences, and every kind of whitespace.
_WORDS = [
    "yang", "dan", "perusahaan", "memimpin", "komputasi", "awan", "pemerintah", "Rp2,5", "triliun",
    "the", "cloud", "Alibaba", "hybrid", "leads", "investment", "US$300", "juta", "2026",
    "🎉", "😀", "👍🏽", "🇮🇩", "云计算", "阿里巴巴", "https://example.com/a/b?c=d&e=f", "—", "«»",
    "…", ".", "!", "?", ",", ";", "\"", "”", ")", "(", "#", "***", "supercalifragilistic" * 4,
]
_SPACES = [" ", " ", " ", "  ", "\n", "\n\n", "\t", "\u00a0", " \n "]


def _random_text(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(0, 120)):
        parts.append(rng.choice(_WORDS))
        if rng.random() < 0.8:
            parts.append(rng.choice(_SPACES))
    return "".join(parts)


def _cases(n: int = 300, seed: int = 20231205) -> list[tuple[str, int, int]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        max_tokens = rng.choice([4, 5, 8, 13, 20, 40, 80])
        overlap = rng.randint(0, max_tokens - 1)
        cases.append((_random_text(rng), max_tokens, overlap))
    return cases


def check_spans(text: str, spans: list[tuple[int, int]], max_tokens: int, overlap: int) -> None:
    """Assert the chunker's guarantees for one result."""
    where = f"max_tokens={max_tokens} overlap={overlap} text={text[:80]!r}"
    for start, end in spans:
        piece = text[start:end]
        assert 0 <= start < end <= len(text), (start, end, where)
        assert piece == piece.strip() and piece, (piece, where)
        assert count_tokens(piece) <= max_tokens, (count_tokens(piece), piece, where)
    for prev, nxt in pairwise(spans):
        assert nxt[0] > prev[0], (prev, nxt, where)
        if nxt[0] < prev[1]:
            shared = text[nxt[0] : prev[1]]
            assert count_tokens(shared) <= overlap, (count_tokens(shared), shared, where)
    covered = [False] * len(text)
    for start, end in spans:
        covered[start:end] = [True] * (end - start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, (missing[:5], where)


def check_progress(spans: list[tuple[int, int]]) -> None:
    """Each chunk brings new text: none lies wholly inside the chunk before it."""
    for prev, nxt in pairwise(spans):
        assert nxt[1] > prev[1], f"chunk {nxt} adds nothing to the chunk before it {prev}"


# -- fixed inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "max_tokens", "overlap"),
    [
        (INDONESIAN, 30, 8),
        (INDONESIAN, 200, 40),
        (INDONESIAN, 5, 0),
        (INDONESIAN, 5, 4),
        ("🎉" * 300, 4, 0),
        ("🎉" * 300, 8, 3),
        ("👍🏽🇮🇩" * 100, 10, 4),
        ("a" * 5000, 50, 10),
        ("x" * 5000, 7, 0),
        ("https://example.com/" + "path/" * 400, 16, 5),
        ("Kalimat satu.\nKalimat dua!\n\n\nKalimat tiga?   Kalimat empat…", 6, 2),
        ("  leading and trailing whitespace  \n\n", 3, 1),
        ("x", 1, 0),
    ],
    ids=["id-30", "id-200", "id-5", "id-5-overlap4", "emoji-4", "emoji-8", "emoji-mod", "long-word-a",
         "long-word-x", "long-url", "sentences", "padded", "one-char"],
)
def test_guarantees_on_tricky_inputs(text: str, max_tokens: int, overlap: int) -> None:
    spans = chunk_text(text, max_tokens, overlap)
    assert spans
    check_spans(text, spans, max_tokens, overlap)


def test_guarantees_on_a_sample_article() -> None:
    text = ALIBABA.read_text(encoding="utf-8")
    for max_tokens, overlap in [(200, 40), (50, 10), (20, 0)]:
        spans = chunk_text(text, max_tokens, overlap)
        check_spans(text, spans, max_tokens, overlap)
    assert len(chunk_text(text, 20, 0)) > len(chunk_text(text, 200, 40))


@pytest.mark.parametrize("text", ["", " ", "   \n\t \n ", "\n\n\n", "\u00a0\u2003"])
def test_empty_or_whitespace_only_text_gives_no_spans(text: str) -> None:
    assert chunk_text(text, 10, 2) == []


def test_one_character() -> None:
    assert chunk_text("x", 5, 0) == [(0, 1)]
    assert chunk_text(" é ", 5, 0) == [(1, 2)]


def test_short_text_is_one_span() -> None:
    text = "Jin Li memimpin unit hybrid cloud."
    assert chunk_text(text, 200, 40) == [(0, len(text))]


def test_long_word_without_spaces_is_cut_into_pieces() -> None:
    text = "b" * 5000
    spans = chunk_text(text, 20, 0)
    assert len(spans) > 1
    assert "".join(text[s:e] for s, e in spans) == text  # no overlap: the pieces tile the word
    check_spans(text, spans, 20, 0)


def test_sentences_are_kept_whole_when_they_fit() -> None:
    sentences = [f"Kalimat nomor {i} berbicara tentang cloud." for i in range(30)]
    text = " ".join(sentences)
    for start, end in chunk_text(text, 40, 0):
        piece = text[start:end]
        assert piece.startswith("Kalimat") and piece.endswith("cloud."), piece


def test_overlap_zero_gives_disjoint_spans() -> None:
    spans = chunk_text(INDONESIAN, 20, 0)
    for prev, nxt in pairwise(spans):
        assert nxt[0] >= prev[1]


def test_overlap_repeats_text_between_chunks() -> None:
    sentences = [f"Kalimat {i} pendek." for i in range(40)]
    spans = chunk_text(" ".join(sentences), 30, 10)
    assert any(nxt[0] < prev[1] for prev, nxt in pairwise(spans))


# -- random inputs -----------------------------------------------------------------------


def test_guarantees_on_random_texts() -> None:
    for text, max_tokens, overlap in _cases():
        check_spans(text, chunk_text(text, max_tokens, overlap), max_tokens, overlap)


def test_each_chunk_adds_new_text_on_random_texts() -> None:
    for text, max_tokens, overlap in _cases():
        check_progress(chunk_text(text, max_tokens, overlap))


def test_each_chunk_adds_new_text() -> None:
    # A (150 tokens) + B (30) fill the first chunk; C (190) cannot join B, so B alone must
    # not become a chunk of its own: it lies wholly inside the first one.
    a = " ".join(["alpha"] * 150) + "."
    b = " ".join(["beta"] * 29) + "."
    c = " ".join(["gamma"] * 189) + "."
    text = f"{a} {b} {c}"
    spans = chunk_text(text, 200, 40)
    check_spans(text, spans, 200, 40)
    check_progress(spans)


# -- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_tokens", "overlap", "words"),
    [(0, 0, "max_tokens"), (-5, 0, "max_tokens"), (10, 10, "overlap"), (10, 11, "overlap"), (10, -1, "overlap")],
)
def test_invalid_arguments_raise_value_error(max_tokens: int, overlap: int, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        chunk_text("some text", max_tokens, overlap)


def test_invalid_arguments_raise_even_for_empty_text() -> None:
    with pytest.raises(ValueError):
        chunk_text("", 0, 0)


# -- chunk_document ----------------------------------------------------------------------


def _doc(text: str, doc_id: str = "doc-1") -> Document:
    return Document(id=doc_id, title="Alibaba", text=text, source="/news/alibaba.txt", lang="id",
                    url="https://example.com/a", published="2023-12-05")


def test_chunk_document_fields_map_back_to_the_document() -> None:
    doc = _doc(INDONESIAN)
    chunks = chunk_document(doc, 30, 8)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert (c.doc_id, c.title, c.source, c.lang, c.url, c.published) == (
            doc.id, doc.title, doc.source, doc.lang, doc.url, doc.published)
        assert c.doc_hash == doc.hash
        assert count_tokens(c.text) <= 30


def test_chunk_document_of_empty_text_is_empty() -> None:
    assert chunk_document(_doc(""), 30, 8) == []


def test_chunk_ids_are_the_same_across_runs() -> None:
    here = [c.id for c in chunk_document(_doc(INDONESIAN), 30, 8)]
    assert here == [c.id for c in chunk_document(_doc(INDONESIAN), 30, 8)]
    # Another interpreter (another hash seed) gives the same ids.
    code = (
        "import json, sys\n"
        "from ingest.chunk import chunk_document\n"
        "from rag.types import Document\n"
        "d = json.loads(sys.stdin.read())\n"
        "print(json.dumps([c.id for c in chunk_document(Document(**d), 30, 8)]))\n"
    )
    doc = _doc(INDONESIAN)
    payload = json.dumps({k: getattr(doc, k) for k in ("id", "title", "text", "source", "lang", "url", "published")})
    out = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, text=True, cwd=ROOT,
                         check=True, env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert json.loads(out.stdout) == here


def test_chunk_ids_change_when_the_text_changes() -> None:
    before = chunk_document(_doc(INDONESIAN), 30, 8)
    changed = INDONESIAN.replace("kecerdasan buatan (AI)", "komputasi kuantum")
    after = chunk_document(_doc(changed), 30, 8)
    assert before[-1].id != after[-1].id
    # Chunks before the edit keep their ids, so re-ingesting rewrites only what changed.
    same_span = [(b, a) for b, a in zip(before, after, strict=True) if (b.start, b.text) == (a.start, a.text)]
    assert same_span
    assert all(b.id == a.id for b, a in same_span)
    assert {c.id for c in after} - {c.id for c in before}


def test_chunk_ids_depend_on_the_document() -> None:
    a = chunk_document(_doc(INDONESIAN, "doc-a"), 30, 8)
    b = chunk_document(_doc(INDONESIAN, "doc-b"), 30, 8)
    assert not {c.id for c in a} & {c.id for c in b}
