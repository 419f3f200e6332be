"""Run the ``affectnetplus`` program and hold it at a chosen moment, for a test to press Ctrl-C there.

TEST INFRASTRUCTURE ONLY. ``python -m tests.support.interrupt_subprocess MARKER POINT -- ARGS...`` runs
``affectnetplus ARGS...`` as the program (``cli.main()`` on ``sys.argv``). At ``POINT`` it writes
the file ``MARKER`` and waits there for the signal (it sleeps); the test waits for ``MARKER``,
sends SIGINT and checks how the program ends. ``POINT`` is one of:

* ``step:NAME``: in the parent, at the export's step ``NAME`` (see ``affectnetplus_hf.exporter.writer._step``);
* ``job:N``: in every worker, at its ``N``-th job (export and verify jobs alike), busy there
  in a way a Ctrl-C does not stop (only ending the worker does);
* ``call:MODULE:NAME``: in the parent, before the function ``NAME`` of ``MODULE`` runs;
* ``finalizer:NAME``: in the parent at the export's step ``NAME``, inside an object's
  ``__del__`` (where Python cannot raise the interrupt: "Exception ignored");
* ``atexit``: in an ``atexit`` handler, after the command has returned;
* ``notify:NAME``: at the export's step ``NAME`` it writes ``MARKER`` and goes on, so the
  signal lands wherever the program is by then; an ``atexit`` handler waits for it, so the
  program cannot end before the signal arrives.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import time
from pathlib import Path

_PARENT = os.getpid()
_marker: Path
_real_jobs: dict[str, object] = {}
_jobs_seen = 0
_job_pause = 0


def _arrive() -> None:
    _marker.write_text("here")


def _wait() -> None:
    _arrive()
    time.sleep(600)  # the signal ends this (the test's guard kills the group after far less)


def _busy() -> None:
    """In a worker, a job busy for long in code a Ctrl-C does not stop (a slow disk, a long
    write in C); in the parent (a run of one job, or ``--num-proc 1``) the same as :func:`_wait`."""
    if os.getpid() == _PARENT:
        _wait()
    _arrive()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            time.sleep(deadline - time.monotonic())
        except KeyboardInterrupt:
            continue


def _job(real_name: str, job):
    global _jobs_seen
    _jobs_seen += 1
    if _jobs_seen == _job_pause:
        _busy()
    return _real_jobs[real_name](job)


def _export_job(job):
    return _job("export", job)


def _verify_job(job):
    return _job("verify", job)


class _SlowFinalizer:
    def __del__(self):
        _wait()


def main() -> None:
    global _marker, _job_pause
    split = sys.argv.index("--")
    marker, point = sys.argv[1:split]
    _marker = Path(marker)
    kind, _, name = point.partition(":")

    import affectnetplus_hf.exporter.writer as export_module

    def at_step(step_name: str) -> None:
        if step_name != name:
            return
        if kind == "step":
            _wait()
        elif kind == "notify":
            _arrive()
        elif kind == "finalizer":
            _SlowFinalizer()  # dropped at once: its __del__ runs here

    export_module._step = at_step
    if kind == "job":
        import affectnetplus_hf.release.verification as verify_module

        _job_pause = int(name)
        _real_jobs["export"], export_module._export_shard = export_module._export_shard, _export_job
        _real_jobs["verify"], verify_module._scan = verify_module._scan, _verify_job
    elif kind == "call":
        module_name, _, function_name = name.partition(":")
        module = importlib.import_module(module_name)
        real = getattr(module, function_name)

        def paused(*args, **kwargs):
            _wait()
            return real(*args, **kwargs)

        setattr(module, function_name, paused)
    returned: list[int] = []
    if kind == "atexit":
        atexit.register(_wait)
    elif kind == "notify":
        atexit.register(lambda: returned == [130] or time.sleep(600))  # not interrupted yet: wait for it

    sys.argv = ["affectnetplus", *sys.argv[split + 1 :]]
    from affectnetplus_hf.cli import main as cli_main

    returned.append(cli_main())
    raise SystemExit(returned[0])


if __name__ == "__main__":
    main()
