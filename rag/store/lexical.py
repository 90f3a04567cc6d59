"""The lexical index: BM25 over chunks with SQLite FTS5, beside Chroma's dense index.

Chroma is the source of truth. :class:`LexicalIndex` is derived from it: the store writes
every upsert and delete to both, and the index remembers the collection revision it
reflects. A missing index is built from Chroma; a stale one (another process wrote through
Chroma, a crash between the two writes) is brought up to date by the store, which compares
chunk ids and each document's first chunk with Chroma's and re-indexes only the documents
that differ. Nothing is rebuilt per query.

Each row keeps a copy of its chunk's text and Chroma metadata, so a lexical hit needs no
round trip to Chroma: on a 10,000-chunk collection that fetch cost as much as the BM25
search itself.

Three things keep a search fast on a million chunks: a question's terms are cut to the
rarest whose postings fit :data:`MAX_POSTINGS` (FTS5 reads every posting of every term, and
a long question's common words carry millions of postings and little weight); the chunks'
source and date are indexed, so a filter is applied inside the BM25 search and
:mod:`rag.store.prefilter` can tell which chunks a filter passes without asking Chroma; and each
chunk's vector is copied here (normalised, float16: 768 bytes a chunk for e5-small), so a
filtered dense search can score the passing chunks directly (:meth:`LexicalIndex.passing_vectors`)
instead of searching Chroma's vector graph for them. The store copies vectors when it writes
them and reads them back from Chroma when it indexes rows without them
(:meth:`LexicalIndex.missing_vectors`).

Analysis is language-aware: words are lowercased, Indonesian and English stop words
dropped, and each word indexed as itself and as its stem in its text's language
(Snowball via PyStemmer, ``"id"`` or ``"en"``). Keeping the word beside the stem is what
lets an English question match an Indonesian article on a name such as "Huawei", which
the Indonesian stemmer would cut to "huawe".
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from rag.lang import detect_lang
from rag.store.where import where_sql
from rag.text import STOPWORDS, stemmer

# Bumped whenever the analysis or the table layout changes: the index is then rebuilt.
ANALYZER_VERSION = "3"

#: Postings one BM25 search reads at most; a question over them keeps its rarest terms.
MAX_POSTINGS = 100_000
#: Terms a question always keeps, the rarest first, whatever their postings.
MIN_TERMS = 3
#: Most matches a filtered search ranks before keeping those that pass (see ``_filtered``).
FILTER_FETCH = 5_000
#: Most passing chunks a filtered search that must score every match selects by row id.
FILTER_IDS = 50_000

# The best ``?`` matches (ranked inside FTS5 first: joining before the LIMIT reads every match's text).
_RANKED = ("SELECT c.chunk_id, c.text, c.meta, t.score FROM (SELECT rowid, -bm25(terms) AS score FROM terms "
           "WHERE terms MATCH ? ORDER BY bm25(terms) LIMIT ?) t JOIN chunks c ON c.id = t.rowid ORDER BY t.score DESC")

#: A stored chunk as Chroma holds it: id, text, metadata.
Row = tuple[str, str, dict[str, Any]]

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def analyze(text: str, lang: str = "") -> list[str]:
    """Index terms of ``text``: lowercased, stop words out, stemmed in the text's language."""
    words = [w for w in (m.group(0).lower() for m in _TOKEN.finditer(text)) if w not in STOPWORDS]
    if not words:
        return []
    stems = stemmer(lang or detect_lang(text)).stemWords(words)
    # Keep the word itself beside its stem: stemmers mangle names ("Huawei" -> "huawe" in
    # Indonesian), and an English question must still match an Indonesian article on them.
    return words + [s for w, s in zip(words, stems) if s != w]


def index_text(text: str, meta: dict[str, Any]) -> str:
    """What the lexical index sees of a chunk: its title and its text."""
    return f"{meta.get('title', '')}\n{text}"


