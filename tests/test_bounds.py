"""Time and memory grow with the number of records, never with a value inside one or a count asked for.

The cases the red team found: one annotation with every ``landmark-68`` number at 1e15 hung
the export in the card's plot (and ``stats``), an arousal of 1e30 ended it with "Singular
matrix", ``sample --n 99999999999999999999999`` wrote files until the disk filled, and
``export --num-shards 100000`` on 60 records started 900,000 files. Values outside their
documented range stay in the data (with the reader's note) and are left out of statistics
and plots, counted; counts are checked before any work.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from affectnetplus_hf.cli import EXIT_USAGE, main
from affectnetplus_hf.core.export_files import read_info
from affectnetplus_hf.exporter.writer import MAX_NUM_SHARDS, auto_num_shards, export
from affectnetplus_hf.release.sample import MAX_SAMPLE_RECORDS, write_sample
from affectnetplus_hf.stats import card_section, compute_stats
from affectnetplus_hf.stats.report import render_html
from affectnetplus_hf.stats.tables import build_tables

ROOT = Path(__file__).resolve().parent.parent
GUARD_S = 300  # a hang guard for the subprocesses (healthy runs take seconds)

EXTREMES = (1e15, 1e30, 1e308, -1e308, math.inf, -math.inf)
SHAPE = [[60.0 + 2 * i, 100.0 + (i % 17)] for i in range(68)]  # a plausible landmark shape in the 224 crop


def _row(image_id: str, value: float | None = None, *, arousal: float = 0.25) -> dict:
    """A good row (valence 0.5, arousal ``arousal``, age 30, landmarks SHAPE); with ``value``,
    every bounded column holds it instead."""
    v = value
    return {
        "image": None,
        "image_id": image_id,
        "human_label": 1,
        "soft_label": [0.1] * 8,
        "subset": 0,
        "valence": 0.5 if v is None else v,
        "arousal": arousal if v is None else v,
        "age": 30.0 if v is None else v,
        "gender": {"female": 0.25 if v is None else v, "male": 0.75},
        "race": None,
        "head_pose": None,
        "landmarks": SHAPE if v is None else [[v, v]] * 68,
        "landmarks_29": None,
    }


@pytest.fixture(scope="module")
def extreme_stats() -> dict:
    rows = [_row("good-1"), _row("good-2", arousal=-0.25), _row("nan", math.nan)]
    rows += [_row(f"x{k}", value) for k, value in enumerate(EXTREMES)]
    return compute_stats({"train": rows})


def test_values_outside_their_range_are_left_out_of_the_numbers_and_counted(extreme_stats):
    stats = extreme_stats
    left_out = stats["out_of_range"]["total"]
    for column in ("valence", "arousal", "age", "gender", "landmarks"):
        assert left_out[column] == len(EXTREMES), column  # NaN is a null, not a value out of range
    assert left_out["soft_label"] == 0 and left_out["race"] == 0
    assert stats["out_of_range"]["by_split"]["train"] == left_out
    assert stats["out_of_range"]["by_class"]["valence"]["happy"] == len(EXTREMES)
    overall = stats["valence_arousal"]["overall"]
    # only the two good rows count; the NaN row is the one null
    assert overall["arousal"]["known"] == 2 and overall["arousal"]["nulls"] == 1
    assert overall["arousal"]["mean"] == pytest.approx(0.0) and overall["arousal"]["max"] == pytest.approx(0.25)
    assert overall["valence"]["min"] == overall["valence"]["max"] == pytest.approx(0.5)
    assert stats["age"]["overall"]["mean"] == pytest.approx(30.0) and stats["age"]["overall"]["nulls"] == 1
    assert sum(stats["age"]["overall"]["histogram"]) == 2
    assert stats["landmarks"]["rows"] == 2 and stats["landmarks"]["mean"] == SHAPE
    assert stats["gender"]["overall"]["mean_probability"]["female"] == pytest.approx(0.25)
    assert json.loads(json.dumps(stats, allow_nan=False)) == stats  # still plain JSON: no inf, no NaN


def test_the_count_left_out_is_shown_in_the_card_the_report_and_the_tables(extreme_stats):
    sentence = f"{5 * len(EXTREMES)} values outside their documented range were left out of these statistics and plots"
    assert sentence in card_section(extreme_stats)
    assert sentence in render_html(extreme_stats)
    table = next(t for t in build_tables(extreme_stats) if t.name == "out_of_range")
    assert {row[0]: row[-1] for row in table.rows} == dict.fromkeys(
        ("valence", "arousal", "age", "gender", "landmarks"), len(EXTREMES)
    )


def test_plots_of_extreme_values_are_drawn(extreme_stats, tmp_path):
    pytest.importorskip("matplotlib")
    from affectnetplus_hf.stats.plots import PLOTS, draw_plots

    drawn = draw_plots(extreme_stats, tmp_path)
    assert sorted(drawn) == sorted(p.name for p in PLOTS) and all(path.stat().st_size for path in drawn.values())


def _poison(root: Path) -> None:
    """Train record 0: every landmark-68 number 1e15; record 1: arousal 1e30 (the red team's two)."""
    files = sorted((root / "human_annotated" / "train_set" / "annotations").glob("*.json"), key=lambda p: int(p.stem))
    first = json.loads(files[0].read_text())
    first["meta-data"]["landmark-68"] = [1e15] * 136
    files[0].write_text(json.dumps(first))
    second = json.loads(files[1].read_text())
    second["meta-data"]["arousal"] = 1e30
    files[1].write_text(json.dumps(second))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "affectnetplus_hf", *args], cwd=ROOT, capture_output=True, text=True, timeout=GUARD_S
    )


