"""Removing a folder of an earlier run never removes a file that is not the export's."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from affectnetplus_hf.core.export_files import read_info
from affectnetplus_hf.errors import ExportError
from affectnetplus_hf.exporter.swap import remove_owned, user_files
from affectnetplus_hf.exporter.writer import export


def test_user_files_are_everything_the_manifest_does_not_own(make_release, tmp_path):
    out = export(make_release(n=3).root, tmp_path / "affectnet_plus", progress=False, card_plots=False).out_dir
    (out / "mine").mkdir()
    (out / "mine" / "a.txt").write_text("a")
    (out / "empty").mkdir()
    os.symlink("/nonexistent", out / "link")
    from affectnetplus_hf.core.export_files import read_info

    assert user_files(out, read_info(out)) == ["empty/", "link", "mine/a.txt"]


def test_remove_owned_keeps_a_folder_holding_a_file_nobody_carried(make_release, tmp_path, caplog):
    release = make_release(n=3)
    old = export(release.root, tmp_path / "old" / "affectnet_plus", progress=False, card_plots=False).out_dir
    out = export(release.root, tmp_path / "affectnet_plus", progress=False, card_plots=False).out_dir
    (out / "carried.txt").write_text("kept in OUT")
    os.link(out / "carried.txt", old / "carried.txt")  # a hard link: the same file as OUT's
    (old / "late.txt").write_text("written into the old folder during the export")
    kept = remove_owned(old, out)
    assert kept == ["late.txt"]
    assert (old / "late.txt").read_text().startswith("written") and sorted(os.listdir(old)) == ["late.txt"]
    assert (out / "carried.txt").read_text() == "kept in OUT"
    assert "late.txt" in caplog.text
    (old / "late.txt").unlink()
    assert remove_owned(old, out) == [] and not old.exists()


def test_a_leftover_that_cannot_be_removed_is_named_and_the_export_goes_on(make_release, tmp_path, monkeypatch, caplog):
    """A leftover of another user's killed run (files we may not delete) used to stop every later
    export with a 'Permission denied' that named OUT, which was writable."""
    import affectnetplus_hf.exporter.swap as export_swap

    release = make_release(n=3)
    out = export(release.root, tmp_path / "affectnet_plus", progress=False, card_plots=False).out_dir
    leftover = tmp_path / ".affectnet_plus.tmp-0badc0de"
    (leftover / "data").mkdir(parents=True)
    (leftover / "data" / "theirs.parquet").write_text("written by another user's killed run")
    export_swap.claim(out, leftover, "staging")  # the journal proves it is an export's (a killed run's)
    real = export_swap.remove_staging

    def refuse(folder):
        if folder == leftover:
            raise PermissionError(errno.EACCES, "Permission denied", str(leftover / "data" / "theirs.parquet"))
        return real(folder)

    monkeypatch.setattr(export_swap, "remove_staging", refuse)
    result = export(release.root, out, progress=False, card_plots=False)
    assert result.out_dir == out and read_info(out)["fingerprint"] == result.fingerprint
    assert (leftover / "data" / "theirs.parquet").exists()
    assert str(leftover) in caplog.text and "Permission denied" in caplog.text


def test_a_lock_held_by_another_user_is_named(make_release, tmp_path, monkeypatch):
    from filelock import FileLock

    release = make_release(n=3)
    out = export(release.root, tmp_path / "affectnet_plus", progress=False, card_plots=False).out_dir
    before = read_info(out)["fingerprint"]
    lock = tmp_path / ".affectnet_plus.lock"
    assert lock.exists()

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(lock))

    monkeypatch.setattr(FileLock, "acquire", denied)
    with pytest.raises(ExportError) as err:
        export(release.root, out, progress=False, card_plots=False, num_shards=2)
    message = str(err.value)
    assert message.startswith(f"{lock}: ") and "another user" in message and "delete that file" in message
    assert "\n" not in message and read_info(out)["fingerprint"] == before


def test_a_reexport_keeps_the_permissions_of_the_folder_and_of_your_folders(make_release, tmp_path):
    release = make_release(n=3)
    out = export(release.root, tmp_path / "affectnet_plus", progress=False, card_plots=False).out_dir
    (out / "my_experiments").mkdir()
    (out / "my_experiments" / "run1.csv").write_text("1")
    os.chmod(out / "my_experiments", 0o750)
    os.chmod(out, 0o700)  # licensed data: closed to other users
    export(release.root, out, progress=False, card_plots=False, num_shards=2)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "my_experiments").stat().st_mode) == 0o750
    assert (out / "my_experiments" / "run1.csv").read_text() == "1"


def test_a_previous_export_that_cannot_be_removed_is_one_warning(make_release, tmp_path, monkeypatch, caplog):
    import affectnetplus_hf.exporter.writer as export_module

    release = make_release(n=3)
    out = export(release.root, tmp_path / "affectnet_plus", progress=False, card_plots=False).out_dir

    def refuse(folder, out_dir):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))

    monkeypatch.setattr(export_module, "retire", refuse)
    result = export(release.root, out, progress=False, card_plots=False, num_shards=2)
    assert read_info(out)["fingerprint"] == result.fingerprint
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "could not remove" in r.getMessage()]
    assert len(warnings) == 1 and "the previous export" in warnings[0].getMessage()


def test_a_non_atomic_swap_whose_second_rename_fails_puts_the_previous_export_back(tmp_path):
    from affectnetplus_hf.exporter.swap import swap

    out = tmp_path / "affectnet_plus"
    out.mkdir()
    (out / "export_info.json").write_text("{}")
    missing_staging = tmp_path / ".affectnet_plus.tmp-gone"  # the second rename fails on it
    with pytest.raises(OSError):
        swap(missing_staging, out, "cafe0001", atomic=False)
    assert (out / "export_info.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["affectnet_plus"]


def test_a_disk_failure_on_a_new_out_says_it_was_not_created(make_release, tmp_path, monkeypatch):
    import affectnetplus_hf.exporter.writer as export_module

    def full(path, lines):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(export_module, "_write_report", full)
    out = tmp_path / "new" / "affectnet_plus"
    with pytest.raises(ExportError) as err:
        export(make_release(n=3).root, out, progress=False, card_plots=False)
    message = str(err.value)
    assert message.startswith(f"{out}: cannot write the export: No space left") and message.endswith(
        f"{out} was not created."
    )
    assert "previous export" not in message and not out.exists()


def test_a_parent_you_may_not_write_is_named_with_why_it_matters(make_release, tmp_path, monkeypatch):
    from filelock import FileLock

    out = tmp_path / "datasets" / "affectnet_plus"

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.lock_file))

    monkeypatch.setattr(FileLock, "acquire", denied)
    with pytest.raises(ExportError) as err:
        export(make_release(n=3).root, out, progress=False, card_plots=False)
    message = str(err.value)
    assert (
        message.startswith(f"{out}: cannot create the export's lock") and f"so {out.parent} must be writable" in message
    )
    assert not out.exists()


def test_a_card_you_edited_is_not_replaced_unasked_but_a_damaged_shard_is(make_release, tmp_path):
    from affectnetplus_hf.core.export_files import check_files, shard_paths

    release = make_release(n=3)
    out = export(release.root, tmp_path / "affectnet_plus", progress=False, card_plots=False, num_shards=2).out_dir
    card = out / "README.md"
    card.write_text(card.read_text() + "\n## Our lab's notes\nsplit 3 is noisy\n")
    with pytest.raises(ExportError) as err:
        export(release.root, out, progress=False, card_plots=False, num_shards=2)
    assert str(err.value).startswith(f"{card}: changed since the export wrote it") and "Nothing was changed" in str(
        err.value
    )
    assert card.read_text().endswith("split 3 is noisy\n")
    card.unlink()  # what the message says to do, once the notes are safe
    shard = out / shard_paths(read_info(out))[0]
    shard.write_bytes(shard.read_bytes()[:-7])  # a damaged shard: the re-export repairs it
    export(release.root, out, progress=False, card_plots=False, num_shards=2)
    assert shard.exists() and check_files(out, read_info(out)) == []  # same bytes, same path: repaired


def test_a_stranded_previous_export_that_cannot_be_put_back_is_named(tmp_path, monkeypatch):
    from pathlib import Path

    from affectnetplus_hf.exporter.swap import claim, recover

    out = tmp_path / "affectnet_plus"
    stranded = tmp_path / ".affectnet_plus.old-0000beef"
    stranded.mkdir()
    (stranded / "export_info.json").write_text("{}")
    claim(out, stranded, "previous")  # what a swap records before it moves OUT there

    def refuse(self, target):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "rename", refuse)
    with pytest.raises(ExportError) as err:
        recover(out)
    message = str(err.value)
    assert (
        message.startswith(f"{out}: missing; the previous export is in {stranded}")
        and f"Rename {stranded} to {out}" in message
    )
    assert (stranded / "export_info.json").exists()
