"""Shared fixtures: synthetic releases and an isolated Hugging Face cache per test.

``datasets`` and ``huggingface_hub`` read their cache locations when imported, so the
session-wide ``HF_HOME`` is set here before anything imports them, and ``hf_cache``
re-points the module constants at a fresh folder for each test that asks for it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_HOME = tempfile.mkdtemp(prefix="affectnetplus-tests-hf-")
os.environ["HF_HOME"] = _SESSION_HOME
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HF_ENDPOINT", None)
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

# Fixtures of the Hub-compatible test server (hub, exported, pushed, session_export), for every test module.
pytest_plugins = ["tests.support.hub_fixtures"]

from affectnetplus_hf.release.sample import FAULTS, SampleManifest, write_sample  # noqa: E402

ALL_FAULTS = list(FAULTS)


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty Hugging Face cache for this test (datasets and hub constants re-pointed)."""
    import datasets.config as dconfig
    import huggingface_hub.constants as hconst

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(dconfig, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(dconfig, "HF_MODULES_CACHE", home / "modules")
    monkeypatch.setattr(dconfig, "DOWNLOADED_DATASETS_PATH", home / "datasets" / "downloads")
    monkeypatch.setattr(dconfig, "EXTRACTED_DATASETS_PATH", home / "datasets" / "downloads" / "extracted")
    monkeypatch.setattr(hconst, "HF_HUB_CACHE", str(home / "hub"))
    return home


@pytest.fixture
def make_release(tmp_path):
    """Factory: ``make_release(n=12, faults=..., layout=..., parts=...)`` -> SampleManifest."""
    counter = {"n": 0}

    def _make(**kwargs) -> SampleManifest:
        counter["n"] += 1
        root = tmp_path / f"release{counter['n']}" / "AffectNet+"
        kwargs.setdefault("n", 12)
        return write_sample(root, **kwargs)

    return _make


@pytest.fixture
def release(make_release) -> SampleManifest:
    """A clean 12-records-per-part synthetic release in the real layout."""
    return make_release()