class LexicalIndex:
    """BM25 search over chunk ids, persisted in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        self.max_postings = MAX_POSTINGS
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)")
            if self._meta("analyzer") != ANALYZER_VERSION:
                # An index written by another version: start empty, the store refills it.
                self._db.executescript("DROP TABLE IF EXISTS chunks; DROP TABLE IF EXISTS terms;")
                self._db.execute("DELETE FROM meta")
                self._set_meta("analyzer", ANALYZER_VERSION)
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE, doc_id TEXT,
                                                  text TEXT, meta TEXT);
                CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
                CREATE VIRTUAL TABLE IF NOT EXISTS terms USING fts5(body, tokenize='unicode61');
                CREATE TABLE IF NOT EXISTS vectors(id INTEGER PRIMARY KEY, vec BLOB NOT NULL);
                """
            )
            # What filters select on (rag.store.prefilter): which chunks pass, without reading the rows.
            self._db.executescript(
                """
                CREATE INDEX IF NOT EXISTS chunks_source_day ON chunks(json_extract(meta, '$.source'),
                                                                       json_extract(meta, '$.published_day'), chunk_id);
                CREATE INDEX IF NOT EXISTS chunks_day ON chunks(json_extract(meta, '$.published_day'), chunk_id);
                """
            )
        # BM25 searches read through a connection of their own, so that a search in one thread
        # and a filtered dense search's reads (rag.store.prefilter) in another run side by side.
        if self.path == ":memory:":
            self._search_db, self._search_lock = self._db, self._lock
        else:
            self._search_db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._search_lock = threading.Lock()
        # fts5vocab reads the index's own term statistics; it lives with its connection.
        with self._search_lock:
            self._search_db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.terms_vocab "
                                    "USING fts5vocab(main, terms, row)")

    # -- bookkeeping -------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _clear(self) -> None:
        self._db.execute("DELETE FROM chunks")
        self._db.execute("DELETE FROM terms")
        self._db.execute("DELETE FROM vectors")
        self._db.execute("DELETE FROM meta WHERE key = 'revision'")

    @property
    def revision(self) -> str | None:
        """The collection revision this index reflects (None: never synced)."""
        with self._lock:
            return self._meta("revision")

    def set_revision(self, revision: str) -> None:
        with self._lock, self._db:
            self._set_meta("revision", revision)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def newest_day(self) -> int | None:
        """The latest ``published_day`` of any chunk (YYYYMMDD), None when no chunk has one."""
        with self._lock:
            row = self._db.execute("SELECT max(json_extract(meta, '$.published_day')) FROM chunks").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def chunk_docs(self) -> dict[str, str]:
        """Every indexed chunk id and its document id."""
        with self._lock:
            return dict(self._db.execute("SELECT chunk_id, doc_id FROM chunks").fetchall())

    def doc_chunks(self, doc_ids: Sequence[str]) -> tuple[list[str], list[dict[str, Any]]]:
        """The ids and metadata of every indexed chunk of ``doc_ids`` (through the doc_id index)."""
        ids: list[str] = []
        metas: list[dict[str, Any]] = []
        with self._lock:
            for i in range(0, len(doc_ids), 500):
                part = list(doc_ids[i : i + 500])
                marks = ", ".join("?" * len(part))
                for cid, meta in self._db.execute(f"SELECT chunk_id, meta FROM chunks WHERE doc_id IN ({marks})", part):
                    ids.append(cid)
                    metas.append(json.loads(meta))
        return ids, metas

    def first_chunks(self) -> dict[str, dict[str, Any]]:
        """Each document's first chunk's metadata (where a change to a document's metadata shows)."""
        with self._lock:
            rows = self._db.execute("SELECT doc_id, meta FROM chunks WHERE json_extract(meta, '$.position') = 0")
            return {doc_id: json.loads(meta) for doc_id, meta in rows.fetchall()}

    # -- writing -----------------------------------------------------------------------

    def _delete_rowid(self, rowid: int) -> None:
        self._db.execute("DELETE FROM terms WHERE rowid = ?", (rowid,))
        self._db.execute("DELETE FROM vectors WHERE id = ?", (rowid,))
        self._db.execute("DELETE FROM chunks WHERE id = ?", (rowid,))

    def _delete_ids(self, chunk_ids: Iterable[str]) -> None:
        for cid in chunk_ids:
            row = self._db.execute("SELECT id FROM chunks WHERE chunk_id = ?", (cid,)).fetchone()
            if row:
                self._delete_rowid(row[0])

    def upsert(self, rows: Sequence[Row], vectors: Sequence[Sequence[float]] | None = None) -> None:
        """Index ``(chunk_id, text, metadata)`` rows, with their vectors when given; an
        existing chunk id is replaced."""
        with self._lock, self._db:
            self._insert(rows, vectors)

    def _insert(self, rows: Sequence[Row], vectors: Sequence[Sequence[float]] | None) -> None:
        self._delete_ids(cid for cid, _, _ in rows)
        if vectors is not None and len(vectors) != len(rows):
            raise ValueError(f"{len(rows)} rows but {len(vectors)} vectors")
        packed = _pack(vectors) if vectors is not None and len(rows) else None
        if packed is None and rows:
            self._set_meta("vectors", "")  # some chunks have no vector copy until the store fills it
        for i, (cid, text, meta) in enumerate(rows):
            cur = self._db.execute("INSERT INTO chunks(chunk_id, doc_id, text, meta) VALUES (?, ?, ?, ?)",
                                   (cid, str(meta.get("doc_id", "")), text, json.dumps(meta)))
            terms = analyze(index_text(text, meta), str(meta.get("lang", "")))
            self._db.execute("INSERT INTO terms(rowid, body) VALUES (?, ?)", (cur.lastrowid, " ".join(terms)))
            if packed is not None:
                self._db.execute("INSERT INTO vectors(id, vec) VALUES (?, ?)", (cur.lastrowid, packed[i]))

    def replace_documents(self, doc_ids: Sequence[str], rows: Sequence[Row],
                          vectors: Sequence[Sequence[float]] | None = None) -> None:
        """Make ``rows`` (with ``vectors`` when given) the only rows of ``doc_ids``, in one transaction."""
        with self._lock, self._db:
            for doc_id in set(doc_ids):
                for (rowid,) in self._db.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,)).fetchall():
                    self._delete_rowid(rowid)
            self._insert(rows, vectors)

    # -- the vector copy -----------------------------------------------------------------

    @property
    def vectors_complete(self) -> bool:
        """True when every indexed chunk is known to have its vector copied here."""
        with self._lock:
            return self._meta("vectors") == "complete"

    def missing_vectors(self, after: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` ``(row id, chunk id)`` of chunks without a vector copy, row ids above
        ``after``, in row id order (a caller pages with the last row id it got)."""
        with self._lock:
            return self._db.execute(
                "SELECT c.id, c.chunk_id FROM chunks c LEFT JOIN vectors v ON v.id = c.id "
                "WHERE v.id IS NULL AND c.id > ? ORDER BY c.id LIMIT ?", (after, limit)).fetchall()

    def set_vectors(self, chunk_ids: Sequence[str], vectors: Sequence[Sequence[float]]) -> None:
        """Copy the vectors of indexed chunks (ids not indexed are skipped)."""
        if not len(chunk_ids):
            return
        packed = _pack(vectors)
        with self._lock, self._db:
            for cid, blob in zip(chunk_ids, packed):
                self._db.execute("INSERT OR REPLACE INTO vectors(id, vec) SELECT id, ? FROM chunks WHERE chunk_id = ?",
                                 (blob, cid))

    def pages(self, size: int = 1000) -> Iterator[tuple[list[Row], np.ndarray | None]]:
        """Every indexed chunk with its vector copy, ``size`` at a time in row order; a page's
        vectors are None when a chunk of it has no copy."""
        after = 0
        while True:
            with self._lock:
                got = self._db.execute("SELECT c.id, c.chunk_id, c.text, c.meta, v.vec FROM chunks c "
                                       "LEFT JOIN vectors v ON v.id = c.id WHERE c.id > ? ORDER BY c.id LIMIT ?",
                                       (after, size)).fetchall()
            if not got:
                return
            after = got[-1][0]
            rows: list[Row] = [(cid, text, json.loads(meta)) for _, cid, text, meta, _ in got]
            yield rows, _unpack([vec for *_, vec in got])

    def mark_vectors_complete(self) -> None:
        with self._lock, self._db:
            self._set_meta("vectors", "complete")

    def delete(self, chunk_ids: Iterable[str]) -> None:
        with self._lock, self._db:
            self._delete_ids(chunk_ids)

    def rebuild(self, rows: Iterable[Row], revision: str) -> None:
        """Replace the whole index with ``rows`` (read from Chroma; vectors are copied after)."""
        with self._lock, self._db:
            self._clear()
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 500:
                self.upsert(batch)
                batch = []
        if batch:
            self.upsert(batch)
        self.set_revision(revision)

    # -- reading -----------------------------------------------------------------------

    def search(self, query: str, n: int, lang: str = "", where: dict[str, Any] | None = None
               ) -> list[tuple[Row, float]]:
        """Up to ``n`` ``(row, bm25)`` pairs, best first (higher is better), among the chunks
        that pass ``where`` (a filter :func:`rag.store.where.where_sql` translates; ValueError otherwise)."""
        terms = sorted(set(analyze(query, lang)))
        if not terms or n <= 0:
            return []
        sql = where_sql(where) if where else None
        if where and sql is None:
            raise ValueError(f"the lexical index cannot apply the filter {where!r}")
        with self._search_lock:
            terms = self._within_budget(terms, self.max_postings)
            match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
            if sql is None:
                rows = self._search_db.execute(_RANKED, (match, n)).fetchall()
            else:
                rows = self._filtered(match, n, *sql)
        return [((cid, text, json.loads(meta)), float(score)) for cid, text, meta, score in rows]

    def _filtered(self, match: str, n: int, cond: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """The ``n`` best BM25 matches that pass ``cond``; search lock held.

        First the best matches overall, as many as should hold ``2 * n`` passing ones (at most
        :data:`FILTER_FETCH`), keeping those that pass: exact when ``n`` of them do or when that
        was every match, and as fast as an unfiltered search. Otherwise every match is scored
        and the passing ones kept (through the passing row ids when few pass, where FTS5 would
        otherwise look up each passing row's postings one by one: seconds on a million chunks).
        """
        count = int(self._search_db.execute(f"SELECT count(*) FROM chunks WHERE {cond}", params).fetchone()[0])
        if count == 0:
            return []
        fetch = min(FILTER_FETCH, max(n, math.ceil(2 * n * self._size_bound() / count)))
        best = self._search_db.execute("SELECT rowid, -bm25(terms) FROM terms WHERE terms MATCH ? ORDER BY bm25(terms) "
                                "LIMIT ?", (match, fetch)).fetchall()
        score = dict(best)
        passing: list[int] = []
        for i in range(0, len(best), 500):
            part = [rowid for rowid, _ in best[i : i + 500]]
            marks = ", ".join("?" * len(part))
            passing += [r[0] for r in self._search_db.execute(f"SELECT id FROM chunks WHERE id IN ({marks}) AND {cond}",
                                                       [*part, *params])]
        if len(passing) >= n or len(best) < fetch:
            top = sorted(passing, key=lambda rowid: -score[rowid])[:n]
            marks = ", ".join("?" * len(top))
            rows = {r[0]: r[1:] for r in self._search_db.execute(
                f"SELECT id, chunk_id, text, meta FROM chunks WHERE id IN ({marks})", top)}
            return [(*rows[rowid], score[rowid]) for rowid in top if rowid in rows]
        every = ("WITH m AS MATERIALIZED (SELECT rowid AS id, -bm25(terms) AS score FROM terms WHERE terms MATCH ?) "
                 "SELECT c.chunk_id, c.text, c.meta, m.score FROM m JOIN chunks c ON c.id = m.id WHERE {where} "
                 "ORDER BY m.score DESC LIMIT ?")
        where_ = f"m.id IN (SELECT id FROM chunks WHERE {cond})" if count <= FILTER_IDS else cond
        return self._search_db.execute(every.format(where=where_), (match, *params, n)).fetchall()

    def doc_counts(self, query: str, lang: str = "") -> dict[str, int]:
        """How many chunks hold each of the query's terms (0: none), as :meth:`search` analyses it."""
        terms = sorted(set(analyze(query, lang)))
        if not terms:
            return {}
        with self._search_lock:
            found = self._doc_counts(terms)
        return {t: int(found.get(t, 0)) for t in terms}

    def _doc_counts(self, terms: Sequence[str]) -> dict[str, int]:
        """Chunks holding each indexed term of ``terms`` (absent terms left out); search lock held."""
        marks = ", ".join("?" * len(terms))
        return dict(self._search_db.execute(f"SELECT term, doc FROM temp.terms_vocab WHERE term IN ({marks})",
                                     list(terms)).fetchall())

    def _within_budget(self, terms: list[str], budget: int) -> list[str]:
        """The rarest of ``terms`` whose postings add up to at most ``budget`` (the rarest
        :data:`MIN_TERMS` whatever they hold); all of them when the index is small enough.

        FTS5 reads every posting of every term (~0.6 µs each): on a million chunks a long
        question's common words hold millions of postings, and their low IDF moves little.
        """
        if not budget or len(terms) * self._size_bound() <= budget:
            return terms
        df = self._doc_counts(terms)
        kept, total = [], 0
        for t in sorted(terms, key=lambda t: (df.get(t, 0), t)):
            if len(kept) >= MIN_TERMS and total + df.get(t, 0) > budget:
                break
            kept.append(t)
            total += df.get(t, 0)
        return sorted(kept)

    def _size_bound(self) -> int:
        """At least the number of chunks (the largest row id), without counting them."""
        return int(self._search_db.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()[0])

    def filter_count(self, where: dict[str, Any]) -> int | None:
        """How many chunks pass a Chroma ``where`` filter (None: a filter
        :func:`rag.store.where.where_sql` cannot translate); read from the metadata indexes."""
        sql = where_sql(where)
        if sql is None:
            return None
        with self._lock:
            return int(self._db.execute(f"SELECT count(*) FROM chunks WHERE {sql[0]}", sql[1]).fetchone()[0])

    def passing_vectors(self, where: dict[str, Any]) -> tuple[list[str], np.ndarray] | None:
        """The ids and vector copies (unit length, float32, one row each) of the chunks that pass
        ``where``; None when the filter does not translate or a passing chunk has no copy."""
        sql = where_sql(where)
        if sql is None:
            return None
        with self._lock:
            rows = self._db.execute(f"SELECT c.chunk_id, v.vec FROM chunks c LEFT JOIN vectors v ON v.id = c.id "
                                    f"WHERE {sql[0]}", sql[1]).fetchall()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        matrix = _unpack([vec for _, vec in rows])
        return None if matrix is None else ([cid for cid, _ in rows], matrix)

    def filter_ids(self, where: dict[str, Any], limit: int) -> tuple[list[str], int] | None:
        """The ids of the chunks that pass a Chroma ``where`` filter and how many pass; only the
        count when more than ``limit`` do. None for a filter :func:`rag.store.where.where_sql`
        cannot translate."""
        sql = where_sql(where)
        if sql is None:
            return None
        cond, params = sql
        with self._lock:
            ids = [r[0] for r in self._db.execute(f"SELECT chunk_id FROM chunks WHERE {cond} LIMIT ?",
                                                  [*params, limit + 1])]
            if len(ids) <= limit:
                return ids, len(ids)
            count = self._db.execute(f"SELECT count(*) FROM chunks WHERE {cond}", params).fetchone()[0]
        return [], int(count)

    def passing(self, chunk_ids: Sequence[str], where: dict[str, Any]) -> set[str]:
        """Which of ``chunk_ids`` pass ``where`` (a filter :meth:`filter_ids` translates)."""
        sql = where_sql(where)
        if sql is None or not chunk_ids:
            return set()
        cond, params = sql
        out: set[str] = set()
        with self._lock:
            for i in range(0, len(chunk_ids), 500):
                part = list(chunk_ids[i : i + 500])
                marks = ", ".join("?" * len(part))
                out.update(r[0] for r in self._db.execute(
                    f"SELECT chunk_id FROM chunks WHERE chunk_id IN ({marks}) AND {cond}", [*part, *params]))
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._search_db is not self._db:
            with self._search_lock:
                self._search_db.close()


def _pack(vectors: Sequence[Sequence[float]]) -> list[bytes]:
    """Each vector at unit length as float16 bytes (cosine becomes a dot product)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"vectors must be a list of equal-length lists, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.where(norms > 0, norms, 1.0)
    return [row.tobytes() for row in matrix.astype(np.float16)]


def _unpack(blobs: Sequence[bytes | None]) -> np.ndarray | None:
    """The float32 matrix of :func:`_pack`'s copies; None when one is missing or of another length."""
    if any(b is None or len(b) != len(blobs[0] or b"") for b in blobs):
        return None
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), -1).astype(np.float32)
