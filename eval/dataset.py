"""Question sets: load a folder (or a questions file) into :class:`EvalSet`.

A set is a folder with ``questions.jsonl`` and its corpus, in the format of the design
notes::

    questions.jsonl  {"id", "question", "answers": [..], "doc_ids": [..], "answerable",
                      "lang", optional "type", "evidence": [..]}
    corpus.jsonl     {"id", "title", "text", "lang", optional "url", "published", "source"}

Instead of ``corpus.jsonl`` the folder may hold ``articles/`` with ``.txt``/``.md`` files
whose file stem is the document id (that is how ``examples/`` is laid out, so
``kabar eval run examples`` works on the shipped sample set). A bare questions ``.jsonl``
file is a set without a corpus: it runs against the collection already in use.

Conventions fixed here, so that every metric sees the same gold:

- An unanswerable question (``answerable: false``) has no gold answers: whatever the file
  says (multihop-en writes "Insufficient information.") is dropped.
- A question without ``type`` gets ``"answerable"`` or ``"unanswerable"``, so ``by_type``
  always says something.

Every set splits into two fixed halves by a hash of the question id (:func:`half`): tune
on ``tune``, confirm on ``check``. The split depends on nothing but the id, so a question
stays in its half whatever else the file holds.

Problems are :class:`~rag.errors.InputError` naming the file and line. Does not ingest
anything: :mod:`eval.runner` does.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.types import Document, file_sha256

QUESTIONS_FILE = "questions.jsonl"
CORPUS_FILE = "corpus.jsonl"
ARTICLES_DIR = "articles"
ARTICLE_SUFFIXES = (".txt", ".md", ".markdown")
# Articles in an eval folder are read whole; the ingest size limit guards users' uploads.
MAX_ARTICLE_BYTES = 50_000_000


@dataclass
class Question:
    """One question and its gold: answers, documents and evidence sentences."""

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    answerable: bool = True
    lang: str = "en"
    type: str = "answerable"
    evidence: list[str] = field(default_factory=list)


@dataclass
class EvalSet:
    """Questions and, unless they run against the current collection, their corpus.

    ``corpus_digest`` is the SHA-256 of the corpus bytes (``corpus.jsonl``, or each
    article's name and bytes): the collection cache is keyed by it.
    """

    name: str
    path: Path
    questions: list[Question]
    corpus_path: Path | None = None
    corpus_digest: str = ""

    @property
    def has_corpus(self) -> bool:
        return self.corpus_path is not None

    def documents(self) -> list[Document]:
        """The corpus as Documents (read on demand: it can be large)."""
        if self.corpus_path is None:
            return []
        if self.corpus_path.is_dir():
            return load_articles(self.corpus_path)
        return load_corpus(self.corpus_path)


# -- loading -----------------------------------------------------------------------------


def _jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(str(path), f"cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError:
        raise InputError(str(path), "is not valid UTF-8") from None
    from ingest.load import jsonl_records

    for where, record in jsonl_records(text, path):
        if isinstance(record, InputError):
            raise record
        yield where, record


def _strings(record: dict[str, Any], key: str, where: str) -> list[str]:
    value = record.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(where, f"{key!r} must be a list of strings, got {value!r}")
    return [v for v in value if v.strip()]


def question_from_record(record: dict[str, Any], where: str) -> Question:
    """A Question from one ``questions.jsonl`` record (see the module docstring)."""
    qid = record.get("id")
    text = record.get("question")
    if qid is None or str(qid).strip() == "":
        raise InputError(where, "record has no \"id\"")
    if not isinstance(text, str) or not text.strip():
        raise InputError(where, "record has no \"question\" string")
    answerable = record.get("answerable", True)
    if not isinstance(answerable, bool):
        raise InputError(where, f"\"answerable\" must be true or false, got {answerable!r}")
    answers = _strings(record, "answers", where) if answerable else []
    lang = str(record.get("lang") or "")
    if not lang:
        from rag.lang import detect_lang

        lang = detect_lang(text)
    qtype = str(record.get("type") or ("answerable" if answerable else "unanswerable"))
    return Question(id=str(qid), question=text.strip(), answers=answers, doc_ids=_strings(record, "doc_ids", where),
                    answerable=answerable, lang=lang, type=qtype, evidence=_strings(record, "evidence", where))


def load_questions(path: Path) -> list[Question]:
    """Every question in a ``questions.jsonl`` file; ids must be unique."""
    questions: list[Question] = []
    seen: set[str] = set()
    for where, record in _jsonl(path):
        q = question_from_record(record, where)
        if q.id in seen:
            raise InputError(where, f"duplicate question id {q.id!r}")
        seen.add(q.id)
        questions.append(q)
    if not questions:
        raise InputError(str(path), "holds no questions")
    return questions


def load_corpus(path: Path) -> list[Document]:
    """Documents of a ``corpus.jsonl`` file; the first bad record is an error."""
    from ingest.load import document_from_record

    docs = []
    for where, record in _jsonl(path):
        try:
            docs.append(document_from_record(record, default_source=where))
        except InputError as e:
            raise InputError(where, e.problem) from None
    return docs


def _article_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in ARTICLE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def load_articles(folder: Path) -> list[Document]:
    """Articles loaded as ``kabar ingest`` loads them, but keyed by file stem.

    Ingested files are keyed by their absolute path; question sets name documents by
    file stem, so the id is replaced (the text, title and language are unchanged).
    """
    from ingest.load import load_text_file

    docs = []
    for path in _article_files(folder):
        doc = load_text_file(path, MAX_ARTICLE_BYTES)
        docs.append(replace(doc, id=path.stem))
    return docs


def _digest_articles(folder: Path) -> str:
    h = hashlib.sha256()
    for path in _article_files(folder):
        h.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def load_set(path: str | Path) -> EvalSet:
    """A question set from a folder, or a bare questions file (no corpus)."""
    path = Path(path).expanduser()
    if path.is_file():
        return EvalSet(name=path.stem, path=path, questions=load_questions(path))
    if not path.is_dir():
        raise InputError(str(path), "no such folder or questions file")
    questions_path = path / QUESTIONS_FILE
    if not questions_path.is_file():
        raise InputError(str(path), f"has no {QUESTIONS_FILE}; an eval folder holds {QUESTIONS_FILE} and "
                                    f"{CORPUS_FILE} (or an {ARTICLES_DIR}/ folder of .txt files)")
    questions = load_questions(questions_path)
    name = path.resolve().name
    corpus = path / CORPUS_FILE
    if corpus.is_file():
        return EvalSet(name, path, questions, corpus, file_sha256(corpus))
    articles = path / ARTICLES_DIR
    if articles.is_dir() and _article_files(articles):
        return EvalSet(name, path, questions, articles, _digest_articles(articles))
    raise InputError(str(path), f"has no {CORPUS_FILE} and no {ARTICLES_DIR}/ folder of .txt/.md articles; "
                                f"to run the questions against the current collection, pass {questions_path}")


def sample(questions: Sequence[Question], limit: int | None, seed: int = 0) -> list[Question]:
    """A fixed random sample of ``limit`` questions, in file order (all of them without a limit).

    The same file, limit and seed always give the same questions, so runs compare.
    """
    if limit is None or limit >= len(questions):
        return list(questions)
    if limit <= 0:
        raise ValueError(f"limit must be greater than 0. Currently, limit is {limit}.")
    chosen = sorted(random.Random(seed).sample(range(len(questions)), limit))
    return [questions[i] for i in chosen]


#: The two halves of every set: tune on the first, confirm on the second.
HALVES = ("tune", "check")


def half_of(question_id: str) -> str:
    """``"tune"`` or ``"check"``: the parity of the first byte of the id's SHA-256."""
    return HALVES[hashlib.sha256(question_id.encode("utf-8")).digest()[0] % 2]


def half(questions: Sequence[Question], name: str | None) -> list[Question]:
    """The questions of half ``name`` (all of them for None), in file order."""
    if name is None:
        return list(questions)
    if name not in HALVES:
        raise ValueError(f"half must be one of {', '.join(HALVES)}. Currently, half is {name!r}.")
    return [q for q in questions if half_of(q.id) == name]
