"""The reader's fast paths (orjson parsing, the row of a well-formed annotation) give exactly
what its tolerant reference path gives: the same row, value types included, the same notes,
the same bad records, on every input the reader fuzz test draws and on the hostile cases
they must hand over (a repeated key, an integer beyond 64 bits, NaN, a BOM, ...)."""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affectnetplus_hf.release import reader
from affectnetplus_hf.release.layout import RecordFiles, find_release, list_records
from affectnetplus_hf.release.sample import write_sample

from .test_reader_fuzz import _JPEG_BYTES, _SETTINGS, annotations


@contextmanager
def _reference_path():
    """The reader with its fast paths off: stdlib json with hooks, ``_row`` for every record."""
    saved = reader._fast_loads, reader._fast_row
    reader._fast_loads, reader._fast_row = None, lambda *args: None
    try:
        yield
    finally:
        reader._fast_loads, reader._fast_row = saved


def _same(a, b) -> bool:
    """Equal values of equal types all the way down (int is not float, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
    return repr(a) == repr(b)


def _read_both(folder: Path, part: str, annotation: bytes, image: bytes = _JPEG_BYTES):
    (folder / "0.jpg").write_bytes(image)
    (folder / "0.json").write_bytes(annotation)
    files = RecordFiles(part=part, image_id="0", image=folder / "0.jpg", annotation=folder / "0.json")
    fast = reader.read_record(files)
    with _reference_path():
        slow = reader.read_record(files)
    return fast, slow


def _assert_same(fast, slow) -> None:
    assert _same(fast.row, slow.row), (fast.row, slow.row)
    assert fast.bad == slow.bad
    assert fast.notes == slow.notes


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(prefix="fast-paths-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


_WELL_FORMED = {
    "human-label": 5,
    "soft-label": [0.2, 0.25, 0.8, 0.3, 0.1, 0.02, 0.25, 0.07],
    "subset": 2,
    "meta-data": {
        "age": 24,
        "valence": -0.25,
        "arousal": 0.39,
        "gender": {"female": 0.45, "male": 0.55},
        "race": {
            "asian": 0.05,
            "indian": 0.04,
            "black": 0.13,
            "white": 0.03,
            "middle eastern": 0.44,
            "latino hispanic": 0.31,
        },
        "pose": {"yaw": -0.13, "pitch": 0.09, "roll": -0.09},
        "landmark-68": list(range(136)),
    },
}
_TEXT = json.dumps(_WELL_FORMED)


def test_a_well_formed_annotation_takes_both_fast_paths(folder):
    data = _TEXT.encode()
    document = reader._parse_fast(data)
    assert document == _WELL_FORMED
    files = RecordFiles(part="train", image_id="0", image=folder / "0.jpg", annotation=folder / "0.json")
    assert reader._fast_row(files, document, b"", files.image) is not None
    fast, slow = _read_both(folder, "train", data)
    assert fast.row is not None and not fast.notes
    _assert_same(fast, slow)


@pytest.mark.parametrize(
    "text",
    [
        _TEXT.replace('"subset": 2', '"subset": 2, "subset": 1'),  # a repeated key: orjson would keep the last silently
        _TEXT.replace('"age": 24', '"age": 24, "Age": 24'),  # two spellings of one key
        _TEXT.replace('"age": 24', '"age": 123456789012345678901'),  # beyond 64 bits: orjson reads a float
        _TEXT.replace('"age": 24', '"age": -9223372036854775809'),
        _TEXT.replace('"age": 24', '"age": 1' + "0" * 400),
        _TEXT.replace('"age": 24', '"age": NaN'),
        _TEXT.replace('"age": 24', '"age": 1e400'),
        _TEXT.replace('"valence": -0.25', '"valence": -2'),  # the sentinel: null, no note
        _TEXT.replace('"arousal": 0.39', '"arousal": -2.0000001'),
        _TEXT.replace('"valence": -0.25', '"valence": 5.0'),  # out of range: noted
        _TEXT.replace('"human-label": 5', '"human-label": null'),  # null in a labeled part: noted
        _TEXT.replace('"human-label": 5', '"human-label": true'),
        _TEXT.replace('"human-label": 5', '"human-label": "happy"'),
        _TEXT.replace('"landmark-68": [', '"landmark-68": [{"x": 1, "x": 2}, '),  # an object in a list
        _TEXT.replace('"pose": {"yaw": -0.13, "pitch": 0.09, "roll": -0.09}', '"pose": [1, 2, 3]'),
        _TEXT.replace(
            '"pose": {"yaw": -0.13, "pitch": 0.09, "roll": -0.09}', '"pose": {"yaw": 1, "yaw": 1, "roll": 2}'
        ),
        _TEXT.replace('"middle eastern"', '"middle_eastern"'),
        _TEXT.replace('"male": 0.55', '"male": 0.55, "a:b": 1'),  # a colon inside a string
        _TEXT.replace('"meta-data": {', '"meta-data": {"note": "{x: 1}", '),
        _TEXT.replace('"female"', '"fem\\u0000ale"'),
        _TEXT.replace('"female"', '"\\ud800"'),  # a lone surrogate: orjson refuses it
        "\ufeff" + _TEXT,
        _TEXT.replace(", ", ",\r\n"),
        "[1, 2]",
        "",
        _TEXT[:-5],
    ],
)
def test_fast_paths_give_what_the_reference_path_gives(folder, text):
    for part in ("train", "unlabeled"):
        _assert_same(*_read_both(folder, part, text.encode()))
    _assert_same(*_read_both(folder, "train", b"\xef\xbb\xbf" + text.encode()))
    _assert_same(*_read_both(folder, "train", text.encode("utf-16")))


@settings(_SETTINGS, max_examples=300)
@given(data=annotations())
def test_fast_paths_agree_with_the_reference_path_on_fuzzed_annotations(data):
    root = Path(tempfile.mkdtemp(prefix="fast-paths-fuzz-"))
    try:
        for part in ("train", "unlabeled"):
            _assert_same(*_read_both(root, part, data))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_fast_paths_agree_on_every_sample_fault(folder):
    """The drawn sample release's faults (BOM + CRLF, bad JSON, odd keys, ...) read the same."""
    manifest = write_sample(folder / "raw", n=60)
    for part in find_release(manifest.root).parts.values():
        for files in list_records(part)[0]:
            fast = reader.read_record(files)
            with _reference_path():
                slow = reader.read_record(files)
            _assert_same(fast, slow)


