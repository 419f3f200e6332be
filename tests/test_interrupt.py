"""Ctrl-C always works: the real program, a real SIGINT, at chosen moments.

Each run starts ``affectnetplus`` in its own process group (as a shell starts a command),
holds it at one moment (:mod:`tests.support.interrupt_subprocess`) and sends SIGINT the way a terminal
does, to the whole group (or, in one run, to the parent alone). A worker held there is busy in
a way Ctrl-C does not stop, as one writing to a slow disk is. Whatever the moment, the
program must end with status 130 and its one line, print no traceback, leave no process of
its group behind, and leave OUT the previous export or the new one, whole. The moments: an
export of 3,000 shards in worker processes (once more with a second Ctrl-C at once), every
step of an export, inside a finalizer (where Python swallows an interrupt), in an atexit
handler after the command returned, and one moment not chosen (the signal lands wherever
the export is by then).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from affectnetplus_hf.cli import EXIT_INTERRUPTED
from affectnetplus_hf.core.export_files import check_files, read_info
from affectnetplus_hf.exporter.writer import export
from affectnetplus_hf.release.sample import write_sample

ROOT = Path(__file__).resolve().parent.parent
GUARD_S = 120  # a hang guard: a run that is not over by then has hung (a healthy one takes seconds)
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups read from /proc")


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _interrupt(
    tmp_path: Path, point: str, *args: str, to_group: bool = True, twice: bool = False, signum: int = signal.SIGINT
) -> tuple[int, str, list[int]]:
    """Run ``affectnetplus ARGS`` held at ``point``, send ``signum``; (exit status, stderr, processes left)."""
    marker = tmp_path / "held"
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as stderr:  # a file, not a pipe: a worker left behind must not hold the test
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.interrupt_subprocess", str(marker), point, "--", *args],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + GUARD_S
        while not marker.exists():
            assert proc.poll() is None, f"ended before {point}: {stderr_path.read_text()}"
            assert time.monotonic() < deadline, f"never reached {point}"
            time.sleep(0.02)
        (os.killpg if to_group else os.kill)(proc.pid, signum)
        if twice:
            os.killpg(proc.pid, signum)
        try:
            code = proc.wait(timeout=GUARD_S)
        except subprocess.TimeoutExpired:
            code = None
        left = _group(proc.pid)
    finally:
        if proc.poll() is None or _group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = stderr_path.read_text()
    assert code is not None, f"still running {GUARD_S} s after Ctrl-C at {point}: {err[-2000:]}"
    return code, err, left


def _assert_interrupted(code: int, err: str, left: list[int], command: str) -> None:
    assert code == EXIT_INTERRUPTED, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert f"affectnetplus {command}: interrupted" in err, err
    assert left == [], f"processes left behind: {left}"


def _leftovers(out: Path) -> list[str]:
    return sorted(
        p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and p.name != f".{out.name}.lock"
    )


@pytest.fixture(scope="module")
def big_release(tmp_path_factory) -> Path:
    """3,000 train records (room for 3,000 shards), 12 in validation and unlabeled (verify: 3 jobs)."""
    root = tmp_path_factory.mktemp("big") / "AffectNet+"
    write_sample(root, n=3000, parts=("train",))
    write_sample(root, n=12, parts=("validation", "unlabeled"))
    return root


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, Path, str]:
    """A release and an export of it (2 shards per part): (release, export, its fingerprint)."""
    base = tmp_path_factory.mktemp("small")
    root = base / "AffectNet+"
    write_sample(root, n=12)
    result = export(root, base / "previous", num_shards=2, progress=False, card_plots=False)
    return root, result.out_dir, result.fingerprint


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize("how", ["to the group", "to the parent only", "twice"])
def test_ctrl_c_of_an_export_of_3000_shards_ends_it_and_every_worker(big_release, tmp_path, how):
    out = tmp_path / "affectnet_plus"
    code, err, left = _interrupt(
        tmp_path, "job:3", "export", str(big_release), str(out), "--num-shards", "3000", "--num-proc", "2", "-q",
        to_group=how != "to the parent only", twice=how == "twice",
    )  # fmt: skip
    _assert_interrupted(code, err, left, "export")
    assert not out.exists()  # there was no export before: there is none now
    assert _leftovers(out) == []


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("to_group", [False, True], ids=["to the parent", "to the group"])
def test_kill_or_a_closed_terminal_stops_an_export_as_ctrl_c_does(big_release, tmp_path, signum, to_group):
    """``kill`` (a batch system ending a job) and a closed terminal: the same cleanup as Ctrl-C,
    the signal named, exit 128 + its number."""
    out = tmp_path / "affectnet_plus"
    code, err, left = _interrupt(
        tmp_path, "job:3", "export", str(big_release), str(out), "--num-shards", "300", "--num-proc", "2", "-q",
        to_group=to_group, signum=signum,
    )  # fmt: skip
    assert code == 128 + signum, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert f"affectnetplus export: interrupted ({signal.Signals(signum).name})" in err, err
    assert left == [], f"processes left behind: {left}"
    assert not out.exists() and _leftovers(out) == []


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize(
    "point",
    [
        "step:shards_written", "step:staged", "step:before_swap", "step:after_swap",
        "finalizer:staged", "atexit", "notify:staged",
    ],
)  # fmt: skip
def test_ctrl_c_at_any_moment_of_an_export_leaves_the_old_or_the_new_export_whole(small, tmp_path, point):
    raw, previous, fingerprint = small
    out = tmp_path / "affectnet_plus"
    shutil.copytree(previous, out)
    code, err, left = _interrupt(
        tmp_path, point, "export", str(raw), str(out), "--num-shards", "3", "--num-proc", "2", "-q"
    )
    _assert_interrupted(code, err, left, "export")
    info = read_info(out)
    assert check_files(out, info) == []  # whole: every file as its manifest says
    if point in ("step:shards_written", "step:staged", "step:before_swap"):
        assert info["fingerprint"] == fingerprint  # before the swap: the previous export
    elif point in ("step:after_swap", "atexit"):
        assert info["fingerprint"] != fingerprint  # after it: the new one (3 shards, not 2)
    assert _leftovers(out) == []


@pytest.mark.slow
@linux_only
def test_ctrl_c_of_verify_in_workers_ends_it_and_every_worker(big_release, tmp_path):
    code, err, left = _interrupt(tmp_path, "job:1", "verify", str(big_release), "--num-proc", "2", "-q")
    _assert_interrupted(code, err, left, "verify")


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize("point", ["call:affectnetplus_hf.stats.write:draw_plots", "atexit"])
def test_ctrl_c_of_stats_while_drawing_or_exiting_ends_it(small, tmp_path, point):
    raw, _, _ = small
    code, err, left = _interrupt(tmp_path, point, "stats", str(raw), "--out", str(tmp_path / "stats"), "-q")
    _assert_interrupted(code, err, left, "stats")


# ----------------------------------------------------------------------------- in this process


def test_ctrl_c_caught_by_a_library_still_ends_the_command_with_130(monkeypatch, capsys):
    from affectnetplus_hf import cli

    def swallowing(args):
        try:
            signal.raise_signal(signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:  # a library's `except BaseException`
            pass
        return 0

    monkeypatch.setattr(cli, "_run", swallowing)
    assert cli.main(["verify", "raw", "-q"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "affectnetplus verify: interrupted; nothing was written; run verify again\n"


def test_ctrl_c_landing_in_a_finalizer_is_raised_again_not_ignored(monkeypatch, capsys):
    from affectnetplus_hf import cli

    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)  # the KeyboardInterrupt is raised here, inside __del__
            time.sleep(5)

    went_on = []

    def work(args):
        Finalized()  # dropped at once: Python prints "Exception ignored" and goes on
        for _ in range(5000):  # a command's work, which the interrupt must stop
            time.sleep(0.001)
        went_on.append(True)
        return 0

    monkeypatch.setattr(cli, "_run", work)
    before = signal.getsignal(signal.SIGINT)  # Python's default_int_handler; SIG_IGN under a shell's `cmd &`
    assert cli.main(["verify", "raw", "-q"]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "Exception ignored" not in err and "Traceback" not in err, err
    assert went_on == []
    assert signal.getsignal(signal.SIGINT) is before  # called from Python: left as it was