@pytest.mark.slow
def test_a_1e15_landmark_and_a_1e30_arousal_neither_hang_nor_fail_stats_and_export(tmp_path):
    raw = tmp_path / "AffectNet+"
    write_sample(raw, n=10)
    _poison(raw)

    stats = _cli("stats", str(raw), "--out", str(tmp_path / "stats"))
    assert stats.returncode == 0, stats.stderr
    assert "2 values outside their documented range were left out" in stats.stdout
    written = json.loads((tmp_path / "stats" / "stats.json").read_text())
    assert written["out_of_range"]["total"]["landmarks"] == 1 and written["out_of_range"]["total"]["arousal"] == 1

    out = tmp_path / "affectnet_plus"
    exported = _cli("export", str(raw), str(out), "-q")
    assert exported.returncode == 0, exported.stderr
    assert "were left out of these statistics and plots: arousal 1" in (out / "README.md").read_text()
    report = [json.loads(line) for line in (out / "export_report.jsonl").read_text().splitlines()]
    assert any(line.get("kind") == "note" and "1e+30" in json.dumps(line) for line in report)  # kept, and noted
    assert (out / "stats" / "landmarks_mean_shape.png").is_file()


# ----------------------------------------------------------------------------- counts


@pytest.fixture
def no_work(monkeypatch):
    """Make the commands' work fail the test: a count must be refused before any of it."""
    import affectnetplus_hf.exporter.writer as export_module
    import affectnetplus_hf.release.sample as sample_module
    import affectnetplus_hf.release.verification as verify_module

    def forbidden(*args, **kwargs):
        raise AssertionError("the command started its work with a count it should have refused")

    for module, name in ((sample_module, "write_sample"), (export_module, "export"), (verify_module, "verify")):
        monkeypatch.setattr(module, name, forbidden)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["sample", "out", "--n", "99999999999999999999999"], f"at most {MAX_SAMPLE_RECORDS:,}"),
        (["sample", "out", "--n", str(MAX_SAMPLE_RECORDS + 1)], f"at most {MAX_SAMPLE_RECORDS:,}"),
        (["demo", "--n", "1" + "0" * 5000], "at most"),
        (["export", "raw", "--num-shards", "100000"], f"at most {MAX_NUM_SHARDS:,} (shards per part)"),
        (["export", "raw", "--num-proc", "100000"], "(worker processes)"),
        (["verify", "raw", "--num-proc", "99999999999"], "(worker processes)"),
        (["export", "raw", "--num-shards", "-3"], "expected a whole number of 1 or more"),
        (["export", "raw", "--shard-records", "2.5"], "expected a whole number of 1 or more"),
        (["sample", "out", "--n", "1e5"], "expected a whole number of 1 or more"),
    ],
)
def test_counts_beyond_their_ceiling_are_refused_before_any_work(argv, expected, no_work, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == EXIT_USAGE
    option = next(a for a in argv if a.startswith("--"))
    assert f"affectnetplus {argv[0]}: error: argument {option}: " in err and expected in err, err
    assert len(err.splitlines()[-1]) < 300  # a 5,000-digit number is not echoed back


def test_a_part_never_gets_more_shards_than_records(make_release, tmp_path):
    result = export(make_release(n=12).root, tmp_path / "out", num_shards=200, progress=False, card_plots=False)
    info = read_info(result.out_dir)
    assert {part: p["num_shards"] for part, p in info["parts"].items()} == {
        "train": 12,
        "validation": 12,
        "unlabeled": 12,
    }
    assert len(list((result.out_dir / "data").rglob("*.parquet"))) <= 3 * 12 * 4  # four subset files per shard at most
    assert auto_num_shards(10**12, 1) == MAX_NUM_SHARDS


def test_library_counts_beyond_their_ceiling_are_refused_first(tmp_path):
    with pytest.raises(ValueError, match="num_shards"):
        export(tmp_path / "no-release-here", tmp_path / "out", num_shards=MAX_NUM_SHARDS + 1)
    with pytest.raises(ValueError, match="num_proc"):
        export(tmp_path / "no-release-here", tmp_path / "out", num_proc=10**6)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=f"from 1 to {MAX_SAMPLE_RECORDS:,}"):
        write_sample(blocker / "sample", n=10**23)
