"""AffectNet+ annotation columns as NumPy arrays: the one Arrow -> NumPy conversion.

The statistics accumulator and the PyTorch collator both read a batch of rows as whole
columns. This module is where a column becomes an array (no torch needed):

================  ==========================  ===========================================
kind              columns                     array
================  ==========================  ===========================================
``label``         ``human_label``, ``subset``  ``int64 (N,)``, ``-1`` where null
``float``         ``valence``, ``arousal``,    ``(N,)`` in the asked dtype, ``NaN`` where null
                  ``age``
``struct``        ``gender``, ``race``,        ``(N, k)``, members in schema order, ``NaN``
                  ``head_pose``                where the struct or the member is null
``fixed``         ``soft_label`` (8),          ``(N, *shape)``, ``NaN`` rows where null
                  ``landmarks`` (68 x 2)
``string``        ``image_id``                 a list of ``str`` (``None`` where null)
``list``          ``landmarks_29``             not converted (variable length): only its nulls
``image``         ``image``                    not converted (the collator reads the bytes)
================  ==========================  ===========================================

:func:`null_masks` gives, for every column, which rows are null as a whole.

Input is a ``pyarrow.Table`` / ``RecordBatch`` (``datasets``' ``arrow`` format: no Python
object per value) or, through :func:`rows_to_arrow`, Python rows or columns in
``datasets``' Python format, which are converted to Arrow once, with the schema's types,
by ``datasets``' own encoder; every caller then takes the same path.

:func:`arrow_table` goes the other way, from columns in these NumPy forms to a table typed
by the schema: the export's batch reader (``release.reader.read_batches``) builds its Arrow
batches with it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import AffectNetPlusError
from .schema import FEATURES

__all__ = [
    "COLUMN_KINDS",
    "annotation_arrays",
    "arrow_table",
    "column_kind",
    "fixed_values",
    "float_values",
    "label_codes",
    "label_subset_counts",
    "null_mask",
    "null_masks",
    "rows_to_arrow",
    "struct_values",
    "whole_array",
]


def column_kind(feature) -> tuple[str, Any]:
    """``(kind, spec)`` of a ``datasets`` feature: spec is the member names (``struct``),
    the shape (``fixed``), the class count (``label``) or ``None``."""
    import datasets

    lists = tuple(getattr(datasets, name) for name in ("Sequence", "List", "LargeList") if hasattr(datasets, name))
    if isinstance(feature, datasets.Image):
        return "image", None
    if isinstance(feature, datasets.ClassLabel):
        return "label", feature.num_classes
    if isinstance(feature, datasets.Value):
        return ("string", None) if feature.dtype in ("string", "large_string") else ("float", None)
    if isinstance(feature, dict):
        return "struct", tuple(feature)
    if isinstance(feature, datasets.Array2D):
        return "fixed", tuple(feature.shape)
    if isinstance(feature, lists) and (getattr(feature, "length", -1) or -1) > 0:
        return "fixed", (feature.length,)
    return "list", None


#: Every schema column -> ``(kind, spec)`` (see the module docstring), in schema order.
COLUMN_KINDS: dict[str, tuple[str, Any]] = {name: column_kind(feature) for name, feature in FEATURES.items()}


# ----------------------------------------------------------------------------- Python rows -> Arrow


def rows_to_arrow(batch: Sequence[Mapping] | Mapping[str, Sequence], names: Sequence[str] | None = None):
    """Rows (a list of dicts) or columns (a dict of lists) -> a ``pyarrow.Table`` typed by FEATURES.

    Keeps the schema columns in ``names`` (default: every schema column but ``image``)
    that the batch has. Values are encoded by ``datasets`` (``Features.encode_batch``),
    so anything ``Dataset.from_list(rows, features=FEATURES)`` accepts is accepted here
    (NumPy landmarks, ints for floats). A value that does not fit the schema raises
    :class:`~affectnetplus_hf.errors.AffectNetPlusError` naming the row, the column, what
    was expected and what was found.
    """
    import datasets
    import pyarrow as pa
    from datasets.arrow_writer import TypedSequence

    wanted = [n for n in (names or COLUMN_KINDS) if n in FEATURES and (names is not None or n != "image")]
    if isinstance(batch, Mapping):
        columns = {name: list(batch[name]) for name in wanted if name in batch}
    else:
        rows = list(batch)
        present = [name for name in wanted if rows and name in rows[0]]
        columns = {name: [row.get(name) for row in rows] for name in present}

    def convert(values: dict[str, list]):
        arrays = []
        for name, column in values.items():
            feature, (kind, spec) = FEATURES[name], COLUMN_KINDS[name]
            if kind != "label" or all(v is None or (type(v) is int and 0 <= v < spec) for v in column):
                try:  # the fast path: values exactly in storage form (the reader's rows, as the export writes them)
                    arrays.append(_storage_array(column, _arrow_schema().field(name).type))
                    continue
                except Exception:  # noqa: BLE001 - anything else goes through datasets' typed sequences
                    pass
            data: list | np.ndarray = column
            if column and all(isinstance(v, np.ndarray) and v.shape == column[0].shape for v in column):
                data = np.stack(column)  # the reader's NumPy landmarks: one conversion, not one per row
            try:  # values already in storage form (the reader's rows, datasets' Python format)
                arrays.append(pa.array(TypedSequence(data, type=feature)))
            except Exception:  # noqa: BLE001 - names for class labels, and the like: let datasets encode
                encoded = datasets.Features({name: feature}).encode_batch({name: values[name]})[name]
                arrays.append(pa.array(TypedSequence(encoded, type=feature)))
        return pa.Table.from_arrays(arrays, names=list(values)) if arrays else pa.table({})

    try:
        return convert(columns)
    except Exception as exc:  # noqa: BLE001 - located and explained row by row below
        error = exc
    count = len(next(iter(columns.values())))
    ids = columns.get("image_id") or list(range(count))
    for i in range(count):
        for name, values in columns.items():
            try:
                convert({name: [values[i]]})
            except Exception as exc:  # noqa: BLE001
                value = values[i]
                found = f"shape {np.shape(value)}" if isinstance(value, (list, tuple, np.ndarray)) else repr(value)
                raise AffectNetPlusError(
                    f"row {ids[i]!r}: {name} does not fit the schema ({str(exc).splitlines()[0]}); expected "
                    f"{FEATURES[name]!r} or null, found {found}. See affectnetplus_hf.core.schema.FEATURES."
                ) from None
    raise error  # pragma: no cover - every value converts alone: the batch's own error


@functools.cache
def _arrow_schema():
    """``FEATURES.arrow_schema``, built once (``datasets`` builds it anew on every access)."""
    return FEATURES.arrow_schema


def _storage_array(values: list, arrow_type):
    """Values already in the storage form of ``arrow_type`` -> one Arrow array of that type.

    Built with the schema's own Arrow type (the Array2D landmarks from their storage type,
    out of ``(68, 2)`` NumPy arrays or ``None``), which is several times faster than
    inferring through ``datasets``' typed sequences; anything else raises, and
    :func:`rows_to_arrow` takes the general path.
    """
    import pyarrow as pa

    if isinstance(arrow_type, pa.ExtensionType):
        return pa.ExtensionArray.from_storage(arrow_type, _points_storage(values, arrow_type))
    return pa.array(values, type=arrow_type)


def _points_storage(values: list, arrow_type):
    """``list<list<float>>`` storage of an Array2D column from arrays of its shape, nulls kept.

    A value of another shape raises ``ValueError`` (the general path then keeps it as it
    is, and :func:`fixed_values` names its row) rather than being cut into rows of the
    schema's width.
    """
    shape = tuple(arrow_type.shape)
    null = np.array([v is None for v in values], dtype=bool)
    present = [v for v in values if v is not None]
    points = np.stack(present).astype(np.float32, copy=False) if present else np.zeros((0, *shape), np.float32)
    if points.shape[1:] != shape:
        raise ValueError(f"expected arrays of shape {shape}, found {points.shape[1:]}")
    return _points_of_array(points, null, arrow_type)


def _points_of_array(points: np.ndarray, null: np.ndarray, arrow_type):
    """:func:`_points_storage` of the rows that are not null, ``(M, *shape)`` float32, and the null mask ``(N,)``."""
    import pyarrow as pa

    rows, cols = tuple(arrow_type.shape)
    inner = pa.ListArray.from_arrays(
        pa.array(np.arange(0, points.size + 1, cols, dtype=np.int32)), pa.array(points.reshape(-1))
    )
    offsets = pa.array(np.concatenate([[0], np.cumsum(np.where(null, 0, rows))]).astype(np.int32))
    return pa.ListArray.from_arrays(
        offsets, inner, type=arrow_type.storage_type, mask=pa.array(null) if null.any() else None
    )


def arrow_table(columns: Mapping[str, Any], num_rows: int):
    """Columns in NumPy forms -> a ``pyarrow.Table`` of every schema column, in schema order,
    with FEATURES' Arrow types (a column not given is all null): the reverse of
    :func:`annotation_arrays`, for a reader that checks whole columns at once.

    Forms, by kind (:data:`COLUMN_KINDS`): ``image`` a pair (list of bytes, list of paths);
    ``string`` a list of ``str``; ``label`` integers, ``-1`` where null; ``float`` numbers, NaN
    where null; ``struct`` a pair (``(N, k)`` numbers, members in schema order and NaN where
    null; ``bool (N,)`` null rows); ``fixed`` a pair (``(N, *shape)`` numbers; null rows);
    ``list`` a triple (the values of every row, one after the other; ``(N,)`` lengths; null
    rows). Numbers are cast to the schema's type (float64 -> float32 rounds as Arrow
    converts a Python float), and must fit it.
    """
    import pyarrow as pa

    schema = _arrow_schema()
    arrays = []
    for field in schema:
        value = columns.get(field.name)
        if value is None:
            arrays.append(pa.nulls(num_rows, field.type))
        else:
            arrays.append(_arrow_column(COLUMN_KINDS[field.name][0], field.type, value))
    return pa.Table.from_arrays(arrays, schema=schema)


def _arrow_column(kind: str, arrow_type, value):
    import pyarrow as pa

    def numbers(values: np.ndarray, value_type):
        values = np.ascontiguousarray(values, dtype=value_type.to_pandas_dtype())
        null = np.isnan(values) if values.dtype.kind == "f" else None
        return pa.array(values, type=value_type, mask=null if null is not None and null.any() else None)

    def mask(null: np.ndarray):  # of a nested array, made of its children
        return pa.array(null) if null.any() else None

    if kind == "image":
        data, paths = value
        children = [pa.array(data, type=arrow_type.field(0).type), pa.array(paths, type=arrow_type.field(1).type)]
        return pa.StructArray.from_arrays(children, fields=list(arrow_type))
    if kind == "string":
        return pa.array(value, type=arrow_type)
    if kind == "label":
        codes = np.asarray(value, dtype=np.int64)
        return pa.array(codes, type=arrow_type, mask=(codes < 0) if (codes < 0).any() else None)
    if kind == "float":
        return numbers(value, arrow_type)
    if kind == "struct":
        values, null = value
        children = [numbers(values[:, j], f.type) for j, f in enumerate(arrow_type)]
        return pa.StructArray.from_arrays(children, fields=list(arrow_type), mask=mask(null))
    if kind == "fixed" and isinstance(arrow_type, pa.ExtensionType):
        values, null = value
        points = np.asarray(values, dtype=np.float32)[~null]
        return pa.ExtensionArray.from_storage(arrow_type, _points_of_array(points, null, arrow_type))
    if kind == "fixed":
        values, null = value
        flat = numbers(np.asarray(values).reshape(-1), arrow_type.value_type)
        return pa.FixedSizeListArray.from_arrays(flat, arrow_type.list_size, mask=mask(null))
    flat, lengths, null = value  # "list"
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(np.where(null, 0, lengths), out=offsets[1:])
    return pa.ListArray.from_arrays(
        pa.array(offsets), numbers(flat, arrow_type.value_type), type=arrow_type, mask=mask(null)
    )


# ----------------------------------------------------------------------------- Arrow -> NumPy


def whole_array(column):
    """One contiguous ``pyarrow.Array`` of a column (chunked columns are combined)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def null_mask(column) -> np.ndarray:
    """``bool (N,)``: the rows where ``column`` is null."""
    return np.asarray(whole_array(column).is_null().to_numpy(zero_copy_only=False), dtype=bool)


