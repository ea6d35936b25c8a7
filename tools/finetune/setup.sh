#!/usr/bin/env bash
# Creates the gitignored virtual environment .cache/venv for tools/finetune (Python 3.10+).
# torch is installed first on its own so pip does not pull a multi-GB CUDA build on CPU machines
# (set TORCH_SPEC to choose another build, e.g. a CUDA one on a GPU machine).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.cache/venv"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
"$VENV/bin/pip" install ${TORCH_SPEC:-"torch==2.13.0+cpu" --extra-index-url https://download.pytorch.org/whl/cpu}
"$VENV/bin/pip" install -r "$ROOT/tools/finetune/requirements.txt"
echo "venv ready: $VENV/bin/python"
