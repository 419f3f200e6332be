"""Statistics numbers against hand counts: from the JSON files a synthetic release wrote,
and from rows built here with values whose statistics are worked out by hand."""

from __future__ import annotations

import json
import math
import pickle
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from affectnetplus_hf.core.configs import NULL_LABEL, NULL_SUBSET
from affectnetplus_hf.core.schema import EXPRESSIONS, FEATURES, SUBSETS
from affectnetplus_hf.errors import AffectNetPlusError, ReleaseNotFoundError
from affectnetplus_hf.stats import StatsAccumulator, compute_stats
from affectnetplus_hf.stats.sources import describe_source

PART_DIRS = {
    "train": ("human_annotated", "train_set"),
    "validation": ("human_annotated", "validation_set"),
    "unlabeled": ("no_human_annotated",),
}
FAULTS = {
    "train": ["truncated_jpeg", "null_numbers", "sentinel", "missing_pose", "missing_annotation", "int_for_float"]
}


def _annotations(manifest, part: str) -> dict[str, dict]:
    """The JSON this test's release wrote, for the records that are not bad: id -> document."""
    folder = Path(manifest.root, *PART_DIRS[part], "annotations")
    return {i: json.loads((folder / f"{i}.json").read_text()) for i in manifest.good_ids(part)}


def _sentinel_or_none(value):
    return None if value is None or value == -2 else float(value)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    from affectnetplus_hf.release.sample import write_sample

    root = tmp_path_factory.mktemp("stats-release") / "AffectNet+"
    manifest = write_sample(root, n=25, seed=3, faults=FAULTS)
    return manifest, compute_stats(root)


def test_counts_per_split_class_subset_equal_hand_counts(faulty):
    manifest, stats = faulty
    assert stats["source"]["kind"] == "raw"
    assert stats["splits"] == ["train", "validation", "unlabeled"]
    for part in PART_DIRS:
        docs = _annotations(manifest, part)
        expected = Counter(
            (
                EXPRESSIONS[d["human-label"]] if d["human-label"] is not None else NULL_LABEL,
                SUBSETS[d["subset"]] if d["subset"] is not None else NULL_SUBSET,
            )
            for d in docs.values()
        )
        got = {(c, s): n for c, row in stats["counts"][part].items() for s, n in row.items() if n}
        assert got == dict(expected), part
        assert stats["rows"][part] == len(docs)
    assert stats["rows"]["total"] == sum(len(_annotations(manifest, p)) for p in PART_DIRS)
    # the two planted unreadable records are counted as skipped, not as rows
    assert stats["source"]["bad_records"] == {"train": 2, "validation": 0, "unlabeled": 0}


def test_null_counts_equal_hand_counts(faulty):
    manifest, stats = faulty
    for part in PART_DIRS:
        docs = _annotations(manifest, part).values()
        meta = [d["meta-data"] for d in docs]
        expected = {
            "human_label": sum(d["human-label"] is None for d in docs),
            "subset": sum(d["subset"] is None for d in docs),
            "valence": sum(_sentinel_or_none(m["valence"]) is None for m in meta),
            "arousal": sum(_sentinel_or_none(m["arousal"]) is None for m in meta),
            "age": sum(m["age"] is None for m in meta),
            "gender": 0,
            "gender.male": sum(m["gender"]["male"] is None for m in meta),
            "gender.female": 0,
            "head_pose": sum("pose" not in m for m in meta),
            "head_pose.yaw": sum("pose" not in m for m in meta),
            "landmarks": 0,
            "landmarks_29": sum("landmark-29" not in m for m in meta),
            "soft_label": 0,
            "image_id": 0,
        }
        got = stats["nulls"]["by_split"][part]
        assert {k: got[k] for k in expected} == expected, part
    assert stats["nulls"]["by_split"]["train"]["valence"] == 2  # null_numbers + sentinel
    assert stats["nulls"]["total"]["human_label"] == stats["rows"]["unlabeled"]


