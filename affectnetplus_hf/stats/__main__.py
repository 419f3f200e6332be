"""``python -m affectnetplus_hf.stats SOURCE --out DIR`` (same as ``affectnetplus stats``)."""

import sys

from .command import main

sys.exit(main())
