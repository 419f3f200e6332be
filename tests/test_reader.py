"""The reader: every fault of a real download is either carried or reported, never lost."""

import json

import pytest

from affectnetplus_hf.errors import BadRecordError
from affectnetplus_hf.release.layout import RecordFiles, find_release, list_records
from affectnetplus_hf.release.reader import iter_rows, read_record
from affectnetplus_hf.release.sample import FAULTS


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
    for (_part, image_id), fault in manifest.faults.items():
        outcome = results[image_id]
        must_be_bad = FAULTS[fault][1]
        if must_be_bad:
            assert not isinstance(outcome, dict), fault
            assert outcome.path and outcome.reason, fault
        else:
            assert isinstance(outcome, dict), (fault, outcome)


def test_bad_reasons_name_what_was_expected(make_release):
    manifest = make_release(
        n=6,
        faults={
            "train": [
                "truncated_jpeg",
                "empty_image",
                "missing_image",
                "missing_annotation",
                "bad_json",
                "short_soft_label",
            ]
        },
    )
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
    faults = [
        "bom_crlf",
        "null_numbers",
        "int_for_float",
        "missing_pose",
        "missing_landmark29",
        "sentinel",
        "string_numbers",
    ]
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
        ({"human-label": 1, "soft-label": [0.1] * 8, "subset": 5}, "subset: expected a subset code 0..2 (0 easy"),
        ({"human-label": 1, "soft-label": [0.1] * 7 + [None]}, "soft-label: expected 8 numbers"),
        ({"human-label": 1}, "soft-label: expected 8 numbers, found null"),
        ([1, 2], "annotation is not a JSON object: expected {...}, found a JSON array [1, 2]"),
        (42, "annotation is not a JSON object: expected {...}, found a JSON number 42"),
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
    from affectnetplus_hf.release.reader import reason_class

    reasons = []
    for stem, text in (("0", '{"human-label": 1, "soft'), ("1", '{"human-label": 1, "soft-label": [0.1, 0.2')):
        (tmp_path / f"{stem}.jpg").write_bytes(b"\xff\xd8\xff\xe0 data \xff\xd9")
        (tmp_path / f"{stem}.json").write_text(text)
        result = read_record(RecordFiles("train", stem, tmp_path / f"{stem}.jpg", tmp_path / f"{stem}.json"))
        reasons.append(result.bad.reason)
    assert reasons[0] != reasons[1]
    assert reason_class(reasons[0]) == reason_class(reasons[1]) == "annotation is not valid JSON"


# ----------------------------------------------------------------------------- odd inputs of real downloads

_JPEG = b"\xff\xd8\xff\xe0 head \xff\xda scan \xff\xd9"
_GOOD = {"human-label": 1, "soft-label": [0.1] * 8, "subset": 0}


def _read(tmp_path, doc=None, text=None, image=_JPEG, part="train", **kw):
    (tmp_path / "7.jpg").write_bytes(image)
    (tmp_path / "7.json").write_text(text if text is not None else json.dumps(doc))
    return read_record(RecordFiles(part, "7", tmp_path / "7.jpg", tmp_path / "7.json"), **kw)


def _notes(result):
    return {n.field: n.reason for n in result.notes}


def _meta(**meta):
    return json.dumps({**_GOOD, "meta-data": meta})


def test_deep_nesting_is_a_bad_record_not_a_crash(tmp_path):
    for text in ("[" * 100_000 + "]" * 100_000, _meta(age=0).replace('"age": 0', '"age": ' + "[" * 990 + "]" * 990)):
        result = _read(tmp_path, text=text)
        assert result.row is None and "nested too deeply" in result.bad.reason and result.bad.path.endswith("7.json")


@pytest.mark.parametrize("raw", ["Infinity", "-Infinity", "1e400", "NaN", "1" + "0" * 400, "1e39", '"inf"'])
def test_non_finite_numbers_become_null_with_a_note(tmp_path, raw):
    text = _meta(age=0, valence=0, gender={"female": 0, "male": 1}).replace('"age": 0', f'"age": {raw}')
    text = text.replace('"valence": 0', f'"valence": {raw}').replace('"female": 0', f'"female": {raw}')
    result = _read(tmp_path, text=text)
    row, notes = result.row, _notes(result)
    assert row["age"] is None and row["valence"] is None and row["gender"] == {"female": None, "male": 1.0}
    assert "finite number" in notes["age"] and "stored null" in notes["age"]
    assert "finite number" in notes["valence"] and "finite number" in notes["gender"]


def test_an_integer_of_thousands_of_digits_is_a_bad_record_with_a_plain_reason(tmp_path):
    result = _read(tmp_path, text=_meta(age=0).replace('"age": 0', '"age": 1' + "0" * 5000))
    assert result.row is None and result.bad.reason.startswith("annotation holds an integer of thousands of digits")
    assert "sys." not in result.bad.reason