def test_soft_label_agreement_equals_hand_computation_on_release(faulty):
    manifest, stats = faulty
    ranks: dict[str, list[int]] = {name: [] for name in (*SUBSETS, NULL_SUBSET)}
    entropies: dict[str, list[float]] = {name: [] for name in ranks}
    for part in PART_DIRS:
        for d in _annotations(manifest, part).values():
            soft = [float(v) for v in d["soft-label"]]
            subset = SUBSETS[d["subset"]] if d["subset"] is not None else NULL_SUBSET
            total = sum(soft)
            entropies[subset].append(-sum(v / total * math.log2(v / total) for v in soft if v > 0))
            label = d["human-label"]
            if label is not None and label < 8:
                ranks[subset].append(1 + sum(v > soft[label] for v in soft))
    for subset, cell in stats["agreement"]["by_subset"].items():
        assert cell["ranked"] == len(ranks[subset])
        assert cell["entropy_rows"] == len(entropies[subset])
        if ranks[subset]:
            assert cell["top1_rate"] == pytest.approx(sum(r == 1 for r in ranks[subset]) / len(ranks[subset]))
            assert cell["mean_rank"] == pytest.approx(statistics.fmean(ranks[subset]))
        else:
            assert cell["top1_rate"] is None and cell["mean_rank"] is None
        assert cell["mean_entropy"] == pytest.approx(statistics.fmean(entropies[subset]), abs=1e-6)
    assert sum(stats["agreement"]["by_subset"][s]["ranked"] for s in ranks) == stats["agreement"]["overall"]["ranked"]


def test_landmarks_age_valence_equal_hand_computation_on_release(faulty):
    manifest, stats = faulty
    points, ages, valence_by_class = [], [], {}
    for part in PART_DIRS:
        for d in _annotations(manifest, part).values():
            m = d["meta-data"]
            flat = m["landmark-68"]
            points.append([(flat[i], flat[i + 1]) for i in range(0, 136, 2)])
            if m["age"] is not None:
                ages.append(float(m["age"]))
            v = _sentinel_or_none(m["valence"])
            name = EXPRESSIONS[d["human-label"]] if d["human-label"] is not None else NULL_LABEL
            if v is not None:
                valence_by_class.setdefault(name, []).append(v)
    assert stats["landmarks"]["rows"] == len(points)
    for k in (0, 30, 67):
        xs = [p[k][0] for p in points]
        assert stats["landmarks"]["mean"][k][0] == pytest.approx(statistics.fmean(xs))
        assert stats["landmarks"]["std"][k][0] == pytest.approx(statistics.pstdev(xs))
    age = stats["age"]["overall"]
    assert age["known"] == len(ages) and age["nulls"] == stats["rows"]["total"] - len(ages)
    assert age["mean"] == pytest.approx(statistics.fmean(ages))
    assert age["std"] == pytest.approx(statistics.pstdev(ages))
    assert sum(age["histogram"]) == len(ages)
    for name, values in valence_by_class.items():
        got = stats["valence_arousal"]["by_class"][name]["valence"]
        assert got["known"] == len(values)
        assert got["mean"] == pytest.approx(statistics.fmean(values), abs=1e-6)
        assert got["std"] == pytest.approx(statistics.pstdev(values), abs=1e-6)
        assert got["min"] == pytest.approx(min(values)) and got["max"] == pytest.approx(max(values))


def test_result_is_plain_json(faulty):
    _, stats = faulty
    assert json.loads(json.dumps(stats, allow_nan=False)) == stats


# ----------------------------------------------------------------------------- rows built by hand


def _row(
    image_id,
    label=None,
    subset=None,
    soft=(0.125,) * 8,
    valence=None,
    arousal=None,
    age=None,
    gender=None,
    race=None,
    landmarks=None,
):
    return {
        "image": None,
        "image_id": image_id,
        "human_label": label,
        "soft_label": list(soft),
        "subset": subset,
        "valence": valence,
        "arousal": arousal,
        "age": age,
        "gender": gender,
        "race": race,
        "head_pose": None,
        "landmarks": landmarks,
        "landmarks_29": None,
    }


SOFT_D = (0.2, 0.2, 0.0, 0.2, 0.2, 0.1, 0.1, 0.05)


def _race(**probs):
    keys = ("asian", "indian", "black", "white", "middle_eastern", "latino_hispanic")
    return {k: probs.get(k, 0.0) for k in keys}


