"""Every floor ``pyproject.toml`` declares, tested; ``docs/compatibility.md`` kept in line with them.

The slow tests build (once, then reuse: :func:`tests.support.envs.cached_venv`) a virtual environment
with ``uv pip install --resolution lowest-direct`` over the package's direct dependencies and
the extras ``torch``, ``remote`` and ``stats``: each direct dependency at its floor, what they
pull in at the newest release that fits. Two pins replace a floor: ``torch`` is the main
environment's build (this machine has only the CPU build of 2.13.0 offline; a PyPI torch 2.1
is a multi-GB CUDA download), and ``pytest`` is the main environment's (a test tool, not a
floor). The core, export, Hub and torch tests (:data:`FLOOR_TESTS`) then run there, with the
package taken from this checkout through ``PYTHONPATH``.

The environment lives in ``~/.cache/affectnetplus-hf/floors-venv-<key>``, ``<key>`` hashing the
Python version and the requirement list, so a changed floor builds a new one.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.envs import ROOT, cached_venv, clean_env, read_pyproject, run

DOC = ROOT / "docs" / "compatibility.md"
#: The extras whose dependencies are floors too (``test`` holds test tools, not floors).
FLOOR_EXTRAS = ("torch", "remote", "stats")
#: Floors this machine cannot install, and why; the environment pins the main one's version instead.
NOT_TESTED = {"torch": "only torch 2.13.0+cpu is on this machine; PyPI's torch 2.1 is a multi-GB CUDA build"}
#: Pinned to the main environment's version: test tools, not floors.
SAME_AS_MAIN = ("pytest",)
#: The core, export, Hub and torch tests run at the floors (a few minutes on two cores).
FLOOR_TESTS = [
    "tests/test_reader.py",
    "tests/test_layout.py",
    "tests/test_columns.py",
    "tests/test_configs.py",
    "tests/test_builder.py",
    "tests/test_export.py",
    "tests/test_export_safety.py",
    "tests/test_export_layout.py",
    "tests/test_card.py",
    "tests/test_hub_push.py",
    "tests/test_streaming_hub.py",
    "tests/test_streaming_http.py",
    "tests/test_torch_loader.py",
    "tests/test_torch_collate.py",
]
#: Left out for time (about 40 s on two cores): the second way of stopping a push at every
#: commit (the first way, a failed commit, runs), and the hash-seed test (Python, not a dependency).
FLOOR_DESELECT = [
    "tests/test_hub_push.py::test_a_first_push_stopped_at_any_commit_is_never_loadable_as_a_subset[lost-response]",
    "tests/test_hub_push.py::test_a_repush_stopped_at_any_commit_serves_the_old_export_or_the_new_one[lost-response]",
    "tests/test_layout.py::test_export_bytes_do_not_depend_on_the_hash_seed",
]


# ----------------------------------------------------------------------------- what is declared


def direct_requirements() -> dict[str, tuple[str, Requirement]]:
    """canonical name -> (extra or "", requirement) for the dependencies and :data:`FLOOR_EXTRAS`."""
    project = read_pyproject()["project"]
    out = {canonicalize_name(Requirement(r).name): ("", Requirement(r)) for r in project["dependencies"]}
    for extra in FLOOR_EXTRAS:
        out.update(
            {
                canonicalize_name(Requirement(r).name): (extra, Requirement(r))
                for r in project["optional-dependencies"][extra]
            }
        )
    return out


def floor(requirement: Requirement) -> Version:
    """The version of the requirement's one ``>=`` bound: the floor."""
    bounds = [s for s in requirement.specifier if s.operator == ">="]
    assert len(bounds) == 1, f"pyproject.toml: {requirement} should have one '>=' floor"
    return Version(bounds[0].version)


def compatibility_table() -> dict[str, dict[str, str]]:
    """canonical name -> the cells of the row in ``docs/compatibility.md``'s table, by column title."""
    lines = [line.strip() for line in DOC.read_text(encoding="utf-8").splitlines() if line.strip().startswith("|")]
    cells = [[c.strip().strip("`").strip() for c in line.strip("|").split("|")] for line in lines]
    header, rows = cells[0], [row for row in cells[2:] if len(row) == len(cells[0])]
    assert header == ["Package", "Extra", "Floor", "Lowest tested", "Newest tested"], header
    return {canonicalize_name(row[0]): dict(zip(header, row, strict=False)) for row in rows}


def table_version(cell: str) -> Version:
    """The version a cell starts with (``2.13.0+cpu (floor not tested)`` -> 2.13.0+cpu)."""
    match = re.match(r"[0-9][0-9A-Za-z.+!-]*", cell)
    assert match, f"{DOC.name}: {cell!r} does not start with a version"
    return Version(match.group(0))


