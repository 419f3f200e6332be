"""The iBUG-68 landmark scheme: its contour groups, its horizontal-mirror permutation and
the outer eye corners.

Plain tuples, no torch and no NumPy: the synthetic sample draws faces with them, the
statistics plots draw the mean shape with them, and
:mod:`affectnetplus_hf.torch.geometry` flips landmarks with them, and
:mod:`affectnetplus_hf.torch.multitask` normalises the landmark error by the distance
between the outer eye corners.

Index ``0`` is the jaw end on the image's left (the subject's right), as in iBUG-68.
"""

from __future__ import annotations

from .schema import NUM_LANDMARKS

__all__ = ["IBUG68_CONTOURS", "IBUG68_FLIP_PERMUTATION", "IBUG68_MIRROR_PAIRS", "OUTER_EYE_CORNERS"]

#: The strokes of an iBUG-68 face: ``(first, stop, closed)`` covers indices
#: ``first .. stop - 1``; a closed stroke returns to ``first``. Jaw, two eyebrows, nose
#: bridge, nose base, two eyes, outer lips, inner lips, in index order.
IBUG68_CONTOURS: tuple[tuple[int, int, bool], ...] = (
    (0, 17, False),  # jaw line, image left -> chin -> image right
    (17, 22, False),  # eyebrow on the image's left, outer -> inner
    (22, 27, False),  # eyebrow on the image's right, inner -> outer
    (27, 31, False),  # nose bridge, top -> bottom
    (31, 36, False),  # nose base
    (36, 42, True),  # eye on the image's left
    (42, 48, True),  # eye on the image's right
    (48, 60, True),  # outer lips
    (60, 68, True),  # inner lips
)

#: The outer eye corners (36: the eye on the image's left, 45: the one on its right); their
#: distance (the inter-ocular distance) normalises the landmark error (the NME of 300-W).
#: A mirror swaps them, so they are also a pair of :data:`IBUG68_MIRROR_PAIRS`.
OUTER_EYE_CORNERS: tuple[int, int] = (36, 45)

#: Pairs of iBUG-68 indices that swap under a horizontal mirror (the subject's right
#: jaw end becomes the left one, and so on). Points on the vertical midline
#: (nose bridge 27-30, nose tip 33, lip centres 51, 57, 62, 66, chin 8) map to themselves.
IBUG68_MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    # jaw line 0..16: 0 <-> 16, ..., 7 <-> 9; 8 (chin) on the midline
    *((i, 16 - i) for i in range(8)),
    # eyebrows 17..21 (image left, outer -> inner) <-> 26..22 (image right, outer -> inner)
    *((17 + i, 26 - i) for i in range(5)),
    # lower nose 31..35: 31 <-> 35, 32 <-> 34; 33 (tip) on the midline
    (31, 35),
    (32, 34),
    # eyes: outer corners 36 <-> 45, upper lids 37 <-> 44, 38 <-> 43, inner corners 39 <-> 42,
    # lower lids 40 <-> 47, 41 <-> 46
    OUTER_EYE_CORNERS,
    (37, 44),
    (38, 43),
    (39, 42),
    (40, 47),
    (41, 46),
    # outer lips: corners 48 <-> 54, upper 49 <-> 53, 50 <-> 52, lower 55 <-> 59, 56 <-> 58
    (48, 54),
    (49, 53),
    (50, 52),
    (55, 59),
    (56, 58),
    # inner lips: corners 60 <-> 64, upper 61 <-> 63, lower 65 <-> 67
    (60, 64),
    (61, 63),
    (65, 67),
)


def _permutation() -> tuple[int, ...]:
    perm = list(range(NUM_LANDMARKS))
    for a, b in IBUG68_MIRROR_PAIRS:
        perm[a], perm[b] = b, a
    return tuple(perm)


#: ``flipped[k] = mirror(original[IBUG68_FLIP_PERMUTATION[k]])``. An involution.
IBUG68_FLIP_PERMUTATION: tuple[int, ...] = _permutation()