HAND_ROWS = [
    # soft label sums to 2: normalised [0.5, 0.25, 0.25] -> entropy 1.5 bits; human 0 is top-1
    _row(
        "a",
        0,
        0,
        soft=(1.0, 0.5, 0.5, 0, 0, 0, 0, 0),
        valence=0.5,
        arousal=-0.5,
        age=4,
        gender={"female": 0.3, "male": 0.7},
        race=_race(white=0.6, asian=0.4),
    ),
    # human 1 scores 0.3; only 0.4 is strictly greater (the 0.3 tie does not count) -> rank 2
    _row(
        "b",
        1,
        1,
        soft=(0.4, 0.3, 0.3, 0, 0, 0, 0, 0),
        valence=-1.0,
        arousal=1.0,
        age=5,
        gender={"female": 0.5, "male": 0.5},
        race=_race(asian=0.5, black=0.5),
    ),
    # uniform soft label: 3 bits; every score ties, so the human label is top-1
    _row(
        "c", 7, 2, soft=(0.25,) * 8, valence=0.0, arousal=0.0, age=100, gender={"female": None, "male": 0.6}, race=None
    ),
    # human 2 has the only smallest score: 7 scores above it -> rank 8
    _row("d", 2, 2, soft=SOFT_D, valence=None, arousal=0.3, age=None, gender=None),
    # 'none' (code 8) is not in the soft label: entropy counts, rank does not
    _row("e", 8, 0, soft=(1, 1, 0, 0, 0, 0, 0, 0), age=110, gender={"female": 0.9, "male": 0.1}),
    # no human label, no subset
    _row(
        "f",
        None,
        None,
        soft=(0, 0, 0, 0, 0, 0, 0, 1.0),
        valence=0.99,
        arousal=-0.99,
        age=37.5,
        gender={"female": 0.2, "male": 0.8},
    ),
]


@pytest.fixture(scope="module")
def hand():
    return compute_stats({"train": HAND_ROWS[:4], "unlabeled": HAND_ROWS[4:]})


def test_hand_rows_agreement(hand):
    h = hand["agreement"]
    entropy_d = -sum(v / sum(SOFT_D) * math.log2(v / sum(SOFT_D)) for v in SOFT_D if v)
    assert h["by_class"]["neutral"]["mean_entropy"] == pytest.approx(1.5)
    assert h["by_class"]["neutral"]["mean_rank"] == 1.0
    assert h["by_class"]["happy"]["mean_rank"] == 2.0 and h["by_class"]["happy"]["top1_rate"] == 0.0
    assert h["by_class"]["contempt"]["mean_entropy"] == pytest.approx(3.0)
    assert h["by_class"]["contempt"]["top1_rate"] == 1.0
    assert h["by_class"]["sad"]["mean_rank"] == 8.0
    assert h["by_class"]["sad"]["mean_entropy"] == pytest.approx(entropy_d)
    assert h["by_class"]["none"]["ranked"] == 0 and h["by_class"]["none"]["mean_rank"] is None
    assert h["by_class"]["none"]["mean_entropy"] == pytest.approx(1.0)
    assert h["by_class"][NULL_LABEL]["mean_entropy"] == pytest.approx(0.0)
    assert h["by_class"][NULL_LABEL]["ranked"] == 0
    # difficult = rows c (rank 1, 3 bits) and d (rank 8)
    difficult = h["by_subset"]["difficult"]
    assert difficult["ranked"] == 2 and difficult["top1_rate"] == 0.5 and difficult["mean_rank"] == 4.5
    assert difficult["rank_counts"] == [1, 0, 0, 0, 0, 0, 0, 1]
    assert difficult["mean_entropy"] == pytest.approx((3.0 + entropy_d) / 2)
    assert difficult["std_entropy"] == pytest.approx(statistics.pstdev([3.0, entropy_d]))
    overall = h["overall"]
    assert overall["ranked"] == 4 and overall["rows"] == 6 and overall["entropy_rows"] == 6
    assert overall["top1_rate"] == 0.5 and overall["mean_rank"] == pytest.approx((1 + 2 + 1 + 8) / 4)
    assert h["by_class_subset"]["neutral"]["easy"]["ranked"] == 1
    assert h["by_class_subset"]["neutral"]["challenging"]["rows"] == 0
    # mean soft label per class is normalised; the raw mean is kept beside it
    assert hand["soft_label_mean"]["neutral"]["normalised"][:3] == pytest.approx([0.5, 0.25, 0.25])
    assert hand["soft_label_mean"]["neutral"]["raw"][:3] == pytest.approx([1.0, 0.5, 0.5])
    assert hand["soft_label_mean"]["fear"] == {"rows": 0, "normalised": None, "raw": None}


