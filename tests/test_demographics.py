"""The one definition of a row's demographic group, shared by the statistics and the torch tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from affectnetplus_hf.core.demographics import (
    AGE_BAND_EDGES,
    NO_GROUP,
    UNCERTAIN,
    age_band_names,
    age_bands,
    group_codes,
    group_names,
    most_probable,
)
from affectnetplus_hf.core.schema import GENDERS, RACES

NAN = float("nan")


def test_most_probable_takes_the_first_of_a_tie_and_marks_null_and_uncertain_rows():
    probs = np.array([[0.2, 0.8], [0.5, 0.5], [NAN, 1.0], [0.45, 0.55]], dtype=np.float32)
    assert most_probable(probs).tolist() == [1, 0, NO_GROUP, 1]
    assert most_probable(probs, min_probability=0.6).tolist() == [1, UNCERTAIN, NO_GROUP, UNCERTAIN]
    assert most_probable(np.zeros((0, 6))).tolist() == []


def test_age_bands_follow_the_lower_edges():
    ages = np.array([0, 2.9, 3, 9.5, 10, 69.9, 70, 120, -1, NAN])
    assert age_bands(ages).tolist() == [0, 0, 1, 1, 2, 7, 8, 8, NO_GROUP, NO_GROUP]
    assert age_band_names()[:2] == ("0-2", "3-9") and age_band_names()[-1] == "70+"
    assert len(age_band_names()) == len(AGE_BAND_EDGES)
    with pytest.raises(ValueError, match="must increase"):
        age_band_names((10, 3))


def test_group_codes_checks_the_attribute_and_the_shape():
    assert group_names("race") == RACES and group_names("gender") == GENDERS
    assert group_codes(np.eye(len(RACES))[[2, 0]], "race").tolist() == [2, 0]
    with pytest.raises(ValueError, match="gender: expected N x 2"):
        group_codes(np.zeros((3, 6)), "gender")
    with pytest.raises(ValueError, match="attribute must be one of"):
        group_codes(np.zeros(3), "height")


def test_the_statistics_count_rows_by_the_same_group():
    from affectnetplus_hf.stats.accumulate import StatsAccumulator

    probs = np.array([[0.5, 0.5], [0.3, 0.7], [NAN, NAN]], dtype=np.float32)
    counts = np.zeros((1, len(GENDERS) + 1), dtype=np.int64)
    StatsAccumulator._groups(
        probs, counts, np.zeros((1, len(GENDERS))), np.zeros(1, dtype=np.int64), np.zeros(3, dtype=np.int64)
    )
    expected = np.bincount(
        np.where((g := most_probable(probs)) == NO_GROUP, len(GENDERS), g), minlength=len(GENDERS) + 1
    )
    assert counts[0].tolist() == expected.tolist() == [1, 1, 1]  # female, male, unknown


def test_reading_them_does_not_import_torch():
    code = "import sys, affectnetplus_hf.core.demographics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
