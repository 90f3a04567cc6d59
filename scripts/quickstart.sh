#!/usr/bin/env bash
# The README's main command: install, ingest the sample articles, answer the example
# question on the command line, then open the chat page (Ctrl-C stops it).
# Offline and key-free by default: the local model answers. `--no-ui` stops after the answer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh local
.venv/bin/kabar ingest examples/articles
.venv/bin/kabar ask "who leads hybrid cloud?"
if [ "${1:-}" != "--no-ui" ]; then
  exec .venv/bin/kabar ui --open
fi
