"""Stream an exported AffectNet+ folder from wherever it lives: a Hub repo, a web server, any fsspec URL.

Three ways in, one result (an ``IterableDataset`` with exactly
:data:`~affectnetplus_hf.core.schema.FEATURES`)::

    stream("my-lab/affectnet_plus", "difficult", split="train")         # a Hub dataset repo
    stream("https://data.my-lab.org/affectnet_plus", "easy")             # a web server with Range
    stream("s3://bucket/affectnet_plus", "all", storage_options={...})   # any fsspec URL
    stream("./affectnet_plus", "all")                                    # a local export

A Hub repo id is pinned to one commit (the revision's, at the call) and read as
``hf://datasets/<repo>@<commit>``; any other URL as it is. Either way the exported folder's
files say what to read: its ``README.md`` gives each config's ``data_files`` patterns, its
``export_info.json`` the exact shard list and sizes (plain HTTP cannot list a folder, so
patterns are expanded against that list, never by globbing the server). The shards are
streamed by ``datasets``' Parquet builder with features ``FEATURES``, reading each shard
through :mod:`~affectnetplus_hf.hub.readahead` (transfer in the background, overlapping the
decoding). A local folder goes to ``datasets.load_dataset(folder, config, streaming=True)``.

Streaming Parquet needs random access: the reader fetches the footer, then row groups, with
HTTP ``Range`` requests. A server that ignores ``Range`` (``python -m http.server`` does)
would send whole files for each read; :func:`check_range_support` finds that out with one
request and raises :class:`~affectnetplus_hf.errors.PublishError` saying so.

Distributed training: :func:`shard_plan` states the shard-count rule (see docs/publishing.md,
"Distributed training: the shard-count rule").
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass
from typing import Any

from ..core.configs import DEFAULT_CONFIG
from ..core.export_files import CARD_FILE as _CARD
from ..core.export_files import DATA_DIR
from ..core.export_files import INFO_FILE as _INFO
from ..core.export_files import shard_paths as _layout_shard_paths
from ..core.repo_id import is_repo_id
from ..errors import ExportError, PublishError

__all__ = [
    "ShardPlan",
    "check_range_support",
    "config_data_files",
    "card_metadata",
    "is_repo_id",
    "read_card_configs",
    "shard_paths",
    "shard_plan",
    "stream",
]


# ----------------------------------------------------------------------------- what an export holds


def shard_paths(info: dict) -> list[str]:
    """Every shard of an export (see :func:`~affectnetplus_hf.core.export_files.shard_paths`); :class:`PublishError`
    when ``info`` is not an export's ``export_info.json``."""
    try:
        return _layout_shard_paths(info)
    except ExportError as err:
        raise PublishError(str(err)) from None


def card_metadata(card_text: str, where: str = _CARD) -> dict:
    """The YAML header of a dataset card as a dict, parsed by ``huggingface_hub.DatasetCard``
    (as the Hub parses it; a leading byte-order mark is allowed). :class:`PublishError`
    when there is no header or it is not a YAML mapping."""
    import yaml
    from huggingface_hub import DatasetCard

    text = card_text.removeprefix("\ufeff")
    if not text.lstrip().startswith("---"):
        raise PublishError(f"{where}: no YAML header (--- ... ---); expected the card written by the export.")
    try:
        return DatasetCard(text).data.to_dict()
    except (ValueError, yaml.YAMLError) as err:
        reason = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise PublishError(
            f"{where}: the YAML header is not a readable mapping ({reason}); expected the card written by the export."
        ) from None


