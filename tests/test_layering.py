"""The package's shape: folders by stage, and every import arrow pointing down the pipeline.

The stages, from the lowest: ``core`` <- ``release`` <- ``stats`` <- ``exporter`` <- ``hub`` <- the
package face (``cli``, ``__main__``, ``__init__``). ``torch`` reads exports through ``datasets``
and may import ``core`` alone. ``cluster`` (Ray Data) sits beside the face, on top of the rest: it
reads exports with ``hub.remote`` and decodes with ``torch``'s collator, so it may import ``core``,
``hub`` (and what lies below it) and ``torch``, and nothing imports it (the face would import ray).
``errors`` and ``_version`` are leaves every module may import.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_package import PACKAGE, _import_graph

STAGES = ("core", "release", "stats", "exporter", "hub")
FACE = {"affectnetplus_hf", "affectnetplus_hf.cli", "affectnetplus_hf.__main__"}
LEAVES = {"affectnetplus_hf.errors", "affectnetplus_hf._version"}
TOP_MODULES_AT_MOST = 7
#: Optional stages beside the pipeline, each with the stages it may import. Nothing in the pipeline
#: imports them; the face may import ``torch``, never ``cluster`` (``import affectnetplus_hf`` would import ray).
SIDE = {"torch": {"core"}, "cluster": {*STAGES, "torch"}}


def _stage(module: str) -> str:
    """The stage a module belongs to: a subpackage name, 'face', or 'leaf'. Every ``__main__``
    (``python -m affectnetplus_hf.stats``) is a command's entry point, so part of the face."""
    if module in LEAVES:
        return "leaf"
    if module in FACE or module.endswith(".__main__"):
        return "face"
    parts = module.split(".")
    assert len(parts) >= 2 and parts[1] in (*STAGES, *SIDE), f"{module} sits outside every stage"
    return parts[1]


def _rank(stage: str) -> int:
    return {"leaf": -1, **{s: i for i, s in enumerate(STAGES)}, "face": len(STAGES)}[stage]


def test_every_module_sits_in_a_stage_and_few_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= TOP_MODULES_AT_MOST, top
    assert set(top) <= {"__init__.py", "__main__.py", "cli.py", "errors.py", "_version.py"}, top
    for sub in (*STAGES, *SIDE):
        assert (PACKAGE / sub / "__init__.py").is_file(), sub
    for module in _import_graph():
        _stage(module)  # raises for a module outside every stage


def test_no_module_imports_a_higher_stage_and_torch_only_core():
    wrong = []
    for module, targets in _import_graph().items():
        here = _stage(module)
        for target in targets:
            there = _stage(target)
            if here == there or there == "leaf":
                continue
            if here in SIDE or there in SIDE:
                ok = (here in SIDE and there in SIDE[here]) or (here == "face" and there == "torch")
            else:
                ok = _rank(there) < _rank(here)
            if not ok:
                wrong.append(f"{module} ({here}) imports {target} ({there})")
    assert wrong == []


def test_leaves_import_nothing_of_the_package():
    graph = _import_graph()
    for leaf in LEAVES:
        assert graph[leaf] == set(), leaf


def test_the_layering_check_sees_a_wrong_arrow(tmp_path, monkeypatch):
    """The check itself: a core module importing the exporter is caught."""
    import tests.test_package as tp

    fake = tmp_path / "affectnetplus_hf"
    for sub in ("core", "exporter"):
        (fake / sub).mkdir(parents=True)
        (fake / sub / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "core" / "a.py").write_text("from ..exporter import b\n")
    (fake / "exporter" / "b.py").write_text("")
    monkeypatch.setattr(tp, "PACKAGE", fake)
    monkeypatch.setattr(tp, "ROOT", tmp_path)
    graph = tp._import_graph()
    assert "affectnetplus_hf.exporter.b" in graph["affectnetplus_hf.core.a"]
    assert _rank(_stage("affectnetplus_hf.exporter.b")) > _rank(_stage("affectnetplus_hf.core.a"))


def test_no_public_function_shares_a_name_with_a_module():
    """``from affectnetplus_hf import export`` must hand back the function, whatever was imported before."""
    import importlib

    import affectnetplus_hf

    modules = {p.stem for p in PACKAGE.rglob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    for name in affectnetplus_hf.__all__:
        assert name not in modules, name
    importlib.import_module("affectnetplus_hf.exporter.writer")
    from affectnetplus_hf import export, push

    assert callable(export) and callable(push)
    assert Path(__file__).parent.name == "tests"
