"""Packages depend one way: rag/ imports none of ingest/, ui/, eval/ (not even lazily inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "rag").glob("*.py")), ids=lambda p: p.name)
def test_rag_does_not_import_ingest_ui_or_eval(path: Path) -> None:
    assert imported_packages(path) & {"ingest", "ui", "eval"} == set()


@pytest.mark.parametrize("path", sorted((ROOT / "ingest").glob("*.py")), ids=lambda p: p.name)
def test_ingest_does_not_import_ui_or_eval(path: Path) -> None:
    assert imported_packages(path) & {"ui", "eval"} == set()


def test_the_scan_sees_a_lazy_import(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from ingest.pipeline import ingest\n    return ingest\n", encoding="utf-8")
    assert "ingest" in imported_packages(source)
