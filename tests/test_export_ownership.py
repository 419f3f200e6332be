"""An export deletes, replaces or renames only what it can prove it wrote.

Each test is a hole a red-team pass found (issue 16): a file written into ``OUT`` while an
export runs, folders of yours beside ``OUT`` whose names look like an export's leftovers, a
``.parquet`` of yours inside the export's data folder, a full disk, an ``OUT`` whose name is
not UTF-8. The races are real: the file is written by the test at a named step of a real
export (``export._step``), as a user's editor would write it at that moment.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

import datasets
import pytest

import affectnetplus_hf.exporter.writer as export_module
from affectnetplus_hf.cli import main
from affectnetplus_hf.core.export_files import (
    INFO_FILE,
    check_files,
    journal_path,
    read_info,
)
from affectnetplus_hf.errors import ExportError
from affectnetplus_hf.exporter.swap import claim, reserve
from affectnetplus_hf.exporter.writer import export


def _export(raw, out, **kwargs):
    kwargs.setdefault("num_shards", 2)
    return export(raw, out, progress=False, card_plots=kwargs.pop("card_plots", False), **kwargs)


def _beside(out: Path) -> list[str]:
    """Names in OUT's parent that an export of OUT could have made (its lock aside)."""
    return sorted(
        p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and p.name != f".{out.name}.lock"
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_at(monkeypatch, step: str, write) -> list[str]:
    """Make ``write()`` run when the export reaches ``step``; returns the steps seen."""
    seen: list[str] = []

    def hook(name: str) -> None:
        seen.append(name)
        if name == step:
            write()

    monkeypatch.setattr(export_module, "_step", hook)
    return seen


# ----------------------------------------------------------------------------- files written during an export


@pytest.mark.parametrize("step", ["shards_written", "before_swap"], ids=["while-shards-are-written", "at-the-swap"])
def test_a_file_written_into_out_while_the_export_runs_is_carried_into_the_new_export(
    make_release, tmp_path, monkeypatch, step
):
    """`notes.txt`, written after the export listed OUT's files (old code: at the start), was
    left in the hidden folder of the previous export, which the next export then deleted."""
    release = make_release(n=4)
    out = _export(release.root, tmp_path / "affectnet_plus").out_dir
    (out / "mine").mkdir()
    (out / "mine" / "early.txt").write_text("there before the export")

    def write_notes():
        (out / "notes.txt").write_text("written while the export ran")
        (out / "mine" / "late.csv").write_text("a,b\n")

    seen = _write_at(monkeypatch, step, write_notes)
    result = _export(release.root, out, num_shards=3)
    assert step in seen
    assert (out / "notes.txt").read_text() == "written while the export ran"
    assert (out / "mine" / "late.csv").read_text() == "a,b\n"
    assert (out / "mine" / "early.txt").read_text() == "there before the export"
    assert result.kept_files == ["mine/early.txt", "mine/late.csv", "notes.txt"]  # the CLI lists them
    assert check_files(out, read_info(out)) == [] and read_info(out)["parts"]["train"]["num_shards"] == 3
    assert _beside(out) == []
    monkeypatch.setattr(export_module, "_step", lambda name: None)
    _export(release.root, out)  # and the next export keeps them too
    assert (out / "notes.txt").read_text() == "written while the export ran" and _beside(out) == []


def test_a_late_file_with_a_name_the_new_export_writes_is_kept_named_and_never_deleted(
    make_release, tmp_path, monkeypatch, caplog
):
    """Written at the swap under the name of a plot the new export draws: it cannot go into the
    new OUT, so it stays in the previous export's folder, named; no later export touches it."""
    pytest.importorskip("matplotlib")
    release = make_release(n=4)
    out = _export(release.root, tmp_path / "affectnet_plus").out_dir  # no plots this time

    def write_plot():
        (out / "stats").mkdir()
        (out / "stats" / "class_subset_counts.png").write_bytes(b"my own plot")

    _write_at(monkeypatch, "before_swap", write_plot)
    with caplog.at_level(logging.WARNING, logger="affectnetplus_hf"):
        _export(release.root, out, card_plots=True)
    left = [tmp_path / name for name in _beside(out)]
    assert len(left) == 1 and _tree(left[0]) == {"stats/class_subset_counts.png": b"my own plot"}
    assert str(left[0]) in caplog.text and "class_subset_counts.png" in caplog.text
    assert (out / "stats" / "class_subset_counts.png").read_bytes() != b"my own plot"  # the export's plot
    monkeypatch.setattr(export_module, "_step", lambda name: None)
    (out / "stats" / "class_subset_counts.png").unlink()  # so the next export does not refuse it as edited
    _export(release.root, out, card_plots=True)
    assert _tree(left[0]) == {"stats/class_subset_counts.png": b"my own plot"}  # yours now: never removed


def test_a_card_edited_while_the_export_runs_stops_it_before_the_swap(make_release, tmp_path, monkeypatch):
    release = make_release(n=4)
    out = _export(release.root, tmp_path / "affectnet_plus").out_dir
    card = out / "README.md"

    def edit():
        card.write_text(card.read_text() + "\n## Our lab's notes\n")

    _write_at(monkeypatch, "shards_written", edit)
    before = read_info(out)["fingerprint"]
    with pytest.raises(ExportError, match="changed since the export wrote it") as err:
        _export(release.root, out, num_shards=3)
    assert str(err.value).startswith(f"{card}: ") and "Nothing was changed" in str(err.value)
    assert card.read_text().endswith("## Our lab's notes\n") and read_info(out)["fingerprint"] == before
    assert _beside(out) == []


# ----------------------------------------------------------------------------- folders beside OUT


def _copy_of_an_export(release, tmp_path: Path, where: Path) -> dict[str, bytes]:
    """``where``: a user's copy of an export (a backup), with a notes file of theirs."""
    src = _export(release.root, tmp_path / "elsewhere" / where.name).out_dir
    shutil.copytree(src, where)
    (where / "why.txt").write_text("my backup")
    return _tree(where)


def test_folders_of_yours_named_like_leftovers_beside_out_are_never_touched(make_release, tmp_path):
    """`.OUT.tmp-scratch/` and `.OUT.old-mybackup/` were emptied or deleted by the next export."""
    release = make_release(n=4)
    out = _export(release.root, tmp_path / "affectnet_plus").out_dir
    scratch = tmp_path / ".affectnet_plus.tmp-scratch"
    (scratch / "data").mkdir(parents=True)
    (scratch / "data" / "draft.parquet").write_bytes(b"my draft")
    (scratch / "todo.md").write_text("scratch")
    backup = tmp_path / ".affectnet_plus.old-mybackup"
    users = {scratch: _tree(scratch), backup: _copy_of_an_export(release, tmp_path, backup)}
    stranger = tmp_path / ".affectnet_plus.tmp-0badc0de"  # another user's run, killed: not ours to remove
    (stranger / "data").mkdir(parents=True)
    (stranger / "data" / "theirs.parquet").write_bytes(b"theirs")
    users[stranger] = _tree(stranger)

    result = _export(release.root, out, num_shards=3)
    assert read_info(out)["fingerprint"] == result.fingerprint  # a stranger's leftover does not block the export
    for folder, tree in users.items():
        assert _tree(folder) == tree, folder
    assert _beside(out) == sorted(folder.name for folder in users)


def test_a_missing_out_is_never_replaced_by_a_folder_of_yours_named_like_a_stranded_export(make_release, tmp_path):
    """With OUT missing, `.OUT.old-2023` (a backup of yours) was renamed into OUT."""
    release = make_release(n=4)
    backup = tmp_path / ".affectnet_plus.old-2023"
    tree = _copy_of_an_export(release, tmp_path, backup)
    out = tmp_path / "affectnet_plus"
    _export(release.root, out)
    assert _tree(backup) == tree
    assert not (out / "why.txt").exists() and check_files(out, read_info(out)) == []


def test_a_recorded_leftover_replaced_by_a_folder_of_yours_is_not_touched(make_release, tmp_path):
    """The journal names the folder *and* its inode: a folder of yours put at that name later is not ours."""
    release = make_release(n=4)
    out = _export(release.root, tmp_path / "affectnet_plus").out_dir
    ours = tmp_path / ".affectnet_plus.tmp-1234abcd"
    ours.mkdir()
    claim(out, ours, "staging")  # what a killed run leaves recorded
    ours.rename(tmp_path / "moved-away")
    ours.mkdir()  # a new folder (a new inode) at the recorded name, yours
    (ours / "mine.txt").write_text("mine")
    _export(release.root, out)
    assert _tree(ours) == {"mine.txt": b"mine"}
    assert not journal_path(out).exists()  # the record proved nothing and was dropped


def test_a_reserved_staging_name_is_removed_only_while_it_is_an_empty_folder(make_release, tmp_path):
    """A run killed between creating its staging folder and recording its inode left a record by
    name only: the next export removes that folder only if it is empty (``rmdir``)."""
    release = make_release(n=4)
    out = _export(release.root, tmp_path / "affectnet_plus").out_dir
    empty, full, a_file = (tmp_path / f".affectnet_plus.tmp-{n}" for n in ("a1", "b2", "c3"))
    for path in (empty, full, a_file):
        reserve(out, path)  # what a killed run leaves recorded
    empty.mkdir()
    full.mkdir()
    (full / "mine.txt").write_text("mine")
    a_file.write_text("mine too")
    _export(release.root, out)
    assert not empty.exists()
    assert _tree(full) == {"mine.txt": b"mine"} and a_file.read_text() == "mine too"
    assert not journal_path(out).exists()  # every record was settled and dropped


def test_a_journal_file_that_is_not_ours_is_refused_not_replaced(make_release, tmp_path):
    release = make_release(n=4)
    out = _export(release.root, tmp_path / "affectnet_plus").out_dir
    journal = journal_path(out)
    journal.write_text('{"my": "settings"}')
    with pytest.raises(ExportError) as err:
        _export(release.root, out, num_shards=3)
    assert str(err.value).startswith(f"{journal}: not the journal") and "Nothing was changed" in str(err.value)
    assert journal.read_text() == '{"my": "settings"}' and read_info(out)["parts"]["train"]["num_shards"] == 2


# ----------------------------------------------------------------------------- the card's globs


def test_a_parquet_of_yours_in_the_data_folder_is_not_loaded_by_the_card(make_release, tmp_path, hf_cache):
    import pyarrow as pa
    import pyarrow.parquet as pq

    release = make_release(n=4)
    out = _export(release.root, tmp_path / "affectnet_plus").out_dir
    info = read_info(out)
    train = out / info["data_dir"] / "train"
    pq.write_table(pa.table({"my_score": [0.5, 0.7]}), train / "mine.parquet")
    pq.write_table(pa.table({"my_score": [0.1]}), train / "easy-scores.parquet")
    ds = datasets.load_dataset(str(out), "all", cache_dir=str(hf_cache / "1"))
    assert ds["train"].num_rows == sum(info["parts"]["train"]["rows"].values())
    easy = datasets.load_dataset(str(out), "easy", cache_dir=str(hf_cache / "2"))
    assert easy["train"].num_rows == info["parts"]["train"]["rows"]["easy"]
    _export(release.root, out)  # kept by a re-export, and still not loaded
    assert (train / "mine.parquet").exists()
    ds = datasets.load_dataset(str(out), "all", cache_dir=str(hf_cache / "3"))
    assert ds["train"].num_rows == sum(info["parts"]["train"]["rows"].values())


# ----------------------------------------------------------------------------- a full disk


def test_a_full_disk_while_writing_the_manifest_leaves_no_staging_folder_and_calls_nothing_yours(
    make_release, tmp_path, monkeypatch, caplog
):
    """The disk filled up while `export_info.json` was written: the staging folder, holding a
    torn manifest, stayed beside OUT with a warning that called the export's shards your files."""
    release = make_release(n=4)
    out = _export(release.root, tmp_path / "affectnet_plus").out_dir
    (out / "NOTES.md").write_text("mine")
    before = _tree(out)
    real = export_module._write_card_and_manifest

    def full(staging, *args):
        real(staging, *args)
        info = staging / INFO_FILE
        info.write_bytes(info.read_bytes()[:40])  # what reached the disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(info))

    monkeypatch.setattr(export_module, "_write_card_and_manifest", full)
    with caplog.at_level(logging.INFO, logger="affectnetplus_hf"), pytest.raises(ExportError) as err:
        _export(release.root, out, num_shards=3)
    message = str(err.value)
    assert "No space left" in message and "\n" not in message and ".tmp-" not in message and "unchanged" in message
    assert _tree(out) == before and _beside(out) == []
    assert "not the export's" not in caplog.text and "kept" not in caplog.text


# ----------------------------------------------------------------------------- an OUT that is not UTF-8


def test_an_out_name_that_is_not_utf8_is_refused_before_the_release_is_read(tmp_path):
    out = os.fsencode(tmp_path) + b"/out\xff"
    with pytest.raises(ExportError) as err:
        export(tmp_path / "no-release-here", out, progress=False)  # the release would be the first error otherwise
    message = str(err.value)
    assert message.startswith(f"{tmp_path}/out\\xff: ") and "not valid UTF-8" in message and "\n" not in message
    assert sorted(os.listdir(tmp_path)) == []


def test_the_cli_refuses_a_non_utf8_out_with_exit_2_and_writes_nothing(release, tmp_path, capsys):
    out = os.fsdecode(os.fsencode(tmp_path) + b"/out\xff")  # as the shell hands it over
    before = sorted(os.listdir(tmp_path))
    assert main(["export", str(release.root), out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out\\xff" in err and "not valid UTF-8" in err
    assert sorted(os.listdir(tmp_path)) == before  # no lock, no staging folder: refused before any work


def test_an_interrupt_right_after_the_exchange_never_removes_the_old_folder_as_if_it_were_staging(
    make_release, tmp_path, monkeypatch
):
    """Ctrl-C between the exchange and the line after it: the staging path then holds the
    previous export, with a file of yours written at the swap; it is retired, not removed whole."""
    from affectnetplus_hf.exporter import swap as export_swap

    release = make_release(n=4)
    out = _export(release.root, tmp_path / "affectnet_plus").out_dir
    _write_at(monkeypatch, "before_swap", lambda: (out / "notes.txt").write_text("at the swap"))
    real = export_swap._exchange

    def exchange_then_interrupt(a, b):
        assert real(a, b)
        raise KeyboardInterrupt

    monkeypatch.setattr(export_swap, "_exchange", exchange_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _export(release.root, out, num_shards=3)
    assert read_info(out)["parts"]["train"]["num_shards"] == 3 and check_files(out, read_info(out)) == []
    assert (out / "notes.txt").read_text() == "at the swap" and _beside(out) == []
