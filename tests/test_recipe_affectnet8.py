"""The docs recipe "Train on AffectNet+, evaluate on AffectNet-8 validation" (docs/recipes.md)
runs as written on synthetic AffectNet+, 8-label and 2017 exports and prints the three protocol
metrics for both. (tests/test_docs_snippets.py runs it too, with the rest of the page; this
test checks what it prints and warns.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.support.torch_support import exported  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HEADING = "Train on AffectNet+, evaluate on AffectNet-8 validation from an original release"


def test_recipe_trains_on_affectnetplus_and_scores_affectnet8(tmp_path):
    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.release.sample_original import write_sample_8labels, write_sample_2017

    exported(tmp_path, n=24)
    export(
        write_sample_8labels(tmp_path / "raw8", n=16).root,
        tmp_path / "affectnet_8labels",
        progress=False,
        card_plots=False,
    )
    export(
        write_sample_2017(tmp_path / "raw17", n=16).root, tmp_path / "affectnet_2017", progress=False, card_plots=False
    )
    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    section = text.split(f"\n### {HEADING}\n", 1)[1]
    code = re.search(r"^```python\n(.*?)^```$", section, re.M | re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2
    for line in lines:
        assert "'protocol': 'AffectNet-8'" in line
        for metric in ("accuracy", "mean_class_accuracy", "macro_f1"):
            assert re.search(rf"'{metric}': [0-9.]+", line), (metric, line)
    assert "ProtocolCountWarning" in result.stderr  # synthetic sets are not the published 500 per class
