"""Loading articles from files into :class:`rag.types.Document` objects.

Supported: ``.txt`` and ``.md`` articles (the first non-empty line is the title, the
rest the body), and ``.jsonl`` files with one article per line in Kabar's corpus format
(``{"id", "title", "text", "lang", "url", "published", "source"}``, only ``text``
required). Folders are walked recursively; hidden entries and other file types in them
are skipped. Each problem is an :class:`~rag.errors.InputError` naming the file (and line)
that is yielded, not raised, so one bad file never stops the others.

Does not fetch URLs, parse HTML or PDF, or guess legacy encodings: text must be UTF-8
(a UTF-8 or UTF-16 byte-order mark is honoured).
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Iterable, Iterator, Union

from ingest.clean import clean_text
from rag.errors import InputError
from rag.lang import detect_lang
from rag.types import Document, content_hash

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
JSONL_SUFFIXES = {".jsonl"}
SUPPORTED = TEXT_SUFFIXES | JSONL_SUFFIXES

Loaded = Union[Document, InputError]


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[InputError], list[Path]]:
    """Files to load, errors for paths that cannot be, and files skipped inside folders."""
    files: list[Path] = []
    errors: list[InputError] = []
    skipped: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts) or not child.is_file():
                    continue
                (files if child.suffix.lower() in SUPPORTED else skipped).append(child)
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED:
                files.append(path)
            else:
                errors.append(InputError(str(path), f"unsupported file type {path.suffix or '(none)'!r}; "
                                                    f"Kabar ingests {', '.join(sorted(SUPPORTED))}"))
        else:
            errors.append(InputError(str(path), "no such file or folder"))
    return files, errors, skipped


def read_text(path: Path, max_bytes: int) -> str:
    """The file's text, or an InputError saying why it cannot be read as an article."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(str(path), f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit "
                                        "(KABAR_MAX_FILE_MB); split it or raise the limit")
        data = path.read_bytes()
    except OSError as e:
        raise InputError(str(path), f"cannot read: {e.strerror or e}") from e
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
        if b"\x00" in data[:8192]:
            raise InputError(str(path), "looks like a binary file (contains NUL bytes), not text")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        name = "UTF-16" if encoding == "utf-16" else "UTF-8"
        raise InputError(str(path), f"is not valid {name} (byte 0x{data[e.start]:02x} at offset {e.start}); "
                                    "convert it to UTF-8 and ingest it again") from None
    if not text.strip():
        raise InputError(str(path), "is empty")
    return text


def _split_title(text: str, markdown: bool) -> tuple[str, str]:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip():
            title = line.strip().lstrip("#").strip() if markdown else line.strip()
            body = "\n".join(lines[i + 1 :]).strip()
            return title, body or title
    return "", ""


def load_text_file(path: Path, max_bytes: int) -> Document:
    text = clean_text(read_text(path, max_bytes))
    if not text:
        raise InputError(str(path), "has no text left after cleaning")
    title, body = _split_title(text, markdown=path.suffix.lower() != ".txt")
    source = str(path.resolve())
    return Document(id=content_hash("file", source), title=title, text=body, source=source,
                    lang=detect_lang(body))


def load_jsonl(path: Path, max_bytes: int) -> Iterator[Loaded]:
    """One Document per valid line; an InputError for each bad line."""
    try:
        text = read_text(path, max_bytes)
    except InputError as e:
        yield e
        return
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            yield InputError(where, f"not valid JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(record, dict):
            yield InputError(where, f"expected a JSON object, got {type(record).__name__}")
            continue
        try:
            yield document_from_record(record, default_source=where)
        except InputError as e:
            yield InputError(where, e.problem)


def document_from_record(record: dict, default_source: str) -> Document:
    """A Document from a corpus-format record; ``text`` is required."""
    raw = record.get("text")
    if not isinstance(raw, str) or not raw.strip():
        raise InputError(default_source, "record has no \"text\" string")
    body = clean_text(raw)
    if not body:
        raise InputError(default_source, "record has no \"text\" string (nothing left after cleaning)")
    # No title stays no title: a title made of the text's first words would repeat them in
    # the lexical index and in every prompt. Displays fall back to rag.types.display_title.
    title = clean_text(str(record.get("title") or ""))
    doc_id = str(record.get("id") or content_hash("text", body))
    lang = str(record.get("lang") or detect_lang(body))
    url = str(record.get("url") or "")
    source = str(record.get("source") or url or default_source)
    return Document(id=doc_id, title=title, text=body, source=source, lang=lang, url=url,
                    published=str(record.get("published") or ""))


def load_file(path: Path, max_bytes: int) -> Iterator[Loaded]:
    """Documents (or errors) from one supported file."""
    if path.suffix.lower() in JSONL_SUFFIXES:
        yield from load_jsonl(path, max_bytes)
        return
    try:
        yield load_text_file(path, max_bytes)
    except InputError as e:
        yield e
