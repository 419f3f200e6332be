#!/usr/bin/env bash
# Set up a virtual environment (core only, no torch) and run the demo on the built-in sample.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip >/dev/null
python -m pip install -q -e .
affectnetplus demo "$@"
