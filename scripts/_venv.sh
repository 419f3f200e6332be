# Sourced by demo.sh and test.sh: create (once) and activate the project's virtual environment.
# VENV overrides its location (default .venv in the repository root).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip >/dev/null
