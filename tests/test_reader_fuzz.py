"""Property-based fuzzing of the reader: whatever the annotation JSON and the image bytes,
every record read is written or reported, and the run completes.

Each generated release goes through the reader (every record must come back as a row whose
values fit the schema, or as a bad record with a path and a reason that is not a reader
bug), and a smaller number of releases through the whole export (read = written + reported,
every bad record in the report).
"""

from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affectnetplus_hf.core.schema import FEATURES
from affectnetplus_hf.errors import NothingToExportError
from affectnetplus_hf.release.layout import find_release, list_records
from affectnetplus_hf.release.reader import UNEXPECTED, iter_rows, reason_class

_KEYS = [
    "human-label",
    "Human Label",
    "soft-label",
    "soft_label",
    "subset",
    "Subset",
    "meta-data",
    "Meta Data",
    "metadata",
    "age",
    "valence",
    "arousal",
    "gender",
    "race",
    "pose",
    "landmark-68",
    "landmark-29",
    "female",
    "male",
    "asian",
    "middle eastern",
    "yaw",
    "pitch",
    "roll",
    "x",
    "",
]
_SPECIAL_TEXT = [
    "Infinity",
    "-Infinity",
    "NaN",
    "1e400",
    "-1e400",
    "1" + "0" * 400,
    "1e39",
    "-0.0",
    "[" * 3000 + "]" * 3000,
]

_numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-2, -2.0, 0, 1, 7, 10, 11, 0.5, 5.0, -40, 3.5e38]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _numbers,
    st.text(max_size=8),
    st.sampled_from(["happy", "easy", "1", " 2 ", "inf", "nan"]),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=10),
        st.lists(
            st.tuples(st.sampled_from(_KEYS) | st.text(max_size=4), children), max_size=6
        ),  # objects as pairs: keys may repeat
    ),
    max_leaves=40,
)


def _dump(value) -> str:
    """JSON text of a value; a list of (key, value) tuples is an object, keys may repeat."""
    if isinstance(value, tuple):
        raise TypeError
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        return "{" + ", ".join(f"{json.dumps(k)}: {_dump(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return json.dumps(value)


_mostly = st.sampled_from([True, True, True, False])  # draw(_mostly): true 3 times in 4


def _pick(draw, usual, odd):
    """A value of ``usual`` 3 times in 4, else of ``odd``."""
    return draw(usual if draw(_mostly) else odd)


def _good_annotation(draw) -> list:
    meta = [
        ("age", draw(_values)),
        ("valence", draw(_numbers)),
        ("arousal", draw(_numbers)),
        ("gender", [("female", draw(_numbers)), ("male", draw(_numbers))]),
        ("race", draw(_values)),
        ("pose", draw(_values)),
        ("landmark-68", draw(st.lists(_numbers, min_size=136, max_size=136) | _values)),
    ]
    return [
        ("human-label", _pick(draw, st.sampled_from([None, *range(11)]), _values)),
        (
            "soft-label",
            _pick(
                draw,
                st.lists(st.floats(0, 1), min_size=8, max_size=8),
                st.lists(_numbers, min_size=8, max_size=8) | _values,
            ),
        ),
        ("subset", _pick(draw, st.sampled_from([None, 0, 1, 2]), _values)),
        (
            "meta-data",
            draw(st.permutations(meta)) + draw(st.lists(st.tuples(st.sampled_from(_KEYS), _values), max_size=3)),
        ),
    ]


@st.composite
def annotations(draw) -> bytes:
    text = _dump(_good_annotation(draw) if draw(_mostly) else draw(_values))
    if draw(st.booleans()):  # raw text json.dumps cannot write, in place of one number
        marker = json.dumps(-40)
        text = text.replace(marker, draw(st.sampled_from(_SPECIAL_TEXT)), 1)
    data = text.encode()
    mutation = draw(st.sampled_from(["none"] * 6 + ["bom", "utf16", "cut", "bytes"]))
    if mutation == "bom":
        data = b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
    elif mutation == "utf16":
        data = text.encode("utf-16")
    elif mutation == "cut":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif mutation == "bytes":
        data = draw(st.binary(max_size=64))
    return data


def _jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


_JPEG_BYTES = _jpeg()


@st.composite
def images(draw) -> bytes:
    kind = draw(
        st.sampled_from(["jpeg"] * 8 + ["cut", "padded", "garbage_tail", "random", "soi_random", "png", "empty"])
    )
    if kind == "jpeg":
        return _JPEG_BYTES
    if kind == "cut":
        return _JPEG_BYTES[: draw(st.integers(0, len(_JPEG_BYTES) - 1))]
    if kind == "padded":
        return _JPEG_BYTES + draw(st.binary(max_size=32))
    if kind == "garbage_tail":
        i = draw(st.integers(3, len(_JPEG_BYTES) - 1))
        return _JPEG_BYTES[:i] + draw(st.binary(min_size=1, max_size=64))
    if kind == "random":
        return draw(st.binary(max_size=128))
    if kind == "soi_random":
        return b"\xff\xd8\xff" + draw(st.binary(max_size=128)) + draw(st.sampled_from([b"", b"\xff\xd9"]))
    if kind == "png":
        return b"\x89PNG\r\n\x1a\n" + draw(st.binary(max_size=32))
    return b""


_record = st.tuples(
    st.sampled_from([True] * 9 + [False]).flatmap(lambda present: images() if present else st.none()),
    st.sampled_from([True] * 9 + [False]).flatmap(lambda present: annotations() if present else st.none()),
).filter(lambda r: r != (None, None))
_releases = st.lists(_record, min_size=1, max_size=4)


def _write_release(root: Path, records) -> None:
    base = root / "human_annotated" / "train_set"
    (base / "images").mkdir(parents=True)
    (base / "annotations").mkdir(parents=True)
    for stem, (image, annotation) in enumerate(records):
        if image is not None:
            (base / "images" / f"{stem}.jpg").write_bytes(image)
        if annotation is not None:
            (base / "annotations" / f"{stem}.json").write_bytes(annotation)


def _fits_schema(row: dict) -> None:
    """The row encodes into the exact Arrow schema of FEATURES (what the export writes)."""
    import pyarrow as pa

    encoded = FEATURES.encode_example(
        {**row, "landmarks": None if row["landmarks"] is None else row["landmarks"].tolist()}
    )
    pa.Table.from_pylist([encoded], schema=FEATURES.arrow_schema)
    for name in ("soft_label", "landmarks_29"):  # plain floats: Arrow refuses ints above 2**24 in float32
        assert row[name] is None or all(type(v) is float for v in row[name]), name
    for name in ("valence", "arousal", "age"):
        assert row[name] is None or math.isfinite(row[name]), name
    assert all(math.isfinite(v) for v in row["soft_label"])


_SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)


