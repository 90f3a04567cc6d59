"""The lexical index: BM25 over chunks with SQLite FTS5, beside Chroma's dense index.

Chroma is the source of truth. :class:`LexicalIndex` is derived from it: the store writes
every upsert and delete to both, and the index remembers the collection revision it
reflects, so a missing or stale index (another process wrote through a Chroma server, a
crash between the two writes) is rebuilt from Chroma on open. Nothing is rebuilt per query.

Analysis is language-aware: words are lowercased, Indonesian and English stop words
dropped, and each word indexed as itself and as its stem in its text's language
(Snowball via PyStemmer, ``"id"`` or ``"en"``). Keeping the word beside the stem is what
lets an English question match an Indonesian article on a name such as "Huawei", which
the Indonesian stemmer would cut to "huawe".
"""

from __future__ import annotations

import re
import sqlite3
import threading
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from rag.lang import detect_lang
from rag.types import Chunk

ANALYZER_VERSION = "2"

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

STOPWORDS = frozenset(
    # English
    "a an and are as at be been but by can could did do does for from had has have he her his how i if in into "
    "is it its me my not of on or our she so than that the their them then there these they this those to "
    "us was we were what when where which who whom why will with would you your".split()
    # Indonesian
    + "ada adalah agar akan aku anda apa apakah atau bagaimana bahwa beberapa belum berapa bisa dalam dan dari "
    "dengan di dia ia ini itu juga kalau kami kapan karena ke kenapa kita lagi maka mana masih mengapa mereka "
    "nya oleh pada para saja sangat sebagai sedang sejak setelah siapa sudah tapi telah tentang tersebut "
    "tetapi untuk yaitu yakni yang".split()
)


@lru_cache(maxsize=4)
def _stemmer(lang: str):  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("indonesian" if lang == "id" else "english")


def analyze(text: str, lang: str = "") -> list[str]:
    """Index terms of ``text``: lowercased, stop words out, stemmed in the text's language."""
    words = [w for w in (m.group(0).lower() for m in _TOKEN.finditer(text)) if w not in STOPWORDS]
    if not words:
        return []
    stems = _stemmer(lang or detect_lang(text)).stemWords(words)
    # Keep the word itself beside its stem: stemmers mangle names ("Huawei" -> "huawe" in
    # Indonesian), and an English question must still match an Indonesian article on them.
    return words + [s for w, s in zip(words, stems) if s != w]


def index_text(chunk: Chunk) -> str:
    """What the lexical index sees of a chunk: its title and its text."""
    return f"{chunk.title}\n{chunk.text}"


class LexicalIndex:
    """BM25 search over chunk ids, persisted in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
                CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE, doc_id TEXT);
                CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
                CREATE VIRTUAL TABLE IF NOT EXISTS terms USING fts5(body, tokenize='unicode61');
                """
            )
            if self._meta("analyzer") != ANALYZER_VERSION:
                self._clear()
                self._set_meta("analyzer", ANALYZER_VERSION)

    # -- bookkeeping -------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _clear(self) -> None:
        self._db.execute("DELETE FROM chunks")
        self._db.execute("DELETE FROM terms")
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

    # -- writing -----------------------------------------------------------------------

    def _delete_ids(self, chunk_ids: Iterable[str]) -> None:
        for cid in chunk_ids:
            row = self._db.execute("SELECT id FROM chunks WHERE chunk_id = ?", (cid,)).fetchone()
            if row:
                self._db.execute("DELETE FROM terms WHERE rowid = ?", (row[0],))
                self._db.execute("DELETE FROM chunks WHERE id = ?", (row[0],))

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        with self._lock, self._db:
            self._delete_ids(c.id for c in chunks)
            for c in chunks:
                cur = self._db.execute("INSERT INTO chunks(chunk_id, doc_id) VALUES (?, ?)", (c.id, c.doc_id))
                self._db.execute("INSERT INTO terms(rowid, body) VALUES (?, ?)",
                                 (cur.lastrowid, " ".join(analyze(index_text(c), c.lang))))

    def delete(self, chunk_ids: Iterable[str]) -> None:
        with self._lock, self._db:
            self._delete_ids(chunk_ids)

    def rebuild(self, chunks: Iterable[Chunk], revision: str) -> None:
        """Replace the whole index with ``chunks`` (read from Chroma)."""
        with self._lock, self._db:
            self._clear()
        batch: list[Chunk] = []
        for c in chunks:
            batch.append(c)
            if len(batch) >= 500:
                self.upsert(batch)
                batch = []
        if batch:
            self.upsert(batch)
        self.set_revision(revision)

    # -- reading -----------------------------------------------------------------------

    def search(self, query: str, n: int, lang: str = "") -> list[tuple[str, float]]:
        """Up to ``n`` ``(chunk_id, bm25)`` pairs, best first (higher is better)."""
        terms = sorted(set(analyze(query, lang)))
        if not terms or n <= 0:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        with self._lock:
            rows = self._db.execute(
                "SELECT c.chunk_id, -bm25(terms) AS score FROM terms JOIN chunks c ON c.id = terms.rowid "
                "WHERE terms MATCH ? ORDER BY bm25(terms) LIMIT ?",
                (match, n),
            ).fetchall()
        return [(cid, float(score)) for cid, score in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
