"""Hostile input for the readers of the original releases (as tests/test_reader_fuzz.py does for
AffectNet+): whatever the CSV lines, ``.npy`` bytes and image bytes, every record comes back as a
row that fits the schema or as a bad record with a path and a reason that is not a reader bug."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affectnetplus_hf.core.schema import FEATURES
from affectnetplus_hf.release.kind import iter_rows, open_release
from affectnetplus_hf.release.reader import UNEXPECTED, reason_class

from .test_reader_fuzz import images

_SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
_texts = st.one_of(
    st.sampled_from(
        ["3", "0", "7", "10", "11", "-1", "abc", "", " 2 ", "3.0", "3.5", "nan", "inf", "-2", "5.0", "1e400", "9" * 500]
    ),
    st.text(max_size=6),
)


def _npy(value) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=False)
    return buffer.getvalue()


@st.composite
def npy_files(draw) -> bytes | None:
    kind = draw(st.sampled_from(["text"] * 5 + ["numbers", "list", "random", "none", "empty", "bool", "2d"]))
    if kind == "text":
        return _npy(np.array(draw(_texts)))
    if kind == "numbers":
        return _npy(
            np.asarray(draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=134, max_size=137)))
        )
    if kind == "list":
        return _npy(np.asarray(draw(st.lists(_texts, min_size=1, max_size=3))))
    if kind == "bool":
        return _npy(np.array(True))
    if kind == "2d":
        return _npy(np.zeros((68, 2), dtype=np.float32))
    if kind == "random":
        return b"\x93NUMPY" + draw(st.binary(max_size=80))
    if kind == "empty":
        return b""
    return None


@st.composite
def npy_records(draw):
    return draw(st.one_of(st.none(), images())), {field: draw(npy_files()) for field in ("exp", "val", "aro", "lnd")}


def _fits(row: dict) -> None:
    import pyarrow as pa

    encoded = FEATURES.encode_example(
        {**row, "landmarks": None if row["landmarks"] is None else row["landmarks"].tolist()}
    )
    pa.Table.from_pylist([encoded], schema=FEATURES.arrow_schema)


def _check(results) -> None:
    for result in results:
        assert (result.row is None) != (result.bad is None)
        if result.bad is not None:
            assert result.bad.path and result.bad.reason
            assert reason_class(result.bad.reason) != UNEXPECTED, result.bad.reason
        else:
            _fits(result.row)


@settings(_SETTINGS, max_examples=60)
@given(records=st.lists(npy_records(), min_size=1, max_size=3), check=st.sampled_from(["markers", "decode"]))
def test_every_8label_record_is_a_row_or_a_bad_record(records, check):
    root = Path(tempfile.mkdtemp(prefix="fuzz8-"))
    try:
        (root / "train_set" / "images").mkdir(parents=True)
        (root / "train_set" / "annotations").mkdir(parents=True)
        for n, (image, arrays) in enumerate(records):
            if image is not None:
                (root / "train_set" / "images" / f"{n}.jpg").write_bytes(image)
            for field, data in arrays.items():
                if data is not None:
                    (root / "train_set" / "annotations" / f"{n}_{field}.npy").write_bytes(data)
        release = open_release(root)
        listed, _ = release.list_records("train")
        _check(iter_rows(listed, check_images=check))
    finally:
        shutil.rmtree(root, ignore_errors=True)


_field = st.one_of(_texts, st.sampled_from(["1;2;3", ";".join(["1.5"] * 136), ";".join(["x"] * 136), '"q"', "a,b"]))


@st.composite
def csv_lines(draw) -> bytes:
    fields = ["1/a.jpg", *(draw(_field) for _ in range(8))]
    if draw(st.booleans()):
        fields = fields[: draw(st.integers(0, 10))]
    line = ",".join(fields).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 5)) == 0:
        line = draw(st.binary(max_size=60))
    return line + b"\n"


@settings(_SETTINGS, max_examples=60)
@given(
    lines=st.lists(csv_lines(), min_size=1, max_size=4), image=images(), check=st.sampled_from(["markers", "decode"])
)
def test_every_2017_line_is_a_row_or_a_bad_record(lines, image, check):
    root = Path(tempfile.mkdtemp(prefix="fuzz17-"))
    try:
        (root / "Manually_Annotated_file_lists").mkdir()
        (root / "Manually_Annotated_Images" / "1").mkdir(parents=True)
        (root / "Manually_Annotated_Images" / "1" / "a.jpg").write_bytes(image)
        (root / "Manually_Annotated_file_lists" / "validation.csv").write_bytes(b"".join(lines))
        release = open_release(root)
        listed, _ = release.list_records("validation")
        results = list(iter_rows(listed, check_images=check))
        assert len(results) == len(listed)
        _check(results)
    finally:
        shutil.rmtree(root, ignore_errors=True)
