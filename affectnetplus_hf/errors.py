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
    │   │   an export cannot be written or an exported folder is not usable
    │   └── NothingToExportError
    │           no record of the release could be written (none found, or all bad);
    │           the report is written, OUT is left as it was
    ├── PublishError
    │       a Hub push or a remote read cannot go ahead (public without licence
    │       acknowledgement, a server without HTTP Range support, ...)
    └── StatsError
            ``stats --out DIR`` would overwrite files that it did not write there

Every message names the file, what was expected, what was found and what to do.
"""

from __future__ import annotations

__all__ = [
    "AffectNetPlusError",
    "BadRecordError",
    "ExportError",
    "NothingToExportError",
    "PublishError",
    "ReleaseNotFoundError",
    "StatsError",
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


class NothingToExportError(ExportError):
    """No record could be exported (the release holds none, or every one is bad).

    ``read`` and ``bad`` are the record counts, ``report_path`` the report that lists every
    bad record and every file that is not a record."""

    def __init__(self, message: str, *, read: int = 0, bad: int = 0, report_path: str | None = None):
        self.read = read
        self.bad = bad
        self.report_path = report_path
        super().__init__(message)

    def __reduce__(self):
        return (_rebuild_nothing_to_export, (str(self), self.read, self.bad, self.report_path))


def _rebuild_nothing_to_export(message, read, bad, report_path):
    return NothingToExportError(message, read=read, bad=bad, report_path=report_path)


class PublishError(AffectNetPlusError):
    """A Hub push or remote read cannot go ahead."""


class StatsError(AffectNetPlusError):
    """The statistics cannot be written into the folder asked for (files there are not theirs)."""