def test_non_finite_landmarks_are_null_and_a_non_finite_soft_label_is_bad(tmp_path):
    points = [10] * 136
    text = _meta(**{"landmark-68": points}).replace(
        "[" + ", ".join(["10"] * 136) + "]", "[Infinity" + ", 10" * 135 + "]"
    )
    result = _read(tmp_path, text=text)
    assert result.row["landmarks"] is None and "non-finite" in _notes(result)["landmarks"]
    text = json.dumps(_GOOD).replace("[0.1,", "[1" + "0" * 400 + ",")
    result = _read(tmp_path, text=text)
    assert result.row is None and "soft-label: expected 8 finite numbers" in result.bad.reason


def test_a_key_given_twice_is_resolved_and_noted(tmp_path):
    meta = {"age": 30, "valence": 0.5}
    # a stray empty spelling of meta-data after the real one no longer erases the metadata
    result = _read(tmp_path, text=json.dumps({**_GOOD, "meta-data": meta})[:-1] + ', "Meta Data": {}}')
    assert result.row["age"] == 30.0 and result.row["valence"] == 0.5
    assert "'meta-data' and 'Meta Data' both given" in _notes(result)["annotation"]
    # the same key twice, equal values: read once, noted
    result = _read(
        tmp_path, text='{"human-label": 1, "human-label": 1, "soft-label": [0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1]}'
    )
    assert result.row["human_label"] == 1 and "given twice with the same value" in _notes(result)["annotation"]
    # two objects are merged; two different optional values give null
    text = '{"human-label": 1, "soft-label": [0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1], "meta-data": {"age": 30}, "Metadata": {"valence": 0.5, "Age": 40}}'
    result = _read(tmp_path, text=text)
    assert result.row["valence"] == 0.5 and result.row["age"] is None
    assert "different values" in _notes(result)["meta-data"]
    # two different labels: the record is bad, never a silent pick
    result = _read(
        tmp_path, text='{"human-label": 1, "Human Label": 2, "soft-label": [0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1]}'
    )
    assert result.row is None and "two different values" in result.bad.reason
    # inside a struct: a probability twice with different values is null
    result = _read(tmp_path, text=_meta(gender={"female": 0.2, "male": 0.8})[:-3] + ', "female": 0.3}}}')
    assert result.row["gender"] == {"female": None, "male": 0.8} and "two different values" in _notes(result)["gender"]


def test_gender_or_race_with_keys_missing_or_empty_is_noted(tmp_path):
    result = _read(tmp_path, text=_meta(gender={"female": 0.3}, race={}))
    assert result.row["gender"] == {"female": 0.3, "male": None} and result.row["race"] is None
    notes = _notes(result)
    assert "missing key(s) male" in notes["gender"] and "found {}" in notes["race"]


def test_out_of_range_values_are_kept_as_released_and_noted(tmp_path):
    result = _read(
        tmp_path,
        text=json.dumps(
            {
                **_GOOD,
                "soft-label": [9] + [0.1] * 7,
                "meta-data": {"valence": 5.0, "arousal": -2, "age": -40, "gender": {"female": -3, "male": 9}},
            }
        ),
    )
    row, notes = result.row, _notes(result)
    assert row["valence"] == 5.0 and row["age"] == -40.0 and row["gender"] == {"female": -3.0, "male": 9.0}
    assert row["soft_label"][0] == 9 and row["arousal"] is None  # -2 stays the documented sentinel
    for name in ("valence", "age", "gender", "soft_label"):
        assert "outside the documented range" in notes[name] and "kept as released" in notes[name], name
    assert "arousal" not in notes


def _image(kind: str) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format=kind)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_a_non_jpeg_saved_as_jpg_is_reported_never_reencoded(tmp_path, kind):
    result = _read(tmp_path, dict(_GOOD), image=_image(kind))
    assert result.row is None and result.bad.reason.startswith(f"not a JPEG: the file holds a {kind} image")
    assert result.bad.path.endswith("7.jpg")
    result = _read(tmp_path, dict(_GOOD), image=b"GARBAGE!" * 10)
    assert result.bad.reason.startswith("not an image: expected a JPEG")


def test_a_png_decompression_bomb_is_reported_without_decoding(tmp_path):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (14_000, 14_000)).save(buffer, format="PNG")  # 196 million pixels, a few hundred KB
    for check in ("markers", "decode"):
        result = _read(tmp_path, dict(_GOOD), image=buffer.getvalue(), check_images=check)
        assert result.row is None and "PNG" in result.bad.reason


def test_a_huge_jpeg_with_decode_check_is_reported(tmp_path, monkeypatch):
    from PIL import Image

    jpeg = _image("JPEG")  # 64 pixels: lower PIL's limit instead of writing a 200-megapixel file
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # above the limit: a warning
    result = _read(tmp_path, dict(_GOOD), image=jpeg, check_images="decode")
    assert result.row is None and "too large to decode safely" in result.bad.reason
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # above twice the limit: PIL's error
    result = _read(tmp_path, dict(_GOOD), image=jpeg, check_images="decode")
    assert result.row is None and "too large to decode safely" in result.bad.reason
    assert _read(tmp_path, dict(_GOOD), image=jpeg, check_images="markers").row is not None  # markers: not decoded


