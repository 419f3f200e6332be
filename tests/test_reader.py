"""The reader: every fault of a real download is either carried or reported, never lost."""

import json

import pytest

from affectnetplus_hf.errors import BadRecordError
from affectnetplus_hf.layout import RecordFiles, find_release, list_records
from affectnetplus_hf.reader import iter_rows, read_record
from affectnetplus_hf.sample import FAULTS


def _read_part(manifest, part="train", **kw):
    records, _ = list_records(find_release(manifest.root).parts[part])
    results = {}
    for res in iter_rows(records, **kw):
        results[res.row["image_id"] if res.row else res.bad.image_id] = res.row or res.bad
    return results, records


def _source(manifest, part, image_id):
    folder = find_release(manifest.root).parts[part].annotations_dir
    return json.loads((folder / f"{image_id}.json").read_bytes().decode("utf-8-sig"))


def test_every_planted_fault_is_carried_or_reported(make_release):
    manifest = make_release(n=len(FAULTS), faults={"train": list(FAULTS)})
    results, records = _read_part(manifest)
    assert len(results) == len(records) == len(FAULTS)  # nothing vanished
    for (part, image_id), fault in manifest.faults.items():
        outcome = results[image_id]
        must_be_bad = FAULTS[fault][1]
        if must_be_bad:
            assert not isinstance(outcome, dict), fault
            assert outcome.path and outcome.reason, fault
        else:
            assert isinstance(outcome, dict), (fault, outcome)


def test_bad_reasons_name_what_was_expected(make_release):
    manifest = make_release(n=6, faults={"train": ["truncated_jpeg", "empty_image", "missing_image", "missing_annotation", "bad_json", "short_soft_label"]})
    results, _ = _read_part(manifest)
    reasons = [results[str(i)].reason for i in range(6)]
    assert "JPEG cut short" in reasons[0] and "FF D9" in reasons[0]
    assert "0 bytes" in reasons[1]
    assert reasons[2].startswith("image missing")
    assert reasons[3].startswith("annotation missing")
    assert "not valid JSON" in reasons[4]
    assert "expected 8 numbers" in reasons[5]
    assert results["0"].path.endswith("0.jpg") and results["4"].path.endswith("4.json")


def test_values_are_carried_exactly(make_release):
    manifest = make_release(n=4)
    results, records = _read_part(manifest, part="validation")
    for image_id in manifest.ids["validation"]:
        row, src = results[image_id], _source(manifest, "validation", image_id)
        meta = src["meta-data"]
        assert row["human_label"] == src["human-label"]
        assert row["subset"] == src["subset"]
        assert row["soft_label"] == src["soft-label"]
        assert row["valence"] == meta["valence"] and row["arousal"] == meta["arousal"]
        assert row["age"] == meta["age"]
        assert row["gender"] == meta["gender"]
        assert row["race"]["middle_eastern"] == meta["race"]["middle eastern"]
        assert row["race"]["latino_hispanic"] == meta["race"]["latino hispanic"]
        assert row["head_pose"] == meta["pose"]
        flat = [v for xy in row["landmarks"] for v in xy]
        assert flat == meta["landmark-68"] and len(row["landmarks"]) == 68
        assert row["landmarks_29"] == meta.get("landmark-29")
        image_path = find_release(manifest.root).parts["validation"].images_dir / f"{image_id}.jpg"
        assert row["image"]["bytes"] == image_path.read_bytes()


