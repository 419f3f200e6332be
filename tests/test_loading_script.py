"""The loading script for ``datasets`` < 4, checked against ``datasets`` 3.6 in a second environment.

The slow tests build (once, then reuse) a virtual environment with ``datasets==3.6.0``
and what pip resolves beside it, install the package into a per-run folder from this
checkout (a real, non-editable wheel install), and load the built-in sample there
through ``loading_script/affectnet_plus.py``; the rows and features it gives must be
those of the package's builder on the current ``datasets`` in this process. The two
environments exchange JSON files written by ``tests/support/loading_script_dump.py``.

The environment lives in ``~/.cache/affectnetplus-hf/compat-venv-datasets-3.6.0-<key>``
(``AFFECTNETPLUS_COMPAT_CACHE`` moves the parent folder), ``<key>`` hashing the
Python version and the requirement set; it is rebuilt only when missing or broken
(:func:`tests.support.envs.cached_venv`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from pathlib import Path

import datasets
import pytest

from affectnetplus_hf import FEATURES
from affectnetplus_hf.core.configs import CONFIG_NAMES
from affectnetplus_hf.release.sample import write_sample
from tests.support import loading_script_dump as dump
from tests.support.envs import ROOT, cached_venv, read_pyproject
from tests.support.envs import clean_env as _clean_env
from tests.support.envs import run as _run

SCRIPT = ROOT / "loading_script" / "affectnet_plus.py"
DUMP = Path(dump.__file__).resolve()

#: The old ``datasets`` under test and what is pinned beside it. CI uses ``datasets==3.6.0``;
#: ``AFFECTNETPLUS_COMPAT_REQUIREMENTS="datasets==2.14.7 pyarrow<20"`` checks another set.
OLD_REQUIREMENTS = os.environ.get("AFFECTNETPLUS_COMPAT_REQUIREMENTS", "datasets==3.6.0").split()
OLD_DATASETS = next(r.split("==", 1)[1] for r in OLD_REQUIREMENTS if r.startswith("datasets=="))
#: Faults that put nulls, odd number spellings and skipped records into the sample.
SAMPLE_FAULTS = {
    "train": ["truncated_jpeg", "bom_crlf", "null_numbers", "int_for_float", "missing_pose", "sentinel"],
    "validation": ["short_soft_label", "missing_landmark29", "string_numbers"],
    "unlabeled": ["missing_image"],
}


# ----------------------------------------------------------------------------- comparison


def compare_dumps(old: dict, new: dict, ordered: bool = True) -> list[str]:
    """Every difference between two dumps: ``old`` against the rows and features of ``new``.

    Features are compared as ``datasets.Features`` (3.x spells lists ``Sequence``, 4+
    ``List``) and as the Arrow schema; map-style rows exactly, value for value and in
    order (``ordered=False`` sorts both by image id: an export stores rows by subset).
    Streamed rows are compared as float32 and as plain lists: ``datasets`` 4+ streams a
    builder's values as yielded (python floats not rounded to float32, numpy arrays),
    where the Arrow cache rounds and converts.
    """
    problems: list[str] = []
    if sorted(old["configs"]) != sorted(new["configs"]):
        return [f"configs differ: {sorted(old['configs'])} != {sorted(new['configs'])}"]
    for config in sorted(new["configs"]):
        old_splits, new_splits = old["configs"][config], new["configs"][config]
        if sorted(old_splits) != sorted(new_splits):
            problems.append(f"{config}: splits {sorted(old_splits)} != {sorted(new_splits)}")
            continue
        for split in sorted(new_splits):
            a, b = old_splits[split], new_splits[split]
            where = f"{config}/{split}"
            for key in ("features", "streamed_features"):
                if a[key] is None or datasets.Features.from_dict(a[key]) != FEATURES:
                    problems.append(f"{where}: {key} are not FEATURES: {a[key]}")
            if datasets.Features.from_dict(b["features"]) != FEATURES:
                problems.append(f"{where}: the reference features are not FEATURES")
            if a["arrow_schema"] != b["arrow_schema"]:
                problems.extend(
                    f"{where}: Arrow field {x} != {y}"
                    for x, y in zip(a["arrow_schema"], b["arrow_schema"], strict=False)
                    if x != y
                )
                if len(a["arrow_schema"]) != len(b["arrow_schema"]):
                    problems.append(f"{where}: {len(a['arrow_schema'])} Arrow fields != {len(b['arrow_schema'])}")
            if a["column_types"] != b["column_types"]:
                problems.append(f"{where}: python types {a['column_types']} != {b['column_types']}")
            if a["num_rows"] != b["num_rows"]:
                problems.append(f"{where}: {a['num_rows']} rows != {b['num_rows']}")
            expected = b["rows"] if ordered else _by_id(b["rows"])
            rows = a["rows"] if ordered else _by_id(a["rows"])
            streamed = a["streamed_rows"] if ordered else _by_id(a["streamed_rows"])
            problems.extend(f"{where} rows: {p}" for p in _row_differences(rows, expected))
            problems.extend(
                f"{where} streamed_rows: {p}" for p in _row_differences(_float32(streamed), _float32(expected))
            )
    return problems


def _by_id(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: int(r["image_id"]))


def _float32(value):
    """``value`` with every float rounded to float32 (lists and dicts walked)."""
    if isinstance(value, float):
        return struct.unpack("f", struct.pack("f", value))[0]
    if isinstance(value, list):
        return [_float32(v) for v in value]
    if isinstance(value, dict):
        return {k: _float32(v) for k, v in value.items()}
    return value


def _row_differences(rows: list[dict], expected: list[dict]) -> list[str]:
    if [r["image_id"] for r in rows] != [r["image_id"] for r in expected]:
        return [f"image ids {[r['image_id'] for r in rows]} != {[r['image_id'] for r in expected]}"]
    out = []
    for row, want in zip(rows, expected, strict=False):
        if list(row) != list(want):
            out.append(f"image {want['image_id']}: columns {list(row)} != {list(want)}")
            continue
        out.extend(
            f"image {want['image_id']}: column {name}: {row[name]!r} != {want[name]!r}"
            for name in want
            if row[name] != want[name]
        )
    return out


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("raw") / "AffectNet+", n=12, faults=SAMPLE_FAULTS)


@pytest.fixture(scope="module")
def builder_dump(sample, tmp_path_factory) -> dict:
    """What the package's builder gives on the current ``datasets``, every config."""
    cache = tmp_path_factory.mktemp("builder_cache")
    result = {"datasets_version": datasets.__version__, "configs": {}}
    for config in CONFIG_NAMES:
        _, dataset, streamed = dump.load_builder(config, str(sample.root), str(cache))
        result["configs"][config] = dump.dump_dataset_dict(dataset, streamed)
    # The comparison must not be vacuous: every good record is there, nulls included.
    assert [r["image_id"] for r in result["configs"]["all"]["train"]["rows"]] == sample.good_ids("train")
    assert [r["image_id"] for r in result["configs"]["unlabeled"]["train"]["rows"]] == sample.good_ids("unlabeled")
    rows = [r for c in result["configs"].values() for s in c.values() for r in s["rows"]]
    for column in ("human_label", "valence", "age", "head_pose", "landmarks_29"):
        assert any(r[column] is None for r in rows), column
    return result


