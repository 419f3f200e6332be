"""``python -m affectnetplus_hf.stats SOURCE --out DIR`` (same as ``affectnetplus stats``, Ctrl-C and errors handled alike)."""

import sys

from ..cli import run_program

sys.exit(run_program(["stats", *sys.argv[1:]], program=True))
