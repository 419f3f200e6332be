"""AffectNet as released in 2017 (CSV lists, full images): found, verified, exported, loaded and
streamed through the Hub test server in the AffectNet+ schema, every planted fault reported with
its file, its CSV line and the reason."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter

import pytest

from affectnetplus_hf.cli import main
from affectnetplus_hf.core.export_files import read_report
from affectnetplus_hf.core.schema import FEATURES
from affectnetplus_hf.release.kind import iter_rows, open_release
from affectnetplus_hf.release.reader import UNEXPECTED, reason_class
from affectnetplus_hf.release.sample_original import FAULTS_2017, write_sample_2017
from tests.support.original_support import assert_rows_exact

ALL_FAULTS = list(FAULTS_2017)


@pytest.fixture
def release17(tmp_path):
    return write_sample_2017(tmp_path / "data" / "AffectNet", n=len(ALL_FAULTS), faults={"train": ALL_FAULTS})


def test_found_through_the_real_nesting_and_any_spelling(tmp_path):
    manifest = write_sample_2017(tmp_path / "x" / "AffectNet", n=2)
    (manifest.root / "Manually_Annotated").rename(manifest.root / "manually-annotated")
    (manifest.root / "Manually_Annotated_file_lists").rename(manifest.root / "Manually Annotated File Lists")
    release = open_release(tmp_path / "x")
    assert release.kind == "affectnet_2017" and release.title == "AffectNet 2017"
    assert list(release.parts) == ["train", "validation", "automatic"]
    records, ignored = release.list_records("train")
    assert [r.image_id for r in records] == manifest.ids["train"] and ignored == []


def test_every_planted_fault_is_reported_with_its_file_and_line(release17):
    release = open_release(release17.root)
    records, ignored = release.list_records("train")
    results = list(iter_rows(records))
    lines = release17.lines
    assert len(results) == len(ALL_FAULTS) + len(release17.extra_bad)  # one record per CSV line
    bad = {(r.bad.image_id, r.bad.line): r.bad for r in results if r.bad}
    expected = {(i, lines[("train", i)]) for i in release17.bad_ids("train")} | {
        (i, line) for _, i, line in release17.extra_bad
    }
    assert set(bad) == expected
    csv_path = str(release.parts["train"])
    reasons = {
        "missing_image": (csv_path, "image missing"),
        "short_landmarks": (csv_path, "found 135"),
        "non_numeric_code": (csv_path, "found 'abc'"),
        "duplicate_path": (csv_path, "duplicated path with another label"),
        "malformed_line": (csv_path, "malformed CSV line"),
        "truncated_jpeg": (".jpg", "JPEG cut short"),
    }
    for (part, image_id), fault in release17.faults.items():
        if fault not in reasons:
            continue
        record = bad[(image_id, lines[(part, image_id)])]
        path, words = reasons[fault]
        assert record.path.endswith(path) and words in record.reason, (fault, record)
        assert reason_class(record.reason) != UNEXPECTED
    notes = {(n.image_id, n.field): n for r in results for n in r.notes}
    by_fault = {fault: image_id for (_, image_id), fault in release17.faults.items()}
    note = notes[(by_fault["out_of_range"], "valence")]
    assert note.line == lines[("train", by_fault["out_of_range"])] and "kept as released" in note.reason
    assert "stored null" in notes[(by_fault["bad_face_box"], "face_box")].reason
    assert [str(i.path) for i in ignored] == [str(p.absolute()) for p in release17.ignored]
    assert "named by no list" in ignored[0].reason


def test_export_and_load_give_the_rows_written(release17, tmp_path, hf_cache):
    import datasets

    out = tmp_path / "affectnet_2017"
    assert main(["export", str(release17.root), str(out), "-q", "--num-proc", "2"]) == 1
    assert json.loads((out / "export_info.json").read_text())["release"] == "affectnet_2017"
    assert datasets.get_dataset_config_names(str(out)) == ["all", "automatic"]
    ds = datasets.load_dataset(str(out), "all")
    assert set(ds) == {"train", "validation"}
    assert_rows_exact(ds["train"], release17, "train")
    assert_rows_exact(ds["validation"], release17, "validation")
    automatic = datasets.load_dataset(str(out), "automatic")
    assert set(automatic) == {"train"}
    assert_rows_exact(automatic["train"], release17, "automatic")  # expression in auto_label, human_label null
    png = [row for row in release17.rows.values() if row["image"].suffix == ".png"]
    assert png  # the sample holds PNG images, carried byte for byte (compared above)

    report = read_report(out)
    bad = [line for line in report if line["kind"] == "bad_record"]
    assert all("line" in line and line["path"] and line["reason"] for line in bad)
    assert len(bad) == len(release17.bad_ids("train")) + len(release17.extra_bad)
    ignored = [line for line in report if line["kind"] == "ignored_file"]
    assert [line["path"] for line in ignored] == [str(p.absolute()) for p in release17.ignored]
    summary = report[-1]
    assert summary["read"] == summary["written"] + summary["bad"]

    card = (out / "README.md").read_text()
    assert "# AffectNet 2017" in card and "train 414,799, validation 5,500" in card
    assert "`face_x`, `face_y`, `face_width`, `face_height`" in card and "may not be redistributed" in card
    assert "| automatic | train |" in card and "| easy |" not in card


def test_verify_prints_file_and_line(release17, capsys):
    assert main(["verify", str(release17.root), "-q"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("AffectNet 2017 release at")
    csv_path = open_release(release17.root).parts["train"]
    image_id = next(i for (p, i), f in release17.faults.items() if f == "non_numeric_code")
    assert f"BAD {csv_path}:{release17.lines[('train', image_id)]}: expression" in out


def test_odd_lists_never_end_in_a_traceback(tmp_path):
    manifest = write_sample_2017(tmp_path / "AffectNet", n=3, parts=("validation",))
    path = manifest.root / "Manually_Annotated_file_lists" / "validation.csv"
    text = path.read_bytes()
    garbage = [
        b"\xff\xfe\x00garbage not utf-8\n",
        b'"an open quote, never closed\n',
        b"x" * 200_000 + b"\n",  # longer than any line: reported, not held
        b"subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n",
        b"../../etc/passwd,1,2,3,4,1;2,3,0.1,0.2\n",
        b"1/x.jpg,1,2,3,4," + b";".join([b"1e400"] * 136) + b",1,0.1,0.2\n",
        b"1/y.jpg,1,2,3,4,," + b"9" * 5000 + b",0.1,0.2\n",
        b"\n\n",
    ]
    path.write_bytes(text + b"".join(garbage))
    release = open_release(manifest.root)
    records, ignored = release.list_records("validation")
    results = list(iter_rows(records, check_images="decode"))
    assert sum(r.row is not None for r in results) == 3
    bad = [r.bad for r in results if r.bad]
    assert len(bad) == 6 and all(b.line and b.reason and reason_class(b.reason) != UNEXPECTED for b in bad)
    assert any("header line again" in i.reason for i in ignored)


@pytest.mark.slow
def test_streams_through_the_hub_server(release17, tmp_path, hub):
    import datasets

    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.hub.publish import push

    out = tmp_path / "affectnet_2017"
    export(release17.root, out, num_shards=2, progress=False, card_plots=False)
    push(out, "my-lab/affectnet_2017", progress=False, echo=None)
    for config, splits in (("all", {"train", "validation"}), ("automatic", {"train"})):
        local = datasets.load_dataset(str(out), config)
        remote = datasets.load_dataset("my-lab/affectnet_2017", config, streaming=True)
        assert set(remote) == set(local) == splits
        for split in splits:
            assert remote[split].features == FEATURES
            decode_off = datasets.Image(decode=False)
            got = [
                (r["image_id"], r["image"]["bytes"], r["face_box"], r["auto_label"])
                for r in remote[split].cast_column("image", decode_off)
            ]
            want = [
                (r["image_id"], r["image"]["bytes"], r["face_box"], r["auto_label"])
                for r in local[split].cast_column("image", decode_off)
            ]
            assert got == want


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_make_loader_crops_every_written_row_once_an_epoch(release17, tmp_path, hf_cache):
    import datasets

    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.torch import make_loader

    out = tmp_path / "affectnet_2017"
    export(release17.root, out, progress=False, card_plots=False)
    train = datasets.load_dataset(str(out), "all", split="train")
    loader = make_loader(train, 3, num_workers=2, crop="face", size=32, on_bad="skip", seed=0)
    seen = Counter()
    for batch in loader:
        assert tuple(batch["image"].shape[1:]) == (3, 32, 32)
        for k, image_id in enumerate(batch["image_id"]):
            seen[image_id] += 1
            assert batch["human_label"][k].item() == release17.rows[("train", image_id)]["human_label"]
    boxless = [i for i in release17.good_ids("train") if release17.rows[("train", i)]["face_box"] is None]
    assert boxless  # the planted bad_face_box row: written, but nothing to crop
    assert sorted(s.image_id for s in loader.skipped) == sorted(boxless)
    assert seen == Counter(i for i in release17.good_ids("train") if i not in boxless)  # the rest, each once
