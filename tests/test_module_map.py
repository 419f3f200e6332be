"""The architecture page's module map is the package's own: every module in it exists, and every
module of the package is in it, so the map cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "affectnetplus_hf"
PAGE = ROOT / "docs" / "architecture.md"


def _map_block() -> str:
    text = PAGE.read_text()
    section = text.split("## Module map", 1)[1]
    return re.search(r"```text\n(.*?)```", section, re.S).group(1)


def _mapped_paths(block: str) -> set[str]:
    """Paths named by the tree: indentation (2 spaces a level) nests names under folders."""
    paths: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        names = re.findall(r"(?:^|(?<=[\s,]))([\w.]+(?:\.py|/))(?=[\s,]|$)", line.strip().split("  ")[0])
        if not names:
            continue  # a continued description
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = "/".join(name.rstrip("/") for _, name in stack)
        for name in names:
            paths.add(f"{parent}/{name}".lstrip("/"))
        if len(names) == 1 and names[0].endswith("/"):
            stack.append((indent, names[0]))
    return paths


def _package_paths() -> set[str]:
    paths = {f"{PACKAGE.name}/"}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if path.name == "__init__.py" and path.parent != PACKAGE:
            paths.add(path.parent.relative_to(ROOT).as_posix() + "/")
        else:
            paths.add(rel)
    for folder in PACKAGE.rglob("*"):
        if folder.is_dir() and folder.name != "__pycache__" and not (folder / "__init__.py").exists():
            paths.add(folder.relative_to(ROOT).as_posix() + "/")
    return paths


def test_the_module_map_names_every_module_and_nothing_else():
    mapped = _mapped_paths(_map_block())
    actual = _package_paths()
    assert sorted(actual - mapped) == [], "modules missing from docs/architecture.md's module map"
    assert sorted(mapped - actual) == [], "the module map names modules that do not exist"


def test_the_map_reader_sees_nesting():
    block = "pkg/\n  a.py   one\n  sub/   two\n    b.py, c.py   three\n  d.py\n"
    assert _mapped_paths(block) == {"pkg/", "pkg/a.py", "pkg/sub/", "pkg/sub/b.py", "pkg/sub/c.py", "pkg/d.py"}
