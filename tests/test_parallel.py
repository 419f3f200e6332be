"""The worker pool of export and verify: results in order, errors as raised, and no hang whatever a worker does.

The hang guarded against here was real: under load, a Ctrl-C of an export of 3,000 shards
killed a worker half-way through sending a result, and ``concurrent.futures``' pool (whose
workers share one result pipe, read by a thread) waited for the rest of that message for ever.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import struct
import sys
import time

import pytest

from affectnetplus_hf.core import parallel
from affectnetplus_hf.core.parallel import report_progress, run_jobs
from affectnetplus_hf.errors import BadRecordError, WorkerLostError

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and /proc")
GUARD_S = 60  # a run that is not over by then has hung


@contextlib.contextmanager
def _hang_guard():
    def on_alarm(signum, frame):
        raise AssertionError(f"run_jobs still running after {GUARD_S} s: it hangs")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(GUARD_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _square(n: int) -> int:
    report_progress(n)
    if n % 3 == 0:
        time.sleep(0.01)  # finish out of order
    return n * n


def _raise_on_5(n: int) -> int:
    if n == 5:
        raise BadRecordError("img/5.jpg", "cannot be read")
    time.sleep(0.2)
    return n


def _killed_on_3(n: int) -> int:
    if n == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
    time.sleep(0.05)
    return n


def _dies_half_way_through_a_message(n: int) -> int:
    """Job 2 starts a message of 1 MB on its pipe, sends 10 bytes of it and is killed there."""
    if n == 2:
        conn = parallel._progress_conn
        assert conn is not None
        os.write(conn.fileno(), struct.pack("!i", 1 << 20) + b"0123456789")
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return n


class _TwoArgumentError(Exception):
    """Pickles, but does not unpickle: its args hold one value, its __init__ wants two."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")


def _raises_what_does_not_unpickle(n: int) -> int:
    if n == 2:
        raise _TwoArgumentError("img/2.jpg", "odd")
    return n


def _unpicklable(n: int):
    return (lambda: n) if n == 1 else n


def _children() -> list:
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    return multiprocessing.active_children()


@pytest.mark.parametrize("num_proc", [1, 3])
def test_results_come_in_job_order_with_every_progress_count(num_proc):
    counted: list[int] = []
    with _hang_guard():
        results = run_jobs(_square, list(range(20)), num_proc, counted.append)
    assert results == [n * n for n in range(20)]
    assert sum(counted) == sum(range(20))
    assert _children() == []


def test_on_result_folds_each_result_in_job_order():
    seen: list[int] = []

    def fold(result: int) -> None:
        seen.append(result)

    with _hang_guard():
        kept = run_jobs(_square, list(range(12)), 2, lambda n: None, fold)
    assert seen == [n * n for n in range(12)]
    assert kept == [None] * 12


@linux_only
def test_a_job_error_is_raised_as_itself_with_the_worker_traceback_and_every_worker_ended():
    with _hang_guard(), pytest.raises(BadRecordError) as caught:
        run_jobs(_raise_on_5, list(range(40)), 2, lambda n: None)
    assert caught.value.path == "img/5.jpg"
    assert "_raise_on_5" in str(caught.value.__cause__)  # the worker's traceback
    assert _children() == []


@linux_only
def test_a_worker_killed_from_outside_stops_the_run_with_a_message_saying_so():
    with _hang_guard(), pytest.raises(WorkerLostError) as caught:
        run_jobs(_killed_on_3, list(range(40)), 2, lambda n: None)
    assert caught.value.job == 3 and caught.value.exitcode == -signal.SIGKILL
    message = str(caught.value)
    assert "SIGKILL" in message and "out-of-memory" in message and "--num-proc" in message
    assert _children() == []


@linux_only
def test_a_worker_that_ends_half_way_through_sending_does_not_hang_the_run():
    with _hang_guard(), pytest.raises(WorkerLostError) as caught:
        run_jobs(_dies_half_way_through_a_message, list(range(40)), 2, lambda n: None)
    assert caught.value.job == 2
    assert _children() == []


@linux_only
def test_a_result_that_does_not_pickle_is_an_error_naming_the_job():
    with _hang_guard(), pytest.raises(RuntimeError, match="outcome of job 1 cannot be sent back"):
        run_jobs(_unpicklable, list(range(6)), 2, lambda n: None)
    assert _children() == []


@linux_only
def test_an_error_that_does_not_unpickle_in_the_parent_is_an_error_naming_the_job():
    with _hang_guard(), pytest.raises(RuntimeError, match="outcome of job 2 cannot be read back"):
        run_jobs(_raises_what_does_not_unpickle, list(range(6)), 2, lambda n: None)
    assert _children() == []