def read_card_configs(card_text: str, where: str = _CARD) -> dict[str, dict[str, list[str]]]:
    """config -> split -> data_files patterns, from a dataset card's YAML ``configs``
    (read by ``datasets``' ``MetadataConfigs`` and ``sanitize_patterns``, as ``load_dataset`` reads them)."""
    from datasets.data_files import sanitize_patterns
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    try:
        metadata = MetadataConfigs.from_dataset_card_data(DatasetCardData(**card_metadata(card_text, where)))
        configs = {
            name: {split: list(paths) for split, paths in sanitize_patterns(config.get("data_files") or []).items()}
            for name, config in metadata.items()
        }
    except ValueError as err:
        reason = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise PublishError(
            f"{where}: its `configs` are not valid ({reason}); expected the card written by the export."
        ) from None
    if not configs:
        raise PublishError(f"{where}: the YAML header has no `configs`; expected the card written by the export.")
    return configs


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel


def _read_text(url: str, storage_options: dict | None) -> str:
    import fsspec

    try:
        with fsspec.open(url, "rt", encoding="utf-8", **(storage_options or {})) as handle:
            return handle.read()
    except FileNotFoundError:
        raise PublishError(
            f"{url}: not found; expected an exported AffectNet+ folder ({_CARD}, {_INFO}, {DATA_DIR}/) at "
            f"{url.rsplit('/', 1)[0]}. Check the URL, or publish the folder written by `affectnetplus export`."
        ) from None
    except ImportError as err:
        raise PublishError(
            f"{url}: reading this URL needs an optional package ({err}). For http(s) URLs install "
            "aiohttp (pip install 'affectnetplus-hf[remote]'); for s3:// install s3fs, for gs:// gcsfs."
        ) from None


def config_data_files(
    source: str, config: str = DEFAULT_CONFIG, *, storage_options: dict | None = None
) -> dict[str, list[str]]:
    """split -> full URLs of the shards of ``config`` in the exported folder at ``source``.

    ``source`` is a URL (``https://``, ``s3://``, ``file://``, any fsspec protocol) or a local
    path. Patterns from the card are matched against the shard list of ``export_info.json``.
    """
    return _export_files(source, config, storage_options)[0]


