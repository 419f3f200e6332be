"""The docs site builds strictly, and what the docs state about the code stays true.

``mkdocs build --strict`` fails on a broken link, a missing anchor, a page left out of the
nav, or an API page whose ``::: module`` no longer resolves. The other tests hold what a
build cannot see: the README stays a short front page, the command-line page lists every
command, option and exit code that ``cli.py`` defines, and every dotted name the docs
mention (``affectnetplus_hf.torch.make_loader``) still exists.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKDOWN = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", *sorted(DOCS.rglob("*.md"))]


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "torch" / "index.html").is_file()


def test_readme_is_a_short_front_page_with_the_fresh_machine_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    for command in ("bash scripts/demo.sh", "bash scripts/test.sh"):
        assert re.search(rf"^{re.escape(command)}\b", text, re.M), command
        assert (ROOT / command.split()[1]).is_file(), command
    assert "licensed" in text and "LICENSE" in text


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"])
def test_relative_links_of_the_root_pages_resolve(name):
    """GitHub shows these files; a link to a moved or renamed docs page must fail here."""
    text = (ROOT / name).read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        if not (ROOT / path).exists():
            broken.append(target)
        elif anchor and path.endswith(".md"):
            headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", (ROOT / path).read_text(encoding="utf-8"), re.M)}
            if anchor not in headings:
                broken.append(target)
    assert not broken, f"{name}: {broken}"


def _slug(heading: str) -> str:
    """The anchor mkdocs' toc extension (and GitHub) make of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return re.sub(r"[\s]+", "-", text)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from affectnetplus_hf.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_the_cli_page_documents_every_command_and_option():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    missing = []
    for name, parser in _subcommands().items():
        if name not in sections:
            missing.append(f"## {name}")
            continue
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            names = action.option_strings or [(action.metavar or action.dest).upper()]
            for option in names:
                if f"`{option}" not in sections[name]:
                    missing.append(f"{name} {option}")
    assert not missing, f"docs/cli.md lacks: {missing}"


def test_the_cli_page_lists_every_exit_code_of_cli_py():
    from affectnetplus_hf import cli

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    table = text.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.M)}
    defined = {value for name, value in vars(cli).items() if name.startswith("EXIT_") and isinstance(value, int)}
    assert documented == defined
    assert defined <= {int(code) for code in re.findall(r"^  (\d+)  ", cli.EXIT_STATUS_HELP, re.M)}


def test_the_docs_extra_is_part_of_the_test_extra():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {r.split(">")[0] for r in extras["docs"]} >= {"mkdocs", "mkdocs-material", "mkdocstrings[python]"}
    assert "docs" in extras["test"][0].split("[", 1)[1]


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_dotted_name_the_docs_mention_exists():
    """``affectnetplus_hf.x.y`` in prose, snippets and ``::: x.y`` lines names a module or an
    attribute that exists, so a rename cannot leave the docs pointing at nothing."""
    pytest.importorskip("torch")
    stale = sorted(
        {
            f"{path.relative_to(ROOT)}: {name}"
            for path in MARKDOWN
            for name in re.findall(r"\baffectnetplus_hf(?:\.[A-Za-z_]\w*)+", path.read_text(encoding="utf-8"))
            if not _resolves(name)
        }
    )
    assert not stale, stale
