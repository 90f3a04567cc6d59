"""``kabar doctor``: checks of everything Kabar runs on, for when something is wrong.

Entry point: :func:`run_checks`, which returns one :class:`Check` per part:

- ``cpu``: the processor and the instruction set extensions llama.cpp can use;
- ``llama.cpp build``: what the installed llama-cpp-python was compiled with, as llama.cpp
  itself reports it (read in a child process, so a crashing build cannot take this one down):
  no AMX kernels, nothing this CPU lacks;
- ``model file``: the local model is assembled and whole (size and SHA-256);
- ``llm``: one short answer over a ~300-token prompt, with prompt-eval and generation
  speed in tokens/s (the local server, or the configured remote one);
- ``embedder``: passages and tokens per second of the embedding model;
- ``store``: the Chroma collection opens, and its lexical index agrees with it.

Each check catches its own failure and says what it found, so one broken part never hides
the others. Rendering is the CLI's.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from rag.errors import KabarError
from rag.models import cpu
from rag.settings import Settings

#: ~400 tokens of Indonesian news text: what the llm check sends as its source (the prompt
#: length at which llama.cpp's AMX kernels crashed).
PROBE_SOURCE = (
    "Alibaba Group merombak manajemen unit komputasi awannya setelah membatalkan rencana penawaran umum "
    "perdana saham unit tersebut. Eddie Wu, chief executive Alibaba, kini juga memimpin Alibaba Cloud "
    "Intelligence. Jin Li akan memimpin divisi hybrid cloud, sedangkan Weiguang Liu memimpin divisi cloud "
    "publik. Jiangwei Jiang memimpin unit infrastruktur komputasi awan. Perusahaan menyebut ketidakpastian "
    "akibat pembatasan ekspor cip oleh Amerika Serikat sebagai alasan pembatalan rencana tersebut. "
) * 3
PROBE_QUESTION = "Who leads hybrid cloud, and who leads public cloud? Answer in one sentence."


@dataclass
class Check:
    """One part's result: ``ok``, a one-line ``summary``, and ``details`` for --json."""

    name: str
    ok: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def _guard(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except KabarError as e:
        return Check(name, False, str(e))
    except Exception as e:  # a doctor reports, it does not crash
        return Check(name, False, f"{type(e).__name__}: {e}")


def check_cpu() -> Check:
    flags = cpu.cpu_flags()
    features = cpu.ggml_features(flags)
    amx = sorted(f for f in flags if f.startswith("amx"))
    summary = f"{cpu.cpu_model() or platform.processor() or platform.machine()}; ISA level {cpu.level(features)}"
    if amx:
        summary += f" (has {', '.join(amx)}: not used)"
    return Check("cpu", True, summary, {"model": cpu.cpu_model(), "machine": platform.machine(),
                                        "ggml_features": features, "amx": amx})


def llama_system_info() -> tuple[str, str]:
    """(version, system info) of the installed llama-cpp-python, read in a child process."""
    code = ("import llama_cpp, json; print(json.dumps([llama_cpp.__version__, "
            "llama_cpp.llama_print_system_info().decode()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        if done.returncode < 0:
            from rag.models.local_llm import stopped_message

            raise KabarError(stopped_message(done.returncode, None, what="loading llama.cpp"))
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise KabarError(f"llama-cpp-python cannot be loaded ({last}); install it with scripts/setup.sh")
    version, info = json.loads(done.stdout)
    return version, info


def check_build() -> Check:
    version, info = llama_system_info()
    problems = cpu.build_problems(info, cpu.cpu_flags())
    features = sorted(cpu.build_features(info) & set(cpu.INFO_NEEDS))
    summary = f"llama-cpp-python {version}: {' '.join(features) or 'no SIMD extensions'}"
    summary += "; " + "; ".join(problems) if problems else ", no AMX"
    return Check("llama.cpp build", not problems, summary, {"version": version, "system_info": info})


def check_model(settings: Settings, full_hash: bool) -> Check:
    from rag.models.local_llm import MODEL_SHA256, ensure_model
    from rag.types import file_sha256

    started = time.perf_counter()
    path = ensure_model(settings.models_dir)
    details: dict[str, Any] = {"path": str(path), "bytes": path.stat().st_size}
    if full_hash:
        digest = file_sha256(path)
        details["sha256"] = digest
        if digest != MODEL_SHA256:
            return Check("model file", False, f"{path} is corrupt (sha256 {digest[:16]}…); delete it and ask again: "
                                              "Kabar assembles it anew from its installed parts", details)
    how = "SHA-256 checked now" if full_hash else "SHA-256 checked when assembled"
    return Check("model file", True, f"{path} ({path.stat().st_size / 1e9:.2f} GB, {how}, "
                                     f"{time.perf_counter() - started:.1f}s)", details)


def probe_llm(chat: Any) -> dict[str, Any]:
    """Time one short answer over PROBE_SOURCE: prompt and generation speed as the client sees them."""
    from rag.types import Usage

    messages = [{"role": "system", "content": "Answer from the source, briefly."},
                {"role": "user", "content": f"<source>\n{PROBE_SOURCE}\n</source>\n\n{PROBE_QUESTION}"}]
    started = time.perf_counter()
    first = 0.0
    parts: list[str] = []
    usage = Usage()
    for item in chat.stream(messages, temperature=0.0, max_tokens=32):
        if isinstance(item, Usage):
            usage = item
            continue
        if not first:
            first = time.perf_counter() - started
        parts.append(item)
    total = time.perf_counter() - started
    generated = max(usage.completion_tokens - 1, 0)
    return {
        "answer": "".join(parts).strip(), "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens, "first_token_s": round(first, 3), "total_s": round(total, 3),
        "prompt_tokens_per_s": round(usage.prompt_tokens / first, 1) if first else 0.0,
        "generation_tokens_per_s": round(generated / (total - first), 1) if generated and total > first else 0.0,
    }


def check_llm(settings: Settings) -> Check:
    from rag.models import OpenAIChat

    if settings.local_llm:
        from rag.models.local_llm import local_chat

        local = local_chat(settings)
        server = local.server
        chat: OpenAIChat = local
        started = time.perf_counter()
        try:
            chat.start()  # type: ignore[attr-defined]
            start_s = time.perf_counter() - started
            probe = probe_llm(chat)
        finally:
            chat.close()  # type: ignore[attr-defined]
        probe["server_start_s"] = round(start_s, 2)
        where = f"local server, {server.batch_threads} threads reading, {server.threads} generating"
    else:
        chat = OpenAIChat(settings.llm_model, settings.llm_base_url, settings.llm_api_key,
                          timeout_s=settings.llm_timeout_s)
        probe = probe_llm(chat)
        where = chat.where
    ok = bool(probe["answer"])
    summary = (f"{chat.model} ({where}): {probe['prompt_tokens']}-token prompt at "
               f"{probe['prompt_tokens_per_s']:g} tokens/s, generation {probe['generation_tokens_per_s']:g} tokens/s, "
               f"first token {probe['first_token_s']:.1f}s; answered {probe['answer'][:40]!r}")
    return Check("llm", ok, summary, probe)


def check_embedder(settings: Settings) -> Check:
    from rag.models import make_embedder
    from rag.tokens import count_tokens

    embedder = make_embedder(settings)
    passages = [PROBE_SOURCE[: 700 + i] for i in range(16)]
    embedder.embed_query("warm up")  # loading the model is not embedding speed
    started = time.perf_counter()
    embedder.embed_passages(passages, batch_size=16)
    seconds = time.perf_counter() - started
    tokens = sum(count_tokens(p) for p in passages)
    started = time.perf_counter()
    embedder.embed_query(PROBE_QUESTION)
    query_ms = (time.perf_counter() - started) * 1000
    details = {"model": embedder.model_id, "passages_per_s": round(len(passages) / seconds, 1),
               "tokens_per_s": round(tokens / seconds), "query_ms": round(query_ms, 1)}
    return Check("embedder", True, f"{embedder.model_id}: {details['passages_per_s']:g} passages/s "
                                   f"(~{tokens // len(passages)} tokens each, {details['tokens_per_s']} tokens/s), "
                                   f"a query in {query_ms:.0f} ms", details)


def check_store(settings: Settings) -> Check:
    from rag.models import make_embedder
    from rag.store import ChromaStore

    store = ChromaStore.from_settings(settings, make_embedder(settings).model_id)
    chunks = store.count()
    docs = len(store.documents())
    lexical = store.lexical.count() if store.lexical is not None else chunks
    where = (f"chroma server {settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host
             else str(settings.data_dir / "chroma"))
    details = {"where": where, "collection": settings.collection, "documents": docs, "chunks": chunks,
               "lexical_rows": lexical}
    ok = lexical == chunks
    summary = f"{where}, collection {settings.collection!r}: {docs} documents, {chunks} chunks"
    summary += "; lexical index in step" if ok else f"; lexical index holds {lexical} rows (rebuilds on next open)"
    return Check("store", ok, summary, details)


def run_checks(settings: Settings, llm: bool = True, full_hash: bool = False,
               report: Callable[[Check], None] | None = None) -> list[Check]:
    """Every check in order; ``report`` is called with each as it finishes."""
    steps: list[tuple[str, Callable[[], Check]]] = [("cpu", check_cpu)]
    if settings.local_llm:
        steps += [("llama.cpp build", check_build), ("model file", lambda: check_model(settings, full_hash))]
    if llm:
        steps.append(("llm", lambda: check_llm(settings)))
    steps += [("embedder", lambda: check_embedder(settings)), ("store", lambda: check_store(settings))]
    results = []
    for name, fn in steps:
        result = _guard(name, fn)
        results.append(result)
        if report:
            report(result)
    return results
