"""The export never destroys what it did not write, and ``OUT`` is always one whole export.

Each test is a mistake a user makes or an accident that happens: the release kept inside the
export folder, notes and experiments saved in it, a full or read-only disk, a run killed with
``kill -9`` before, during or after the swap, two exports started into one folder.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest

from affectnetplus_hf.core.export_files import check_files, check_report, read_info
from affectnetplus_hf.errors import ExportError
from affectnetplus_hf.exporter.swap import recover
from affectnetplus_hf.exporter.writer import export

ROOT = Path(__file__).resolve().parent.parent

USER_FILES = {
    "NOTES.md": "my notes",
    "my_experiments/run1.csv": "epoch,acc\n1,0.5\n",
    "stats/my_notes.md": "plots to redo",
    "data/other_dataset/train.parquet": "not really parquet",
}


def _plant(out: Path, files: dict[str, str] = USER_FILES) -> None:
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)


def _assert_planted(out: Path, files: dict[str, str] = USER_FILES) -> None:
    for rel, text in files.items():
        assert (out / rel).read_text() == text, rel


def _leftovers(out: Path) -> list[Path]:
    return sorted(
        p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and p.name != f".{out.name}.lock"
    )


def _assert_whole(out: Path, fingerprints: set[str], cache: Path) -> str:
    """OUT is one whole export of ``fingerprints``: every file as its manifest says, the report
    its own, and every row it counts loads."""
    info = read_info(out)
    assert info["fingerprint"] in fingerprints
    assert check_files(out, info) == []
    summary = check_report(out)[-1]
    ds = datasets.load_dataset(str(out), "all", cache_dir=str(cache))
    assert (
        sum(len(split) for split in ds.values())
        == sum(sum(info["parts"][part]["rows"].values()) for part in ("train", "validation"))
        == summary["written"] - sum(info["parts"].get("unlabeled", {}).get("rows", {}).values())
    )
    return info["fingerprint"]


@pytest.fixture
def two_releases(make_release, tmp_path):
    """(release A, release B, fingerprint A, fingerprint B): B differs from A by one value."""
    a = make_release(n=6)
    b = make_release(n=6)
    annotation = next((b.root).rglob("3.json"))
    doc = json.loads(annotation.read_text())
    doc["meta-data"]["valence"] = 0.25
    annotation.write_text(json.dumps(doc))
    fa = export(
        a.root, tmp_path / "ref-a" / "affectnet_plus", num_shards=2, progress=False, card_plots=False
    ).fingerprint
    fb = export(
        b.root, tmp_path / "ref-b" / "affectnet_plus", num_shards=2, progress=False, card_plots=False
    ).fingerprint
    assert fa != fb
    return a, b, fa, fb


# ----------------------------------------------------------------------------- what is refused


@pytest.mark.parametrize("where", ["inside-out", "is-out"])
def test_a_release_inside_the_export_folder_is_refused_and_kept(make_release, tmp_path, where):
    out = tmp_path / "data" / "affectnet_plus"
    export(make_release(n=3).root, out, progress=False, card_plots=False)
    release = make_release(n=3)
    inside = out / "AffectNet+"
    release.root.rename(inside)
    before = sorted(p.relative_to(inside) for p in inside.rglob("*"))
    raw = inside if where == "inside-out" else out
    with pytest.raises(ExportError, match="release is inside the export folder") as err:
        export(raw, out, progress=False, card_plots=False)
    assert "Move the release out" in str(err.value)
    assert sorted(p.relative_to(inside) for p in inside.rglob("*")) == before
    assert _leftovers(out) == []


def test_an_export_folder_inside_a_part_of_the_release_is_refused(release, tmp_path):
    from affectnetplus_hf.release.layout import find_release

    part = find_release(release.root).parts["train"].path
    with pytest.raises(ExportError, match="inside the release"):
        export(release.root, part / "affectnet_plus", progress=False, card_plots=False)
    assert not (part / "affectnet_plus").exists()


def test_a_user_file_with_the_name_of_a_new_export_file_is_refused_up_front(make_release, tmp_path):
    out = tmp_path / "affectnet_plus"
    manifest = make_release(n=3)
    export(manifest.root, out, progress=False, card_plots=False)  # no plots this time
    mine = out / "stats" / "class_subset_counts.png"
    mine.parent.mkdir()
    mine.write_bytes(b"my own plot")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ExportError, match="class_subset_counts.png") as err:
        export(manifest.root, out, progress=False, card_plots=True)
    assert "Move it out" in str(err.value) and "Nothing was changed" in str(err.value)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert _leftovers(out) == []


# ----------------------------------------------------------------------------- what is kept


def test_user_files_in_the_export_folder_survive_a_reexport(two_releases, tmp_path, hf_cache):
    a, b, fa, fb = two_releases
    out = tmp_path / "affectnet_plus"
    export(a.root, out, num_shards=2, progress=False, card_plots=False)
    _plant(out)
    (out / "empty_folder").mkdir()
    result = export(b.root, out, num_shards=2, progress=False, card_plots=False)
    assert result.fingerprint == fb
    _assert_planted(out)
    assert (out / "empty_folder").is_dir()
    assert result.kept_files == sorted([*USER_FILES, "empty_folder/"])  # what the CLI lists as kept
    assert not (out / "data" / fa).exists()  # the previous export's own files are gone
    _assert_whole(out, {fb}, hf_cache)
    assert _leftovers(out) == []


# ----------------------------------------------------------------------------- disk failures


@pytest.mark.parametrize(
    "code, words",
    [(errno.ENOSPC, "No space left"), (errno.EROFS, "read-only"), (errno.EACCES, "Permission denied")],
    ids=["ENOSPC", "EROFS", "EACCES"],
)
def test_a_disk_failure_is_one_line_naming_out_and_the_previous_export_stays(
    two_releases, tmp_path, monkeypatch, code, words
):
    a, b, fa, _ = two_releases
    out = tmp_path / "affectnet_plus"
    export(a.root, out, num_shards=2, progress=False, card_plots=False)
    _plant(out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    import affectnetplus_hf.exporter.writer as export_module

    def fail(path, lines):
        raise OSError(code, os.strerror(code), str(path))  # names the hidden staging file, as the OS would

    monkeypatch.setattr(export_module, "_write_report", fail)
    with pytest.raises(ExportError) as err:
        export(b.root, out, num_shards=2, progress=False, card_plots=False)
    message = str(err.value)
    assert "\n" not in message and str(out) in message and words in message
    assert ".tmp-" not in message and "unchanged" in message
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert _leftovers(out) == []


def test_an_out_under_a_file_is_one_line(release, tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ExportError) as err:
        export(release.root, tmp_path / "a_file" / "affectnet_plus", progress=False, card_plots=False)
    assert "\n" not in str(err.value) and str(tmp_path / "a_file" / "affectnet_plus") in str(err.value)


# ----------------------------------------------------------------------------- kill -9


def _run_killed(raw: Path, out: Path, point: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tests.support.export_subprocess", str(raw), str(out), point, *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize(
    "point", ["staging_created", "mid_shards", "shards_written", "staged", "before_swap", "after_swap"]
)
def test_kill_9_at_any_point_leaves_one_whole_export_and_the_next_run_cleans_up(
    two_releases, tmp_path, hf_cache, point
):
    a, b, fa, fb = two_releases
    out = tmp_path / "affectnet_plus"
    export(a.root, out, num_shards=2, progress=False, card_plots=False)
    _plant(out)

    killed = _run_killed(b.root, out, point)
    assert killed.returncode == -9, killed.stderr

    now = _assert_whole(out, {fa, fb}, hf_cache / "1")
    assert now == (fb if point == "after_swap" else fa)
    _assert_planted(out)
    assert _leftovers(out)  # the killed run left its folder behind ...
    export(b.root, out, num_shards=2, progress=False, card_plots=False)
    assert _leftovers(out) == []  # ... and the next run removed it
    _assert_whole(out, {fb}, hf_cache / "2")
    _assert_planted(out)


@pytest.mark.slow
def test_kill_9_between_the_two_renames_of_a_non_atomic_swap_is_recovered(two_releases, tmp_path, hf_cache):
    a, b, fa, fb = two_releases
    out = tmp_path / "affectnet_plus"
    export(a.root, out, num_shards=2, progress=False, card_plots=False)
    _plant(out)
    killed = _run_killed(b.root, out, "between_renames", "--no-exchange")
    assert killed.returncode == -9, killed.stderr
    assert not out.exists()  # the one instant a non-atomic swap has no OUT ...
    recover(out)  # ... which the next export (or this) undoes first
    assert _assert_whole(out, {fa}, hf_cache) == fa
    _assert_planted(out)
    assert _leftovers(out) == []


@pytest.mark.slow
def test_a_second_export_into_the_same_folder_fails_fast(two_releases, tmp_path, hf_cache):
    a, b, fa, fb = two_releases
    out = tmp_path / "affectnet_plus"
    export(a.root, out, num_shards=2, progress=False, card_plots=False)
    marker = tmp_path / "paused"
    cmd = [
        sys.executable,
        "-m",
        "tests.support.export_subprocess",
        str(b.root),
        str(out),
        "before_swap",
        "--pause",
        str(marker),
    ]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(ExportError, match="another export into this folder is running"):
            export(a.root, out, num_shards=2, progress=False, card_plots=False)
        assert time.monotonic() - started < 30  # at once, not after the other one
    finally:
        first.kill()
        first.wait()
    _assert_whole(out, {fa}, hf_cache / "1")
    assert (
        export(b.root, out, num_shards=2, progress=False, card_plots=False).fingerprint == fb
    )  # the lock died with it
    assert _leftovers(out) == []


_FULL_DISK_SCRIPT = """
set -u
mount -t tmpfs -o size=2m tmpfs "$DISK" || exit 77
"$PY" -m affectnetplus_hf export "$SMALL" "$DISK/out" --no-progress --num-proc 1 > /dev/null || exit 78
echo mine > "$DISK/out/NOTES.md"
"$PY" -m affectnetplus_hf export "$BIG" "$DISK/out" --no-progress --num-proc 2
echo "rc=$?"
"$PY" -c "
import sys
from affectnetplus_hf.core.export_files import check_files, check_report, read_info
out = sys.argv[1]
print('problems', check_files(out, read_info(out)), len(check_report(out)) > 0)
print('notes', open(out + '/NOTES.md').read().strip())
" "$DISK/out"
ls -a "$DISK"
"""


@pytest.mark.slow
def test_a_really_full_disk_is_one_line_and_the_previous_export_stays(make_release, tmp_path):
    """A 2 MB tmpfs, mounted in a private mount namespace (``unshare``): an export that fits, then one that does not."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small tmpfs")
    small, big = make_release(n=3), make_release(n=100)
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {**os.environ, "DISK": str(disk), "PY": sys.executable, "SMALL": str(small.root), "BIG": str(big.root)}
    run = subprocess.run(
        ["unshare", "-r", "-m", "sh", "-c", _FULL_DISK_SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if run.returncode == 77 or "unshare:" in run.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()[:200]}")
    assert run.returncode == 0, run.stderr
    assert "rc=2" in run.stdout
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "No space left on device" in errors[0] and f"{disk}/out" in errors[0], run.stderr
    assert "problems [] True" in run.stdout and "notes mine" in run.stdout
    assert ".out.tmp-" not in run.stdout  # the staging folder went


@pytest.mark.skipif(
    not os.path.exists("/dev/full"), reason="needs /dev/full (Linux), which answers every write with ENOSPC"
)
def test_a_real_enospc_from_the_parquet_writer_is_one_line_and_no_ignored_traceback(
    release, tmp_path, monkeypatch, capfd
):
    """Shards written to /dev/full: the OS's own ENOSPC comes through pyarrow, as on a full disk."""
    import gc

    import affectnetplus_hf.exporter.writer as export_module

    monkeypatch.setattr(export_module, "_partition_path", lambda *args: Path("/dev/full"))
    out = tmp_path / "affectnet_plus"
    with pytest.raises(ExportError) as err:
        export(release.root, out, progress=False, card_plots=False)
    message = str(err.value)
    del err  # its traceback holds the writer: let it go, as a CLI run would on exit
    gc.collect()
    assert "No space left" in message and "\n" not in message and str(out) in message
    assert "Exception ignored" not in capfd.readouterr().err  # the half-open writer was closed for good
    assert not out.exists() and _leftovers(out) == []
