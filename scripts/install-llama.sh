#!/usr/bin/env bash
# Install llama-cpp-python into .venv, built for this machine's CPU family (never -march=native,
# never AMX: see scripts/llama_build.py). The wheel is kept in a cache keyed by everything that
# shapes it (version, ISA level, CMake arguments, compiler), so a reinstall on this machine takes
# seconds; pip's own wheel cache is bypassed because it is keyed by the source package alone and
# would hand back a wheel built with other flags. Does nothing when .venv already holds the build
# of this key (.venv/kabar-llama-build records it); an older build (e.g. a -march=native one) is
# replaced, even at the same version.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
key=$("$py" scripts/llama_build.py key)
stamp=.venv/kabar-llama-build
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && "$py" -c "import llama_cpp" 2>/dev/null; then
  exit 0
fi
version=$("$py" scripts/llama_build.py version)
cache="${KABAR_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kabar/wheels}/$key"
if ! ls "$cache"/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $version for this CPU ($key): a few minutes on 2 cores" >&2
  if ! command -v c++ >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    # A C/C++ compiler from the distribution (scikit-build-core fetches CMake and Ninja from PyPI
    # when the machine lacks them).
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends build-essential
  fi
  tmp=$(mktemp -d)
  started=$(date +%s)
  CMAKE_ARGS="$("$py" scripts/llama_build.py cmake-args)" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$py" -m pip wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python -w "$tmp" \
    "llama-cpp-python==$version"
  mkdir -p "$cache"
  mv "$tmp"/llama_cpp_python-*.whl "$cache"/
  rm -rf "$tmp"
  echo "built in $(( $(date +%s) - started )) s; kept in $cache" >&2
fi
"$py" -m pip install --quiet --force-reinstall --no-deps "$cache"/llama_cpp_python-"$version"-*.whl
rm -f "$stamp"  # written by setup.sh once the build is verified
