"""The built-in synthetic release follows the real format."""

import json

import pytest

from affectnetplus_hf.release.sample import FAULTS, write_sample


def test_sample_is_deterministic_and_in_the_real_format(tmp_path):
    a = write_sample(tmp_path / "a", n=5, seed=3)
    b = write_sample(tmp_path / "b", n=5, seed=3)
    files_a = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 30
    for rel in files_a:
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes()
    doc = json.loads((a.root / "human_annotated/train_set/annotations/1.json").read_text())
    assert set(doc) == {"human-label", "soft-label", "subset", "meta-data"}
    assert len(doc["soft-label"]) == 8 and abs(sum(doc["soft-label"]) - 1) > 0.05
    assert len(doc["meta-data"]["landmark-68"]) == 136
    assert set(doc["meta-data"]["race"]) >= {"middle eastern", "latino hispanic"}
    unlabeled = json.loads((a.root / "no_human_annotated/annotations/0.json").read_text())
    assert unlabeled["human-label"] is None


def test_manifest_lists_planted_faults(tmp_path):
    manifest = write_sample(tmp_path, n=len(FAULTS), faults={"train": list(FAULTS)})
    assert set(manifest.faults.values()) == set(FAULTS)
    assert manifest.bad_ids("train") == {i for (p, i), f in manifest.faults.items() if FAULTS[f][1]}


def test_a_second_sample_into_the_same_folder_is_refused_not_mixed_in(tmp_path):
    """An earlier sample's files would stay (a planted missing image would not be missing)."""
    write_sample(tmp_path, n=3, parts=("train",))
    with pytest.raises(FileExistsError, match="train_set: already holds files .an earlier sample.."):
        write_sample(tmp_path, n=2, parts=("train",), faults={"train": ["missing_image"]})
    assert len(list((tmp_path / "human_annotated" / "train_set" / "images").iterdir())) == 3  # nothing written
    write_sample(tmp_path, n=2, parts=("unlabeled",))  # adding a part the folder lacks is fine


def test_the_cli_refuses_a_used_folder_with_exit_2(tmp_path, capsys):
    from affectnetplus_hf.cli import EXIT_USAGE, main

    assert main(["sample", str(tmp_path / "s"), "--n", "1", "-q"]) == 0
    assert main(["sample", str(tmp_path / "s"), "--n", "1", "-q"]) == EXIT_USAGE
    assert "already holds files" in capsys.readouterr().err
    (tmp_path / "d" / "AffectNet+").mkdir(parents=True)
    assert main(["demo", "--dir", str(tmp_path / "d"), "-q"]) == EXIT_USAGE
    assert "AffectNet+: already exists (an earlier demo?)" in capsys.readouterr().err
