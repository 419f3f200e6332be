"""verify and the command line, as a user runs them."""

import subprocess
import sys

from affectnetplus_hf.cli import main
from affectnetplus_hf.release.sample import FAULTS
from affectnetplus_hf.release.verification import verify


def test_verify_counts_and_problems(make_release):
    manifest = make_release(n=len(FAULTS), faults={"train": list(FAULTS)})
    report = verify(manifest.root, progress=False)
    assert not report.ok and report.bad == len(manifest.bad_ids("train"))
    train = report.parts["train"]
    assert train.read == len(FAULTS) and train.good == len(FAULTS) - report.bad
    # hand count of the sample rule: expression = id % 11, subset = id % 3
    good = [int(i) for i in manifest.good_ids("train")]
    assert train.counts[("happy", "challenging")] == sum(1 for i in good if i % 11 == 1 and i % 3 == 1)
    text = report.to_text()
    assert "LOOKS INCOMPLETE" in text and "published" in text
    assert "BAD" in text and "JPEG cut short" in text


def test_verify_clean_release_parallel(make_release):
    manifest = make_release(n=6)
    report = verify(manifest.root, num_proc=2, progress=False)
    assert report.ok and sum(p.read for p in report.parts.values()) == 18


def test_cli_verify_exit_status(make_release, capsys):
    clean = make_release(n=3)
    assert main(["verify", str(clean.root), "--no-progress", "--num-proc", "1"]) == 0
    broken = make_release(n=3, faults={"validation": ["bad_json"]})
    assert main(["verify", str(broken.root), "--no-progress", "--num-proc", "1"]) == 1
    out = capsys.readouterr().out
    assert "0.json" in out and "not valid JSON" in out


def test_cli_export_prints_reconciliation(make_release, tmp_path, capsys):
    manifest = make_release(n=4, faults={"train": ["missing_image"]})
    out = tmp_path / "affectnet_plus"
    assert main(["export", str(manifest.root), str(out), "--no-progress", "--num-proc", "1"]) == 1  # bad records found
    printed = capsys.readouterr().out
    assert "records read 12 = written 11 + reported bad 1 [OK]" in printed
    assert str(out / "export_report.jsonl") in printed  # the report travels inside the folder


def test_cli_errors_are_clear_and_exit_2(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nowhere"), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "Request access" in err


def test_demo_runs_end_to_end(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "affectnetplus_hf",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--n",
            "12",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[OK]" in proc.stdout and "demo done" in proc.stdout
    assert "unlabeled    train: 12 rows" in proc.stdout
    # the demo ends with the statistics report beside the export, with pictures, and the card
    report = tmp_path / "demo" / "affectnet_plus_stats" / "report.html"
    assert f"statistics report: {report}" in proc.stdout and report.is_file()
    assert f"dataset card:      {tmp_path / 'demo' / 'affectnet_plus' / 'README.md'}" in proc.stdout
    assert "Plots skipped" not in proc.stdout and list((report.parent / "plots").glob("*.png"))


def test_import_pulls_in_neither_torch_nor_matplotlib():
    code = "import sys, affectnetplus_hf; affectnetplus_hf.FEATURES; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_notes_of_one_kind_are_counted_together_whatever_value_was_found(make_release):
    import json

    manifest = make_release(n=3, parts=("validation",))
    annotations = manifest.root / "human_annotated" / "validation_set" / "annotations"
    for stem, age in (("0", '"old"'), ("1", '"young"'), ("2", "Infinity")):
        path = annotations / f"{stem}.json"
        doc = json.loads(path.read_text())
        path.write_text(json.dumps(doc).replace(f'"age": {json.dumps(doc["meta-data"]["age"])}', f'"age": {age}'))
    notes = verify(manifest.root, progress=False).to_json()["parts"]["validation"]["notes"]
    by_kind = {(n["field"], n["reason_class"]): n["count"] for n in notes}
    assert by_kind == {("age", "expected a number or null"): 2, ("age", "expected a finite number"): 1}
