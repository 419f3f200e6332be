"""Exceptions raised by affectnetplus_hf.

The hierarchy, in one place::

    AffectNetPlusError                      base of everything this package raises on purpose
    ├── ReleaseNotFoundError(FileNotFoundError)
    │       no AffectNet+ release under the folder given (or none given); the message
    │       says what was looked for and how to obtain the data
    ├── BadRecordError(ValueError)
    │   │   one record cannot be read whole; carries ``path`` and ``reason``
    │   │   (raised only with ``on_bad="error"``; by default bad records are reported)
    │   └── BadImageError
    │           the PyTorch loader met a row whose image does not decode (damaged or null
    │           bytes, more pixels than the decoders' limit); carries ``row``,
    │           ``image_id`` and ``reason`` (``make_loader(..., on_bad="skip")`` skips them)
    ├── ResumeMismatchError(ValueError)
    │       a loader state was taken from another configuration (dataset, batch size,
    │       ranks, view, ...) than the loader it is loaded into; ``differences`` names each
    ├── ExportError
    │   │   an export cannot be written or an exported folder is not usable
    │   └── NothingToExportError
    │           no record of the release could be written (none found, or all bad);
    │           the report is written, OUT is left as it was
    ├── PublishError
    │       a Hub push or a remote read cannot go ahead (public without licence
    │       acknowledgement, a server without HTTP Range support, ...)
    ├── StatsError
    │       ``stats --out DIR`` would overwrite files that it did not write there
    └── WorkerLostError(RuntimeError)
            a worker process of ``export`` or ``verify`` ended before finishing its job
            (killed from outside, most often by the out-of-memory killer); carries
            ``pid``, ``job`` and ``exitcode``

Every message names the file, what was expected, what was found and what to do.
"""

from __future__ import annotations

import signal

__all__ = [
    "AffectNetPlusError",
    "BadImageError",
    "BadRecordError",
    "ExportError",
    "NothingToExportError",
    "PublishError",
    "ReleaseNotFoundError",
    "ResumeMismatchError",
    "StatsError",
    "WorkerLostError",
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


class BadImageError(BadRecordError):
    """The image of one dataset row does not decode (raised by the PyTorch loader).

    ``row``: the row's index in the dataset given to ``make_loader`` (``None`` where the
    loader cannot tell, e.g. streaming), ``image_id`` (``None`` without that column),
    ``reason``. Built from one message as well: a DataLoader worker's error is re-raised
    in the main process as ``type(error)(text)``, so there only the message (which names
    the row) survives, and ``row`` / ``image_id`` are ``None``."""

    def __init__(self, message: str, *, row: int | None = None, image_id: str | None = None, reason: str | None = None):
        Exception.__init__(self, message)
        self.row, self.image_id = row, image_id
        self.path = image_id if image_id is not None else (f"row {row}" if row is not None else "")
        self.reason = reason if reason is not None else message

    def __reduce__(self):
        return (_rebuild_bad_image, (str(self), self.row, self.image_id, self.reason))


def _rebuild_bad_image(message, row, image_id, reason):
    return BadImageError(message, row=row, image_id=image_id, reason=reason)


class ResumeMismatchError(AffectNetPlusError, ValueError):
    """A loader state was taken from another configuration than the loader it is loaded into.

    ``differences``: ``(setting, this loader's value, the state's value)`` for each setting
    that differs."""

    def __init__(self, message: str, differences: list | tuple = ()):
        super().__init__(message)
        self.differences = [tuple(d) for d in differences]

    def __reduce__(self):
        return (type(self), (str(self), self.differences))


class StatsError(AffectNetPlusError):
    """The statistics cannot be written into the folder asked for (files there are not theirs)."""


class WorkerLostError(AffectNetPlusError, RuntimeError):
    """A worker process ended before it sent back its job's outcome (every other worker was stopped).

    ``pid``: the worker's process id; ``job``: the index of the job it was on (``None`` if it
    had none); ``exitcode``: as :attr:`multiprocessing.Process.exitcode` (negative: the
    signal that ended it; ``None``: not known)."""

    def __init__(self, pid: int | None, job: int | None, exitcode: int | None):
        self.pid, self.job, self.exitcode = pid, job, exitcode
        if exitcode is not None and exitcode < 0:
            try:
                how = f"it was killed by signal {signal.Signals(-exitcode).name}"
            except ValueError:
                how = f"it was killed by signal {-exitcode}"
            if exitcode == -signal.SIGKILL:
                how += " (the system's out-of-memory killer sends that one)"
        elif exitcode is not None:
            how = f"it exited with status {exitcode}"
        else:
            how = "how it ended is not known"
        super().__init__(
            f"worker process {pid} ended before finishing job {job} of this run: {how}. The run was stopped, "
            "with every other worker; if memory ran short, run again with fewer worker processes "
            "(--num-proc / num_proc)"
        )

    def __reduce__(self):
        return (type(self), (self.pid, self.job, self.exitcode))
