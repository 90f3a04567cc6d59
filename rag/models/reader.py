"""Kabar's reader: finds the answer span in a passage, or says the passage has none.

An extractive QA model in the SQuAD 2.0 style on top of multilingual-e5-small. The
question and a passage are read together as one sequence,
``<s> query: QUESTION </s> passage: PASSAGE </s>``; the encoder's lower layers are
e5's own (run by :class:`rag.models.e5.E5Numpy`), its top layers were fine-tuned by
Kabar (:mod:`rag.models.train_reader`) and a linear head gives each token a start and
an end score. A span's score is its start score plus its end score; the no-answer
score is the same sum at ``<s>``. A passage longer than one window is read in
overlapping windows: its best span is the best of any window, its no-answer score the
lowest, as SQuAD 2.0 systems do.

The weights ship in ``rag/models/weights/`` (``reader.npz``, with ``reader.json``
giving its SHA-256 and settings; ``READER.md`` is the model card). They are checked at
load and a file that does not match is refused with an error naming it. Runs in numpy
only: PyTorch is needed to train, never to read.

Leaves to others: which passages to read and what to do with the scores
(:mod:`rag.answer.evidence`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.errors import KabarError
from rag.models.e5 import E5Numpy

WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS = WEIGHTS_DIR / "reader.npz"
# Sequence layout (training and reading must agree).
MAX_LEN = 256
MAX_QUERY = 64
MAX_ANSWER = 30  # tokens
#: The languages the reader learned (questions and passages): it judges no other (docs/READER.md).
LANGS = ("id",)
#: (question, passage) languages it also learned to read across: English questions over
#: Indonesian passages (docs/READER.md); its span then answers in the passage's language.
CROSS = (("en", "id"),)


class ReaderWeightsError(KabarError):
    """The reader's weights file is missing, damaged, or not the one its manifest names."""


@dataclass(frozen=True)
class Window:
    """One sequence the reader scores: the question, then a slice of one passage."""

    ids: list[int]  # the whole sequence, <s> ... </s>
    first: int  # index in ``ids`` of the passage's first token in this window
    spans: list[tuple[int, int]]  # character span in the passage of each passage token here


@dataclass(frozen=True)
class Span:
    """A candidate answer: character offsets in its passage and the reader's score for it."""

    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Reading:
    """What the reader found in one passage: its best spans (best first) and its no-answer score."""

    spans: list[Span]
    null: float

    @property
    def margin(self) -> float:
        """Best span's score minus the no-answer score: above 0, the reader thinks it is answered
        (-inf for a passage with no span, or not read)."""
        return self.spans[0].score - self.null if self.spans else -np.inf


def question_ids(e5: E5Numpy, question: str) -> list[int]:
    """The question's tokens as the reader reads them (e5's query prefix, at most MAX_QUERY)."""
    return e5.token_ids(question, is_query=True)[:MAX_QUERY]


@lru_cache(maxsize=4)
def _passage_prefix(e5: E5Numpy) -> tuple[int, ...]:
    return tuple(e5.tokenizer.encode("passage:"))


