"""Every ```python block under README.md's "## Recipes" runs, in order, on the built-in sample.

The blocks share one namespace (as in a notebook: the first defines the data and helpers)
and run in a fresh interpreter whose working directory holds an export of the synthetic
sample as ``affectnet_plus``, where the recipes expect the user's export.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.torch_support import exported  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

_RUNNER = """
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__recipes__"}
for title, code in blocks:
    print(f"=== {title}", flush=True)
    exec(compile(code, f"README recipe: {title}", "exec"), namespace)
print("=== all recipes ran", flush=True)
"""


def recipe_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Recipes\n", 1)[1].split("\n## ", 1)[0]
    blocks, title = [], "setup"
    for match in re.finditer(r"^### ([^\n]+)$|^```python\n(.*?)^```$", section, re.M | re.S):
        if match.group(1):
            title = match.group(1).strip()
        else:
            blocks.append((title, match.group(2)))
    return blocks


def test_the_recipes_section_has_every_promised_recipe():
    titles = {title for title, _ in recipe_blocks()}
    for wanted in ("setup", "The 8-class and 7-class AffectNet protocols", "Soft-label training", "Multi-task training",
                   "A fairness study", "Resuming after preemption"):
        assert wanted in titles, f"README Recipes has no {wanted!r} block"


def test_every_recipe_runs_on_the_sample(tmp_path):
    exported(tmp_path, n=48)  # writes tmp_path/affectnet_plus
    blocks = tmp_path / "blocks.json"
    blocks.write_text(json.dumps(recipe_blocks()))
    runner = tmp_path / "run_recipes.py"
    runner.write_text(_RUNNER)
    result = subprocess.run(
        [sys.executable, str(runner), str(blocks)], capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "HF_DATASETS_CACHE": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-4000:]}"
    out = result.stdout
    assert "=== all recipes ran" in out
    assert re.search(r"^8 classes: \{'n': \d+", out, re.M) and re.search(r"^7 classes: \{'n': \d+", out, re.M)
    assert "resampled by race" in out and "equalized odds difference" in out
    assert re.search(r"resumed after 4 batches; the next 5 are those of the uninterrupted run", out)
