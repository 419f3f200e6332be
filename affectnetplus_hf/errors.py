"""Exceptions raised by affectnetplus_hf.

The hierarchy, in one place::

    AffectNetPlusError                      base of everything this package raises on purpose
    ├── ReleaseNotFoundError(FileNotFoundError)
    │       no AffectNet+ release under the folder given (or none given); the message
    │       says what was looked for and how to obtain the data
    ├── BadRecordError(ValueError)
    │       one record cannot be read whole; carries ``path`` and ``reason``
    │       (raised only with ``on_bad="error"``; by default bad records are reported)
    ├── ExportError
    │       an export cannot be written or an exported folder is not usable
    └── PublishError
            a Hub push or a remote read cannot go ahead (public without licence
            acknowledgement, a server without HTTP Range support, ...)

Every message names the file, what was expected, what was found and what to do.
"""

from __future__ import annotations

__all__ = [
    "AffectNetPlusError",
    "BadRecordError",
    "ExportError",
    "PublishError",
    "ReleaseNotFoundError",
]


class AffectNetPlusError(Exception):
    """Base class of the errors this package raises on purpose."""


class ReleaseNotFoundError(AffectNetPlusError, FileNotFoundError):
    """No AffectNet+ release was found where one was expected."""


class BadRecordError(AffectNetPlusError, ValueError):
    """One record (an image and its annotation) cannot be read whole."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"{self.path}: {reason}\n"
            "Fix or remove this file, or run with --on-bad skip (the default) to skip bad "
            "records and list them in the report."
        )

    def __reduce__(self):  # keep (path, reason) across process boundaries (num_proc > 1)
        return (type(self), (self.path, self.reason))


class ExportError(AffectNetPlusError):
    """An export could not be written, or an exported folder is not usable."""


class PublishError(AffectNetPlusError):
    """A Hub push or remote read cannot go ahead."""