def test_hand_rows_demographics(hand):
    gender = hand["gender"]["overall"]
    # a: male; b: 0.5/0.5 tie -> female (first key); c: a null probability -> unknown; d: null -> unknown
    assert gender["counts"] == {"female": 2, "male": 2, "unknown": 2}
    assert gender["shares"] == {"female": 0.5, "male": 0.5}
    assert gender["probability_rows"] == 4
    assert gender["mean_probability"]["female"] == pytest.approx((0.3 + 0.5 + 0.9 + 0.2) / 4)
    assert hand["gender"]["by_class"]["neutral"]["counts"] == {"female": 0, "male": 1, "unknown": 0}
    race = hand["race"]["overall"]["counts"]
    assert race["white"] == 1 and race["asian"] == 1 and race["unknown"] == 4  # b's asian/black tie -> asian
    # ages 4, 5, 100, 110, 37.5 and a null: bins [0,5) [5,10) 100+ 100+ [35,40)
    age = hand["age"]["overall"]
    assert age["known"] == 5 and age["nulls"] == 1
    assert age["mean"] == pytest.approx((4 + 5 + 100 + 110 + 37.5) / 5)
    assert age["min"] == 4 and age["max"] == 110
    hist = age["histogram"]
    assert hist[0] == 1 and hist[1] == 1 and hist[7] == 1 and hist[-1] == 2 and sum(hist) == 5
    by_gender = hand["age"]["histogram_by_gender"]
    assert by_gender["male"][0] == 1 and by_gender["female"][1] == 1 and by_gender["female"][-1] == 1
    assert by_gender["unknown"][-1] == 1 and by_gender["male"][7] == 1
    assert hand["labels"]["age_bins"][0] == "0-4" and hand["labels"]["age_bins"][-1] == "100+"


def test_hand_rows_valence_arousal(hand):
    va = hand["valence_arousal"]
    overall = va["overall"]
    assert overall["valence"]["known"] == 4 and overall["valence"]["nulls"] == 2
    assert overall["valence"]["mean"] == pytest.approx((0.5 - 1.0 + 0.0 + 0.99) / 4)
    assert overall["valence"]["std"] == pytest.approx(statistics.pstdev([0.5, -1.0, 0.0, 0.99]))
    assert overall["arousal"]["known"] == 5 and overall["arousal"]["nulls"] == 1
    assert va["by_class"]["sad"]["valence"] == {
        "nulls": 1,
        "known": 0,
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
    }
    density = va["density"]
    assert density["bins"] == 40
    cells = {
        name: [(i, j) for i, row in enumerate(h) for j, n in enumerate(row) for _ in range(n)]
        for name, h in density["by_class"].items()
    }
    # bin = floor((x + 1) / 2 * 40), clipped to 0..39
    assert cells["neutral"] == [(30, 10)]
    assert cells["happy"] == [(0, 39)]
    assert cells["contempt"] == [(20, 20)]
    assert cells["sad"] == []  # valence null
    assert cells[NULL_LABEL] == [(39, 0)]


def test_hand_rows_counts_and_splits(hand):
    assert hand["splits"] == ["train", "unlabeled"]
    assert hand["rows"] == {"train": 4, "unlabeled": 2, "total": 6}
    assert hand["counts"]["train"]["contempt"]["difficult"] == 1
    assert hand["counts"]["unlabeled"]["none"]["easy"] == 1
    assert hand["counts"]["unlabeled"][NULL_LABEL][NULL_SUBSET] == 1
    assert sum(n for row in hand["counts"]["train"].values() for n in row.values()) == 4
    assert hand["landmarks"] == {"rows": 0, "mean": None, "std": None}


def test_merge_equals_one_pass():
    one = StatsAccumulator()
    one.update_rows("train", HAND_ROWS)
    left, right = StatsAccumulator(), StatsAccumulator(batch_size=3)
    left.update_rows("train", HAND_ROWS[:2])
    for row in HAND_ROWS[2:]:
        right.add_row("train", row)  # 3 rows added as a batch, 1 still pending
    right = pickle.loads(pickle.dumps(right))  # as returned from a worker process
    assert left.merge(right).result() == one.result()


def test_datasets_rows_equal_raw_release(release):
    import datasets

    from affectnetplus_hf.release.layout import find_release, list_records
    from affectnetplus_hf.release.reader import iter_rows

    parts = find_release(release.root).parts
    dd = datasets.DatasetDict(
        {
            name: datasets.Dataset.from_list([r.row for r in iter_rows(list_records(p)[0]) if r.row], features=FEATURES)
            for name, p in parts.items()
        }
    )
    from_rows = compute_stats(dd)
    from_raw = compute_stats(release.root)
    assert from_rows["source"]["kind"] == "rows"
    _assert_same_numbers(from_rows, from_raw)
    only = compute_stats(release.root, splits=["validation"])
    assert only["splits"] == ["validation"] and only["counts"]["validation"] == from_raw["counts"]["validation"]


