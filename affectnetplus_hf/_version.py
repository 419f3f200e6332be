"""The package's version, read from its installed metadata (``pyproject.toml`` is the one source).

A leaf module: ``export``, ``hub`` and ``stats.report`` import :data:`__version__` from
here, not from the package ``__init__``, so nothing imports the package root back.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["DISTRIBUTION", "__version__"]

#: The distribution name in ``pyproject.toml``.
DISTRIBUTION = "affectnetplus-hf"

try:
    __version__: str = version(DISTRIBUTION)
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
