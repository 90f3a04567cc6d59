"""How Kabar builds llama.cpp (llama-cpp-python) for the CPU family it is installed on.

    python3 scripts/llama_build.py cmake-args   # the CMAKE_ARGS for this machine
    python3 scripts/llama_build.py key          # names the build: version, machine, ISA level, hash
    python3 scripts/llama_build.py version      # the llama-cpp-python version pyproject.toml pins
    python3 scripts/llama_build.py describe     # what the CPU offers and what the build will use
    python3 scripts/llama_build.py verify       # the installed build: no AMX, nothing the CPU lacks

``-march=native`` is never used: on Intel CPUs with AMX it turns on llama.cpp's AMX
kernels, which crash (SIGSEGV in ``ggml_backend_amx_mul_mat``), and a wheel built that way
dies with SIGILL on an older CPU that gets it from a shared cache. Instead each ISA
extension this CPU has (AVX2, FMA, F16C, BMI2, AVX-512 and its VBMI/VNNI/BF16 parts,
AVX-VNNI) is switched on by name, AMX always off (see ``rag/models/cpu.py``), so the AVX-512 and
AVX2 repacked Q4_K kernels stay. Only the libraries Kabar loads are built: no multimodal
library, tools, examples or tests, and not llama.cpp's "common" library
(``llama-trim.cmake``). ``scripts/setup.sh`` runs this with the system Python, before the
virtual environment holds anything: standard library only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_cpu():  # type: ignore[no-untyped-def]
    """rag/models/cpu.py by path: importing the ``rag`` package would need its dependencies."""
    spec = importlib.util.spec_from_file_location("kabar_cpu", ROOT / "rag" / "models" / "cpu.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cpu = _load_cpu()

#: Never on, whatever the CPU offers.
ALWAYS_OFF = ("GGML_NATIVE", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")
#: Parts of llama-cpp-python Kabar does not load.
TRIM = ("LLAVA_BUILD", "LLAMA_BUILD_TESTS", "LLAMA_BUILD_TOOLS", "LLAMA_BUILD_EXAMPLES", "LLAMA_BUILD_SERVER")
#: Turns off llama.cpp's "common" library, which llama-cpp-python forces on (see the file).
TRIM_INCLUDE = ROOT / "scripts" / "llama-trim.cmake"


def is_x86(machine: str) -> bool:
    return machine.lower() in ("x86_64", "amd64")


def cmake_args(flags: set[str] | None = None, machine: str | None = None) -> list[str]:
    """The CMAKE_ARGS for this machine (or for a CPU with ``flags`` on ``machine``)."""
    machine = machine or platform.machine()
    args = [f"-D{name}=OFF" for name in TRIM + ALWAYS_OFF] + [f"-DCMAKE_PROJECT_INCLUDE={TRIM_INCLUDE}"]
    if is_x86(machine):
        on = cpu.ggml_features(cpu.cpu_flags() if flags is None else flags)
        args += [f"-D{name}={'ON' if name in on else 'OFF'}" for name in cpu.X86_FEATURES]
    return args


def pinned_version() -> str:
    """The llama-cpp-python version pyproject.toml pins."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    m = re.search(r'"llama-cpp-python(?:\[[^\]]*\])?==([^"]+)"', text)
    if not m:
        raise SystemExit("pyproject.toml does not pin llama-cpp-python==VERSION")
    return m.group(1)


def key(flags: set[str] | None = None, machine: str | None = None) -> str:
    """Names a build: another version, ISA level, argument list or compiler is another build."""
    machine = (machine or platform.machine()).lower()
    # The trim file's content, not its path: a checkout elsewhere makes the same build.
    args = [a for a in cmake_args(flags, machine) if not a.startswith("-DCMAKE_PROJECT_INCLUDE=")]
    args.append(TRIM_INCLUDE.read_text(encoding="utf-8"))
    try:
        compiler = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    except OSError:
        compiler = []
    digest = hashlib.sha256("\n".join(args + compiler).encode()).hexdigest()[:10]
    lvl = cpu.level(cpu.ggml_features(cpu.cpu_flags() if flags is None else flags)) if is_x86(machine) else "generic"
    return f"llama-cpp-python-{pinned_version()}-{machine}-{lvl}-{digest}"


def system_info(python: str = sys.executable) -> str:
    """llama.cpp's account of the build installed for ``python``, read in a child (a crash stays there)."""
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"cannot load llama_cpp (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return done.stdout.strip()


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "describe"
    if what == "cmake-args":
        print(shlex.join(cmake_args()))  # scikit-build-core splits CMAKE_ARGS with shlex
    elif what == "key":
        print(key())
    elif what == "version":
        print(pinned_version())
    elif what == "describe":
        print(f"machine {platform.machine()}, ISA level {cpu.level(cpu.ggml_features(cpu.cpu_flags()))}")
        print("CMAKE_ARGS=" + " ".join(cmake_args()))
    elif what == "verify":
        info = system_info(argv[1] if len(argv) > 1 else sys.executable)
        problems = cpu.build_problems(info, cpu.cpu_flags())
        for line in problems:
            print(f"llama.cpp build: {line}", file=sys.stderr)
        if not problems:
            isa = sorted(cpu.build_features(info) & set(cpu.INFO_NEEDS))
            print("llama.cpp build: " + " ".join(isa) + " (no AMX)")
        return 1 if problems else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
