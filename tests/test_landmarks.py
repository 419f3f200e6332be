"""The iBUG-68 scheme: contour groups, mirror permutation and eye corners, readable without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from affectnetplus_hf.core.landmarks import (
    IBUG68_CONTOURS,
    IBUG68_FLIP_PERMUTATION,
    IBUG68_MIRROR_PAIRS,
    OUTER_EYE_CORNERS,
)


def test_contours_cover_every_point_once_in_order():
    covered = [i for first, stop, _ in IBUG68_CONTOURS for i in range(first, stop)]
    assert covered == list(range(68))
    assert [closed for *_, closed in IBUG68_CONTOURS] == [False] * 5 + [True] * 4  # eyes and lips are closed


def test_flip_permutation_is_an_involution_that_swaps_the_mirror_pairs():
    perm = IBUG68_FLIP_PERMUTATION
    assert sorted(perm) == list(range(68))
    assert all(perm[perm[i]] == i for i in range(68))
    for a, b in IBUG68_MIRROR_PAIRS:
        assert perm[a] == b and perm[b] == a
    assert [i for i in range(68) if perm[i] == i] == [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]


def test_outer_eye_corners_open_the_two_eye_contours_and_swap_under_a_mirror():
    eyes = [first for first, stop, closed in IBUG68_CONTOURS if closed and stop - first == 6]  # the two eyes
    left, right = OUTER_EYE_CORNERS
    assert left == eyes[0]  # the left eye's stroke starts at its outer corner
    assert right == eyes[1] + 3  # the right eye's stroke starts at its inner corner: outer is 3 points on
    assert IBUG68_FLIP_PERMUTATION[left] == right


def test_reading_them_does_not_import_torch():
    code = "import sys, affectnetplus_hf.core.landmarks; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
