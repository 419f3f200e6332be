#!/usr/bin/env bash
# Set up the virtual environment (no torch; matplotlib for the plots, the `stats` extra) and run
# the demo on the built-in sample: it ends with the paths of report.html and of the dataset card.
set -euo pipefail
. "$(dirname "$0")/_venv.sh"
python -m pip install -q -e ".[stats]"
affectnetplus demo "$@"
