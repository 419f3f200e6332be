"""The export's batch reader (``read_batches``: well-formed records straight into columns,
numbers checked per batch) gives exactly what the record-at-a-time reader gives: the same
rows (types and float32 values included), the same notes and bad records in the same order,
on well-formed releases, hostile records among good ones, and every fuzzed release."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affectnetplus_hf.errors import BadRecordError
from affectnetplus_hf.release import reader
from affectnetplus_hf.release.layout import RecordList, find_release, list_records
from affectnetplus_hf.release.sample import FAULTS, write_sample

from .test_reader_fast_paths import _TEXT, _WELL_FORMED, _near_well_formed, _reference_path, _same
from .test_reader_fuzz import _JPEG_BYTES, _SETTINGS, _record, _write_release, annotations, images

_PARTS = {"train": ("human_annotated", "train_set"), "unlabeled": ("no_human_annotated",)}


def _release(root: Path, records: list, part: str = "train") -> RecordList:
    """A release of one part whose record ``i`` is ``records[i]`` (image bytes or None, JSON bytes or None)."""
    base = root.joinpath(*_PARTS[part])
    for folder in ("images", "annotations"):
        (base / folder).mkdir(parents=True)
    for stem, (image, annotation) in enumerate(records):
        if image is not None:
            (base / "images" / f"{stem}.jpg").write_bytes(image)
        if annotation is not None:
            (base / "annotations" / f"{stem}.json").write_bytes(annotation)
    return list_records(find_release(root).parts[part])[0]


def _read_both(records, batch_size: int = 500, check_images: str = "markers"):
    """(read_batches', iter_rows' and the reference path's) rows, notes and bad records."""
    batches = list(reader.read_batches(records, check_images=check_images, batch_size=batch_size))
    assert [b.read for b in batches][:-1] == [batch_size] * (len(batches) - 1)
    assert sum(b.read for b in batches) == len(records)
    table = pa.concat_tables([b.table for b in batches]) if batches else reader.table_of_rows([])
    got = (table, [n for b in batches for n in b.notes], [x for b in batches for x in b.bad])
    expected = []
    for reference in (False, True):
        if reference:
            with _reference_path():
                results = list(reader.iter_rows(records, check_images=check_images))
        else:
            results = list(reader.iter_rows(records, check_images=check_images))
        rows = reader.table_of_rows([r.row for r in results if r.row is not None])
        expected.append((rows, [n for r in results for n in r.notes], [r.bad for r in results if r.bad is not None]))
    return got, expected


def _assert_same(got, expected) -> None:
    table, notes, bad = got
    for rows, expected_notes, expected_bad in expected:
        assert table.schema == rows.schema
        assert _same(table.to_pylist(), rows.to_pylist()), (table.to_pylist(), rows.to_pylist())
        assert notes == expected_notes
        assert bad == expected_bad


@pytest.fixture
def root():
    path = Path(tempfile.mkdtemp(prefix="batches-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_well_formed_records_go_straight_into_columns(root, monkeypatch):
    texts = [_TEXT, _TEXT.replace('"subset": 2', '"subset": null'), json.dumps({**_WELL_FORMED, "human-label": 0})]
    records = _release(root, [(_JPEG_BYTES, text.encode()) for text in texts * 3])
    got, expected = _read_both(records, batch_size=4)
    _assert_same(got, expected)
    monkeypatch.setattr(reader, "read_record", None)  # any record read one at a time would fail here
    monkeypatch.setattr(reader, "_from_bytes", None)
    table = pa.concat_tables([b.table for b in reader.read_batches(records, batch_size=4)])
    assert table.num_rows == len(records)


_HOSTILE = [
    _TEXT.replace('"subset": 2', '"subset": 2, "subset": 1'),  # a repeated key: orjson keeps the last silently
    _TEXT.replace('"age": 24', '"age": 123456789012345678901'),  # beyond 64 bits: orjson reads a float
    _TEXT.replace('"age": 24', '"age": 12345678901234567'),  # an integer beyond 2**53
    _TEXT.replace('"landmark-68": [0, 1', '"landmark-68": [16777217, 123456789012345677'),  # float32 rounding
    _TEXT.replace('"age": 24', '"age": NaN'),
    _TEXT.replace('"age": 24', '"age": "24"'),  # a numeric string: the tolerant path reads it
    _TEXT.replace('"age": 24', '"age": true'),
    _TEXT.replace('"age": 24', '"age": [24]'),
    _TEXT.replace('"age": 24', '"age": {}'),
    _TEXT.replace('"age": 24', '"age": -0.0'),
    _TEXT.replace('"valence": -0.25', '"valence": -2'),  # the sentinel: null, no note
    _TEXT.replace('"valence": -0.25', '"valence": -2.0000001'),
    _TEXT.replace('"valence": -0.25', '"valence": 5.0'),  # out of range: noted, found by the batch's check
    _TEXT.replace('"valence": -0.25', '"valence": null'),
    _TEXT.replace('"soft-label": [0.2', '"soft-label": [1e39'),  # not finite in float32: a bad record
    _TEXT.replace('"soft-label": [0.2', '"soft-label": [null'),
    _TEXT.replace('"soft-label": [0.2', '"soft-label": [[0.2]'),
    _TEXT.replace('"male": 0.55', '"male": null'),
    _TEXT.replace('"male": 0.55', '"male": 1.5'),
    _TEXT.replace('"middle eastern"', '"middle_eastern"'),
    _TEXT.replace('"landmark-68": [0, 1', '"landmark-68": [null, 1'),
    _TEXT.replace('"landmark-68": [0, 1', '"landmark-68": [1e39, 1'),
    _TEXT.replace('"landmark-68": [0, 1', '"landmark-68": [[0], 1'),
    _TEXT.replace('"landmark-68": [0, 1', '"landmark-68": [{"x": 0}, 1'),
    _TEXT.replace('"landmark-68": [0, 1, ', '"landmark-68": ['),  # 134 numbers
    _TEXT.replace('"age": 24', '"landmark-29": [1, 2.5, -0.0], "age": 24'),
    _TEXT.replace('"age": 24', '"landmark-29": [1, 1e39], "age": 24'),
    _TEXT.replace('"age": 24', '"landmark-29": [], "age": 24'),
    _TEXT.replace('"age": 24', '"landmark-29": [null], "age": 24'),
    _TEXT.replace('"pose": {"yaw": -0.13, "pitch": 0.09, "roll": -0.09}', '"pose": [1, 2, 3]'),
    _TEXT.replace('"pose": {"yaw": -0.13, "pitch": 0.09, "roll": -0.09}', '"pose": [1, 2]'),
    _TEXT.replace('"pose": {"yaw": -0.13, "pitch": 0.09, "roll": -0.09}', '"pose": null'),
    _TEXT.replace(
        '"pose": {"yaw": -0.13, "pitch": 0.09, "roll": -0.09}', '"pose": {"yaw": 1e39, "pitch": 0, "roll": 0}'
    ),
    _TEXT.replace('"human-label": 5', '"human-label": null'),  # null in a labeled part: noted
    _TEXT.replace('"human-label": 5', '"human-label": 11'),
    _TEXT.replace('"male": 0.55', '"male": 0.55, "a:b": 1'),
    _TEXT.replace('"female"', '"fem\\"ale"'),
    "\ufeff" + _TEXT,
    _TEXT[:-5],
    "[1, 2]",
    "",
]


@pytest.mark.parametrize("text", _HOSTILE)
@pytest.mark.parametrize("part", ["train", "unlabeled"])
def test_a_hostile_record_among_good_ones_reads_as_alone(root, text, part):
    good = (_JPEG_BYTES, _TEXT.encode())
    records = _release(
        root, [good, good, (_JPEG_BYTES, text.encode()), good, (_JPEG_BYTES + b"\0junk", text.encode())], part
    )
    _assert_same(*_read_both(records, batch_size=3))
    _assert_same(*_read_both(list(records), batch_size=5))  # RecordFiles, not a RecordList: the same


def test_every_sample_fault_reads_as_alone(root):
    manifest = write_sample(root / "raw", n=60, faults={"train": list(FAULTS), "unlabeled": list(FAULTS)[::-1]})
    for part in find_release(manifest.root).parts.values():
        records = list_records(part)[0]
        for batch_size in (7, 500):
            _assert_same(*_read_both(records, batch_size=batch_size))


@settings(_SETTINGS, max_examples=120)
@given(
    records=st.lists(
        st.tuples(images(), _near_well_formed()) | st.tuples(st.just(_JPEG_BYTES), annotations()) | _record,
        min_size=1,
        max_size=6,
    ),
    part=st.sampled_from(["train", "unlabeled"]),
    batch_size=st.integers(1, 4),
    check=st.sampled_from(["markers", "decode"]),
)
def test_batches_agree_with_the_reader_on_fuzzed_releases(records, part, batch_size, check):
    root = Path(tempfile.mkdtemp(prefix="batches-fuzz-"))
    try:
        listed = _release(root, records, part)
        _assert_same(*_read_both(listed, batch_size=batch_size, check_images=check))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_on_bad_error_raises_the_first_bad_record_in_order(root):
    bad_by_value = _TEXT.replace('"soft-label": [0.2', '"soft-label": [1e39')  # found by the batch's check
    records = _release(root, [(_JPEG_BYTES, _TEXT.encode()), (_JPEG_BYTES, bad_by_value.encode()), (b"", b"{}")])
    with pytest.raises(BadRecordError) as expected:
        list(reader.iter_rows(records, on_bad="error"))
    with pytest.raises(BadRecordError) as got:
        list(reader.read_batches(records, on_bad="error"))
    assert str(got.value) == str(expected.value) and "1.json" in str(got.value)


def test_a_record_list_hands_out_the_paths_of_its_records(root):
    _write_release(root, [(_JPEG_BYTES, b"{}"), (_JPEG_BYTES, None), (None, b"{}"), (_JPEG_BYTES, b"{}")])
    records = list_records(find_release(root).parts["train"])[0]
    for item, files in zip(records.paths(), records, strict=True):
        assert item == (
            files if isinstance(item, type(files)) else (files.image_id, str(files.image), str(files.annotation))
        )
    assert sum(type(item) is tuple for item in records.paths()) == 2
