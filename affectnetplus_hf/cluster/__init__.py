"""Run an AffectNet+ export through Ray Data, on one machine or a cluster (install the ``ray`` extra:
``pip install "affectnetplus-hf[ray]"``).

``import affectnetplus_hf`` never imports this package; importing it imports ``ray``.

:func:`read_export`   an export (local folder, Hub repo or URL) -> ``ray.data.Dataset``, read by
                      ``ray.data.read_parquet`` from the export's own shards: the columns of
                      :data:`~affectnetplus_hf.core.schema.FEATURES`, the images as JPEG bytes
:class:`DecodeBatch`  a ``map_batches`` function: JPEG bytes -> the uint8 ``N x 3 x H x W`` images
                      and annotation arrays of :func:`~affectnetplus_hf.torch.make_loader`
                      (its collator's decoding; needs the ``torch`` extra)

A batch-inference job::

    import ray
    from affectnetplus_hf.cluster import DecodeBatch, read_export

    ray.init()                                              # or ray.init("ray://head:10001")
    ds = read_export("./affectnet_plus", "unlabeled", columns=["image_id", "image"])
    ds = ds.map_batches(DecodeBatch(size=224), batch_format="pyarrow", batch_size=256)
    ds = ds.map_batches(Scorer, concurrency=8, num_gpus=1, batch_size=256)   # your model, in actors
    ds.write_parquet("predictions/")

docs/ray.md has the whole recipe, the join back onto the export, and how the work is split.
"""

from __future__ import annotations

try:
    import ray.data  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'affectnetplus_hf.cluster needs Ray Data: install the extra with `pip install "affectnetplus-hf[ray]"`'
    ) from exc

from .decode import DecodeBatch
from .read import export_shards, read_export

__all__ = ["DecodeBatch", "export_shards", "read_export"]
