"""``kabar doctor``: every part checked with the real components, a broken one named."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import models_dir_for_tests
from ui.main import main

needs_llama = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                 reason="llama-cpp-python is not installed (scripts/setup.sh local)")


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, dict]]:
    code = main(["doctor", "--json", *args])
    checks = json.loads(capsys.readouterr().out)
    return code, {c["name"]: c for c in checks}


@needs_llama
@pytest.mark.llm
def test_doctor_checks_everything_and_measures_the_local_model(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KABAR_MODEL_DIR", str(models_dir_for_tests()))
    code, checks = doctor(capsys)
    assert list(checks) == ["cpu", "llama.cpp build", "model file", "llm", "embedder", "store"]
    assert code == 0, checks
    assert "no AMX" in checks["llama.cpp build"]["summary"]
    assert "AMX_INT8 = 1" not in checks["llama.cpp build"]["details"]["system_info"]
    llm = checks["llm"]["details"]
    assert llm["prompt_tokens"] >= 300 and "Jin Li" in llm["answer"]
    assert llm["prompt_tokens_per_s"] > 0 and llm["generation_tokens_per_s"] > 0
    assert checks["embedder"]["details"]["passages_per_s"] > 0
    assert checks["store"]["details"]["chunks"] == 0


@needs_llama
def test_a_broken_runtime_is_named_and_the_other_checks_still_run(capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("KABAR_MODEL_DIR", str(models_dir_for_tests()))
    monkeypatch.setenv("LLAMA_CPP_LIB_PATH", str(tmp_path / "no-such-build"))  # read by the child process
    code, checks = doctor(capsys, "--no-llm")
    assert code == 1
    assert not checks["llama.cpp build"]["ok"]
    assert "llama-cpp-python cannot be loaded" in checks["llama.cpp build"]["summary"]
    assert checks["embedder"]["ok"] and checks["store"]["ok"] and "llm" not in checks


def test_doctor_prints_one_line_per_check(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # a remote LLM: no build or model checks
    code = main(["doctor", "--no-llm"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.split()[1] for line in lines] == ["cpu", "embedder", "store"]
    assert all(line.startswith("ok") for line in lines)
