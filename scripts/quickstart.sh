#!/usr/bin/env bash
# The README's main command: install, ingest the sample articles, ask the example question.
# Offline and key-free by default: the local model answers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh local
.venv/bin/kabar ingest examples/articles
.venv/bin/kabar ask "who leads hybrid cloud?"
