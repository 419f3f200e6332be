"""The package as a whole: one version, no import cycles, its licence and type marker."""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import affectnetplus_hf

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "affectnetplus_hf"


def test_version_comes_from_the_installed_metadata():
    assert affectnetplus_hf.__version__ == importlib.metadata.version("affectnetplus-hf")
    from affectnetplus_hf._version import __version__

    assert __version__ is affectnetplus_hf.__version__


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """module -> package modules it imports, at top level or inside functions alike."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
                targets = submodules or [target]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_no_two_modules_import_each_other_even_inside_functions():
    graph = _import_graph()
    assert graph["affectnetplus_hf.stats.compute"], "the graph should see the package's own imports"

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo += graph[node]
        return False

    cycles = sorted(f"{a} -> {b} -> ... -> {a}" for a in graph for b in graph[a] if reaches(b, a))
    assert cycles == []


def test_licence_and_type_marker_ship():
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    assert (PACKAGE / "py.typed").is_file()
    requires = importlib.metadata.requires("affectnetplus-hf") or []
    test_extra = {r.split(";")[0].strip() for r in requires if "extra == 'test'" in r}
    for other in ("torch", "stats", "remote", "ray"):  # the test extra holds every other extra
        wanted = {r.split(";")[0].strip() for r in requires if f"extra == '{other}'" in r}
        assert wanted <= test_extra, other