def test_the_compatibility_table_gives_each_floor_as_declared_and_tested():
    declared = direct_requirements()
    table = compatibility_table()
    assert sorted(table) == sorted(declared), (
        f"{DOC.name} lists {sorted(table)}, pyproject.toml declares {sorted(declared)}"
    )
    for name, (extra, requirement) in declared.items():
        row = table[name]
        assert row["Extra"] == extra, (name, row)
        assert row["Floor"] == str(requirement.specifier), (
            f"{DOC.name}: {name} floor {row['Floor']} != pyproject {requirement}"
        )
        lowest, newest = table_version(row["Lowest tested"]), table_version(row["Newest tested"])
        if name in NOT_TESTED:  # the row says so, and the floors environment has at least the floor
            assert lowest >= floor(requirement) and "floor not tested" in row["Lowest tested"], row
        else:
            assert lowest == floor(requirement), f"{DOC.name}: {name} lowest tested {lowest} != floor {requirement}"
        assert newest >= lowest, row
        # the main environment (the newest releases) satisfies what pyproject.toml declares
        assert requirement.specifier.contains(md.version(name), prereleases=True), (name, md.version(name))


# ----------------------------------------------------------------------------- the floors environment


def pip_find_links() -> list[str]:
    """The ``find-links`` pip is configured with (uv reads no pip configuration): where torch's CPU build lies."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    links: list[str] = []
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(".find-links"):
            links += [v for v in value.strip().strip("'\"").split() if v not in links]
    return links


def floors_requirements() -> list[str]:
    """What uv resolves: each floor as declared, torch and :data:`SAME_AS_MAIN` pinned to the main environment's."""
    requirements = []
    for name, (_, requirement) in direct_requirements().items():
        requirements.append(f"{name}=={md.version(name)}" if name in NOT_TESTED else str(requirement))
    return requirements + [f"{name}=={md.version(name)}" for name in SAME_AS_MAIN]


_HEALTH_CHECK = """
import importlib.metadata as md, importlib.util, json, sys
import datasets, huggingface_hub, pyarrow, PIL, numpy, fsspec, tqdm, yaml
import torch, simplejpeg, torchdata.stateful_dataloader, aiohttp, matplotlib, pytest
assert importlib.util.find_spec("affectnetplus_hf") is None, "the package comes from the checkout, never from here"
print(json.dumps({{"python": sys.version.split()[0], **{{n: md.version(n) for n in {names}}}}}))
"""


def ensure_floors_venv() -> tuple[Path, dict]:
    """``(python, versions)`` of the cached floors environment, built when missing or broken;
    ``versions``: canonical name -> installed version of each direct dependency and test tool."""
    requirements = floors_requirements()
    names = [canonicalize_name(Requirement(r).name) for r in requirements]

    def install(python: Path) -> None:
        links = [arg for link in pip_find_links() for arg in ("--find-links", link)]
        # --only-binary: a floor without a wheel for this Python is not installable in practice
        uv = [
            sys.executable,
            "-m",
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            python,
            "--resolution",
            "lowest-direct",
            "--only-binary",
            ":all:",
        ]
        run([*uv, *links, *requirements], timeout=1200, env=clean_env())

    return cached_venv("floors-venv", requirements, _HEALTH_CHECK.format(names=json.dumps(names)), install)


@pytest.fixture(scope="module")
def floors_env() -> tuple[Path, dict]:
    python, versions = ensure_floors_venv()
    print(f"floors environment: {python} {versions}")
    return python, versions


@pytest.mark.slow
def test_the_floors_environment_holds_the_lowest_tested_versions(floors_env):
    _, versions = floors_env
    table = compatibility_table()
    wrong = {
        name: (versions[name], row["Lowest tested"])
        for name, row in table.items()
        if Version(versions[name]) != table_version(row["Lowest tested"])
    }
    assert not wrong, f"installed at the floors vs {DOC.name}'s 'Lowest tested': {wrong}"


@pytest.mark.slow
def test_the_core_export_hub_and_torch_tests_pass_at_the_floors(floors_env, tmp_path):
    floors_python, _ = floors_env
    deselect = [arg for node in FLOOR_DESELECT for arg in ("--deselect", node)]
    cmd = [
        floors_python,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--basetemp={tmp_path / 'run'}",
        *deselect,
        *FLOOR_TESTS,
    ]
    proc = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
        env=clean_env(PYTHONPATH=str(ROOT)),
    )
    print(proc.stdout[-2000:])
    assert proc.returncode == 0, f"at the floors:\n{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