_inside = st.sampled_from([0, 1, 0.5, 0.25, -0.01, 1.01, -0.0, 1.0])  # within every documented range and its slack
_edge = st.sampled_from(
    [
        None,
        0,
        1,
        -1,
        0.5,
        -0.01,
        1.01,
        1.0100001,
        -0.0100001,
        -2,
        -2.0,
        -2.0000001,
        -1.9999999,
        120,
        120.01,
        120.02,
        3.5e38,
        1e39,
        -0.0,
    ]
)


@st.composite
def _near_well_formed(draw) -> bytes:
    """Annotations in the release's spelling whose values sit on the edges the fast row
    path must hand over: range bounds and slack, the -2 sentinel, ints for floats, nulls,
    missing optional keys, pose as a list. Half are clean (the fast path's), and of those
    half have one value changed to an edge value."""
    clean = draw(st.booleans())
    values = _inside if clean else _edge

    def pick(usual: list, odd: list):
        return draw(st.sampled_from(usual if clean else usual + odd))

    meta = {
        "age": draw(values),
        "valence": draw(values),
        "arousal": draw(values),
        "gender": {"female": draw(values), "male": draw(values)},
        "race": dict(
            zip(
                ["asian", "indian", "black", "white", "middle eastern", "latino hispanic"],
                draw(st.lists(values, min_size=6, max_size=6)),
                strict=False,
            )
        ),
        "pose": pick([{"yaw": 1, "pitch": -2.5, "roll": 0.0}, [1, 2, 3], None], [[1, 2], {"yaw": 1}]),
        "landmark-68": pick([list(range(136)), [0.5] * 136, None], [[1] * 135, [None] * 136]),
        "landmark-29": pick([[1, 2.5], None], [[], [1e39]]),
    }
    for key in draw(st.lists(st.sampled_from(sorted(meta)), max_size=3)):
        meta.pop(key, None)
    document = {
        "human-label": pick([0, 7, 10], [None, 11, -1, 2.0]),
        "soft-label": draw(
            st.lists(values, min_size=8, max_size=8) | st.lists(st.floats(0, 1), min_size=7, max_size=9)
        ),
        "subset": pick([None, 0, 2], [3, 1.0]),
        "meta-data": meta,
    }
    if clean and draw(st.booleans()):  # one value off the clean path
        target = meta if meta and draw(st.booleans()) else document
        target[draw(st.sampled_from(sorted(target)))] = draw(_edge)
    return json.dumps(document).encode()


@settings(_SETTINGS, max_examples=300)
@given(data=_near_well_formed())
def test_fast_paths_agree_with_the_reference_path_on_edge_values(data):
    root = Path(tempfile.mkdtemp(prefix="fast-paths-edges-"))
    try:
        for part in ("train", "unlabeled"):
            _assert_same(*_read_both(root, part, data))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("depth", [50, 101, 990])
def test_deep_nesting_reads_as_the_reference_path_reads_it(folder, depth):
    """orjson parses 990 levels; the reference path calls that a bad record ("nested too deeply")."""
    text = _TEXT.replace('"age": 24', '"age": ' + "[" * depth + "]" * depth)
    _assert_same(*_read_both(folder, "train", text.encode()))