def test_padding_after_the_end_of_image_marker_is_not_cut_short(tmp_path):
    jpeg = _image("JPEG")
    for padding, noted in ((b"\x00" * 64, False), (b"\xff" * 16 + b"trailer", True)):
        result = _read(tmp_path, dict(_GOOD), image=jpeg + padding, check_images="decode")
        assert result.row is not None and result.row["image"]["bytes"] == jpeg + padding  # kept as released
        assert ("image" in _notes(result)) == noted
    # a real truncation is still reported, even when an embedded thumbnail's FF D9 precedes the scan
    thumbnail = b"\xff\xe1\x00\x10Exif\xff\xd8\xff\xd9\x00\x00"
    cut = jpeg[:2] + thumbnail + jpeg[2 : len(jpeg) // 2]
    result = _read(tmp_path, dict(_GOOD), image=cut)
    assert result.row is None and result.bad.reason.startswith("JPEG cut short")


def test_files_far_larger_than_any_release_file_are_reported_unread(tmp_path, monkeypatch):
    import affectnetplus_hf.release.reader as reader

    monkeypatch.setattr(reader, "MAX_ANNOTATION_BYTES", 10)
    result = _read(tmp_path, dict(_GOOD))
    assert result.row is None and result.bad.reason.startswith("annotation file too large")


def test_a_reader_bug_is_a_bad_record_not_a_crash(tmp_path, monkeypatch):
    import affectnetplus_hf.release.reader as reader

    def broken(*args):
        raise TypeError("boom")

    monkeypatch.setattr(reader, "_row", broken)
    result = _read(tmp_path, dict(_GOOD))
    assert reader.reason_class(result.bad.reason) == reader.UNEXPECTED and "TypeError: boom" in result.bad.reason


def test_every_new_planted_fault_ends_as_its_manifest_says(make_release):
    faults = [
        "non_finite",
        "huge_int",
        "deep_nesting",
        "duplicate_key",
        "out_of_range",
        "partial_struct",
        "jpeg_padding",
        "png_as_jpg",
    ]
    manifest = make_release(n=len(faults), faults={"train": faults})
    records, _ = list_records(find_release(manifest.root).parts["train"])
    by_fault = {}
    for result in iter_rows(records):
        image_id = result.row["image_id"] if result.row else result.bad.image_id
        by_fault[manifest.faults[("train", image_id)]] = result
    assert len(by_fault) == len(faults)
    for fault, result in by_fault.items():
        assert (result.bad is not None) == FAULTS[fault][1], fault
        if result.bad is None:
            assert result.notes, fault  # every tolerated oddity leaves a trace
    assert by_fault["duplicate_key"].row["age"] is not None


@pytest.mark.parametrize(
    "raw, found",
    [
        ("Infinity", "found Infinity"),
        ("-Infinity", "found -Infinity"),
        ("NaN", "found NaN"),
        ("1e400", "found a number too large for a float (1e400 or beyond)"),
        ("-1e400", "found a negative number too large for a float"),
    ],
)
def test_a_non_finite_note_quotes_what_the_file_says(tmp_path, raw, found):
    result = _read(tmp_path, text=_meta(age=0).replace('"age": 0', f'"age": {raw}'))
    assert result.row["age"] is None and found in _notes(result)["age"]


@pytest.mark.parametrize("text", ["", "  \r\n"])
def test_an_empty_annotation_file_says_so(tmp_path, text):
    result = _read(tmp_path, text=text)
    assert result.row is None and result.bad.reason.startswith("annotation file is empty (no JSON")
    assert "re-extract it" in result.bad.reason and result.bad.path.endswith("7.json")


def test_bad_label_fields_say_what_to_do_and_fit_in_one_short_line(tmp_path):
    text = json.dumps(_GOOD).replace("[0.1,", "[1" + "0" * 400 + ",")
    for doc_text in (
        text,
        json.dumps({**_GOOD, "soft-label": [0.123456] * 7}),
        json.dumps({**_GOOD, "human-label": 99}),
    ):
        reason = _read(tmp_path, text=doc_text).bad.reason
        assert reason.endswith("fix or re-extract the file"), reason
        found = reason.split("found ", 1)[1]
        assert found.count("[") == found.count("]"), reason  # a value shown whole, never cut mid-list


def test_the_kind_of_a_field_reason_keeps_the_field_and_what_went_wrong(tmp_path):
    from affectnetplus_hf.release.reader import reason_class

    twice = _read(tmp_path, text=json.dumps(_GOOD)[:-1] + ', "subset": 2}').bad.reason
    out_of_codes = _read(tmp_path, doc={**_GOOD, "subset": 7}).bad.reason
    other = _read(tmp_path, doc={**_GOOD, "subset": 9}).bad.reason
    assert reason_class(twice) == "subset: two different values"
    assert reason_class(out_of_codes) == reason_class(other) == "subset: expected a subset code 0..2"
    assert reason_class("annotation is not valid JSON: Expecting ','") == "annotation is not valid JSON"
