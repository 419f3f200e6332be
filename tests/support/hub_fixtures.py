"""Fixtures shared by the Hub, streaming and distributed tests (import them into a test module).

``hub``       a started :class:`hub_server.HubServer`, clients pointed at it, ``HF_TOKEN`` set to
              its write token, the login cache moved to an empty temp folder.
``exported``  a folder written by :func:`affectnetplus_hf.exporter.writer.export` from a synthetic
              release (12 records per part, 2 shards per part), built once per session.
``pushed``    ``(hub, repo_id, export_dir)`` after pushing ``exported`` to the ``hub``.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from .hub_server import TOKEN_WRITE, hub_fixture

REPO_ID = "my-lab/affectnet_plus"
NUM_SHARDS = 2


@pytest.fixture
def hub(tmp_path, monkeypatch, hf_cache):
    yield from hub_fixture(tmp_path, monkeypatch)


def make_export(
    root: Path, *, n: int = 12, seed: int = 0, num_shards: int = NUM_SHARDS, card_plots: bool = True
) -> Path:
    """Export a synthetic release of ``n`` records per part into ``root / 'affectnet_plus'``."""
    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.release.sample import write_sample

    raw = write_sample(root / "raw" / "AffectNet+", n=n, seed=seed)
    out = root / "affectnet_plus"
    export(raw.root, out, num_shards=num_shards, progress=False, card_plots=card_plots)
    return out


@pytest.fixture(scope="session")
def session_export(tmp_path_factory) -> Path:
    return make_export(tmp_path_factory.mktemp("export"))


@pytest.fixture
def exported(session_export, tmp_path) -> Path:
    """A private copy of the session's export (tests may change it)."""
    out = tmp_path / "affectnet_plus"
    shutil.copytree(session_export, out)
    return out


@pytest.fixture
def pushed(hub, exported):
    from affectnetplus_hf.hub.publish import push

    push(exported, REPO_ID, progress=False, echo=None)
    return hub, REPO_ID, exported


def row_key(row: dict) -> tuple:
    """A hashable identity of a row: image id, JPEG sha256 and every annotation value."""
    image = row["image"]
    data = image["bytes"] if isinstance(image, dict) else None
    if data is None and hasattr(image, "tobytes"):
        raise AssertionError("rows must be read with the image column undecoded (decode=False)")
    return (row["image_id"], hashlib.sha256(data).hexdigest(), repr({k: v for k, v in row.items() if k != "image"}))


__all__ = [
    "REPO_ID",
    "NUM_SHARDS",
    "TOKEN_WRITE",
    "exported",
    "hub",
    "make_export",
    "pushed",
    "row_key",
    "session_export",
]