def windows(e5: E5Numpy, q_ids: list[int], passage: str, max_len: int = MAX_LEN,
            tokens: tuple[list[int], list[tuple[int, int]]] | None = None) -> list[Window]:
    """The passage cut into windows that fit beside the question, overlapping by half."""
    ids, spans = tokens if tokens is not None else e5.token_offsets(passage)
    prefix = list(_passage_prefix(e5))
    head = [e5.bos, *q_ids, e5.eos, *prefix]
    room = max(16, max_len - len(head) - 1)
    out: list[Window] = []
    a = 0
    while True:
        part = ids[a : a + room]
        out.append(Window([*head, *part, e5.eos], len(head), spans[a : a + room]))
        if a + room >= len(ids):
            return out
        a += max(1, room // 2)


class ReaderModel:
    """The reader's weights: e5's lower layers (shared with the embedder) and Kabar's top ones."""

    def __init__(self, e5: E5Numpy, path: Path | str | None = None) -> None:
        self.e5 = e5
        self.path = Path(path) if path else WEIGHTS
        manifest_path = self.path.with_suffix(".json")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            raw = self.path.read_bytes()
        except FileNotFoundError as exc:
            raise ReaderWeightsError(f"reader weights not found: {exc.filename}") from exc
        except (OSError, ValueError) as exc:
            raise ReaderWeightsError(f"reader manifest {manifest_path} could not be read: {exc}") from exc
        digest = hashlib.sha256(raw).hexdigest()
        if digest != manifest.get("sha256"):
            raise ReaderWeightsError(
                f"reader weights {self.path} are damaged: SHA-256 {digest[:16]}... does not match "
                f"{str(manifest.get('sha256'))[:16]}... in {manifest_path.name}; reinstall Kabar or retrain "
                "with `python -m rag.models.train_reader`")
        self.manifest = manifest
        self.frozen = int(manifest["frozen_layers"])
        try:
            with np.load(self.path) as z:
                arrays = {k: z[k].astype(np.float32) for k in z.files}
            top = []
            for i in range(int(manifest["trained_layers"])):
                p = f"l{i}."
                top.append({
                    "qkv_w": arrays[p + "qkv_w"], "qkv_b": arrays[p + "qkv_b"],
                    "ao_w": arrays[p + "ao_w"], "ao_b": arrays[p + "ao_b"],
                    "aln": (arrays[p + "aln_w"], arrays[p + "aln_b"]),
                    "fi_w": arrays[p + "fi_w"], "fi_b": arrays[p + "fi_b"],
                    "fo_w": arrays[p + "fo_w"], "fo_b": arrays[p + "fo_b"],
                    "oln": (arrays[p + "oln_w"], arrays[p + "oln_b"]),
                })
            self.head_w, self.head_b = arrays["head_w"], arrays["head_b"]
        except (KeyError, ValueError, OSError) as exc:
            raise ReaderWeightsError(f"reader weights {self.path} could not be read: {exc}") from exc
        self.layers = [*e5.layers[: self.frozen], *top]

    def logits(self, seqs: list[list[int]]) -> list[np.ndarray]:
        """Start and end scores of every token, one [length, 2] array per sequence."""
        x = self.e5.hidden_states(seqs, self.layers)
        out = x @ self.head_w + self.head_b
        bounds = np.cumsum([len(s) for s in seqs])[:-1]
        return np.split(out, bounds)


def _whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """``start``-``end`` widened to whole words: a span starting inside "Jiangwei" starts at its "J"."""
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
        end += 1
    return start, end


def _best_spans(logit: np.ndarray, w: Window, passage: str, k: int) -> list[Span]:
    n = len(w.spans)
    if n == 0:
        return []
    s = logit[w.first : w.first + n, 0]
    e = logit[w.first : w.first + n, 1]
    scores = s[:, None] + e[None, :]
    i, j = np.indices(scores.shape)
    scores = np.where((j >= i) & (j - i < MAX_ANSWER), scores, -np.inf)
    flat = np.argsort(scores, axis=None)[::-1][:k]
    out = []
    for f in flat:
        a, b = divmod(int(f), n)
        if not np.isfinite(scores[a, b]):
            break
        start, end = _whole_words(passage, w.spans[a][0], w.spans[b][1])
        out.append(Span(start, end, passage[start:end], float(scores[a, b])))
    return out


class Reader:
    """Reads passages for a question: :meth:`read` gives a :class:`Reading` per passage."""

    def __init__(self, e5: E5Numpy, path: Path | str | None = None) -> None:
        self.model = ReaderModel(e5, path)
        self.e5 = e5

    def read(self, question: str, passages: Sequence[str], k: int = 3,
             max_windows: int = 0, max_tokens: int = 0) -> list[Reading]:
        """One :class:`Reading` per passage, spans best first. ``max_windows`` > 0 reads at most
        that many windows of each passage (the first ones); ``max_tokens`` > 0 stops taking
        windows, in passage order, once that many tokens are planned (the first window is
        always read). A passage left unread has no spans and a no-answer score of +inf."""
        q = question_ids(self.e5, question)
        plan: list[tuple[int, Window]] = []
        planned = 0
        for p, text in enumerate(passages):
            ws = windows(self.e5, q, text)
            for w in ws[:max_windows] if max_windows > 0 else ws:
                if max_tokens > 0 and plan and planned + len(w.ids) > max_tokens:
                    break
                plan.append((p, w))
                planned += len(w.ids)
        if not plan:
            return [Reading([], np.inf) for _ in passages]
        logits = self.model.logits([w.ids for _, w in plan])
        spans: list[list[Span]] = [[] for _ in passages]
        nulls = [np.inf] * len(passages)
        for (p, w), lg in zip(plan, logits):
            spans[p].extend(_best_spans(lg, w, passages[p], k))
            nulls[p] = min(nulls[p], float(lg[0, 0] + lg[0, 1]))
        out = []
        for p in range(len(passages)):
            best = sorted(spans[p], key=lambda s: -s.score)
            seen: set[tuple[int, int]] = set()
            uniq = [s for s in best if not ((s.start, s.end) in seen or seen.add((s.start, s.end)))]
            out.append(Reading(uniq[:k], nulls[p]))
        return out


def load_reader(e5: E5Numpy | None = None, path: Path | str | None = None) -> Reader:
    """The shipped reader (or the weights at ``path``), on ``e5`` (the embedder's own engine, to
    share its weights) or a new one."""
    return Reader(e5 if e5 is not None else E5Numpy(), path)
