"""Removing a folder of an earlier run never removes a file that is not the export's."""

from __future__ import annotations

import os

from affectnetplus_hf.export import export
from affectnetplus_hf.export_swap import remove_owned, user_files


def test_user_files_are_everything_the_manifest_does_not_own(make_release, tmp_path):
    out = export(make_release(n=3).root, tmp_path / "affectnet_plus", progress=False, card_plots=False).out_dir
    (out / "mine").mkdir()
    (out / "mine" / "a.txt").write_text("a")
    (out / "empty").mkdir()
    os.symlink("/nonexistent", out / "link")
    from affectnetplus_hf.export_layout import read_info

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
