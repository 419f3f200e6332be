"""Dump what one ``datasets`` environment loads from a raw release, for a cross-version comparison.

Runs in two interpreters: the throw-away ``datasets`` 3.6 environment (through the
loading script, or an export folder) and the main test environment (through the
package's builder). It needs only the standard library and ``datasets`` (and the
package for ``--source script`` / ``builder``), so both can run it, and it writes one
JSON file per run; ``tests/test_loading_script.py`` compares them.

Output (``--out FILE``)::

    {"datasets_version": "3.6.0", "package_file": affectnetplus_hf.__file__ or None,
     "builders": {config: {"builder_class": [mro names], "module_builder_classes": [...],
                           "config_names": [...], "info_features": Features.to_dict()}},
     "configs": {config: {split: {"num_rows": int, "column_types": {column: python type name},
                                  "features": Features.to_dict(), "streamed_features": ...,
                                  "arrow_schema": [[name, type as JSON, nullable], ...],
                                  "rows": [row, ...], "streamed_rows": [row, ...]}}}}

Rows are the python rows a user gets (``ds[i]`` order), with the image column read
undecoded and written as ``{"path": ..., "sha256": ..., "nbytes": ...}`` of its bytes;
floats are written with ``repr`` precision, so float32 values survive exactly.

Usage::

    python tests/support/loading_script_dump.py --source script --path loading_script/affectnet_plus.py \\
        --data-dir RAW --cache-dir CACHE --out old.json [--configs all easy ...]
    python tests/support/loading_script_dump.py --source export --path OUT --cache-dir CACHE --out old.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

__all__ = ["dump_dataset_dict", "load_builder", "load_export", "load_script", "main", "normalize_row"]


def normalize_row(row: dict) -> dict:
    """One python row as JSON: the image (``{"bytes", "path"}``) as sha256, size and path,
    numpy arrays and scalars as lists and numbers (``datasets`` 4+ streams a builder's
    arrays as they were yielded)."""
    out = {name: (value.tolist() if hasattr(value, "tolist") else value) for name, value in row.items()}
    image = out.get("image")
    if image is not None:
        data = image["bytes"]
        out["image"] = {
            "path": image.get("path"),
            "sha256": hashlib.sha256(data).hexdigest() if data is not None else None,
            "nbytes": len(data) if data is not None else None,
        }
    return out


def _arrow_type(t):
    """An Arrow type as JSON, the same for every pyarrow version (``str`` of a type is not)."""
    import pyarrow as pa

    if isinstance(t, pa.ExtensionType):
        return {"extension": t.extension_name, "storage": _arrow_type(t.storage_type)}
    if pa.types.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        return {"struct": [[f.name, _arrow_type(f.type), f.nullable] for f in fields]}
    if pa.types.is_fixed_size_list(t):
        return {"fixed_size_list": _arrow_type(t.value_type), "size": t.list_size}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return {str(t).split("<", 1)[0]: _arrow_type(t.value_type)}
    return str(t)


def _raw_rows(ds) -> list[dict]:
    import datasets

    return list(ds.cast_column("image", datasets.Image(decode=False)))


def _column_types(rows: list[dict]) -> dict:
    """Python type name of each column's first non-null value."""
    types: dict = {}
    for row in rows:
        for name, value in row.items():
            if value is not None and name not in types:
                types[name] = type(value).__name__
    return types


def _split_dump(ds, streamed) -> dict:
    rows = _raw_rows(ds)
    return {
        "num_rows": ds.num_rows,
        "column_types": _column_types(rows),  # map-style: what ds[i] gives
        "features": ds.features.to_dict(),
        "streamed_features": streamed.features.to_dict() if streamed.features is not None else None,
        "arrow_schema": [[field.name, _arrow_type(field.type), field.nullable] for field in ds.data.schema],
        "rows": [normalize_row(row) for row in rows],
        "streamed_rows": [normalize_row(row) for row in _raw_rows(streamed)],
    }


def dump_dataset_dict(dataset_dict, streamed_dict) -> dict:
    """``{split: split dump}`` of a ``DatasetDict`` and its streamed twin (splits sorted)."""
    assert sorted(dataset_dict) == sorted(streamed_dict), (sorted(dataset_dict), sorted(streamed_dict))
    return {split: _split_dump(dataset_dict[split], streamed_dict[split]) for split in sorted(dataset_dict)}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


def load_script(script: str, config: str, data_dir: str, cache_dir: str):
    """``(builder, DatasetDict, IterableDatasetDict)`` through ``load_dataset(script, ...)``."""
    import datasets

    kwargs = {"trust_remote_code": True} if _version(datasets.__version__) >= (2, 16) else {}
    kwargs.update(data_dir=data_dir, cache_dir=cache_dir)
    builder = datasets.load_dataset_builder(script, config, **kwargs)
    dataset = datasets.load_dataset(script, config, **kwargs)
    streamed = datasets.load_dataset(script, config, streaming=True, **kwargs)
    return builder, dataset, streamed


def load_builder(config: str, data_dir: str, cache_dir: str):
    """``(builder, DatasetDict, IterableDatasetDict)`` through the package's builder."""
    from affectnetplus_hf.release.builder import AffectNetPlus

    builder = AffectNetPlus(config_name=config, data_dir=data_dir, cache_dir=cache_dir)
    builder.download_and_prepare()
    return builder, builder.as_dataset(), builder.as_streaming_dataset()


def load_export(folder: str, config: str, cache_dir: str):
    """``(builder, DatasetDict, IterableDatasetDict)`` of an ``affectnetplus export`` folder."""
    import datasets

    builder = datasets.load_dataset_builder(folder, config, cache_dir=cache_dir)
    dataset = datasets.load_dataset(folder, config, cache_dir=cache_dir)
    streamed = datasets.load_dataset(folder, config, cache_dir=cache_dir, streaming=True)
    return builder, dataset, streamed


def _describe(builder) -> dict:
    """Which class ``datasets`` picked, and for a script, every builder class its module defines."""
    import inspect

    import datasets

    cls = type(builder)
    module = sys.modules[cls.__module__]
    return {
        "builder_class": [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__],
        "module_builder_classes": sorted(
            name
            for name, obj in vars(module).items()
            if inspect.isclass(obj) and issubclass(obj, datasets.DatasetBuilder) and obj.__module__ == module.__name__
        ),
        "config_names": [c.name for c in cls.BUILDER_CONFIGS],
        "info_features": builder.info.features.to_dict() if builder.info.features is not None else None,
    }


def main(argv: list[str] | None = None) -> int:
    import datasets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("script", "builder", "export"), required=True)
    parser.add_argument("--path", help="the loading script (--source script) or the export folder (--source export)")
    parser.add_argument("--data-dir", help="the raw release (--source script / builder)")
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--configs", nargs="+", default=["all", "easy", "challenging", "difficult", "unlabeled"])
    args = parser.parse_args(argv)

    result: dict = {"datasets_version": datasets.__version__, "configs": {}, "builders": {}}
    for config in args.configs:
        if args.source == "script":
            builder, dataset, streamed = load_script(args.path, config, args.data_dir, args.cache_dir)
        elif args.source == "export":
            builder, dataset, streamed = load_export(args.path, config, args.cache_dir)
        else:
            builder, dataset, streamed = load_builder(config, args.data_dir, args.cache_dir)
        result["builders"][config] = _describe(builder)
        result["configs"][config] = dump_dataset_dict(dataset, streamed)
    package = sys.modules.get("affectnetplus_hf")
    result["package_file"] = getattr(package, "__file__", None)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