def _assert_same_numbers(a, b, path="stats"):
    """Equal up to float32 rounding (an export stores float32)."""
    if path == "stats":
        a, b = dict(a), dict(b)
        a.pop("source"), b.pop("source")
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same_numbers(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _assert_same_numbers(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-5), path
    else:
        assert a == b, path


def test_exported_folder_equals_raw_release(release, tmp_path, hf_cache):
    export_module = pytest.importorskip(
        "affectnetplus_hf.exporter.writer", reason="export has not landed on this branch"
    )
    out = tmp_path / "affectnet_plus"
    export_module.export(release.root, out, progress=False, card_plots=False)
    from_export = compute_stats(out)
    assert from_export["source"]["kind"] == "exported"
    assert from_export["source"]["configs"] == ["all", "unlabeled"]
    assert from_export["splits"] == ["train", "validation", "unlabeled"]
    _assert_same_numbers(from_export, compute_stats(release.root))


def test_describe_source(tmp_path, release):
    assert describe_source(release.root)[0] == "raw"
    assert describe_source("someone/affectnet_plus") == ("hub", "someone/affectnet_plus")
    with pytest.raises(AffectNetPlusError, match="not a Hub repo id"):
        describe_source(str(tmp_path / "missing"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(AffectNetPlusError, match="is a file"):
        describe_source(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReleaseNotFoundError, match="neither an exported dataset folder"):
        compute_stats(tmp_path / "empty")
    with pytest.raises(AffectNetPlusError, match="lack column"):
        compute_stats({"train": [{"image_id": "0"}]})


def test_importing_stats_does_not_import_matplotlib():
    code = "import sys, affectnetplus_hf, affectnetplus_hf.stats; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    assert out.stdout.strip() == "False"


def test_unreachable_hub_repo_is_a_clear_error(monkeypatch, hf_cache):
    import datasets.config as dconfig
    import huggingface_hub.constants as hconst

    monkeypatch.setattr(dconfig, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hconst, "HF_HUB_OFFLINE", True)
    with pytest.raises(AffectNetPlusError, match=r"'someone/not-here': no local folder of that name.*log in"):
        compute_stats("someone/not-here")


def test_arrow_fast_path_equals_python_path_with_nulls(release):
    """datasets sources are read as Arrow tables; rows in hand as Python values: same numbers."""
    import datasets

    from affectnetplus_hf.release.layout import find_release, list_records
    from affectnetplus_hf.release.reader import iter_rows

    rows = [r.row for r in iter_rows(list_records(find_release(release.root).parts["train"])[0]) if r.row]
    rows[0]["landmarks"] = None
    rows[1]["gender"] = None
    rows[2]["head_pose"] = None
    rows[3]["soft_label"] = None
    rows[4]["human_label"] = None
    rows[5]["race"]["white"] = None
    rows[6]["valence"] = None
    dataset = datasets.Dataset.from_list(rows, features=FEATURES)
    fast = compute_stats(dataset, batch_size=5)
    slow = compute_stats({"train": rows}, batch_size=5)
    _assert_same_numbers(fast, slow)
    assert fast["nulls"]["total"]["landmarks"] == 1 and fast["nulls"]["total"]["soft_label"] == 1
    assert fast["nulls"]["total"]["race.white"] == 1 and fast["race"]["overall"]["counts"]["unknown"] == 1
    assert fast["landmarks"]["rows"] == len(rows) - 1
    assert fast["agreement"]["overall"]["entropy_rows"] == len(rows) - 1


def test_ragged_landmarks_are_named(release):
    import datasets

    features = datasets.Features(
        {**FEATURES, "landmarks": datasets.Sequence(datasets.Sequence(datasets.Value("float32")))}
    )
    rows = [_row("ok", 0, 0, landmarks=[[1.0, 2.0]] * 68), _row("short", 1, 0, landmarks=[[1.0, 2.0]] * 67)]
    rows = [{**row, "face_box": None, "auto_label": None} for row in rows]  # every FEATURES column
    with pytest.raises(AffectNetPlusError, match=r"row 'short': landmarks has shape \(67, 2\)"):
        compute_stats(datasets.Dataset.from_list(rows, features=features))
