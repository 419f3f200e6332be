"""examples/train.py trains end to end on the synthetic sample (a short run)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def train(tmp_path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train.py"), "--n", "44", "--size", "48", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_train_example_runs_and_reports(tmp_path):
    out = train(tmp_path, "--steps", "40", "--log-every", "20")
    losses = [float(v) for v in re.findall(r"step +\d+ +loss ([0-9.]+)", out)]
    assert len(losses) == 2 and all(0 < v < 20 for v in losses)
    for line in ("overall", "easy", "challenging", "difficult", "gender", "race", "valence", "arousal"):
        assert re.search(rf"^\s+{line}\b", out, re.M), f"no {line} line in:\n{out}"


def test_multitask_curriculum_resample_and_fairness_report(tmp_path):
    out = train(
        tmp_path,
        "--steps",
        "30",
        "--log-every",
        "15",
        "--batch-size",
        "8",
        "--multitask",
        "--curriculum",
        "epoch:1,2",
        "--resample",
        "race=balanced",
        "--fairness-report",
    )
    assert re.search(r"^resampled by race: \d+ rows", out, re.M)
    heads = re.findall(r"^  heads: (.*)$", out, re.M)
    assert len(heads) == 2 and all(f"{head} " in heads[0] for head in ("expression", "landmarks", "race", "head_pose"))
    assert "fairness by group" in out
    for block in ("race", "gender", "age"):
        assert re.search(rf"^  {block} \(left out: \d+ rows", out, re.M), f"no {block} block in:\n{out}"
    for line in ("demographic parity difference", "demographic parity ratio", "equalized odds difference"):
        assert out.count(line) == 3
    for line in ("easy", "challenging", "difficult"):
        assert re.search(rf"^\s+{line}\b", out, re.M)
    # the curriculum's stage shows on each log line; the report has a line per gender / race group
    assert re.search(r"^step +15 .* subsets easy\+challenging\+difficult\+no_subset  ", out, re.M), out  # epoch 2 on
    assert re.search(r"^ {4}female +n= *\d+  accuracy=", out, re.M) and re.search(
        r"^ {4}white +n= *\d+  accuracy=", out, re.M
    )


def test_resume_after_preemption_matches_an_uninterrupted_run(tmp_path):
    common = ("--steps", "30", "--log-every", "10", "--batch-size", "8", "--curriculum", "epoch:1,2", "--multitask")
    whole = train(tmp_path, *common, "--resume", str(tmp_path / "whole.pt"))
    first = train(tmp_path, *common, "--resume", str(tmp_path / "run.pt"), "--stop-after", "15")
    assert "stopped after step 15" in first and "validation (" not in first
    second = train(tmp_path, *common, "--resume", str(tmp_path / "run.pt"))
    assert "resumed from" in second and "at step 15" in second

    def tail(out):  # the step-30 log line and the validation report, without timings
        lines = [re.sub(r"\(\d+ s\)", "", line) for line in out.splitlines()]
        return [line for line in lines if line.startswith("step    30")] + lines[
            lines.index("validation (8-class view, human labels):") : -1
        ]

    assert tail(second) == tail(whole) and len(tail(whole)) > 5


def test_import_without_torch_says_how_to_install():
    code = "import sys; sys.modules['torch'] = None\ntry:\n import affectnetplus_hf.torch\nexcept ImportError as e:\n print(e)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout
    assert "affectnetplus-hf[torch]" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--resample", "Race=balanced"), "--resample 'Race=balanced': attribute must be one of"),
        (("--curriculum", "epochs:1,2"), "--curriculum: curriculum 'epochs:1,2'"),
    ],
)
def test_a_wrong_flag_value_is_one_line_not_a_traceback(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train.py"), "--n", "12", "--steps", "1", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr, result.stderr[
        -2000:
    ]
