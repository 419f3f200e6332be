"""Run jobs in worker processes with one progress bar fed by the workers as they go.

Used by the export and by ``verify``. A job function calls :func:`report_progress`
with the number of records it has finished since its last call; in the parent a
thread moves those counts onto the bar, so the bar advances per record, not per job.
Results come back in job order, whatever order the workers finish in.

Ctrl-C belongs to the parent. A terminal sends SIGINT to every process of the foreground
group, so the workers ignore it (from the moment they are forked). While workers run, the
parent only notes a Ctrl-C (a second one too) and looks at the note between short waits; on
an interrupt, or an error in a job, it terminates every worker, waits for them to end
(killing any that do not within a few seconds) and only then raises ``KeyboardInterrupt``
(or the job's error), so no worker is left behind and none writes after the caller cleans
up. On Linux a worker also ends if its parent is killed (``kill -9``) first.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue as queue_module
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

__all__ = ["MAX_NUM_PROC", "report_progress", "run_jobs", "sigint_deferred"]

#: Most worker processes a command starts (``--num-proc``); fewer when there are fewer jobs.
MAX_NUM_PROC = 64
#: Seconds a terminated worker gets to end before it is killed.
_TERMINATE_GRACE = 3.0
#: Seconds between looks at whether Ctrl-C was pressed, while waiting for a worker.
_POLL_S = 0.1

_progress_queue = None
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


def _init_worker(queue, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's, which stops the workers
    _die_with_parent(parent)
    global _progress_queue
    _progress_queue = queue


def report_progress(n: int) -> None:
    """Called by a job: ``n`` more records are done."""
    if n <= 0:
        return
    if _progress_queue is not None:
        _progress_queue.put(n)
    elif _local_callback is not None:
        _local_callback(n)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's workers, wait for each to end (kill it after a grace period), shut the pool down."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(_TERMINATE_GRACE)
            if process.is_alive():
                process.kill()
                process.join()
    pool.shutdown(wait=True, cancel_futures=True)


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
    When a job raises, or the caller is interrupted, every worker has ended before this raises.
    """
    global _local_callback
    keep = on_result or (lambda result: result)
    workers = min(num_proc, len(jobs), MAX_NUM_PROC)
    if workers <= 1:
        _local_callback = on_progress
        try:
            return [keep(fn(job)) for job in jobs]
        finally:
            _local_callback = None
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    queue = context.Queue()
    done = threading.Event()

    def drain() -> None:
        while not done.is_set() or not queue.empty():
            try:
                on_progress(queue.get(timeout=0.1))
            except queue_module.Empty:
                continue

    watcher = threading.Thread(target=drain, daemon=True)
    pool = None
    # While workers run, a Ctrl-C (any number of them) is only noted, and acted on here: raised
    # half-way through forking or stopping the workers it would leave some behind.
    with sigint_deferred() as interrupts:
        watcher.start()
        try:
            pool = ProcessPoolExecutor(
                workers, mp_context=context, initializer=_init_worker, initargs=(queue, os.getpid())
            )
            futures: list = [pool.submit(fn, job) for job in jobs]
            results = []
            for index, future in enumerate(futures):
                results.append(keep(_result(future, interrupts)))
                futures[index] = None  # its result is kept as on_result returned it, not twice
        except BaseException:
            if pool is not None:
                _stop(pool)
            raise
        finally:
            done.set()
            watcher.join()
        pool.shutdown(wait=True)
    return results


def _result(future, interrupts: list[int]):
    """The future's result, waited for in short steps so that a Ctrl-C noted in ``interrupts`` stops the wait."""
    while True:
        if interrupts:
            raise KeyboardInterrupt
        try:
            return future.result(timeout=_POLL_S)
        except FutureTimeout:
            continue
