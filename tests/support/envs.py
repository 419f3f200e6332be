"""Second virtual environments for the slow tests, built once and kept in a cache folder.

TEST INFRASTRUCTURE ONLY. Two tests use it: ``tests/test_loading_script.py`` (``datasets``
3.6 for the loading script) and ``tests/test_floors.py`` (every declared floor).

:func:`cached_venv` keeps each environment in ``~/.cache/affectnetplus-hf/<name>-<key>``
(``AFFECTNETPLUS_COMPAT_CACHE`` moves the parent folder, ``XDG_CACHE_HOME`` is honoured);
``<key>`` hashes the Python version, the platform and the requirement list, so a changed
floor or a new Python gets a new folder. A folder is rebuilt only when its health check
fails (missing, half-built, broken); a lock file keeps two runs from building it at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    base = os.environ.get("AFFECTNETPLUS_COMPAT_CACHE")
    if base:
        return Path(base).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "affectnetplus-hf"


def read_pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from pip._vendor import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def clean_env(**extra: str) -> dict:
    """This process's environment without what would leak into the other Python (HF_*, PYTHON*, VIRTUAL_ENV)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONNOUSERSITE="1", **extra)
    return env


def run(cmd: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``cmd`` run to the end; an AssertionError with the command and its output tails when it fails."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-8000:]}"
        )
    return proc


@contextlib.contextmanager
def locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no concurrent runs to guard against
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_venv(
    name: str, requirements: list[str], health_check: str, install: Callable[[Path], None]
) -> tuple[Path, dict]:
    """``(python, versions)`` of the environment ``name`` for ``requirements``, built when missing or broken.

    ``install(python)`` fills a fresh venv; ``health_check`` is Python code run in it that
    exits non-zero when the environment is not what it should be and otherwise prints a JSON
    object (the versions), which is returned and kept in the folder's marker file.
    """
    key = hashlib.sha256(json.dumps([sys.version_info[:3], sys.platform, requirements]).encode()).hexdigest()[:12]
    venv = cache_root() / f"{name}-{key}"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    marker = venv / "affectnetplus-compat.json"
    with locked(venv.with_name(venv.name + ".lock")):
        if marker.is_file() and python.exists():
            check = subprocess.run(
                [str(python), "-c", health_check], capture_output=True, text=True, env=clean_env(), cwd=venv
            )
            if check.returncode == 0:
                return python, json.loads(check.stdout)
        shutil.rmtree(venv, ignore_errors=True)  # missing, half-built or broken: start again
        run([sys.executable, "-m", "venv", venv], timeout=300, env=clean_env())
        install(python)
        versions = json.loads(run([python, "-c", health_check], timeout=300, env=clean_env(), cwd=venv).stdout)
        marker.write_text(json.dumps({"requirements": requirements, "versions": versions}, indent=1))
        return python, versions