def label_codes(column, num_classes: int | None, name: str) -> np.ndarray:
    """``int64 (N,)`` class codes, ``-1`` where null; a code outside ``0..num_classes-1`` raises
    (``num_classes=None``, for a column that is not a schema class label: codes as stored)."""
    array = whole_array(column)
    out = np.array(array.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)  # a writable copy
    if num_classes is None:
        return out
    bad = (out < -1) | (out >= num_classes) | ((out == -1) & ~null_mask(array))
    if bad.any():
        raise AffectNetPlusError(
            f"{name}: expected codes 0..{num_classes - 1} or null, found {int(out[np.argmax(bad)])}"
        )
    return out


def float_values(column, dtype=np.float32) -> np.ndarray:
    """``(N,)`` numbers in ``dtype``, ``NaN`` where null."""
    import pyarrow as pa

    array = whole_array(column)
    if not pa.types.is_floating(array.type):
        array = array.cast(pa.float64())
    return np.array(array.to_numpy(zero_copy_only=False), dtype=dtype)  # nulls of a float array are NaN


def struct_values(column, members: tuple[str, ...], dtype=np.float32) -> np.ndarray:
    """``(N, len(members))``, ``NaN`` where the struct or that member is null (or absent)."""
    array = whole_array(column)
    out = np.full((len(array), len(members)), np.nan, dtype=dtype)
    fields = {array.type.field(i).name: child for i, child in enumerate(array.flatten())}  # parent nulls applied
    for j, member in enumerate(members):
        if member in fields:
            out[:, j] = float_values(fields[member], dtype)
    return out


