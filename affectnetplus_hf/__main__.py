"""``python -m affectnetplus_hf`` is the ``affectnetplus`` command."""

from .cli import main

raise SystemExit(main())
