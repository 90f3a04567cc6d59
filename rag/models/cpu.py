"""What this CPU can run, and whether a llama.cpp build fits it.

Two users: ``scripts/llama_build.py`` picks the build flags for the machine Kabar is being
installed on (it loads this file by path, before anything is installed, so it must need
nothing beyond the standard library), and ``kabar doctor`` checks the installed build
against the CPU it runs on. Linux's ``/proc/cpuinfo`` is the only source read; elsewhere
the flag set is empty and nothing is judged.

The rule both follow: AMX is never used (llama.cpp's AMX kernels crash on the machines
Kabar runs on), and a build must not use an instruction set extension the CPU lacks.
"""

from __future__ import annotations

import re
from pathlib import Path

#: ggml's CMake switch -> the /proc/cpuinfo flags a CPU needs for it (all of them).
X86_FEATURES: dict[str, tuple[str, ...]] = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_F16C": ("f16c",),
    "GGML_FMA": ("fma",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX2": ("avx2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    # ggml's AVX512 switch compiles with -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw.
    "GGML_AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "GGML_AVX512_VBMI": ("avx512vbmi",),
    "GGML_AVX512_VNNI": ("avx512_vnni",),
    "GGML_AVX512_BF16": ("avx512_bf16",),
}

#: A feature llama.cpp's system info reports as ``NAME = 1`` -> the /proc/cpuinfo flags it needs.
INFO_NEEDS: dict[str, tuple[str, ...]] = {
    "SSE3": ("pni",), "SSSE3": ("ssse3",), "AVX": ("avx",), "AVX_VNNI": ("avx_vnni",), "AVX2": ("avx2",),
    "F16C": ("f16c",), "FMA": ("fma",), "BMI2": ("bmi2",), "AVX512": ("avx512f",),
    "AVX512_VBMI": ("avx512vbmi",), "AVX512_VNNI": ("avx512_vnni",), "AVX512_BF16": ("avx512_bf16",),
    "AMX_INT8": ("amx_int8",),
}


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name from /proc/cpuinfo ("" where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ""
    m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return m.group(1).strip() if m else ""


def ggml_features(flags: set[str]) -> list[str]:
    """The ggml ISA switches a CPU with ``flags`` can run, in X86_FEATURES order; never AMX.

    Each extension needs the ones below it (ggml's code paths assume so): no AVX2 without
    AVX, FMA and F16C; no AVX-512 without AVX2; no VBMI/VNNI/BF16 without AVX-512.
    """
    on = [name for name, needs in X86_FEATURES.items() if all(f in flags for f in needs)]
    if not {"GGML_AVX", "GGML_FMA", "GGML_F16C"} <= set(on):
        on = [n for n in on if n in ("GGML_SSE42", "GGML_AVX", "GGML_F16C")]
    if "GGML_AVX2" not in on:
        on = [n for n in on if not n.startswith("GGML_AVX512") and n != "GGML_AVX_VNNI"]
    if "GGML_AVX512" not in on:
        on = [n for n in on if not n.startswith("GGML_AVX512_")]
    return on


def level(features: list[str]) -> str:
    """A short name for the ISA level of a list of ggml switches, e.g. ``avx512-vbmi-vnni-bf16``."""
    if "GGML_AVX512" in features:
        extra = [f.removeprefix("GGML_AVX512_").lower() for f in features if f.startswith("GGML_AVX512_")]
        return "avx512" + "".join(f"-{e}" for e in extra)
    if "GGML_AVX2" in features:
        return "avx2" + ("-avxvnni" if "GGML_AVX_VNNI" in features else "")
    if "GGML_AVX" in features:
        return "avx"
    return "sse42" if "GGML_SSE42" in features else "baseline"


def build_features(system_info: str) -> set[str]:
    """The features a llama.cpp build says it was compiled with (``AVX2 = 1 | ...``)."""
    return {m.group(1) for m in re.finditer(r"\b([A-Z0-9_]+) = 1\b", system_info)}


def build_problems(system_info: str, flags: set[str]) -> list[str]:
    """What is wrong with a llama.cpp build (its system info) for a CPU with ``flags``."""
    found = build_features(system_info)
    out = []
    if "AMX_INT8" in found:
        out.append("it uses llama.cpp's AMX kernels, which crash (SIGSEGV); rebuild with scripts/setup.sh")
    if flags:
        missing = sorted(n for n in found if n in INFO_NEEDS and n != "AMX_INT8"
                         and not all(f in flags for f in INFO_NEEDS[n]))
        if missing:
            out.append(f"it uses {', '.join(missing)}, which this CPU lacks (it would die with SIGILL); "
                       "rebuild with scripts/setup.sh")
    return out
