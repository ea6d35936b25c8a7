#!/usr/bin/env bash
# Creates the gitignored virtual environment .cache/venv for tools/finetune (Python 3.10+).
# torch is installed first on its own so pip does not pull a multi-GB CUDA build on CPU machines
# (set TORCH_SPEC to choose another build, e.g. a CUDA one on a GPU machine).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.cache/venv"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
# The CPU wheel of torch 2.13.0 is what pip finds here (the machine's pip configuration); elsewhere set
# TORCH_SPEC, e.g. TORCH_SPEC="torch==2.13.0 --index-url <the PyTorch CPU index>".
"$VENV/bin/pip" install ${TORCH_SPEC:-torch==2.13.0}
"$VENV/bin/pip" install -r "$ROOT/tools/finetune/requirements.txt"
echo "venv ready: $VENV/bin/python"
