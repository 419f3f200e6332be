"""Streaming statistics of AffectNet+ rows, returned as plain (JSON-serialisable) data.

:func:`compute_summary` reads a source (:mod:`.sources`) batch by batch into a
:class:`~.accumulate.StatsAccumulator` (fixed-size sums) and returns its
:meth:`~.accumulate.StatsAccumulator.summary`, a :class:`~.summary.StatsSummary`;
:func:`compute_stats` returns the same as plain data (a dict of ints, floats, strings,
lists, dicts and ``None``; ``json.dumps`` writes it as is). The groups named below
(classes, subsets, bins) are the tuples of :mod:`.groups`.

Definitions (what each number means):

* **class** of a row: its ``human_label`` name (``EXPRESSIONS``), or :data:`~affectnetplus_hf.core.configs.NULL_LABEL` where
  the human label is null (the unlabeled part). **subset**: ``easy`` / ``challenging`` /
  ``difficult``, or :data:`~affectnetplus_hf.core.configs.NULL_SUBSET` where null.
* **normalised soft label**: the 8 released scores divided by their sum (they do not sum
  to 1). Rows whose scores sum to 0 or less are left out of soft-label numbers.
* **entropy**: Shannon entropy of the normalised soft label in bits (0 = all mass on one
  class, at most ``log2(8) = 3``).
* **rank of the human label**: ``1 + number of soft-label scores strictly greater than the
  score of the human class``; defined only for human labels 0..7 (``none``,
  ``uncertain`` and ``non_face`` are not in the soft label). Ties count in the human
  label's favour. **top-1 rate** = share of ranked rows with rank 1.
* **demographic group** (gender, race): the key of the largest probability (ties go to
  the first key in ``GENDERS`` / ``RACES`` order); ``unknown`` where the struct or any of
  its probabilities is null.
* **age bins**: 5 years wide, ``[0, 5), [5, 10), ..., [95, 100)`` and ``100+``; the
  bins are fixed, never drawn from the data's min and max.
* **valence-arousal density**: a 40 x 40 histogram over ``[-1, 1]^2`` (valence along the
  first index, arousal along the second); rows where either is null are left out.
* **spread**: population standard deviation (``ddof=0``).
* **null counts**: per split and column; a struct field (``gender.male``) counts as null
  where it or its whole struct is null. ``image`` is not read, so not counted.
* **landmarks**: mean and standard deviation of each of the 68 points' ``x`` and ``y``
  (pixels in the 224 x 224 crop), over rows that have landmarks.
* **out of range** (``result["out_of_range"]``): a value outside its column's range
  (:data:`~.groups.SUMMARY_RANGES`: the documented ranges, valence and arousal ``[-1, 1]``,
  age ``[0, 120]``, probabilities and scores ``[0, 1]``, each with the reader's 0.01 slack;
  landmarks ``[-224, 448]`` pixels) is left out of every number and plot of its column, like
  a null, and counted per split, per class and in total (not in the null counts). A
  vector (soft label, gender, race, landmarks) is left out whole when one of its values is
  outside. The data keeps the value as released (the reader notes it), so one ``1e30``
  cannot move a mean, stretch a plot or slow a drawing down.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .accumulate import StatsAccumulator
from .sources import BATCH_SIZE, SourceInfo, describe_source, iter_batches
from .summary import StatsSummary

__all__ = ["StatsAccumulator", "compute_stats", "compute_summary"]


def compute_summary(
    source: Any,
    *,
    splits: Iterable[str] | None = None,
    progress: bool = False,
    batch_size: int = BATCH_SIZE,
) -> StatsSummary:
    """Statistics of ``source``, typed: what :func:`compute_stats` returns as plain data."""
    kind, value = describe_source(source)
    info = SourceInfo(kind=kind, name=str(value) if kind != "rows" else type(value).__name__)
    accumulator = StatsAccumulator()
    for split, columns in iter_batches(source, info, splits=splits, batch_size=batch_size, progress=progress):
        accumulator.update(split, columns)
    return accumulator.summary(info)


def compute_stats(
    source: Any,
    *,
    splits: Iterable[str] | None = None,
    progress: bool = False,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Statistics of ``source`` as plain data, reading it once, streaming.

    ``source``: an exported folder, a Hub repo id (``owner/name``), a raw release folder,
    a ``datasets.Dataset`` / ``IterableDataset`` / ``DatasetDict``, or a mapping
    ``split -> iterable of row dicts`` (see :mod:`.sources`). ``splits`` keeps only those
    splits. The result's keys and definitions are described in this module's docstring;
    ``result["source"]`` says what was read (and, for a raw release, how many bad records
    were skipped per split). :func:`compute_summary` returns the same numbers typed.
    """
    return compute_summary(source, splits=splits, progress=progress, batch_size=batch_size).to_json()
