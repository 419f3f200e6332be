"""The groups statistics count rows in: classes, subsets, demographic groups, bins, null columns.

Plain tuples shared by the accumulator (which sizes its arrays by them) and the result
shaping (which names the array cells by them). Definitions: :mod:`.compute`.
"""

from __future__ import annotations

from ..core.columns import COLUMN_KINDS
from ..core.configs import ALL_PARTS, LABEL_NAMES, SUBSET_NAMES
from ..core.schema import EXPRESSIONS, GENDERS, NUM_SOFT_CLASSES, RACES
from ..release.reader import DOCUMENTED_RANGES, RANGE_SLACK
from .sources import STATS_COLUMNS

__all__ = [
    "AGE_BIN_EDGES",
    "AGE_BIN_LABELS",
    "AGE_BIN_WIDTH",
    "CLASS_GROUPS",
    "GENDER_GROUPS",
    "NULL_COLUMNS",
    "RACE_GROUPS",
    "RANGED_COLUMNS",
    "SOFT_CLASSES",
    "SPLIT_ORDER",
    "STATS_VERSION",
    "STRUCT_MEMBERS",
    "SUBSET_GROUPS",
    "SUMMARY_RANGES",
    "UNKNOWN",
    "VA_BINS",
]

STATS_VERSION = 2  # 2: values outside SUMMARY_RANGES are left out and counted ("out_of_range")
UNKNOWN = "unknown"
#: Row groups by human label: the 11 expressions, then rows without a human label.
CLASS_GROUPS: tuple[str, ...] = LABEL_NAMES
SUBSET_GROUPS: tuple[str, ...] = SUBSET_NAMES
SOFT_CLASSES: tuple[str, ...] = EXPRESSIONS[:NUM_SOFT_CLASSES]
GENDER_GROUPS: tuple[str, ...] = (*GENDERS, UNKNOWN)
RACE_GROUPS: tuple[str, ...] = (*RACES, UNKNOWN)
AGE_BIN_WIDTH = 5
AGE_BIN_EDGES: tuple[int, ...] = tuple(range(0, 101, AGE_BIN_WIDTH))  # 0, 5, ..., 100
AGE_BIN_LABELS: tuple[str, ...] = (
    *(f"{a}-{a + AGE_BIN_WIDTH - 1}" for a in AGE_BIN_EDGES[:-1]),
    f"{AGE_BIN_EDGES[-1]}+",
)
VA_BINS = 40
#: Split names in report order (the release's parts); other split names follow in the order first seen.
SPLIT_ORDER: tuple[str, ...] = ALL_PARTS

#: Struct columns and their members, in schema order (from :data:`~affectnetplus_hf.core.columns.COLUMN_KINDS`).
STRUCT_MEMBERS: dict[str, tuple[str, ...]] = {
    name: spec for name, (kind, spec) in COLUMN_KINDS.items() if kind == "struct"
}
#: Columns and struct fields whose nulls are counted, in table order.
NULL_COLUMNS: tuple[str, ...] = tuple(
    item
    for name in STATS_COLUMNS
    for item in ((name, *(f"{name}.{key}" for key in STRUCT_MEMBERS[name])) if name in STRUCT_MEMBERS else (name,))
)

#: Column -> (low, high) of the values statistics and plots take in: the reader's documented
#: ranges (a value outside by at most ``RANGE_SLACK`` is taken, as the reader does not note it),
#: and for landmarks the 224 x 224 crop with one crop's width around it (points of a face cut
#: by the crop lie a little outside it; a point further out is not a position in this crop).
#: A value outside (``1e30``, an infinity) is left out of every number and plot of its column
#: and counted in ``stats["out_of_range"]``; the data keeps it as released.
SUMMARY_RANGES: dict[str, tuple[float, float]] = {**DOCUMENTED_RANGES, "landmarks": (-224.0, 448.0)}
#: The columns of :data:`SUMMARY_RANGES`, in table order.
RANGED_COLUMNS: tuple[str, ...] = tuple(SUMMARY_RANGES)
#: Slack added on each side of a range (the reader's rounding slack).
SUMMARY_SLACK = RANGE_SLACK
