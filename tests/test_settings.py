"""Settings (rag.settings): read from the environment, validated, keys kept out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.settings import ENV, Settings


def test_from_env_reads_variables(tmp_path: Path) -> None:
    env = {
        "KABAR_DATA_DIR": str(tmp_path / "data"),
        "KABAR_COLLECTION": "berita",
        "KABAR_CHROMA_HOST": "chroma.local",
        "KABAR_CHROMA_PORT": "9000",
        "OPENAI_BASE_URL": "http://127.0.0.1:8080/v1",
        "OPENAI_API_KEY": "sk-test",
        "KABAR_LLM_MODEL": "qwen",
        "KABAR_LLM_TIMEOUT": "30.5",
        "KABAR_TOP_K": "5",
        "KABAR_CHUNK_TOKENS": "120",
        "KABAR_CHUNK_OVERLAP": "20",
        "KABAR_TEMPERATURE": "0",
        "KABAR_MAX_FILE_MB": "0.5",
    }
    s = Settings.from_env(env)
    assert s.data_dir == tmp_path / "data"
    assert (s.collection, s.chroma_host, s.chroma_port) == ("berita", "chroma.local", 9000)
    assert (s.llm_base_url, s.llm_api_key, s.llm_model, s.llm_timeout_s) == (
        "http://127.0.0.1:8080/v1", "sk-test", "qwen", 30.5)
    assert (s.top_k, s.chunk_tokens, s.chunk_overlap, s.temperature, s.max_file_mb) == (5, 120, 20, 0.0, 0.5)
    assert isinstance(s.top_k, int) and isinstance(s.llm_timeout_s, float)
    assert not s.local_llm


def test_from_env_defaults_and_empty_values() -> None:
    s = Settings.from_env({"KABAR_TOP_K": "", "XDG_DATA_HOME": "/srv/xdg"})
    assert s.top_k == Settings.top_k == 24
    assert s.data_dir == Path("/srv/xdg/kabar")
    assert s.local_llm and s.local_embeddings


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    monkeypatch.setenv("KABAR_TOP_K", "3")
    s = Settings.from_env()
    assert s.top_k == 3
    assert s.data_dir == isolated_env


def test_from_env_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.from_env({"KABAR_DATA_DIR": "~/kabar"}).data_dir == tmp_path / "kabar"


def test_overrides_win_and_none_is_ignored(tmp_path: Path) -> None:
    s = Settings.from_env({"KABAR_TOP_K": "5", "KABAR_COLLECTION": "env"}, top_k=2, collection=None,
                          data_dir=str(tmp_path))
    assert (s.top_k, s.collection, s.data_dir) == (2, "env", tmp_path)


def test_every_env_variable_names_a_field() -> None:
    names = set(Settings.__dataclass_fields__)
    assert set(ENV) <= names
    assert len(set(ENV.values())) == len(ENV)


@pytest.mark.parametrize(
    ("var", "raw"),
    [("KABAR_TOP_K", "five"), ("KABAR_TOP_K", "3.5"), ("KABAR_CHROMA_PORT", "80a"), ("KABAR_TEMPERATURE", "hot"),
     ("KABAR_LLM_TIMEOUT", "1m")],
)
def test_bad_number_names_the_variable(var: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({var: raw})
    assert var in str(info.value) and repr(raw) in str(info.value)


@pytest.mark.parametrize(
    "name", ["chunk_tokens", "top_k", "context_tokens", "max_answer_tokens", "embed_batch_size",
             "llm_context_tokens", "llm_timeout_s", "max_file_mb"])
def test_positive_settings(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(**{name: 0})
    assert str(info.value) == f"{name} must be greater than 0. Currently, {name} is 0."


def test_top_k_message() -> None:
    with pytest.raises(ConfigError, match=r"^top_k must be greater than 0\. Currently, top_k is 0\.$"):
        Settings(top_k=0)


def test_bad_value_from_env_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="top_k is -3"):
        Settings.from_env({"KABAR_TOP_K": "-3"})


@pytest.mark.parametrize(("tokens", "overlap"), [(100, 100), (100, 150), (100, -1)])
def test_overlap_must_be_below_chunk_tokens(tokens: int, overlap: int) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(chunk_tokens=tokens, chunk_overlap=overlap)
    assert "chunk_overlap" in str(info.value) and f"chunk_overlap is {overlap}" in str(info.value)


def test_overlap_checked_against_chunk_tokens_from_env() -> None:
    with pytest.raises(ConfigError, match="chunk_overlap"):
        Settings.from_env({"KABAR_CHUNK_TOKENS": "12"})  # default overlap 16 no longer fits
    assert Settings.from_env({"KABAR_CHUNK_TOKENS": "12", "KABAR_CHUNK_OVERLAP": "0"}).chunk_overlap == 0


@pytest.mark.parametrize(("changes", "words"), [
    ({"temperature": 2.5}, "temperature"), ({"temperature": -0.1}, "temperature"),
    ({"llm_threads": -1}, "llm_threads"), ({"collection": "  "}, "collection"),
])
def test_other_validation(changes: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Settings(**changes)  # type: ignore[arg-type]


def test_with_validates_again() -> None:
    s = Settings(top_k=4)
    assert s.with_(top_k=6).top_k == 6 and s.top_k == 4
    with pytest.raises(ConfigError, match="top_k"):
        s.with_(top_k=0)


def test_api_keys_are_not_in_repr() -> None:
    s = Settings.from_env({"OPENAI_API_KEY": "sk-llm-secret", "KABAR_EMBED_API_KEY": "sk-embed-secret"})
    assert s.llm_api_key == "sk-llm-secret" and s.embed_api_key == "sk-embed-secret"
    for text in (repr(s), str(s), f"{s}", repr(s.with_(top_k=3))):
        assert "sk-llm-secret" not in text and "sk-embed-secret" not in text
    assert "llm_model" in repr(s)  # the rest is still shown


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().top_k = 3  # type: ignore[misc]


def test_the_environment_is_read_in_one_place() -> None:
    """Only rag/settings.py reads Kabar's configuration from the environment."""
    import re

    root = Path(__file__).resolve().parent.parent
    reading = re.compile(r"os\.environ\.get\(|os\.getenv\(|os\.environ\[|environ=None|os\.environ if")
    readers = [str(p.relative_to(root)) for pkg in ("rag", "ingest", "eval", "ui") for p in (root / pkg).rglob("*.py")
               if reading.search(p.read_text(encoding="utf-8"))]
    assert readers == ["rag/settings.py"]


def test_every_env_variable_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert [var for var in ENV.values() if var not in readme] == []