# ----------------------------------------------------------------------------- the old environment


def compat_requirements() -> list[str]:
    """``OLD_REQUIREMENTS``, the package's other dependencies and its build backend (no torch)."""
    project = read_pyproject()
    requirements = list(OLD_REQUIREMENTS)
    requirements += [r for r in project["project"]["dependencies"] if not r.lower().startswith("datasets")]
    requirements += project["build-system"]["requires"]  # hatchling: build the package offline per run
    return requirements


_HEALTH_CHECK = f"""
import importlib.metadata as md, importlib.util, json, sys
import datasets, fsspec, hatchling, huggingface_hub, numpy, PIL, pyarrow, tqdm, yaml
assert datasets.__version__ == {OLD_DATASETS!r}, datasets.__version__
assert importlib.util.find_spec("torch") is None, "torch must not be in the compat environment"
assert importlib.util.find_spec("affectnetplus_hf") is None, "the package is installed per run, never here"
names = ["datasets", "huggingface_hub", "pyarrow", "numpy", "fsspec", "pandas", "pillow", "dill", "multiprocess"]
print(json.dumps({{"python": sys.version.split()[0], **{{n: md.version(n) for n in names}}}}))
"""


def ensure_compat_venv() -> tuple[Path, dict]:
    """``(python, versions)`` of the cached ``datasets`` 3.6 environment, built when missing or broken."""
    requirements = compat_requirements()

    def install(python: Path) -> None:
        pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
        _run([*pip, *requirements], timeout=1200, env=_clean_env())

    return cached_venv(f"compat-venv-datasets-{OLD_DATASETS}", requirements, _HEALTH_CHECK, install)


@pytest.fixture(scope="module")
def compat_python() -> Path:
    python, versions = ensure_compat_venv()
    print(f"compat environment: {python} {versions}")
    return python


@pytest.fixture(scope="module")
def installed_package(compat_python, tmp_path_factory) -> Path:
    """This checkout, built as a wheel and installed (non-editable) into a folder for PYTHONPATH."""
    target = tmp_path_factory.mktemp("site")
    _run(
        [
            compat_python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            target,
            ROOT,
        ],
        timeout=300,
        env=_clean_env(),
    )
    package = target / "affectnetplus_hf"
    assert (package / "exporter" / "dataset_card" / "README.template.md").is_file(), "the wheel lost the card template"
    assert (package / "py.typed").is_file(), "the wheel lost py.typed (PEP 561 marker)"
    return target


