"""Run jobs in worker processes with one progress bar fed by the workers as they go.

Used by the export and by ``verify``. A job function calls :func:`report_progress`
with the number of records it has finished since its last call; in the parent a
thread moves those counts onto the bar, so the bar advances per record, not per job.
Results come back in job order, whatever order the workers finish in.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

__all__ = ["report_progress", "run_jobs"]

_progress_queue = None
_local_callback: Callable[[int], None] | None = None
_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


def _init_worker(queue) -> None:
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


def run_jobs(fn: Callable[[_Job], _Result], jobs: Sequence[_Job], num_proc: int, on_progress: Callable[[int], None]) -> list[_Result]:
    """``[fn(job) for job in jobs]``, in ``num_proc`` processes when above 1."""
    global _local_callback
    if num_proc <= 1 or len(jobs) <= 1:
        _local_callback = on_progress
        try:
            return [fn(job) for job in jobs]
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
    watcher.start()
    try:
        with ProcessPoolExecutor(min(num_proc, len(jobs)), mp_context=context, initializer=_init_worker, initargs=(queue,)) as pool:
            return list(pool.map(fn, jobs))
    finally:
        done.set()
        watcher.join()
