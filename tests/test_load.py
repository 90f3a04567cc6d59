"""Loading articles from files (ingest.load): formats, encodings, and errors that name the file.

Problems are yielded as InputError values, never raised, so one bad file cannot stop the
others; each message names the file (and line, for JSONL) and says what is wrong.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import pytest

from ingest.load import expand_paths, load_file
from rag.errors import InputError
from rag.types import Document, content_hash, display_title

MB = 1_000_000
ARTICLE = "Jin Li Pimpin Unit Hybrid Cloud\n\nHangzhou, Desember 2023\n\nJin Li dipercaya memimpin unit hybrid cloud.\n"


def load_all(paths: list[Path], max_bytes: int = 20 * MB) -> tuple[list[Document], list[InputError]]:
    """What ingest does with paths: expand, then load each file; errors collected, not raised."""
    files, errors, _skipped = expand_paths(paths)
    docs: list[Document] = []
    for path in files:
        for item in load_file(path, max_bytes):
            (errors if isinstance(item, InputError) else docs).append(item)  # type: ignore[arg-type]
    return docs, list(errors)


def one_error(path: Path, max_bytes: int = 20 * MB) -> InputError:
    docs, errors = load_all([path], max_bytes)
    assert docs == []
    assert len(errors) == 1, errors
    return errors[0]


# -- formats -----------------------------------------------------------------------------


def test_txt_first_non_empty_line_is_the_title(tmp_path: Path) -> None:
    path = tmp_path / "hybrid.txt"
    path.write_text("\n\n  " + ARTICLE, encoding="utf-8")
    [doc], errors = load_all([path])
    assert errors == []
    assert doc.title == "Jin Li Pimpin Unit Hybrid Cloud"
    assert doc.text.startswith("Hangzhou, Desember 2023")
    assert "Pimpin" not in doc.text
    assert doc.source == str(path.resolve())
    assert doc.id == content_hash("file", str(path.resolve()))
    assert doc.lang == "id"


def test_txt_keeps_a_leading_hash_in_the_title(tmp_path: Path) -> None:
    path = tmp_path / "tag.txt"
    path.write_text("#1 in cloud\n\nThe company said it leads the market.", encoding="utf-8")
    [doc], _ = load_all([path])
    assert doc.title == "#1 in cloud"


@pytest.mark.parametrize("heading", ["# ", "## ", "#"])
def test_md_title_loses_its_hashes(tmp_path: Path, heading: str) -> None:
    path = tmp_path / "story.md"
    path.write_text(f"{heading}Who leads hybrid cloud\n\nThe company said Jin Li leads it.\n", encoding="utf-8")
    [doc], errors = load_all([path])
    assert errors == []
    assert doc.title == "Who leads hybrid cloud"
    assert doc.text == "The company said Jin Li leads it."
    assert doc.lang == "en"


def test_text_is_cleaned(tmp_path: Path) -> None:
    path = tmp_path / "messy.txt"
    path.write_bytes("Title\r\n\r\nOne\u200b  line\t here.   \r\n\r\n\r\n\r\nNext line.".encode())
    [doc], _ = load_all([path])
    assert doc.text == "One line here.\n\nNext line."


def test_jsonl_corpus_format(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    records = [
        {"id": "alibaba", "title": "Alibaba reshuffle", "text": "Jin Li memimpin unit hybrid cloud.", "lang": "id",
         "url": "https://example.com/alibaba", "published": "2023-12-05", "source": "Leifeng"},
        {"text": "The company said AWS will invest in Indonesia."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    docs, errors = load_all([path])
    assert errors == []
    full, minimal = docs
    assert (full.id, full.title, full.text, full.lang, full.url, full.published, full.source) == (
        "alibaba", "Alibaba reshuffle", "Jin Li memimpin unit hybrid cloud.", "id", "https://example.com/alibaba",
        "2023-12-05", "Leifeng")
    assert minimal.text == "The company said AWS will invest in Indonesia."
    assert minimal.title == ""  # no invented title: displays use display_title()
    assert display_title(minimal.title, minimal.text) == "The company said AWS will invest in Indonesia."
    assert minimal.id == content_hash("text", minimal.text)
    assert minimal.lang == "en"
    assert minimal.source == f"{path}:2"


# -- errors: each names the file and the problem -----------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    err = one_error(path)
    assert err.source == str(path)
    assert str(path) in str(err) and "empty" in str(err)


def test_whitespace_only_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text("  \n\n\t \n", encoding="utf-8")
    err = one_error(path)
    assert str(path) in str(err) and "empty" in str(err)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    err = one_error(path)
    assert str(path) in str(err) and "binary" in str(err)


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Café de Jakarta\n\nHarga naik 5 % à la carte.".encode("latin-1"))
    err = one_error(path)
    assert str(path) in str(err)
    assert "UTF-8" in str(err) and "0xe9" in str(err)


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    path.write_text("Judul\n\n" + "kata " * 400_000, encoding="utf-8")  # 2 MB
    err = one_error(path, max_bytes=1 * MB)
    assert str(path) in str(err)
    assert "2.0 MB" in str(err) and "KABAR_MAX_FILE_MB" in str(err)
    assert re.search(r"\b1(\.0)? MB limit", str(err)), str(err)


def test_size_limit_under_one_megabyte_is_reported_as_set(tmp_path: Path) -> None:
    # KABAR_MAX_FILE_MB=0.5 must not be reported as "over the 0 MB limit".
    path = tmp_path / "big.txt"
    path.write_text("Judul\n\n" + "kata " * 140_000, encoding="utf-8")  # 0.7 MB
    err = one_error(path, max_bytes=500_000)
    assert "0.7 MB" in str(err)
    assert "0.5 MB limit" in str(err), str(err)


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        json.dumps({"id": "a", "text": "Jin Li memimpin unit hybrid cloud."}) + "\n"
        "\n"
        '{"id": "b", "text": "broken\n'
        + json.dumps({"id": "c", "text": "AWS will invest in Indonesia."}) + "\n",
        encoding="utf-8",
    )
    docs, errors = load_all([path])
    assert [d.id for d in docs] == ["a", "c"]
    [err] = errors
    assert err.source == f"{path}:3"
    assert f"{path}:3" in str(err) and "not valid JSON" in str(err)


def test_jsonl_record_without_text(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        json.dumps({"id": "no-text", "title": "Only a title"}) + "\n"
        + json.dumps({"id": "blank", "text": "   "}) + "\n"
        + json.dumps({"id": "number", "text": 42}) + "\n"
        + json.dumps(["not", "an", "object"]) + "\n"
        + json.dumps({"id": "ok", "text": "Jin Li memimpin unit hybrid cloud."}) + "\n",
        encoding="utf-8",
    )
    docs, errors = load_all([path])
    assert [d.id for d in docs] == ["ok"]
    assert [e.source for e in errors] == [f"{path}:{n}" for n in (1, 2, 3, 4)]
    for err in errors[:3]:
        assert '"text"' in str(err)
    assert "JSON object" in str(errors[3])


def test_jsonl_record_with_only_invisible_text(tmp_path: Path) -> None:
    # Zero-width and control characters survive str.strip() but not cleaning: such a record
    # has no text and must be an error, not a document with nothing to chunk.
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"id": "zw", "text": "\u200b\u200b\x07"}) + "\n"
                    + json.dumps({"id": "ok", "text": "Jin Li memimpin unit hybrid cloud."}) + "\n", encoding="utf-8")
    docs, errors = load_all([path])
    assert [d.id for d in docs] == ["ok"]
    [err] = errors
    assert err.source == f"{path}:1"


def test_empty_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("", encoding="utf-8")
    err = one_error(path)
    assert str(path) in str(err) and "empty" in str(err)


@pytest.mark.parametrize("name", ["report.docx", "photo.jpg", "README"])
def test_unsupported_extension_given_explicitly(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("Some text", encoding="utf-8")
    err = one_error(path)
    assert str(path) in str(err)
    assert "unsupported file type" in str(err)
    assert ".txt" in str(err)  # says what is supported


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "article.txt"
    err = one_error(path)
    assert str(path) in str(err) and "no such file" in str(err)


def test_errors_do_not_stop_other_files(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(ARTICLE, encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"\x00\x01\x02")
    docs, errors = load_all([empty, good, binary, tmp_path / "missing.txt"])
    assert [d.title for d in docs] == ["Jin Li Pimpin Unit Hybrid Cloud"]
    assert sorted(Path(e.source).name for e in errors) == ["binary.md", "empty.txt", "missing.txt"]


# -- folders -----------------------------------------------------------------------------


def test_folder_recursion_skips_hidden_and_counts_unsupported(tmp_path: Path) -> None:
    root = tmp_path / "news"
    (root / "2023" / "12").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "top.txt").write_text("Top\n\nThe company said it leads.", encoding="utf-8")
    (root / "2023" / "12" / "deep.md").write_text("# Deep\n\nJin Li memimpin unit.", encoding="utf-8")
    (root / "2023" / "corpus.jsonl").write_text(json.dumps({"id": "j", "text": "From JSONL."}) + "\n",
                                                encoding="utf-8")
    (root / ".hidden.txt").write_text("Hidden\n\nShould not load.", encoding="utf-8")
    (root / ".git" / "notes.txt").write_text("Git\n\nShould not load.", encoding="utf-8")
    (root / "2023" / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (root / "notes.docx").write_bytes(b"PK\x03\x04")

    files, errors, skipped = expand_paths([root])
    assert errors == []
    assert sorted(p.name for p in files) == ["corpus.jsonl", "deep.md", "top.txt"]  # type: ignore[union-attr]
    assert sorted(p.name for p in skipped) == ["notes.docx", "photo.jpg"]

    docs, errors = load_all([root])
    assert errors == []
    assert sorted(d.title for d in docs) == ["", "Deep", "Top"]


def test_folder_with_uppercase_suffix(tmp_path: Path) -> None:
    (tmp_path / "LOUD.TXT").write_text("Loud\n\nText.", encoding="utf-8")
    docs, errors = load_all([tmp_path])
    assert [d.title for d in docs] == ["Loud"] and errors == []


# -- encodings ---------------------------------------------------------------------------


def test_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(codecs.BOM_UTF8 + ARTICLE.encode("utf-8"))
    [doc], errors = load_all([path])
    assert errors == []
    assert doc.title == "Jin Li Pimpin Unit Hybrid Cloud"


@pytest.mark.parametrize(("bom", "codec"), [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_utf16_bom(tmp_path: Path, bom: bytes, codec: str) -> None:
    path = tmp_path / "utf16.txt"
    path.write_bytes(bom + ("Berita “penting” 🎉\n\n" + ARTICLE).encode(codec))
    [doc], errors = load_all([path])
    assert errors == []
    assert doc.title == "Berita “penting” 🎉"
    assert "Jin Li dipercaya memimpin unit hybrid cloud." in doc.text


def test_broken_utf16_is_not_called_utf8(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "Judul\n\nIsi".encode("utf-16-le") + b"A")  # odd byte count
    err = one_error(path)
    assert str(path) in str(err)
    assert "UTF-16" in str(err), str(err)


def test_utf16_bom_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(codecs.BOM_UTF16_LE + (json.dumps({"id": "u", "text": "Teks “UTF-16”."}) + "\n")
                     .encode("utf-16-le"))
    docs, errors = load_all([path])
    assert errors == [] and [d.text for d in docs] == ["Teks “UTF-16”."]
