#!/usr/bin/env bash
# The README's test command: install everything the tests need, then lint and test.
# pytest's "no tests collected" (exit 5) counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "local,test"
scripts/install-browser.sh
.venv/bin/ruff check rag ingest ui eval tests scripts
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
