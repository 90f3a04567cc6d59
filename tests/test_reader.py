"""The reader's numpy path: windows, span offsets, and the weights' integrity check.

The shipped weights are not in the repository yet; these tests write a reader file of
the same format (random top layers over e5's real lower layers) to exercise loading,
the SHA-256 check and span decoding end to end.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from rag.models.e5 import E5Numpy
from rag.models.reader import MAX_LEN, Reader, ReaderWeightsError, question_ids, windows

PASSAGE = ("Alibaba menunjuk Jin Li untuk memimpin unit cloud hybrid, sementara Weiguang Liu memimpin "
           "public cloud. Keduanya melapor kepada CEO Eddie Wu.")


@pytest.fixture(scope="module")
def e5() -> E5Numpy:
    return E5Numpy(threads=1)


def _write_reader(e5: E5Numpy, path: Path, trained: int = 1) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for i, ly in enumerate(e5.layers[12 - trained:]):
        for k, v in ly.items():
            if isinstance(v, tuple):
                arrays[f"l{i}.{k}_w"], arrays[f"l{i}.{k}_b"] = (a.astype(np.float16) for a in v)
            else:
                arrays[f"l{i}.{k}"] = v.astype(np.float16)
    arrays["head_w"] = rng.normal(0, 0.1, (e5.H, 2)).astype(np.float16)
    arrays["head_b"] = np.zeros(2, np.float16)
    np.savez(path, **arrays)
    manifest = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "frozen_layers": 12 - trained, "trained_layers": trained}
    path.with_suffix(".json").write_text(json.dumps(manifest))
    return path


def test_token_offsets_point_at_the_text(e5: E5Numpy) -> None:
    text = "Jin Li  memimpin unit cloud-hybrid (Alibaba), ﬁnal."
    ids, spans = e5.token_offsets(text)
    assert ids == e5.tokenizer.encode(text)
    assert "".join(text[a:b] for a, b in spans) == "".join(text.split())
    assert text[spans[0][0]:spans[1][1]] == "Jin Li"


def test_a_long_passage_is_read_in_overlapping_windows(e5: E5Numpy) -> None:
    long = " ".join([PASSAGE] * 40)
    ws = windows(e5, question_ids(e5, "Siapa memimpin cloud hybrid?"), long)
    assert len(ws) > 2
    assert all(len(w.ids) <= MAX_LEN for w in ws)
    assert ws[0].spans[-1][1] > ws[1].spans[0][0]  # they overlap
    assert ws[-1].spans[-1][1] == len(long)  # the end is read


def test_spans_are_offsets_into_the_passage(e5: E5Numpy, tmp_path: Path) -> None:
    reader = Reader(e5, _write_reader(e5, tmp_path / "reader.npz"))
    (reading,) = reader.read("Siapa memimpin unit cloud hybrid?", [PASSAGE])
    assert reading.spans
    for span in reading.spans:
        assert PASSAGE[span.start:span.end] == span.text
        assert span.text.strip()
    assert reading.margin == reading.spans[0].score - reading.null


def test_damaged_weights_are_refused_naming_the_file(e5: E5Numpy, tmp_path: Path) -> None:
    path = _write_reader(e5, tmp_path / "reader.npz")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ReaderWeightsError, match=r"reader\.npz.*damaged"):
        Reader(e5, path)


def test_missing_weights_are_reported(e5: E5Numpy, tmp_path: Path) -> None:
    with pytest.raises(ReaderWeightsError, match="not found"):
        Reader(e5, tmp_path / "nothing.npz")