def test_tolerated_faults_read_as_expected(make_release):
    faults = ["bom_crlf", "null_numbers", "int_for_float", "missing_pose", "missing_landmark29", "sentinel", "string_numbers"]
    manifest = make_release(n=len(faults), faults={"train": faults})
    results, _ = _read_part(manifest)
    by_fault = {fault: results[image_id] for (_, image_id), fault in manifest.faults.items()}
    assert by_fault["bom_crlf"]["soft_label"] == _source(manifest, "train", "0")["soft-label"]
    assert by_fault["null_numbers"]["age"] is None and by_fault["null_numbers"]["valence"] is None
    assert by_fault["null_numbers"]["gender"]["male"] is None
    assert by_fault["int_for_float"]["valence"] == 0.0 and isinstance(by_fault["int_for_float"]["valence"], float)
    assert by_fault["int_for_float"]["soft_label"] == [1.0] + [0.0] * 7
    assert by_fault["missing_pose"]["head_pose"] is None
    assert by_fault["missing_landmark29"]["landmarks_29"] is None
    assert by_fault["sentinel"]["valence"] is None and by_fault["sentinel"]["arousal"] is None
    src = _source(manifest, "train", "6")["meta-data"]
    assert by_fault["string_numbers"]["age"] == float(src["age"])


def test_unexpected_optional_shapes_become_null_with_a_note(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images" / "7.jpg").write_bytes(b"\xff\xd8\xff\xe0 data \xff\xd9")
    doc = {
        "Human-Label": 3,
        "Soft-Label": [0.1] * 8,
        "Subset": "difficult",
        "Metadata": {"age": "old", "pose": [0.1, 0.2, 0.3], "landmark-68": [1, 2, 3], "race": "x", "mystery": 1},
        "extra": True,
    }
    (tmp_path / "annotations" / "7.json").write_text(json.dumps(doc))
    files = RecordFiles("train", "7", tmp_path / "images" / "7.jpg", tmp_path / "annotations" / "7.json")
    result = read_record(files)
    row = result.row
    assert row["human_label"] == 3 and row["subset"] == 2
    assert row["head_pose"] == {"yaw": 0.1, "pitch": 0.2, "roll": 0.3}
    assert row["age"] is None and row["landmarks"] is None and row["race"] is None
    fields = sorted(n.field for n in result.notes)
    assert fields == ["age", "annotation", "landmarks", "meta-data", "race"]
    assert all(n.path.endswith("7.json") for n in result.notes)


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"human-label": 11, "soft-label": [0.1] * 8}, "human-label: expected a code 0..10"),
        ({"human-label": 1, "soft-label": [0.1] * 8, "subset": 5}, "subset: expected 0 (easy)"),
        ({"human-label": 1, "soft-label": [0.1] * 7 + [None]}, "soft-label: expected 8 numbers"),
        ({"human-label": 1}, "soft-label: expected 8 numbers, found null"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_unreadable_fields_make_a_bad_record(tmp_path, doc, message):
    (tmp_path / "0.jpg").write_bytes(b"\xff\xd8\xff\xe0 data \xff\xd9")
    (tmp_path / "0.json").write_text(json.dumps(doc))
    files = RecordFiles("train", "0", tmp_path / "0.jpg", tmp_path / "0.json")
    result = read_record(files)
    assert result.row is None and message in result.bad.reason


def test_on_bad_error_raises_with_path(make_release):
    manifest = make_release(n=3, faults={"train": ["bad_json"]})
    records, _ = list_records(find_release(manifest.root).parts["train"])
    with pytest.raises(BadRecordError) as info:
        list(iter_rows(records, on_bad="error"))
    assert info.value.path.endswith("0.json") and "--on-bad skip" in str(info.value)
    with pytest.raises(ValueError, match="on_bad must be"):
        list(iter_rows(records, on_bad="ignore"))


def test_reason_classes_group_bad_records_whatever_their_details(tmp_path):
    from affectnetplus_hf.reader import reason_class

    reasons = []
    for stem, text in (("0", '{"human-label": 1, "soft'), ("1", '{"human-label": 1, "soft-label": [0.1, 0.2')):
        (tmp_path / f"{stem}.jpg").write_bytes(b"\xff\xd8\xff\xe0 data \xff\xd9")
        (tmp_path / f"{stem}.json").write_text(text)
        result = read_record(RecordFiles("train", stem, tmp_path / f"{stem}.jpg", tmp_path / f"{stem}.json"))
        reasons.append(result.bad.reason)
    assert reasons[0] != reasons[1]
    assert reason_class(reasons[0]) == reason_class(reasons[1]) == "annotation is not valid JSON"
