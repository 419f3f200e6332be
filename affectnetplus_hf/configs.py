"""The configs of AffectNet+ as plain data, and the one spelling of "no value".

This module is a leaf: it imports nothing from the package, so every stage (builder,
export, card, stats, CLI, loading script) can read it.

``NULL_LABEL`` / ``NULL_SUBSET`` are the names a user sees for rows whose human label
or data-complexity subset is null: in ``export_info.json`` counts, the export's
partition folders, the card, ``verify``, ``stats`` tables and plots. There is no other
spelling.
"""

from __future__ import annotations

__all__ = ["NULL_LABEL", "NULL_SUBSET"]

#: How a null human label is named wherever a user can see it.
NULL_LABEL = "no_label"
#: How a null data-complexity subset is named wherever a user can see it.
NULL_SUBSET = "no_subset"
