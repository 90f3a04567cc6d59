"""The llama.cpp build: flags for a CPU family, never AMX, never an extension the CPU lacks.

The flag choice is checked against /proc/cpuinfo lines of CPUs this machine is not (an
AMX Xeon, a Haswell, a CPU without AVX), and the installed build against this machine.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.models import cpu
from tests.conftest import ROOT

SAPPHIRE_RAPIDS = ("flags : fpu sse4_2 avx f16c fma bmi2 avx2 avx512f avx512cd avx512vl avx512dq avx512bw "
                   "avx512vbmi avx512_vnni avx512_bf16 avx_vnni amx_tile amx_int8 amx_bf16\n")
HASWELL = "model name : Intel(R) Xeon(R) CPU E5-2680 v3\nflags : fpu sse4_2 avx f16c fma bmi2 avx2\n"
NO_AVX = "flags : fpu sse4_1 sse4_2 popcnt\n"
# AVX-512 foundation without the parts ggml's AVX512 switch also compiles with (Xeon Phi).
KNIGHTS_LANDING = "flags : sse4_2 avx f16c fma bmi2 avx2 avx512f avx512cd avx512pf avx512er\n"


def load_build_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("llama_build", ROOT / "scripts" / "llama_build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_amx_cpu_gets_avx512_and_never_amx() -> None:
    flags = cpu.cpu_flags(SAPPHIRE_RAPIDS)
    features = cpu.ggml_features(flags)
    assert {"GGML_AVX2", "GGML_AVX512", "GGML_AVX512_VNNI", "GGML_AVX512_BF16", "GGML_AVX512_VBMI"} <= set(features)
    args = load_build_script().cmake_args(flags, "x86_64")
    assert "-DGGML_NATIVE=OFF" in args
    for amx in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert f"-D{amx}=OFF" in args and f"-D{amx}=ON" not in args
    assert not any(a.endswith("=ON") and "AMX" in a for a in args)


def test_haswell_gets_avx2_without_avx512() -> None:
    features = cpu.ggml_features(cpu.cpu_flags(HASWELL))
    assert "GGML_AVX2" in features and "GGML_FMA" in features
    assert not any(f.startswith("GGML_AVX512") for f in features)
    assert cpu.level(features) == "avx2"
    assert cpu.cpu_model(HASWELL).startswith("Intel(R) Xeon(R) CPU E5-2680")
    args = load_build_script().cmake_args(cpu.cpu_flags(HASWELL), "x86_64")
    assert "-DGGML_AVX512=OFF" in args and "-DGGML_AVX2=ON" in args


def test_partial_avx512_is_not_avx512() -> None:
    features = cpu.ggml_features(cpu.cpu_flags(KNIGHTS_LANDING))
    assert "GGML_AVX2" in features and "GGML_AVX512" not in features


def test_cpu_without_avx_gets_a_baseline_build() -> None:
    args = load_build_script().cmake_args(cpu.cpu_flags(NO_AVX), "x86_64")
    on = {a for a in args if a.endswith("=ON")}
    assert on == {"-DGGML_SSE42=ON"}
    assert cpu.level(cpu.ggml_features(cpu.cpu_flags(NO_AVX))) == "sse42"


def test_the_build_skips_what_kabar_does_not_load() -> None:
    build = load_build_script()
    args = build.cmake_args(cpu.cpu_flags(HASWELL), "x86_64")
    assert {"-DLLAVA_BUILD=OFF", "-DLLAMA_BUILD_TOOLS=OFF", "-DLLAMA_BUILD_SERVER=OFF"} <= set(args)
    [include] = [a.split("=", 1)[1] for a in args if a.startswith("-DCMAKE_PROJECT_INCLUDE=")]
    assert "set(LLAMA_BUILD_COMMON OFF)" in Path(include).read_text()


def test_other_machines_get_no_x86_switches_and_no_native() -> None:
    args = load_build_script().cmake_args(set(), "aarch64")
    assert "-DGGML_NATIVE=OFF" in args and not any("AVX" in a for a in args)


def test_key_names_version_and_level_and_changes_with_the_cpu() -> None:
    build = load_build_script()
    a = build.key(cpu.cpu_flags(SAPPHIRE_RAPIDS), "x86_64")
    b = build.key(cpu.cpu_flags(HASWELL), "x86_64")
    assert a.startswith(f"llama-cpp-python-{build.pinned_version()}-x86_64-avx512")
    assert "-avx2-" in b and a != b


def test_build_problems_name_amx_and_missing_extensions() -> None:
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 |"
    problems = cpu.build_problems(info, cpu.cpu_flags(HASWELL))
    assert any("AMX" in p and "SIGSEGV" in p for p in problems)
    assert any("AVX512" in p and "SIGILL" in p for p in problems)
    assert cpu.build_problems("CPU : AVX = 1 | AVX2 = 1 | FMA = 1 |", cpu.cpu_flags(HASWELL)) == []


llama = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                           reason="llama-cpp-python is not installed (scripts/setup.sh local)")


@llama
def test_installed_build_uses_no_amx_and_nothing_this_cpu_lacks() -> None:
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    info = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "AMX_INT8 = 1" not in info
    assert cpu.build_problems(info, cpu.cpu_flags()) == []
    assert {"AVX2", "FMA"} <= cpu.build_features(info) or "avx2" not in cpu.cpu_flags()


@llama
def test_installed_cpu_library_holds_no_amx_kernel() -> None:
    """An AMX build exports ggml_backend_amx_mul_mat and friends; this one must not.

    Like llama_cpp itself, LLAMA_CPP_LIB_PATH points the check at another build's libraries.
    """
    spec = importlib.util.find_spec("llama_cpp")
    assert spec and spec.origin
    lib_dir = Path(os.environ.get("LLAMA_CPP_LIB_PATH") or Path(spec.origin).parent / "lib")
    libs = list(lib_dir.glob("libggml-cpu*.so*"))
    assert libs, "libggml-cpu is missing from llama_cpp/lib"
    for lib in libs:
        data = lib.read_bytes()
        assert b"ggml_backend_amx" not in data, lib
