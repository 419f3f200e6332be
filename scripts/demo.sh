#!/usr/bin/env bash
# Set up the virtual environment (core only, no torch) and run the demo on the built-in sample.
set -euo pipefail
. "$(dirname "$0")/_venv.sh"
python -m pip install -q -e .
affectnetplus demo "$@"
