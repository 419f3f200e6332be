"""The one Arrow -> NumPy conversion of the annotation columns (stats and the torch collator use it)."""

from __future__ import annotations

import numpy as np
import pytest

from affectnetplus_hf.core.columns import COLUMN_KINDS, annotation_arrays, null_masks, rows_to_arrow
from affectnetplus_hf.core.schema import FEATURES, GENDERS, RACES
from affectnetplus_hf.errors import AffectNetPlusError
from tests.support.torch_support import NULL_FAULTS, sample_rows


def test_every_schema_column_has_a_kind():
    assert list(COLUMN_KINDS) == list(FEATURES)
    assert COLUMN_KINDS["human_label"] == ("label", 11)
    assert COLUMN_KINDS["gender"] == ("struct", GENDERS)
    assert COLUMN_KINDS["landmarks"] == ("fixed", (68, 2))
    assert COLUMN_KINDS["soft_label"] == ("fixed", (8,))
    assert COLUMN_KINDS["landmarks_29"][0] == "list" and COLUMN_KINDS["image"][0] == "image"


def test_rows_and_their_dataset_convert_alike_with_nulls(tmp_path):
    import datasets

    rows = sample_rows(tmp_path, n=6, faults=NULL_FAULTS)  # reader rows: NumPy landmarks, None where null
    rows[3]["landmarks"], rows[4]["race"], rows[5]["human_label"] = None, None, None
    from_rows = rows_to_arrow(rows)
    table = datasets.Dataset.from_list(rows, features=FEATURES).with_format("arrow")[:]
    a_rows, ids_rows = annotation_arrays(from_rows)
    a_table, ids_table = annotation_arrays(table)
    assert ids_rows == ids_table == {"image_id": [r["image_id"] for r in rows]}
    assert a_rows.keys() == a_table.keys()
    for key in a_rows:
        np.testing.assert_array_equal(a_rows[key], a_table[key], err_msg=key)
    assert a_rows["human_label"][5] == -1 and a_rows["human_label"].dtype == np.int64
    assert np.isnan(a_rows["landmarks"][3]).all() and a_rows["landmarks"].shape == (6, 68, 2)
    assert np.isnan(a_rows["race"][4]).all() and a_rows["race"].shape == (6, len(RACES))
    # null_numbers: age and one gender probability null, the struct itself present
    assert np.isnan(a_rows["age"][0]) and np.isnan(a_rows["gender"][0]).sum() == 1
    nulls = null_masks(from_rows)
    assert nulls["gender"].tolist() == [False] * 6 and nulls["race"].tolist() == [False] * 4 + [True, False]
    assert "image" not in from_rows.column_names


def test_float_dtype_is_the_callers():
    table = rows_to_arrow([{"image_id": "a", "valence": 0.5, "gender": {"female": 0.25, "male": None}}])
    arrays, _ = annotation_arrays(table, dtype=np.float64)
    assert arrays["valence"].dtype == np.float64 and arrays["gender"].tolist() == [
        [0.25, pytest.approx(np.nan, nan_ok=True)]
    ]


def test_a_value_that_does_not_fit_names_row_and_column():
    rows = [
        {"image_id": "fine", "soft_label": [0.1] * 8},
        {"image_id": "short", "soft_label": [0.1] * 7},
    ]
    with pytest.raises(
        AffectNetPlusError, match=r"row 'short': soft_label does not fit the schema.*found shape \(7,\)"
    ):
        rows_to_arrow(rows)
    with pytest.raises(AffectNetPlusError, match=r"row 'x': human_label"):
        rows_to_arrow([{"image_id": "x", "human_label": 99}])


def test_landmarks_of_another_shape_are_kept_as_given_and_named():
    rows = [
        {"image_id": "ok", "landmarks": np.zeros((68, 2), np.float32)},
        {"image_id": "wide", "landmarks": np.ones((68, 3), np.float32)},
    ]
    table = rows_to_arrow(rows)  # not cut into 68 x 2 rows (which would shift every later row)
    with pytest.raises(AffectNetPlusError, match=r"row 'wide': landmarks has shape \(68, 3\); expected \(68, 2\)"):
        annotation_arrays(table)


def test_ragged_nested_lists_name_the_row():
    import pyarrow as pa

    table = pa.table(
        {
            "image_id": ["ok", "short"],
            "landmarks": pa.array([[[1.0, 2.0]] * 68, [[1.0, 2.0]] * 67], pa.list_(pa.list_(pa.float32()))),
        }
    )
    with pytest.raises(AffectNetPlusError, match=r"row 'short': landmarks has shape \(67, 2\); expected \(68, 2\)"):
        annotation_arrays(table)


def test_codes_out_of_range_are_refused():
    import pyarrow as pa

    with pytest.raises(AffectNetPlusError, match=r"subset: expected codes 0..2 or null, found 7"):
        annotation_arrays(pa.table({"subset": pa.array([0, 7, None], pa.int64())}))
