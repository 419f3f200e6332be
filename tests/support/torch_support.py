"""Shared data for the ``test_torch_*`` tests: small synthetic datasets, as users get them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from affectnetplus_hf.core.schema import FEATURES
from affectnetplus_hf.release.layout import find_release, list_records
from affectnetplus_hf.release.reader import iter_rows
from affectnetplus_hf.release.sample import write_sample

#: Faults that keep the record but null some values (see affectnetplus_hf.release.sample.FAULTS).
NULL_FAULTS = ["null_numbers", "missing_pose", "sentinel"]


def sample_rows(root: Path, n: int = 12, part: str = "train", faults: list[str] | None = None) -> list[dict]:
    """Rows (reader output) of one part of a fresh synthetic release under ``root``."""
    write_sample(root, n=n, parts=(part,), faults={part: faults or []})
    records, _ = list_records(find_release(root).parts[part])
    return [result.row for result in iter_rows(records) if result.row is not None]


def rows_dataset(root: Path, n: int = 12, part: str = "train", faults: list[str] | None = None):
    """A ``datasets.Dataset`` of exactly FEATURES with images as undecoded bytes."""
    import datasets

    rows = sample_rows(root, n=n, part=part, faults=faults)
    return datasets.Dataset.from_list(rows, features=FEATURES).cast_column("image", datasets.Image(decode=False))


def exported(root: Path, n: int = 12, faults: dict | None = None) -> Path:
    """A release of ``n`` records per part exported with the package's ``export``."""
    from affectnetplus_hf.exporter.writer import export

    raw = root / "raw"
    write_sample(raw, n=n, faults=faults or {})
    out = root / "affectnet_plus"
    export(raw, out, progress=False, card_plots=False)
    return out


def jpeg(array: np.ndarray, quality: int = 95) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def pil_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.array(image.convert("RGB"))
