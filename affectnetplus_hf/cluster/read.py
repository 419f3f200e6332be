"""An export -> ``ray.data.Dataset``, read from the export's own Parquet shards.

Which files a config's split holds comes from the export itself, as ``load_dataset`` reads it:
the card's ``configs`` patterns matched against the shard list of ``export_info.json``
(:func:`affectnetplus_hf.hub.remote.config_data_files`). ``ray.data.read_parquet`` then reads
exactly those files: no copy, no conversion. The shards carry the ``datasets`` schema, so the
columns and types are those of :data:`~affectnetplus_hf.core.schema.FEATURES` and ``image`` is
``{"bytes": <JPEG>, "path": ...}``.

Readers of a Hub repo all read one commit: the revision is resolved to its commit sha once, on the
driver, so a push during a long job never mixes two exports in one dataset. The token is resolved
on the driver too (``HF_TOKEN`` or the login cache) and travels with the read tasks, so the
cluster's nodes need no login of their own. A local folder must be at the same path on every node
of a cluster (a shared filesystem); a re-export swaps in a folder with new shard names, so a job
still reading the old one fails on a missing file rather than reading a mix.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from ..core.configs import DEFAULT_CONFIG
from ..core.repo_id import is_repo_id
from ..errors import PublishError
from ..hub.remote import config_data_files

__all__ = ["export_shards", "read_export"]

_HUB_URL = "hf://datasets/"


def export_shards(
    source: str | os.PathLike,
    config: str = DEFAULT_CONFIG,
    split: str = "train",
    *,
    token: str | bool | None = None,
    revision: str | None = None,
    storage_options: dict | None = None,
):
    """``(paths, filesystem)``: the shard files of ``config``/``split`` of the export at ``source``
    and the ``pyarrow`` filesystem to read them with (``None`` for a local folder). Any Parquet
    reader that takes a pyarrow filesystem (Ray, Dask, PyArrow itself) can read them.

    Raises :class:`~affectnetplus_hf.errors.PublishError` when ``source`` is not an export, or
    lacks the config or split (the message names what it has)."""
    source = os.fspath(source)
    if source.startswith(_HUB_URL):
        source = source[len(_HUB_URL) :].rstrip("/")
    if "://" not in source and os.path.isdir(source):
        return _pick(config_data_files(os.path.abspath(source), config), config, split, source), None
    if is_repo_id(source):
        from huggingface_hub import HfApi, constants, get_token

        if token is None:
            token = get_token()
        sha = HfApi(endpoint=constants.ENDPOINT).dataset_info(source, revision=revision, token=token).sha
        url = f"{_HUB_URL}{source}@{quote(str(sha), safe='')}"
        storage_options = {**(storage_options or {}), "endpoint": constants.ENDPOINT, "token": token}
    elif "://" in source:
        url = source
    else:
        raise PublishError(
            f"{source!r}: not a local folder, a URL or a Hub repo id; expected e.g. ./affectnet_plus, "
            "my-lab/affectnet_plus or s3://bucket/affectnet_plus."
        )
    import fsspec
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, _ = fsspec.core.url_to_fs(url, **(storage_options or {}))
    urls = _pick(config_data_files(url, config, storage_options=storage_options), config, split, source)
    return [fs._strip_protocol(u) for u in urls], PyFileSystem(FSSpecHandler(fs))


def _pick(files: dict[str, list[str]], config: str, split: str, source: str) -> list[str]:
    if split not in files:
        raise PublishError(f"split {split!r} is not in config {config!r} at {source}; expected one of {sorted(files)}.")
    return files[split]


def read_export(
    source: str | os.PathLike,
    config: str = DEFAULT_CONFIG,
    split: str = "train",
    *,
    token: str | bool | None = None,
    revision: str | None = None,
    storage_options: dict | None = None,
    columns: list[str] | None = None,
    **read_kwargs: Any,
):
    """``config``/``split`` of the export at ``source`` as a ``ray.data.Dataset``.

    Args:
        source: a local export folder, a Hub repo id (``"my-lab/affectnet_plus"`` or
            ``hf://datasets/...``) or the URL of an exported folder (``s3://``, ``https://``, ...).
        config: ``all`` (default), ``easy``, ``challenging``, ``difficult`` or ``unlabeled``.
        split: ``"train"`` (the only split of ``unlabeled``) or ``"validation"``.
        token: Hub token (default: ``HF_TOKEN`` or the login cache, read here); Hub repos only.
        revision: Hub branch, tag or commit (default the main branch), pinned to its commit.
        storage_options: fsspec options for URLs (credentials, headers).
        columns: read only these columns (``["image_id", "image"]``), through
            ``Dataset.select_columns`` (``read_parquet``'s own ``columns=`` is deprecated).
        **read_kwargs: passed to ``ray.data.read_parquet`` (``override_num_blocks``,
            ``concurrency``, ...).

    Returns:
        A lazy ``ray.data.Dataset`` with the columns and Arrow types of
        :data:`~affectnetplus_hf.core.schema.FEATURES` (or ``columns``), one row per exported
        record; ``image`` is ``{"bytes", "path"}`` with the JPEG bytes. Decode with
        :class:`~affectnetplus_hf.cluster.DecodeBatch`.
    """
    import ray.data

    paths, filesystem = export_shards(
        source, config, split, token=token, revision=revision, storage_options=storage_options
    )
    dataset = ray.data.read_parquet(paths, filesystem=filesystem, **read_kwargs)
    return dataset if columns is None else dataset.select_columns(list(columns))