def _old_env(tmp: Path, site: Path | None) -> dict:
    extra = {"HF_HOME": str(tmp / "hf_home"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    if site is not None:
        extra["PYTHONPATH"] = str(site)
    return _clean_env(**extra)


def _old_dump(compat_python, site, tmp: Path, *args) -> dict:
    out = tmp / "old.json"
    _run(
        [compat_python, DUMP, *args, "--cache-dir", tmp / "cache", "--out", out],
        timeout=600,
        env=_old_env(tmp, site),
        cwd=tmp,
    )
    return json.loads(out.read_text())


# ----------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_script_on_datasets_3_6_gives_the_builders_rows_and_features(
    compat_python, installed_package, sample, builder_dump, tmp_path
):
    old = _old_dump(
        compat_python, installed_package, tmp_path, "--source", "script", "--path", SCRIPT, "--data-dir", sample.root
    )
    assert old["datasets_version"] == OLD_DATASETS
    assert old["package_file"].startswith(str(installed_package)), old["package_file"]
    for config, info in old["builders"].items():
        # datasets picked the script's one class, and that class is the package's builder
        assert info["module_builder_classes"] == ["AffectNetPlus"]
        assert info["builder_class"][:2] == [info["builder_class"][0], "affectnetplus_hf.release.builder.AffectNetPlus"]
        assert info["builder_class"][0].endswith("affectnet_plus.AffectNetPlus")
        assert tuple(info["config_names"]) == (*CONFIG_NAMES, "automatic")  # and AffectNet 2017's automatic list
        assert datasets.Features.from_dict(info["info_features"]) == FEATURES, config
    problems = compare_dumps(old, builder_dump)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_export_from_current_datasets_loads_on_datasets_3_6(compat_python, sample, builder_dump, tmp_path):
    from affectnetplus_hf.exporter.writer import export

    out = tmp_path / "export" / "affectnet_plus"
    export(sample.root, out)
    # no package on the old side: an export folder needs no code
    old = _old_dump(compat_python, None, tmp_path, "--source", "export", "--path", out)
    assert old["datasets_version"] == OLD_DATASETS and old["package_file"] is None
    problems = compare_dumps(old, builder_dump, ordered=False)
    assert not problems, "\n".join(problems)


def _old_load_error(compat_python, site, tmp: Path, data_dir: str | None) -> tuple[str, str]:
    """``(exception class name, message)`` of ``load_dataset(script, "all", ...)`` in the old environment."""
    kwargs = f", data_dir={data_dir!r}" if data_dir else ""
    if tuple(map(int, OLD_DATASETS.split(".")[:2])) >= (2, 16):
        kwargs += ", trust_remote_code=True"
    code = (
        "import datasets, json\n"
        "try:\n"
        f"    datasets.load_dataset({str(SCRIPT)!r}, 'all'{kwargs})\n"
        "except Exception as e:\n"
        "    print(json.dumps([[c.__name__ for c in type(e).__mro__], str(e)]))\n"
        "else:\n"
        "    print(json.dumps([['no error'], '']))\n"
    )
    proc = _run([compat_python, "-c", code], timeout=300, env=_old_env(tmp, site), cwd=tmp)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_script_errors_on_old_datasets_say_what_to_do(compat_python, installed_package, sample, tmp_path):
    kinds, message = _old_load_error(compat_python, None, tmp_path, str(sample.root))
    assert kinds[0] == "ImportError", (kinds, message)
    assert "needs the affectnetplus-hf package" in message
    assert "pip install /path/to/affectnetplus-hf" in message
    # forgetting data_dir: the package's error and instructions, not datasets' own
    kinds, message = _old_load_error(compat_python, installed_package, tmp_path, None)
    assert kinds[0] == "ReleaseNotFoundError" and "FileNotFoundError" in kinds, (kinds, message)
    assert "Request access" in message and 'load_dataset("builder"' not in message


def test_script_on_datasets_4_points_to_the_builder_and_the_export(tmp_path):
    if int(datasets.__version__.split(".")[0]) < 4:
        pytest.skip("the main environment has datasets < 4")
    spec = importlib.util.spec_from_file_location("affectnet_plus_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(RuntimeError) as info:
        spec.loader.exec_module(module)
    message = str(info.value)
    assert f"datasets {datasets.__version__}" in message
    assert 'AffectNetPlus(config_name="all", data_dir=' in message
    assert "affectnetplus export" in message
    # what load_dataset itself answers before reading the file (the README says so)
    with pytest.raises(RuntimeError, match="Dataset scripts are no longer supported"):
        datasets.load_dataset(str(SCRIPT), data_dir=str(tmp_path))


def test_comparison_catches_a_changed_value_a_missing_row_and_a_changed_feature(builder_dump):
    assert compare_dumps(builder_dump, builder_dump) == []
    changed = json.loads(json.dumps(builder_dump))
    split = changed["configs"]["easy"]["validation"]
    split["rows"][0]["landmarks"][3][1] += 0.5
    split["streamed_rows"].pop()
    split["features"]["soft_label"].pop("length")
    problems = compare_dumps(changed, builder_dump)
    assert any("column landmarks" in p and "easy/validation rows" in p for p in problems), problems
    assert any("easy/validation streamed_rows: image ids" in p for p in problems), problems
    assert any("easy/validation: features are not FEATURES" in p for p in problems), problems
    assert len(problems) == 3, problems