def fixed_values(
    column, shape: tuple[int, ...], name: str, ids: Sequence | None = None, dtype=np.float32
) -> np.ndarray:
    """``(N, *shape)`` from nested (fixed or variable) lists, ``NaN`` rows where null.

    A row of another shape raises :class:`~affectnetplus_hf.errors.AffectNetPlusError`
    naming it (by ``ids[i]`` when given, else by its index).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    array = whole_array(column)
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    null = null_mask(array)
    values = array.filter(pc.invert(pa.array(null))) if null.any() else array
    for length in shape:
        if not (
            pa.types.is_list(values.type)
            or pa.types.is_large_list(values.type)
            or pa.types.is_fixed_size_list(values.type)
        ):
            raise AffectNetPlusError(f"{name}: expected nested lists of shape {shape}, found Arrow type {array.type}")
        lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
        wrong = lengths != length
        if wrong.any():
            raise _shape_error(array, null, shape, name, ids)
        values = values.flatten()
    present = float_values(values, dtype).reshape(-1, *shape)
    if not null.any():
        return present
    out = np.full((len(array), *shape), np.nan, dtype=dtype)
    out[~null] = present
    return out


def _shape_error(array, null: np.ndarray, shape, name: str, ids) -> AffectNetPlusError:
    """Name the first row whose value is not of ``shape`` (only run when one is not)."""
    for row in np.flatnonzero(~null):
        found = np.shape(array[int(row)].as_py())
        if found != tuple(shape):
            value = ids[int(row)] if ids is not None else int(row)
            label = repr(value.as_py() if hasattr(value, "as_py") else value)
            return AffectNetPlusError(f"row {label}: {name} has shape {found}; expected {tuple(shape)} or null")
    return AffectNetPlusError(f"{name}: expected rows of shape {tuple(shape)} or null")  # pragma: no cover


def label_subset_counts(table) -> dict[tuple[str, str], int]:
    """``(expression name or NULL_LABEL, subset name or NULL_SUBSET) -> rows`` of ``table``
    (a batch of rows, with ``human_label``, ``auto_label`` and ``subset``): the human label,
    else the model's (AffectNet 2017's automatic list)."""
    from .configs import LABEL_NAMES, SUBSET_NAMES

    human, auto, subset = (
        label_codes(table.column(name), None, name) for name in ("human_label", "auto_label", "subset")
    )
    labels = np.where(human >= 0, human, auto)
    labels[labels < 0], subset[subset < 0] = len(LABEL_NAMES) - 1, len(SUBSET_NAMES) - 1  # null: the last name
    pairs = np.bincount(labels * len(SUBSET_NAMES) + subset, minlength=len(LABEL_NAMES) * len(SUBSET_NAMES))
    return {
        (LABEL_NAMES[index // len(SUBSET_NAMES)], SUBSET_NAMES[index % len(SUBSET_NAMES)]): int(pairs[index])
        for index in np.flatnonzero(pairs).tolist()
    }


def null_masks(table) -> dict[str, np.ndarray]:
    """column -> ``bool (N,)`` rows where it is null, for every schema column of ``table``."""
    return {name: null_mask(table.column(name)) for name in table.column_names if name in COLUMN_KINDS}


def annotation_arrays(table, *, dtype=np.float32) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Every annotation column of ``table`` as arrays (see the module docstring).

    Returns ``(arrays, strings)``: ``arrays`` maps ``label``, ``float``, ``struct`` and
    ``fixed`` columns to NumPy arrays (floats in ``dtype``), ``strings`` maps ``image_id``
    to its Python list. ``image`` and ``landmarks_29`` are left out.
    """
    arrays: dict[str, np.ndarray] = {}
    strings: dict[str, list] = {}
    ids = table.column("image_id") if "image_id" in table.column_names else None  # read only to name a bad row
    for name in table.column_names:
        kind, spec = COLUMN_KINDS.get(name, ("list", None))
        column = table.column(name)
        if kind == "string":
            strings[name] = column.to_pylist()
        elif kind == "label":
            arrays[name] = label_codes(column, spec, name)
        elif kind == "float":
            arrays[name] = float_values(column, dtype)
        elif kind == "struct":
            arrays[name] = struct_values(column, spec, dtype)
        elif kind == "fixed":
            arrays[name] = fixed_values(column, spec, name, ids, dtype)
    return arrays, strings
