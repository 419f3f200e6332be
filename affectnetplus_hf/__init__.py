"""AffectNet+ as a typed Hugging Face dataset.

Public API (see docs/api/index.md)::

    from affectnetplus_hf import FEATURES, EXPRESSIONS, SUBSETS, AffectNetPlus, export

``import affectnetplus_hf`` never imports torch; the torch tools live in
``affectnetplus_hf.torch`` (install the ``torch`` extra).
"""

from ._version import __version__
from .errors import (
    AffectNetPlusError,
    BadRecordError,
    ExportError,
    PublishError,
    ReleaseNotFoundError,
)

__all__ = [
    "__version__",
    "COLUMNS",
    "EXPRESSIONS",
    "FEATURES",
    "MANUAL_DOWNLOAD_INSTRUCTIONS",
    "RACES",
    "SUBSETS",
    "AffectNetPlus",
    "AffectNetPlusConfig",
    "AffectNetPlusError",
    "BadRecordError",
    "ExportError",
    "PublishError",
    "ReleaseNotFoundError",
    "export",
    "push",
    "write_sample",
]


_SCHEMA_NAMES = ("COLUMNS", "EXPRESSIONS", "FEATURES", "MANUAL_DOWNLOAD_INSTRUCTIONS", "RACES", "SUBSETS")


def __getattr__(name: str):
    # Heavier pieces load on first use so that `import affectnetplus_hf` stays cheap (the
    # schema imports `datasets`; the CLI catches Ctrl-C only once its main() runs).
    if name in _SCHEMA_NAMES:
        from .core import schema

        return getattr(schema, name)
    if name in ("AffectNetPlus", "AffectNetPlusConfig"):
        from .release import builder

        return getattr(builder, name)
    if name == "export":
        from .exporter.writer import export

        return export
    if name == "push":
        from .hub.publish import push

        return push
    if name == "write_sample":
        from .release.sample import write_sample

        return write_sample
    raise AttributeError(f"module 'affectnetplus_hf' has no attribute {name!r}")
