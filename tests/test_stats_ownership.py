"""``affectnetplus stats --out DIR`` never overwrites a file it did not write there.

The red team's case (issue 16): a folder holding your own ``report.html``, ``stats.json`` and
``tables.md`` had them silently replaced. Proof of ownership is ``DIR/stats_manifest.json``:
the files an earlier run wrote, with their sha256; only those, unchanged, may be replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from affectnetplus_hf.errors import StatsError
from affectnetplus_hf.stats import write_stats_files
from affectnetplus_hf.stats.command import main
from affectnetplus_hf.stats.write import MANIFEST_FILE


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def source(make_release) -> str:
    return str(make_release(n=4).root)


def test_your_report_stats_and_tables_are_never_overwritten(source, tmp_path, capsys):
    out = tmp_path / "my_analysis"
    out.mkdir()
    mine = {
        "report.html": "<p>my report</p>",
        "stats.json": '{"mine": 1}',
        "tables.md": "# my tables",
        "notes.md": "notes",
    }
    for name, text in mine.items():
        (out / name).write_text(text)
    assert main([source, "--out", str(out), "--quiet", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"affectnetplus stats: {out}: holds files that `affectnetplus stats` did not write"
    )
    assert all(name in err for name in ("report.html", "stats.json", "tables.md")) and "notes.md" not in err
    assert "nothing was written" in err and "--out" in err
    assert _tree(out) == {name: text.encode() for name, text in mine.items()}  # nothing added either


def test_a_table_or_plot_of_yours_is_found_once_the_files_are_known_and_nothing_is_written(source, tmp_path, capsys):
    out = tmp_path / "my_analysis"
    (out / "tables").mkdir(parents=True)
    (out / "tables" / "counts.csv").write_text("my,counts\n")
    assert main([source, "--out", str(out), "--quiet", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "tables/counts.csv" in err and err.count("\n") == 1
    assert _tree(out) == {"tables/counts.csv": b"my,counts\n"}
    assert [p.name for p in out.iterdir()] == ["tables"]  # the hidden working folder went too


def test_a_second_run_replaces_its_own_files_but_not_a_file_you_edited(source, tmp_path, capsys):
    out = tmp_path / "stats"
    (out).mkdir()
    (out / "notes.md").write_text("mine")
    assert main([source, "--out", str(out), "--quiet", "--no-plots"]) == 0
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert {"report.html", "stats.json", "tables.md"} <= set(manifest["files"]) and "notes.md" not in manifest["files"]
    assert main([source, "--out", str(out), "--quiet", "--no-plots", "--split", "train"]) == 0  # ours: replaced
    assert json.loads((out / "stats.json").read_text())["splits"] == ["train"]
    report = out / "report.html"
    report.write_text(report.read_text().replace("</body>", "<p>my remarks</p></body>"))
    capsys.readouterr()
    assert main([source, "--out", str(out), "--quiet", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "report.html" in err and "changed since" in err
    assert "my remarks" in report.read_text() and (out / "notes.md").read_text() == "mine"
    assert json.loads((out / "stats.json").read_text())["splits"] == ["train"]  # nothing was written


def test_a_manifest_that_is_not_ours_proves_nothing(source, tmp_path, capsys):
    out = tmp_path / "stats"
    out.mkdir()
    forged = {"files": {"report.html": {"size": 5, "sha256": "0" * 64}}}  # no generator marker
    (out / MANIFEST_FILE).write_text(json.dumps(forged))
    (out / "report.html").write_text("mine!")
    assert main([source, "--out", str(out), "--quiet", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert MANIFEST_FILE in err
    assert (out / "report.html").read_text() == "mine!" and json.loads((out / MANIFEST_FILE).read_text()) == forged


def test_plots_of_an_earlier_run_go_when_unchanged_and_yours_stay(source, tmp_path):
    pytest.importorskip("matplotlib")
    from affectnetplus_hf.stats import compute_stats

    stats = compute_stats(source, progress=False)
    out = tmp_path / "stats"
    first = write_stats_files(stats, out)
    assert first.plots and all(path.parent == out / "plots" for path in first.plots.values())
    (out / "plots" / "my_plot.png").write_bytes(b"mine")
    second = write_stats_files(stats, out, plots=False)
    assert second.plots == {} and second.report_path == out / "report.html"
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["my_plot.png"]
    assert "my_plot.png" not in (out / MANIFEST_FILE).read_text()


def test_a_second_run_into_the_same_folder_at_once_is_refused(source, tmp_path, capsys):
    import fcntl

    out = tmp_path / "stats"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)  # what the first run holds while it writes
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main([source, "--out", str(out), "--quiet", "--no-plots"]) == 2
    finally:
        os.close(fd)
    assert "another `affectnetplus stats` is writing into this folder" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_the_library_raises_one_clear_error(tmp_path):
    out = tmp_path / "stats"
    out.mkdir()
    (out / "stats.json").write_text("{}")
    with pytest.raises(StatsError, match="stats.json"):
        write_stats_files({}, out)  # refused before a file is written: the stats are not even read
    assert _tree(out) == {"stats.json": b"{}"}


_KILLED_RUN = """
import os, signal, sys
from affectnetplus_hf.stats import write

def write_then_die(summary, folder, *args):
    (folder / "stats.json").write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)

write._write_into = write_then_die
write.write_stats(sys.argv[2], sys.argv[1], plots=False, progress=False)
"""


def test_a_killed_run_leaves_a_folder_the_next_run_removes_and_only_that_one(source, tmp_path):
    import signal
    import subprocess
    import sys

    out = tmp_path / "stats"
    assert main([source, "--out", str(out), "--quiet", "--no-plots"]) == 0
    first = _tree(out)
    mine = out / ".affectnetplus-stats-mine"  # named like ours, made by you: never touched
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    run = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(out), source], capture_output=True, text=True)
    assert run.returncode == -signal.SIGKILL, run.stderr
    left = [p.name for p in out.iterdir() if p.name.startswith(".affectnetplus-stats-") and p != mine]
    assert len(left) == 1  # the killed run's hidden folder
    kept = {k: v for k, v in _tree(out).items() if not k.startswith(".") and k != MANIFEST_FILE}
    assert kept == {k: v for k, v in first.items() if k != MANIFEST_FILE}  # the earlier files, whole
    assert json.loads((out / MANIFEST_FILE).read_text())["staging"]["name"] == left[0]  # the proof
    assert main([source, "--out", str(out), "--quiet", "--no-plots"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [mine.name]
    assert (mine / "keep.txt").read_text() == "mine"
    assert "staging" not in json.loads((out / MANIFEST_FILE).read_text())
