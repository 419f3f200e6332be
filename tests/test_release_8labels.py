"""The 8-label AffectNet release: found, verified, exported, loaded, streamed through the Hub test server and
trained through make_loader in the AffectNet+ schema,
every planted fault reported with its file and reason."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections import Counter

import numpy as np
import pytest

from affectnetplus_hf.cli import main
from affectnetplus_hf.core.export_files import read_report
from affectnetplus_hf.core.schema import FEATURES
from affectnetplus_hf.errors import ReleaseNotFoundError
from affectnetplus_hf.release.eightlabel import load_npy
from affectnetplus_hf.release.kind import iter_rows, open_release
from affectnetplus_hf.release.reader import UNEXPECTED, reason_class
from affectnetplus_hf.release.sample_original import FAULTS_8LABELS, write_sample_8labels
from tests.support.original_support import assert_rows_exact

ALL_FAULTS = list(FAULTS_8LABELS)


@pytest.fixture
def release8(tmp_path):
    return write_sample_8labels(
        tmp_path / "downloads" / "AffectNet8Labels", n=len(ALL_FAULTS), faults={"train": ALL_FAULTS}
    )


def test_detected_through_extra_nesting_and_other_spellings(tmp_path):
    manifest = write_sample_8labels(tmp_path / "x" / "archive" / "AffectNet", n=2)
    (manifest.root / "train_set").rename(manifest.root / "Train Set")
    (manifest.root / "Train Set" / "images").rename(manifest.root / "Train Set" / "Images")
    release = open_release(tmp_path / "x")
    assert release.kind == "affectnet_8labels" and release.root == manifest.root.absolute()
    assert list(release.parts) == ["train", "validation"]
    records, _ = release.list_records("train")
    assert [r.image_id for r in records] == ["0", "1"]


def test_every_planted_fault_is_reported_with_its_file(release8):
    release = open_release(release8.root)
    records, ignored = release.list_records("train")
    results = list(iter_rows(records))
    assert len(results) == len(records) == len(ALL_FAULTS)
    bad = {r.bad.image_id: r.bad for r in results if r.bad}
    assert set(bad) == release8.bad_ids("train")
    expected_file = {
        "missing_image": "{n}_exp.npy",
        "truncated_jpeg": "{n}.jpg",
        "missing_exp": "{n}.jpg",
        "npy_abc": "{n}_exp.npy",
        "short_landmarks": "{n}_lnd.npy",
        "pickled_npy": "{n}_exp.npy",
        "huge_shape": "{n}_lnd.npy",
        "not_npy": "{n}_val.npy",
    }
    expected_reason = {
        "missing_image": "image missing",
        "truncated_jpeg": "JPEG cut short",
        "missing_exp": "_exp.npy",
        "npy_abc": "found 'abc'",
        "short_landmarks": "found 135",
        "pickled_npy": "needs pickle",
        "huge_shape": "1000000000000",
        "not_npy": "not a .npy file",
    }
    for (_part, image_id), fault in release8.faults.items():
        if image_id in bad:
            assert bad[image_id].path.endswith("/" + expected_file[fault].format(n=image_id)), (fault, bad[image_id])
            assert expected_reason[fault] in bad[image_id].reason, (fault, bad[image_id].reason)
            assert reason_class(bad[image_id].reason) != UNEXPECTED
    notes = {(n.image_id, n.field): n.reason for r in results for n in r.notes}
    by_fault = {fault: image_id for (_, image_id), fault in release8.faults.items()}
    assert "outside the documented range" in notes[(by_fault["out_of_range"], "valence")]
    assert "stored null" in notes[(by_fault["missing_lnd"], "landmarks")]
    assert [str(i.path) for i in ignored] == [str(p.absolute()) for p in release8.ignored]


def test_export_and_load_give_the_rows_written(release8, tmp_path, hf_cache):
    import datasets

    out = tmp_path / "affectnet_8labels"
    assert main(["export", str(release8.root), str(out), "-q", "--num-proc", "1"]) == 1  # bad records reported
    info = json.loads((out / "export_info.json").read_text())
    assert info["release"] == "affectnet_8labels"
    assert datasets.get_dataset_config_names(str(out)) == ["all"]  # no subset configs: the release has none
    ds = datasets.load_dataset(str(out), "all")
    assert set(ds) == {"train", "validation"}
    compared = sum(assert_rows_exact(ds[split], release8, split) for split in ("train", "validation"))
    assert compared == 2 * len(ALL_FAULTS) - len(release8.bad_ids("train"))
    report = read_report(out)
    bad = [line for line in report if line["kind"] == "bad_record"]
    assert sorted(line["image_id"] for line in bad) == sorted(release8.bad_ids("train"))
    assert all(line["path"] and line["reason"] for line in bad)
    card = (out / "README.md").read_text()
    assert "# AffectNet 8-label" in card and "train 287,651, validation 3,999" in card
    assert "`<n>_exp.npy` (codes 0..7 in this release)" in card and "may not be redistributed" in card


def test_verify_says_which_release_and_counts(release8, capsys):
    assert main(["verify", str(release8.root), "-q"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"AffectNet 8-label release at {release8.root.absolute()}")
    assert "LOOKS INCOMPLETE" in out and "published" in out


def test_npy_header_is_read_before_the_data(tmp_path):
    path = tmp_path / "big_lnd.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_2_0(handle, {"descr": "<U100000000", "fortran_order": False, "shape": ()})
    with pytest.raises(ValueError, match="cut short"):
        load_npy(path)  # a 400 MB string declared by a 100-byte file: refused, nothing allocated
    np.save(tmp_path / "ok.npy", np.array("3"))
    assert load_npy(tmp_path / "ok.npy").item() == "3"


def test_a_folder_of_no_release_says_what_was_looked_for_in_one_message(tmp_path, capsys):
    (tmp_path / "photos" / "holiday").mkdir(parents=True)
    assert main(["verify", str(tmp_path / "photos"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for looked in (
        "human_annotated/train_set",
        "Manually_Annotated_file_lists/training.csv",
        "train_set/ and val_set/",
    ):
        assert looked in err


def test_two_releases_in_one_folder_are_named(tmp_path, release8):
    shutil.copytree(release8.root, tmp_path / "both" / "eight")
    from affectnetplus_hf.release.sample import write_sample

    write_sample(tmp_path / "both" / "AffectNet+", n=1, parts=("validation",))
    with pytest.raises(ReleaseNotFoundError, match="more than one release .AffectNet\\+ at .*AffectNet 8-label at"):
        open_release(tmp_path / "both")


def test_sample_cli_writes_the_8label_layout(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "s"), "--kind", "8labels", "--n", "3", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "s" / "train_set" / "annotations").iterdir())[:4] == [
        "0_aro.npy",
        "0_exp.npy",
        "0_lnd.npy",
        "0_val.npy",
    ]
    assert main(["sample", str(tmp_path / "f"), "--kind", "8labels", "--with-faults", "--n", "3"]) == 2
    assert "--with-faults plants" in capsys.readouterr().err


@pytest.mark.slow
def test_streams_through_the_hub_server(release8, tmp_path, hub):
    import datasets

    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.hub.publish import push

    out = tmp_path / "affectnet_8labels"
    export(release8.root, out, num_shards=2, progress=False, card_plots=False)
    push(out, "my-lab/affectnet_8labels", progress=False, echo=None)
    remote = datasets.load_dataset("my-lab/affectnet_8labels", "all", streaming=True)
    assert set(remote) == {"train", "validation"}
    compared = 0
    for split in ("train", "validation"):
        assert remote[split].features == FEATURES
        rows = list(remote[split].cast_column("image", datasets.Image(decode=False)))
        streamed = datasets.Dataset.from_list(rows, features=FEATURES)  # every streamed row, as streamed
        compared += assert_rows_exact(streamed, release8, split)
    assert compared == 2 * len(ALL_FAULTS) - len(release8.bad_ids("train"))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_make_loader_yields_every_written_row_once_an_epoch(release8, tmp_path, hf_cache):
    import datasets

    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.torch import make_loader

    out = tmp_path / "affectnet_8labels"
    export(release8.root, out, progress=False, card_plots=False)
    train = datasets.load_dataset(str(out), "all", split="train")
    loader = make_loader(train, 3, num_workers=2, seed=0)
    seen = Counter()
    for batch in loader:
        assert batch["image"].ndim == 4 and batch["image"].shape[1] == 3
        for k, image_id in enumerate(batch["image_id"]):
            seen[image_id] += 1
            assert batch["human_label"][k].item() == release8.rows[("train", image_id)]["human_label"]
    assert seen == Counter(release8.good_ids("train"))  # every written row, each once; the bad ones never
