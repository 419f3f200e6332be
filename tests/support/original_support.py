"""Helpers shared by the tests of the original AffectNet releases (2017 CSV, 8-label npy)."""

from __future__ import annotations

import numpy as np

from affectnetplus_hf.core.schema import FEATURES


def assert_rows_exact(ds, manifest, part: str) -> int:
    """Every row of ``ds`` (a split, images undecoded) is exactly the record ``manifest`` wrote for
    ``part``: image bytes, labels, valence/arousal, landmarks, face box, and every other column null.
    Returns the number of rows compared."""
    import datasets

    assert ds.features == FEATURES
    ds = ds.cast_column("image", datasets.Image(decode=False))
    good = manifest.good_ids(part)
    assert sorted(ds["image_id"]) == sorted(good)
    for row in ds:
        want = manifest.rows[(part, row["image_id"])]
        assert row["image"]["bytes"] == want["image"].read_bytes(), row["image_id"]  # never re-encoded (PNG too)
        for column in ("human_label", "auto_label", "face_box"):
            assert row[column] == want[column], (row["image_id"], column)
        for column in ("valence", "arousal"):
            assert (row[column] is None) == (want[column] is None), (row["image_id"], column)
            if want[column] is not None:
                assert np.float32(row[column]) == np.float32(want[column]), (row["image_id"], column)
        if want["landmarks"] is None:
            assert row["landmarks"] is None
        else:
            np.testing.assert_array_equal(np.asarray(row["landmarks"], dtype=np.float32), want["landmarks"])
        for column in ("soft_label", "subset", "age", "gender", "race", "head_pose", "landmarks_29"):
            assert row[column] is None, (row["image_id"], column)
    return len(good)
