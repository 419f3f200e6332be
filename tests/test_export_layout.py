"""The exported folder's layout in one place: shard names and globs agree, the manifest catches
every changed byte, the report is checked against the folder it sits in."""

from __future__ import annotations

import fnmatch
import json

import pytest

from affectnetplus_hf.core.configs import NULL_SUBSET
from affectnetplus_hf.core.export_files import (
    CARD_FILE,
    FORMAT1_PLOTS,
    FORMAT_VERSION,
    INFO_FILE,
    REPORT_FILE,
    check_files,
    check_report,
    manifest,
    owned_paths,
    read_info,
    shard_paths,
)
from affectnetplus_hf.errors import ExportError
from affectnetplus_hf.exporter.card import config_data_files
from affectnetplus_hf.exporter.writer import export


@pytest.fixture
def out(make_release, tmp_path):
    return export(make_release(n=5).root, tmp_path / "affectnet_plus", num_shards=2, progress=False).out_dir


def test_the_manifest_lists_every_file_of_the_export_and_nothing_else(out):
    info = read_info(out)
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert set(manifest(info)) == on_disk - {INFO_FILE, REPORT_FILE}
    assert owned_paths(info) == on_disk
    assert set(shard_paths(info)) <= set(manifest(info)) and CARD_FILE in manifest(info)
    assert any(rel.startswith("stats/") for rel in manifest(info))  # the plots are the export's too
    assert check_files(out, info) == []


def test_every_config_glob_matches_only_listed_shards_and_every_shard_is_read(out):
    info = read_info(out)
    shards = shard_paths(info)
    matched = set()
    for config, splits in config_data_files(info).items():
        for split, pattern in splits.items():
            hits = {s for s in shards if fnmatch.fnmatchcase(s, pattern)}
            assert hits, (config, split)
            if config in ("all", "unlabeled"):
                matched |= hits
    assert matched == set(shards)
    assert any(f"/{NULL_SUBSET}-" in s for s in shards) or all(
        NULL_SUBSET not in spec["partitions"] for spec in info["parts"].values()
    )


@pytest.mark.parametrize("change", ["truncated", "same-size", "deleted"])
def test_a_changed_file_is_named(out, change):
    info = read_info(out)
    shard = shard_paths(info)[0]
    path = out / shard
    data = path.read_bytes()
    if change == "truncated":
        path.write_bytes(data[:-10])
    elif change == "same-size":
        path.write_bytes(data[:50] + bytes([data[50] ^ 0xFF]) + data[51:])
    else:
        path.unlink()
    problems = check_files(out, info)
    assert len(problems) == 1 and shard in problems[0]


def test_a_report_of_another_export_is_caught(out):
    lines = check_report(out)
    assert lines[-1]["fingerprint"] == read_info(out)["fingerprint"]
    lines[-1]["fingerprint"] = "0" * 16
    (out / REPORT_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ExportError, match="describes export"):
        check_report(out)


def test_an_export_info_without_shards_is_an_error_not_a_traceback():
    with pytest.raises(ExportError, match="lacks"):
        shard_paths({"fingerprint": "x"})


def _as_format_1(folder) -> None:
    """Turn an export into what the package wrote before the manifest: format 1, no `files`,
    the report beside the folder."""
    info = json.loads((folder / INFO_FILE).read_text())
    info.pop("files")
    info["format_version"] = 1
    (folder / INFO_FILE).write_text(json.dumps(info))
    (folder / REPORT_FILE).rename(folder.with_name(folder.name + ".report.jsonl"))


def test_a_reexport_over_a_format_1_export_replaces_its_plots_and_keeps_user_files(make_release, tmp_path):
    release = make_release(n=4)
    out = export(release.root, tmp_path / "affectnet_plus", progress=False).out_dir
    plots = sorted(p.name for p in (out / "stats").glob("*.png"))
    assert plots == sorted(FORMAT1_PLOTS)  # what format 1 drew is what an export draws
    _as_format_1(out)
    (out / "NOTES.md").write_text("mine")
    (out / "stats" / "my_plot.png").write_text("mine too")
    export(release.root, out, progress=False)
    info = read_info(out)
    assert info["format_version"] == FORMAT_VERSION and check_files(out, info) == []
    assert (out / "NOTES.md").read_text() == "mine" and (out / "stats" / "my_plot.png").read_text() == "mine too"
    assert sorted(p.name for p in (out / "stats").glob("*.png")) == sorted([*FORMAT1_PLOTS, "my_plot.png"])
