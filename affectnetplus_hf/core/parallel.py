"""Run jobs in worker processes with one progress bar fed by the workers as they go.

Used by the export and by ``verify``. A job function calls :func:`report_progress`
with the number of records it has finished since its last call; the parent moves those
counts onto the bar as they come, so the bar advances per record, not per job.
Results come back in job order, whatever order the workers finish in.

Each worker has a pipe of its own: the parent sends it one job at a time and reads its
progress and its result from it. No pipe or lock is shared between workers, and the parent
runs no thread of its own here, so a worker that ends at any moment (killed half-way through
sending a result, say) leaves nothing the parent can wait on for ever: ``concurrent.futures``'
pool, whose workers share one result pipe read by a thread, can hang there for good.

Ctrl-C belongs to the parent. A terminal sends SIGINT to every process of the foreground
group, so the workers ignore it (from the moment they are forked). While workers run, the
parent only notes a Ctrl-C (a second one too) and looks at the note between short waits; on
an interrupt, or an error in a job, it terminates every worker, waits for them to end
(killing any that do not within a few seconds) and only then raises ``KeyboardInterrupt``
(or the job's error), so no worker is left behind and none writes after the caller cleans
up. On Linux a worker also ends if its parent is killed (``kill -9``) first. A worker that
ends without sending its job's outcome (the out-of-memory killer, a crash) stops the run
with :class:`~affectnetplus_hf.errors.WorkerLostError`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from ..errors import WorkerLostError

__all__ = ["MAX_NUM_PROC", "STOP_SIGNALS", "report_progress", "run_jobs", "sigint_deferred"]

#: Most worker processes a command starts (``--num-proc``); fewer when there are fewer jobs.
MAX_NUM_PROC = 64
#: Seconds a terminated worker gets to end before it is killed.
_TERMINATE_GRACE = 3.0
#: Seconds between looks at whether Ctrl-C was pressed, while waiting for a worker.
_POLL_S = 0.1
#: Signals the ``affectnetplus`` program takes as Ctrl-C (``kill``, a batch system ending a job, a
#: closed terminal; see ``cli``); a worker takes their default, which ends it.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: What a worker sends back: progress (a count), a job's result, a job's error.
_PROGRESS, _RESULT, _ERROR = 0, 1, 2

_progress_conn: Connection | None = None
_local_callback: Callable[[int], None] | None = None
_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


@contextlib.contextmanager
def sigint_deferred() -> Iterator[list[int]]:
    """Hold a Ctrl-C back for the block and deliver it (to the handler that was in place) at its end.

    Yields the list of signals caught so far (empty until a Ctrl-C), for a block that polls
    it to stop early. Outside the main thread (where Python allows no handler) the block
    runs unguarded and the list stays empty.
    """
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)  # None: set outside Python
        if caught:
            signal.raise_signal(signal.SIGINT)  # the previous handler raises KeyboardInterrupt at the next line


def report_progress(n: int) -> None:
    """Called by a job: ``n`` more records are done."""
    if n <= 0:
        return
    if _progress_conn is not None:
        _progress_conn.send((_PROGRESS, n))
    elif _local_callback is not None:
        _local_callback(n)


def _die_with_parent(parent: int) -> None:
    """Linux: have the kernel send this worker SIGTERM when its parent ends (even by ``kill -9``)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no prctl
        return
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(1)


class _RemoteTraceback(Exception):
    """A job's error as the worker formatted it, traceback and all (the raised error's ``__cause__``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _work(conn: Connection, fn: Callable[[Any], Any], parent: int) -> None:
    """A worker's life: take ``(index, job)`` from ``conn`` and send back what ``fn(job)`` gave, until ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's, which stops the workers
    for number in STOP_SIGNALS:  # the program's handlers (a fork keeps them) are not the worker's: the
        signal.signal(number, signal.SIG_DFL)  # parent ends a worker with SIGTERM, and it must end at once
    _die_with_parent(parent)
    global _progress_conn
    _progress_conn = conn
    while True:
        try:
            item = conn.recv()
        except EOFError:  # the parent is gone or has stopped the run
            return
        if item is None:
            return
        index, job = item
        try:
            message: tuple = (_RESULT, index, fn(job))
        except BaseException as exc:  # every error goes back to the parent, which raises it
            message = (_ERROR, index, exc, "".join(traceback.format_exception(exc)))
        try:
            conn.send(message)
        except (OSError, EOFError):  # the parent is gone
            return
        except Exception as exc:  # an outcome that does not pickle: say so instead
            error = RuntimeError(f"the outcome of job {index} cannot be sent back to the parent: {exc!r}")
            conn.send((_ERROR, index, error, "".join(traceback.format_exception(exc))))


