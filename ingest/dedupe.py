"""Near-duplicate articles: the same story from another outlet, or with small edits.

Each article's text is reduced to 5-word shingles (lowercased, without diacritics) and a
64-permutation MinHash of them (datasketch). Candidates come from MinHash LSH at a low
Jaccard threshold and are then confirmed: an article is the same story as a stored one
when their estimated Jaccard similarity is at least :data:`JACCARD` or when nearly all
of the shorter one's shingles are in the longer (:data:`CONTAINMENT`: a truncated copy,
or a copy with another outlet's header and footer). Thresholds and the measured
precision and recall: docs/INGEST.md (``scripts/eval_dedupe.py``).

The signatures are kept in the store with each document's first chunk (``minhash``,
``shingles``) and every folded copy is kept in its original's ``alternatives``, so
:class:`NearDuplicates` is rebuilt from the store at the start of each ingest and stays
consistent with it whatever happens to the process. Does not decide what to do with a
duplicate: :mod:`ingest.pipeline` folds it.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from rag.types import Alternative, Document, alternatives_from_json

NUM_PERM = 64
# datasketch 2 permutation scheme: 32-bit values, so a signature is 256 bytes in the metadata.
SCHEME = "affine32"
SHINGLE = 5
LSH_THRESHOLD = 0.3
JACCARD = 0.5
CONTAINMENT = 0.7  # 0.8 found 110/150 of edited, framed, truncated copies; 0.7 found 124 (docs/INGEST.md)
#: Fewer shingles than this and there is too little text to call anything a copy.
MIN_SHINGLES = 20

_WORD = re.compile(r"[^\W_]+")


def shingles(text: str) -> set[bytes]:
    """The article's word 5-grams, lowercased and without diacritics, as bytes."""
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(ch))
    words = _WORD.findall(folded)
    if len(words) < SHINGLE:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + SHINGLE]).encode() for i in range(len(words) - SHINGLE + 1)}


@dataclass
class Signature:
    """A MinHash signature and the number of shingles it summarises."""

    hashvalues: np.ndarray
    size: int

    def encode(self) -> dict[str, Any]:
        """As chunk metadata (Chroma keeps strings and numbers)."""
        return {"minhash": base64.b64encode(self.hashvalues.astype("<u4").tobytes()).decode("ascii"),
                "shingles": self.size}

    @classmethod
    def decode(cls, meta: dict[str, Any]) -> "Signature | None":
        raw = meta.get("minhash")
        if not isinstance(raw, str) or not raw:
            return None
        try:
            values = np.frombuffer(base64.b64decode(raw), dtype="<u4").astype(np.uint32)
        except ValueError:
            return None
        return cls(values, int(meta.get("shingles", 0) or 0)) if len(values) == NUM_PERM else None


def signature(text: str) -> Signature:
    from datasketch import MinHash

    grams = shingles(text)
    m = MinHash(num_perm=NUM_PERM, scheme=SCHEME)
    if grams:
        m.update_batch(list(grams))
    return Signature(m.hashvalues.copy(), len(grams))


def similarity(a: Signature, b: Signature) -> tuple[float, float]:
    """Estimated Jaccard similarity, and the estimated share of the smaller set's shingles in the larger."""
    jaccard = float(np.mean(a.hashvalues == b.hashvalues))
    small, large = sorted((max(a.size, 1), max(b.size, 1)))
    # |A ∩ B| = J (|A| + |B|) / (1 + J)
    containment = min(1.0, jaccard * (small + large) / ((1 + jaccard) * small))
    return jaccard, containment


def is_same_story(a: Signature, b: Signature) -> bool:
    if min(a.size, b.size) < MIN_SHINGLES:
        return False
    jaccard, containment = similarity(a, b)
    return jaccard >= JACCARD or containment >= CONTAINMENT


class NearDuplicates:
    """The signatures of the stored articles, and what has been folded into each."""

    def __init__(self) -> None:
        from datasketch import MinHashLSH

        self._lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
        self.signatures: dict[str, Signature] = {}
        #: canonical doc id -> the other places that published it
        self.alternatives: dict[str, list[Alternative]] = {}
        #: folded doc id -> (its doc hash, the canonical doc id)
        self.folded: dict[str, tuple[str, str]] = {}

    @classmethod
    def from_metadata(cls, metas: Iterable[dict[str, Any]]) -> "NearDuplicates":
        """Rebuilt from the first-chunk metadata of every stored document."""
        index = cls()
        for meta in metas:
            doc_id = str(meta.get("doc_id", ""))
            sig = Signature.decode(meta)
            if sig is not None:
                index.add(doc_id, sig)
            alts = alternatives_from_json(str(meta.get("alternatives", "")))
            if alts:
                index.alternatives[doc_id] = alts
                for alt in alts:
                    if alt.doc_id:
                        index.folded[alt.doc_id] = (alt.doc_hash, doc_id)
        return index

    def add(self, doc_id: str, sig: Signature) -> None:
        from datasketch import MinHash

        if doc_id in self.signatures:
            self._lsh.remove(doc_id)
        self.signatures[doc_id] = sig
        self._lsh.insert(doc_id, MinHash(num_perm=NUM_PERM, hashvalues=sig.hashvalues, scheme=SCHEME))

    def remove(self, doc_id: str) -> None:
        if self.signatures.pop(doc_id, None) is not None:
            self._lsh.remove(doc_id)

    def find(self, doc_id: str, sig: Signature) -> str | None:
        """The stored article that ``sig`` is a copy of (the most similar one), or None."""
        from datasketch import MinHash

        if sig.size < MIN_SHINGLES:
            return None
        best, best_score = None, 0.0
        for other in self._lsh.query(MinHash(num_perm=NUM_PERM, hashvalues=sig.hashvalues, scheme=SCHEME)):
            if other == doc_id:
                continue
            stored = self.signatures[other]
            if is_same_story(sig, stored):
                score = max(similarity(sig, stored))
                if score > best_score or (score == best_score and best is not None and other < best):
                    best, best_score = other, score
        return best

    def fold(self, canonical: str, doc: Document) -> None:
        """Record ``doc`` as another source of ``canonical``."""
        alt = Alternative(source=doc.source, url=doc.url, published=doc.published, title=doc.title, doc_id=doc.id,
                          doc_hash=doc.hash)
        alts = [a for a in self.alternatives.get(canonical, []) if a.doc_id != doc.id]
        self.alternatives[canonical] = alts + [alt]
        self.folded[doc.id] = (alt.doc_hash, canonical)
