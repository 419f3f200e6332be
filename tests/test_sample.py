"""The built-in synthetic release follows the real format."""

import json

from affectnetplus_hf.sample import FAULTS, write_sample


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
