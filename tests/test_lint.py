"""The field's habits, held by the suite so that CI holds them: ruff (lint and format) and mypy clean.

The settings live in pyproject.toml ([tool.ruff], [tool.mypy]); .pre-commit-config.yaml runs the
same commands before each commit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", "--no-cache", "."), ("ruff", "format", "--check", "--no-cache", ".")],
    ids=["lint", "format"],
)
def test_ruff_is_clean(command):
    pytest.importorskip("ruff", reason="the lint extra is not installed")
    done = _run(*command)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_reports_no_error_in_the_package():
    pytest.importorskip("mypy", reason="the lint extra is not installed")
    done = _run("mypy")  # [tool.mypy] names the package
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout


def test_pre_commit_runs_the_same_checks():
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    for command in ("ruff check", "ruff format", "mypy"):
        assert command in config, command
    assert shutil.which("git") is not None
