#!/usr/bin/env bash
# What the browser test needs: Debian's chromium and the Python `playwright` package.
# Playwright's own browser download is never used (it cannot reach its CDN here, and a
# distribution browser is patched by Debian): tests launch /usr/bin/chromium through
# Playwright's executable_path. Idempotent: each step runs only when its result is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
fi
if ! .venv/bin/python -c "import playwright" 2>/dev/null; then
  # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces; `pip install playwright` does not download
  # browsers, only `playwright install` does, which this script never runs.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/python -m pip install --quiet "playwright>=1.40"
fi
echo "browser test ready: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium ?'), playwright $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("playwright"))')"
