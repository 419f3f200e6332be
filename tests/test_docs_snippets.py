"""Every code block of the docs that a user would paste runs, on the CPU, from its place in the docs.

Pages: ``README.md``, ``CONTRIBUTING.md`` and every ``docs/**/*.md``. Blocks fenced as
```` ```python ```` or ```` ```bash ```` run; every other fence must name what it holds
(```` ```text ````, ```` ```json ````, ...) and is not run, so nothing pasteable escapes by
leaving the language out. An HTML comment on the line right above a fence changes that:

``<!-- no-run: WHY -->``
    the block is not run (it installs packages, runs the test suite itself, or needs a GPU or
    the real Hub). Use it sparingly: say why.
``<!-- continues: WHY -->``
    a python block that runs in the namespace the page's earlier python blocks left (the
    recipes build on one setup block). Every other python block starts from an empty
    namespace, so it must import what it uses.

Each page runs in order, in one fresh interpreter (the blocks of one page share the working
folder), inside a fresh folder that holds what the docs assume a user has:

* ``AffectNet+/``: a clean synthetic release; the docs' ``/data/AffectNet+`` means it;
* ``affectnet_plus/``: its export;
* ``affectnet_8labels/``, ``affectnet_2017/``: exports of synthetic original releases (the
  8-label npy release and the 2017 CSV release);
* ``examples/``, ``benchmarks/``: the checkout's folders;
* a Hub-compatible test server (``tests/support/hub_server.py``) as ``HF_ENDPOINT``, with its write
  token in ``HF_TOKEN``; on a page that names ``my-lab/affectnet_plus`` the export is pushed
  there first;
* ``https://data.my-lab.org``: a static server with HTTP Range over that folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.hub_server import TOKEN_WRITE, RangeFileServer, running_hub

ROOT = Path(__file__).resolve().parents[1]
RELEASE_PLACEHOLDER = "/data/AffectNet+"
WEB_PLACEHOLDER = "https://data.my-lab.org"
REPO_ID = "my-lab/affectnet_plus"
RUN_LANGUAGES = {"python": "python", "bash": "bash"}
SAMPLE_RECORDS = 48  # per part: the recipes' class-balanced draws need a few rows of every class

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>```+)(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$", re.M | re.S
)
_MARKER = re.compile(r"<!--\s*(no-run|continues)\s*:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    page: str
    line: int  # of the first line of code, 1-based
    language: str
    code: str
    marker: str | None
    reason: str


def pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks_of(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        indent = match.group("indent")
        body = "".join(
            line[len(indent) :] if line.startswith(indent) else line for line in match.group("body").splitlines(True)
        )
        found.append(
            Block(
                page=str(path.relative_to(ROOT)),
                line=text.count("\n", 0, match.start("body")) + 1,
                language=match.group("info").strip().split(" ")[0],
                code=body,
                marker=marker.group(1) if marker else None,
                reason=marker.group(2) if marker else "",
            )
        )
    return found


def runnable(path: Path) -> list[Block]:
    return [b for b in blocks_of(path) if b.language in RUN_LANGUAGES and b.marker != "no-run"]


# ----------------------------------------------------------------------------- the rules


def test_every_fence_names_its_language():
    bare = [f"{b.page}:{b.line}" for p in pages() for b in blocks_of(p) if not b.language]
    assert not bare, f"fences without a language (```python / ```bash run; ```text, ```json ... do not): {bare}"


def test_markers_say_why_and_sit_on_blocks_they_apply_to():
    for path in pages():
        for block in blocks_of(path):
            where = f"{block.page}:{block.line}"
            if block.marker:
                assert block.reason, f"{where}: <!-- {block.marker}: WHY --> needs its reason"
                assert block.language in RUN_LANGUAGES, (
                    f"{where}: a {block.marker} marker on a ```{block.language} block"
                )
            if block.marker == "continues":
                assert block.language == "python", f"{where}: only python blocks continue a namespace"
        markers = re.findall(r"^[ \t]*<!--\s*(?:no-run|continues)\b", path.read_text(encoding="utf-8"), re.M)
        assert len(markers) == sum(1 for b in blocks_of(path) if b.marker), (
            f"{path.relative_to(ROOT)}: a no-run/continues marker that is not right above a fence"
        )


def test_load_dataset_is_given_a_path_or_repo_id_never_a_bare_name():
    """``load_dataset("affectnet_plus")`` run from another folder quietly serves whatever
    ``datasets`` cached under that name (an older export): the docs' code blocks, the card
    and the package's docstrings always write a path (./name) or a repo id (owner/name).
    (The docs' prose may quote the bare call to say why not.)"""
    call = re.compile(r"""load_dataset\(\s*(["'])([^"']*)\1""")
    package = ROOT / "affectnetplus_hf"
    card_templates = [*ROOT.glob("dataset_card/*.md"), *package.rglob("*.template.md")]
    assert card_templates, "the dataset card's template moved: point this test at it"
    code = [(b.page, b.code) for p in pages() for b in blocks_of(p)]
    code += [
        (str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"))
        for p in [*card_templates, *sorted(package.rglob("*.py"))]
    ]
    bare = [
        f"{where}: load_dataset({match.group(1)}{match.group(2)}{match.group(1)}"
        for where, text in code
        for match in call.finditer(text)
        if "/" not in match.group(2) and match.group(2) not in ("parquet", "json", "csv", "<repo id>")
    ]
    assert not bare, bare


def test_the_recipes_page_has_every_promised_recipe():
    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    for wanted in (
        "The 8-class and 7-class AffectNet protocols",
        "Soft-label training",
        "Multi-task training",
        "A fairness study",
        "Resuming after preemption",
        "Train on AffectNet+, evaluate on AffectNet-8 validation from an original release",
    ):
        assert f"\n### {wanted}\n" in text, f"docs/recipes.md has no {wanted!r} recipe"


# ----------------------------------------------------------------------------- running them

_RUNNER = r"""
import json, os, subprocess, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {}
for block in blocks:
    where = f"{block['page']}:{block['line']}"
    print(f"=== {where} ({block['language']})", flush=True)
    if block["language"] == "bash":
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block["code"]])
        if proc.returncode:
            sys.exit(f"FAILED {where}: the bash block exited {proc.returncode}")
        continue
    if block["marker"] != "continues":
        namespace = {"__name__": "__main__"}
    # pad with newlines so that a traceback names the line of the .md file
    code = compile("\n" * (block["line"] - 1) + block["code"], block["page"], "exec")
    try:
        exec(code, namespace)
    except BaseException:
        traceback.print_exc()
        sys.exit(f"FAILED {where}")
print("=== every block ran", flush=True)
"""

#: What some pages must print (beyond running without error).
EXPECTED_OUTPUT = {
    "docs/recipes.md": [
        r"^8 classes: \{'n': \d+",
        r"^7 classes: \{'n': \d+",
        r"resampled by race",
        r"equalized odds difference",
        r"resumed after 4 batches; the next 5 are those of the uninterrupted run",
        r"(^\{'protocol': 'AffectNet-8', 'n': \d+, 'accuracy': .*\n){2}",  # the 8-label and the 2017 validation
    ],
    "docs/export.md": [r"records read \d+ = written \d+ \+ reported bad 0"],
    "docs/ray.md": [
        r"^\d+ unlabeled images$",
        r"^\(4, 3, 64, 64\) uint8$",
        r"^joined (\d+) of \1 images: 0 lost, 0 duplicated$",
    ],
}


@pytest.fixture(scope="session")
def sample_world(tmp_path_factory) -> Path:
    """A clean synthetic release and its export, and exports of the original releases, made
    once; each page gets a copy."""
    from affectnetplus_hf.exporter.writer import export
    from affectnetplus_hf.release.sample import write_sample
    from affectnetplus_hf.release.sample_original import write_sample_8labels, write_sample_2017

    world = tmp_path_factory.mktemp("docs-world")
    write_sample(world / "AffectNet+", n=SAMPLE_RECORDS)
    export(world / "AffectNet+", world / "affectnet_plus", progress=False, card_plots=False)
    originals = tmp_path_factory.mktemp("docs-originals")
    for name, write in (("affectnet_8labels", write_sample_8labels), ("affectnet_2017", write_sample_2017)):
        export(write(originals / name, n=16).root, world / name, progress=False, card_plots=False)
    return world


#: Pages whose blocks run without the slow mark: the recipes (the most code) and the README.
#: The other pages start many commands, 20-90 s each on 2 cores; CI runs them all.
QUICK_PAGES = {"docs/recipes.md", "README.md"}


def _pages_with_blocks() -> list:
    return [
        pytest.param(page, marks=() if page in QUICK_PAGES else pytest.mark.slow, id=page)
        for page in (str(p.relative_to(ROOT)) for p in pages() if runnable(p))
    ]


@pytest.mark.parametrize("page", _pages_with_blocks())
def test_every_block_of_the_page_runs(page, sample_world, tmp_path):
    path = ROOT / page
    text = path.read_text(encoding="utf-8")
    if "import torch" in text or "affectnetplus_hf.torch" in text or "examples/train.py" in text:
        pytest.importorskip("torch")
    if "import ray" in text or "affectnetplus_hf.cluster" in text:
        pytest.importorskip("ray")
    work = tmp_path / "work"
    shutil.copytree(sample_world, work, symlinks=True)
    for folder in ("examples", "benchmarks"):
        (work / folder).symlink_to(ROOT / folder, target_is_directory=True)
    bin_dir = str(Path(sys.executable).parent)
    with running_hub(tmp_path / "hub") as hub, RangeFileServer(work) as web:
        env = {
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "HF_HOME": str(tmp_path / "hf_home"),
            "HF_ENDPOINT": hub.url,
            "HF_TOKEN": TOKEN_WRITE,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
            "MPLBACKEND": "Agg",
        }
        env.pop("HF_HUB_OFFLINE", None)
        if REPO_ID in text:
            pushed = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"from affectnetplus_hf import push; push('affectnet_plus', {REPO_ID!r}, progress=False)",
                ],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert pushed.returncode == 0, pushed.stderr[-3000:]
        blocks = [
            {
                **b.__dict__,
                "code": b.code.replace(RELEASE_PLACEHOLDER, str(work / "AffectNet+")).replace(WEB_PLACEHOLDER, web.url),
            }
            for b in runnable(path)
        ]
        (tmp_path / "blocks.json").write_text(json.dumps(blocks))
        (tmp_path / "run_blocks.py").write_text(_RUNNER)
        result = subprocess.run(
            [sys.executable, str(tmp_path / "run_blocks.py"), str(tmp_path / "blocks.json")],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=work,
            env=env,
        )
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    assert "=== every block ran" in result.stdout
    for pattern in EXPECTED_OUTPUT.get(page, []):
        assert re.search(pattern, result.stdout, re.M), (
            f"{page}: no output matching {pattern!r}\n{result.stdout[-3000:]}"
        )