class _Worker:
    """One worker process, the parent's end of its pipe, and the index of the job it is on."""

    def __init__(self, context: Any, fn: Callable[[Any], Any]) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_work, args=(child, fn, os.getpid()), daemon=True)
        try:
            self.process.start()
        finally:
            child.close()  # the worker's end lives in the worker only: when it ends, a read here sees EOF
        self.job: int | None = None

    def give(self, index: int, job: Any) -> None:
        """Send the worker job ``index`` (it is idle, reading its pipe)."""
        try:
            self.conn.send((index, job))
        except OSError:  # the worker has ended
            raise self.lost(index) from None
        self.job = index

    def lost(self, index: int | None) -> WorkerLostError:
        """The error for this worker having ended while on job ``index``."""
        self.process.join(_TERMINATE_GRACE)
        return WorkerLostError(self.process.pid, index, self.process.exitcode)


def _stop(workers: list[_Worker]) -> None:
    """Terminate the workers, wait for each to end (kill it after a grace period), close their pipes."""
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.process.terminate()
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.process.join(_TERMINATE_GRACE)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        with contextlib.suppress(Exception):
            worker.conn.close()


def _finish(workers: list[_Worker]) -> None:
    """Tell idle workers there is no more work, and wait for them to end (or end them)."""
    for worker in workers:
        with contextlib.suppress(OSError):
            worker.conn.send(None)
    for worker in workers:
        worker.process.join(_TERMINATE_GRACE)
    _stop(workers)  # any still running after the grace period; closes the pipes


def run_jobs(
    fn: Callable[[_Job], _Result],
    jobs: Sequence[_Job],
    num_proc: int,
    on_progress: Callable[[int], None],
    on_result: Callable[[_Result], _Result] | None = None,
) -> list[_Result]:
    """``[fn(job) for job in jobs]``, in ``min(num_proc, len(jobs), MAX_NUM_PROC)`` processes when above 1.

    ``on_result``, if given, is called on each result as it comes, in job order, and what it
    returns is kept instead (to fold into a sum what need not be kept per job).
    ``on_progress`` is called in the calling thread with each count a job reports.
    When a job raises, a worker is lost, or the caller is interrupted, every worker has
    ended before this raises. With workers, ``fn`` and each job's result must pickle (the
    jobs too where processes are spawned, not forked).
    """
    global _local_callback
    keep = on_result or (lambda result: result)
    workers_wanted = min(num_proc, len(jobs), MAX_NUM_PROC)
    if workers_wanted <= 1:
        _local_callback = on_progress
        try:
            return [keep(fn(job)) for job in jobs]
        finally:
            _local_callback = None
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    workers: list[_Worker] = []
    # While workers run, a Ctrl-C (any number of them) is only noted, and acted on here: raised
    # half-way through forking or stopping the workers it would leave some behind.
    with sigint_deferred() as interrupts:
        try:
            for _ in range(workers_wanted):
                if interrupts:
                    raise KeyboardInterrupt
                workers.append(_Worker(context, fn))
            results = _collect(workers, jobs, interrupts, on_progress, keep)
        except BaseException:
            _stop(workers)
            raise
        _finish(workers)
    return results


def _collect(
    workers: list[_Worker],
    jobs: Sequence[_Job],
    interrupts: list[int],
    on_progress: Callable[[int], None],
    keep: Callable[[Any], Any],
) -> list[Any]:
    """Hand out the jobs, one at a time to each idle worker, and gather their results in job order."""
    results: list[Any] = []
    waiting: dict[int, Any] = {}  # results that came before an earlier job's
    next_job = 0
    for worker in workers:
        if next_job < len(jobs):
            worker.give(next_job, jobs[next_job])
            next_job += 1
    while len(results) < len(jobs):
        if interrupts:
            raise KeyboardInterrupt
        busy = [worker for worker in workers if worker.job is not None]
        if not busy:  # cannot happen: a result is missing and no worker is on it
            raise RuntimeError(f"run_jobs: {len(jobs) - len(results)} job(s) without a result and no worker busy")
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=_POLL_S))
        for worker in busy:
            if worker.conn not in ready and worker.process.sentinel not in ready:
                continue
            while worker.job is not None and worker.conn.poll():  # a worker may have sent several messages
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):  # it ended half-way through a message, or before sending one
                    raise worker.lost(worker.job) from None
                except Exception as exc:  # it sent something that does not unpickle here (an odd exception class)
                    raise RuntimeError(
                        f"the outcome of job {worker.job} cannot be read back from its worker process: {exc!r}"
                    ) from exc
                if message[0] == _PROGRESS:
                    on_progress(message[1])
                    continue
                if message[0] == _ERROR:
                    error = message[2]
                    error.__cause__ = _RemoteTraceback(message[3])
                    raise error
                waiting[message[1]] = message[2]
                worker.job = None
                while len(results) in waiting:
                    results.append(keep(waiting.pop(len(results))))
                if next_job < len(jobs):
                    worker.give(next_job, jobs[next_job])
                    next_job += 1
            if worker.job is not None and worker.process.sentinel in ready:
                raise worker.lost(worker.job)  # it ended with its pipe read to the end and its job not done
    return results
