#!/usr/bin/env bash
# Set up the virtual environment with the CPU build of torch and run the whole test suite.
# torch is pinned first so that the extra's `torch>=2.1` is already satisfied (no CUDA build).
set -euo pipefail
. "$(dirname "$0")/_venv.sh"
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[torch,test]"
python -m pytest -q "$@"