@settings(_SETTINGS, max_examples=80)
@given(records=_releases, check=st.sampled_from(["markers", "decode"]))
def test_every_record_is_a_row_or_a_bad_record(records, check):
    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        _write_release(root, records)
        listed, _ = list_records(find_release(root).parts["train"])
        results = list(iter_rows(listed, check_images=check))
        assert len(listed) == len(records) == len(results)
        for files, result in zip(listed, results, strict=False):
            assert (result.row is None) != (result.bad is None)
            if result.bad is not None:
                assert result.bad.path and result.bad.reason
                assert reason_class(result.bad.reason) != UNEXPECTED, result.bad.reason
            else:
                _fits_schema(result.row)
                assert result.row["image"]["bytes"] == files.image.read_bytes()  # never re-encoded
            for note in result.notes:
                assert note.path and note.field and note.reason
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@settings(_SETTINGS, max_examples=12)
@given(records=_releases)
def test_every_export_accounts_for_every_record(records):
    from affectnetplus_hf.exporter.writer import export

    root = Path(tempfile.mkdtemp(prefix="fuzz-export-"))
    try:
        _write_release(root / "raw", records)
        out = root / "affectnet_plus"
        try:
            result = export(root / "raw", out, progress=False, card_plots=False)
            read, written, bad = result.read, result.written, result.bad
            report = result.report_path
        except NothingToExportError as exc:  # every record bad: reported, OUT not written
            read, written, bad, report = exc.read, 0, exc.bad, Path(exc.report_path)
            assert not out.exists()
        assert read == len(records) == written + bad
        lines = [json.loads(line) for line in report.read_text().splitlines()]
        assert sum(1 for line in lines if line["kind"] == "bad_record") == bad
        assert lines[-1]["kind"] == "summary" and lines[-1]["read"] == read
    finally:
        shutil.rmtree(root, ignore_errors=True)