def _export_files(
    source: str, config: str, storage_options: dict | None
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """:func:`config_data_files`, and the size of each of those shards that ``export_info.json`` lists."""
    source = str(source).rstrip("/")
    card = _read_text(_join(source, _CARD), storage_options)
    configs = read_card_configs(card, _join(source, _CARD))
    if config not in configs:
        raise PublishError(f"config {config!r} is not in {_join(source, _CARD)}; expected one of {sorted(configs)}.")
    info = json.loads(_read_text(_join(source, _INFO), storage_options))
    shards = shard_paths(info)
    listed = info.get("files") if isinstance(info.get("files"), dict) else {}
    out: dict[str, list[str]] = {}
    for split, patterns in configs[config].items():
        matched = sorted(
            {rel for rel in shards for pattern in patterns if fnmatch.fnmatchcase(rel, pattern.lstrip("./"))}
        )
        if not matched:
            raise PublishError(
                f"config {config!r} split {split!r}: patterns {patterns} match no shard listed in "
                f"{_join(source, _INFO)}; the card and export_info.json disagree. Re-run the export."
            )
        out[split] = [_join(source, rel) for rel in matched]
    sizes = {
        _join(source, rel): entry["size"]
        for urls in out.values()
        for rel in (url[len(source) + 1 :] for url in urls)
        if isinstance(entry := listed.get(rel), dict) and isinstance(entry.get("size"), int)
    }
    return out, sizes


# ----------------------------------------------------------------------------- HTTP Range


def check_range_support(url: str, *, storage_options: dict | None = None, timeout: float = 30.0) -> None:
    """Raise :class:`PublishError` unless the server of ``url`` honours HTTP ``Range`` requests.

    Sends one ``GET`` with ``Range: bytes=0-0`` and expects ``206 Partial Content``. Only
    http(s) URLs are checked; object stores (s3, gcs, ...) and local files always support
    ranged reads. Headers in ``storage_options["headers"]`` (e.g. an auth header) are sent.
    """
    if not url.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    headers = {"Range": "bytes=0-0", "Accept-Encoding": "identity"}
    headers.update((storage_options or {}).get("headers", {}))
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
            content_range = response.headers.get("Content-Range")
    except urllib.error.HTTPError as err:
        if err.code == 416:  # an empty file: the server did parse the Range header
            return
        raise PublishError(
            f"{url}: the server answered HTTP {err.code} {err.reason}; check the URL and access rights."
        ) from None
    except urllib.error.URLError as err:
        raise PublishError(f"{url}: cannot reach the server ({err.reason}).") from None
    if status != 206 or not content_range:
        raise PublishError(
            f"{url}: the server does not support HTTP Range requests (asked for bytes 0-0, got HTTP {status} "
            "with the whole file). Streaming Parquet reads the footer and row groups by byte range, so it "
            "needs a server that answers 206 Partial Content: nginx, Apache, Caddy, S3/GCS/R2 all do; "
            "`python -m http.server` does not. Serve the folder with one of those, or download it and "
            "load it locally."
        )


# ----------------------------------------------------------------------------- streaming


def stream(
    source: str | os.PathLike,
    config: str = DEFAULT_CONFIG,
    split: str | None = None,
    *,
    token: str | bool | None = None,
    revision: str | None = None,
    storage_options: dict | None = None,
    check_range: bool = True,
    **load_kwargs: Any,
):
    """Stream ``config`` (``split``, or all splits) of an export from ``source``.

    Args:
        source: a Hub repo id (``"my-lab/affectnet_plus"``, or ``hf://datasets/...``), a URL
            of an exported folder (``https://``, ``s3://``, ...) or a local folder.
        config: ``all`` (default), ``easy``, ``challenging``, ``difficult`` or ``unlabeled``.
        split: ``"train"`` / ``"validation"``; ``None`` gives an ``IterableDatasetDict``.
        token: Hub token (default ``HF_TOKEN`` / login cache); Hub repos only.
        revision: Hub branch, tag or commit; Hub repos only. The stream reads the commit
            it names at the call, all of it, whatever is pushed later.
        storage_options: fsspec options for URLs (credentials, headers).
        check_range: for http(s) URLs, first check that the server honours ``Range``.
        **load_kwargs: options of ``datasets``' Parquet builder (``columns``, ``filters``,
            ``batch_size``, ...; for a local folder, of ``datasets.load_dataset``).

    Returns:
        ``datasets.IterableDataset`` (or ``IterableDatasetDict``) whose features are exactly
        :data:`~affectnetplus_hf.core.schema.FEATURES`.
    """
    import datasets

    source = os.fspath(source)
    if source.startswith("hf://datasets/"):
        source = source[len("hf://datasets/") :].rstrip("/")
    if is_repo_id(source):
        from huggingface_hub import HfApi

        commit = HfApi().dataset_info(source, revision=revision, token=token).sha
        source = f"hf://datasets/{source}@{commit}"
        storage_options = {**(storage_options or {}), "token": token}
    elif "://" not in source and os.path.isdir(source):
        return datasets.load_dataset(source, config, split=split, streaming=True, **load_kwargs)
    elif "://" not in source:
        raise PublishError(
            f"{source!r}: not a local folder, a URL or a Hub repo id; expected e.g. ./affectnet_plus, "
            "https://host/affectnet_plus or my-lab/affectnet_plus."
        )
    files, sizes = _export_files(source, config, storage_options)
    if check_range:
        check_range_support(next(iter(files.values()))[0], storage_options=storage_options)
    if split is not None and split not in files:
        raise PublishError(f"split {split!r} is not in config {config!r} at {source}; expected one of {sorted(files)}.")
    return _stream_files(files, sizes, split, storage_options, load_kwargs)


def _stream_files(
    files: dict[str, list[str]], sizes: dict[str, int], split: str | None, storage_options: dict | None, load_kwargs
):
    """The ``IterableDataset`` (``IterableDatasetDict`` when ``split`` is None) over the shards ``files``
    (split -> URLs, already checked to exist), read by :class:`~affectnetplus_hf.hub.readahead.ReadaheadParquet`."""
    from datasets.data_files import DataFilesDict, DataFilesList

    from ..core.schema import FEATURES
    from .readahead import ReadaheadParquet

    builder = ReadaheadParquet(
        data_files=DataFilesDict({name: DataFilesList(urls, [()] * len(urls)) for name, urls in files.items()}),
        features=FEATURES,
        storage_options=storage_options,
        token=(storage_options or {}).get("token"),
        shard_sizes=sizes,
        fetch_options=storage_options,
        **load_kwargs,
    )
    return builder.as_streaming_dataset(split=split)


# ----------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class ShardPlan:
    """How ``num_shards`` files spread over ``world_size`` ranks x ``num_workers`` DataLoader workers."""

    num_shards: int
    world_size: int
    num_workers: int
    by_shard: bool  #: every rank gets whole shards (``num_shards % world_size == 0``)
    shards_per_reader: float  #: shards each (rank, worker) reads
    idle_workers: int  #: workers per rank that get no shard at all

    @property
    def ok(self) -> bool:
        """Every rank and every worker streams whole shards and none is idle or uneven."""
        readers = self.world_size * max(1, self.num_workers)
        return self.num_shards % readers == 0

    def advice(self) -> str:
        readers = self.world_size * max(1, self.num_workers)
        if self.ok:
            return (
                f"{self.num_shards} shards / ({self.world_size} ranks x {max(1, self.num_workers)} workers) = "
                f"{self.num_shards // readers} whole shards per reader: balanced."
            )
        lines = [
            f"{self.num_shards} shards do not divide among {self.world_size} ranks x {max(1, self.num_workers)} workers."
        ]
        if not self.by_shard:
            lines.append(
                "split_dataset_by_node falls back to example striding: every rank reads every shard and keeps "
                f"1/{self.world_size} of the rows ({self.world_size}x the I/O)."
            )
        if self.idle_workers:
            lines.append(f"{self.idle_workers} DataLoader worker(s) per rank get no shard and sit idle.")
        lines.append(
            "Re-export with --num-shards a multiple of world_size x num_workers (the default rounds to a "
            "multiple of 8), or pick world_size x num_workers dividing the shard count."
        )
        return " ".join(lines)


def shard_plan(num_shards: int, world_size: int = 1, num_workers: int = 0) -> ShardPlan:
    """The shard-count rule, for a split of ``num_shards`` files.

    ``datasets.distributed.split_dataset_by_node`` gives each rank whole shards when
    ``num_shards % world_size == 0`` (otherwise each rank reads everything and keeps every
    ``world_size``-th row), and a ``DataLoader`` with ``num_workers`` gives each worker whole
    shards of its rank's share (workers beyond that share sit idle). So the shard count of
    each split should be a multiple of ``world_size x num_workers`` for the setups you use;
    the export rounds shard counts above 1 up to a multiple of 8, which serves 1, 2, 4 and 8
    GPUs x 1 worker, 2 GPUs x 4 workers, 4 x 2 and so on. A config's split holds
    (partitions x shards) files, a multiple of the part's shard count.
    """
    for name, value, low in (
        ("num_shards", num_shards, 1),
        ("world_size", world_size, 1),
        ("num_workers", num_workers, 0),
    ):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    by_shard = num_shards % world_size == 0
    per_rank = num_shards / world_size if by_shard else num_shards
    workers = max(1, num_workers)
    idle = max(0, workers - int(per_rank)) if by_shard else max(0, workers - num_shards)
    return ShardPlan(
        num_shards=num_shards,
        world_size=world_size,
        num_workers=num_workers,
        by_shard=by_shard,
        shards_per_reader=per_rank / workers,
        idle_workers=idle,
    )
