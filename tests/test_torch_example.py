"""examples/train.py trains end to end on the synthetic sample (a short run)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def test_train_example_runs_and_reports(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train.py"), "--steps", "40", "--n", "44", "--log-every", "20", "--size", "48"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    losses = [float(v) for v in re.findall(r"step +\d+ +loss ([0-9.]+)", out)]
    assert len(losses) == 2 and all(0 < v < 20 for v in losses)
    for line in ("overall", "easy", "challenging", "difficult", "gender", "race", "valence", "arousal"):
        assert re.search(rf"^\s+{line}\b", out, re.M), f"no {line} line in:\n{out}"


def test_import_without_torch_says_how_to_install():
    code = "import sys; sys.modules['torch'] = None\ntry:\n import affectnetplus_hf.torch\nexcept ImportError as e:\n print(e)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert "affectnetplus-hf[torch]" in out
