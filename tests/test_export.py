"""The export: a no-code folder that load_dataset opens with every feature typed, exactly."""

import hashlib
import json

import datasets
import pytest

from affectnetplus_hf import FEATURES
from affectnetplus_hf.core.export_files import check_report
from affectnetplus_hf.errors import BadRecordError, ExportError
from affectnetplus_hf.exporter.writer import auto_num_shards, export, report_path_for
from affectnetplus_hf.release.layout import find_release
from affectnetplus_hf.release.sample import FAULTS

CONFIG_SPLITS = {
    "all": ("train", "validation"),
    "easy": ("train", "validation"),
    "challenging": ("train", "validation"),
    "difficult": ("train", "validation"),
    "unlabeled": ("train",),
}


def _source_rows(manifest, part):
    """Rows expected from the files on disk, computed here from the JSON, not by the reader."""
    folder = find_release(manifest.root).parts[part]
    rows = {}
    for image_id in manifest.good_ids(part):
        doc = json.loads((folder.annotations_dir / f"{image_id}.json").read_bytes().decode("utf-8-sig"))
        rows[image_id] = (doc, (folder.images_dir / f"{image_id}.jpg").read_bytes())
    return rows


@pytest.fixture
def exported(make_release, tmp_path):
    manifest = make_release(faults={"train": ["truncated_jpeg", "missing_annotation", "bom_crlf", "sentinel"]})
    out = tmp_path / "affectnet_plus"
    result = export(manifest.root, out, progress=False, card_plots=False)
    return manifest, out, result


def test_every_config_and_split_loads_with_exact_features(exported, hf_cache):
    manifest, out, result = exported
    ids_by_part = {part: set(manifest.good_ids(part)) for part in manifest.ids}
    for config, splits in CONFIG_SPLITS.items():
        ds = datasets.load_dataset(str(out), config)
        streamed = datasets.load_dataset(str(out), config, streaming=True)
        assert sorted(ds) == sorted(splits) == sorted(streamed)
        for split in splits:
            assert ds[split].features == FEATURES
            assert streamed[split].features == FEATURES
            part = "unlabeled" if config == "unlabeled" else split
            ids = set(ds[split]["image_id"])
            assert ids == {r["image_id"] for r in streamed[split]}
            if config in ("easy", "challenging", "difficult"):
                wanted = datasets.ClassLabel(names=["easy", "challenging", "difficult"]).str2int(config)
                assert set(ds[split]["subset"]) <= {wanted}
                assert ids < ids_by_part[part]
            else:
                assert ids == ids_by_part[part]
    # subsets partition `all`: no row stored twice, none lost
    for split in ("train", "validation"):
        union = []
        for config in ("easy", "challenging", "difficult"):
            union += datasets.load_dataset(str(out), config, split=split)["image_id"]
        assert sorted(union) == sorted(datasets.load_dataset(str(out), "all", split=split)["image_id"])


def test_every_field_equals_its_source_and_images_are_not_reencoded(exported, hf_cache):
    manifest, out, _ = exported
    for part, config, split in (
        ("train", "all", "train"),
        ("validation", "all", "validation"),
        ("unlabeled", "unlabeled", "train"),
    ):
        source = _source_rows(manifest, part)
        ds = datasets.load_dataset(str(out), config, split=split).cast_column("image", datasets.Image(decode=False))
        assert len(ds) == len(source)
        for row in ds:
            doc, image_bytes = source[row["image_id"]]
            meta = doc["meta-data"]
            assert hashlib.sha256(row["image"]["bytes"]).digest() == hashlib.sha256(image_bytes).digest()
            assert row["human_label"] == doc["human-label"]
            assert row["subset"] == doc["subset"]
            assert row["soft_label"] == pytest.approx(doc["soft-label"], abs=1e-7)
            for key in ("valence", "arousal"):
                expected = None if meta[key] == -2 else meta[key]
                assert row[key] == (pytest.approx(expected, abs=1e-6) if expected is not None else None)
            assert row["age"] == meta["age"]
            assert row["gender"] == pytest.approx(meta["gender"], abs=1e-6)
            race = {k.replace(" ", "_"): v for k, v in meta["race"].items()}
            assert row["race"] == pytest.approx(race, abs=1e-6)
            assert row["head_pose"] == pytest.approx(meta["pose"], abs=1e-6)
            assert [v for xy in row["landmarks"] for v in xy] == meta["landmark-68"]
            assert row["landmarks_29"] == meta.get("landmark-29")


def test_same_input_gives_byte_identical_shards_whatever_num_proc(make_release, tmp_path):
    manifest = make_release(n=20)
    a = export(manifest.root, tmp_path / "a" / "affectnet_plus", num_shards=3, progress=False, card_plots=False)
    b = export(
        manifest.root, tmp_path / "b" / "affectnet_plus", num_shards=3, num_proc=2, progress=False, card_plots=False
    )
    files_a = sorted(p.relative_to(a.out_dir) for p in a.out_dir.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.out_dir) for p in b.out_dir.rglob("*") if p.is_file())
    assert files_a == files_b
    assert len([f for f in files_a if f.suffix == ".parquet"]) == 3 * (3 + 3 + 1)
    for rel in files_a:
        assert (a.out_dir / rel).read_bytes() == (b.out_dir / rel).read_bytes(), rel
    assert a.fingerprint == b.fingerprint
    # some shard files of a partition are empty; the configs still load every row once
    ds = datasets.load_dataset(str(a.out_dir), "easy", split="train", cache_dir=str(tmp_path / "cache"))
    assert sorted(ds["image_id"], key=int) == [i for i in manifest.ids["train"] if int(i) % 3 == 0]


def test_reconciliation_and_report(make_release, tmp_path):
    manifest = make_release(n=len(FAULTS), faults={"train": list(FAULTS)})
    part_dir = find_release(manifest.root).parts["train"].images_dir
    (part_dir / "readme.txt").write_text("stray")
    result = export(manifest.root, tmp_path / "affectnet_plus", progress=False, card_plots=False)
    total = sum(len(ids) for ids in manifest.ids.values())
    bad = len(manifest.bad_ids("train"))
    assert (result.read, result.written, result.bad) == (total, total - bad, bad)
    assert "[OK]" in result.reconciliation()
    assert result.report_path == report_path_for(result.out_dir)
    # inside the folder, so it moves with the export, but not in the manifest: never published
    assert result.report_path.parent == result.out_dir
    info = json.loads((result.out_dir / "export_info.json").read_text())
    assert result.report_path.name not in info["files"]
    lines = check_report(result.out_dir)
    reported = {(l["part"], l["image_id"]) for l in lines if l["kind"] == "bad_record"}
    assert reported == {("train", i) for i in manifest.bad_ids("train")}
    assert any(l["kind"] == "ignored_file" and l["path"].endswith("readme.txt") for l in lines)
    summary = lines[-1]
    assert summary["kind"] == "summary" and summary["read"] == summary["written"] + summary["bad"]
    assert summary["fingerprint"] == result.fingerprint


def test_on_bad_error_stops_and_writes_nothing(make_release, tmp_path):
    manifest = make_release(n=4, faults={"validation": ["bad_json"]})
    out = tmp_path / "affectnet_plus"
    with pytest.raises(BadRecordError, match="0.json"):
        export(manifest.root, out, on_bad="error", num_proc=2, progress=False, card_plots=False)
    assert not out.exists()
    assert not list(tmp_path.glob(".affectnet_plus.tmp-*"))


def test_interrupted_export_leaves_the_previous_folder_intact(make_release, tmp_path, monkeypatch):
    manifest = make_release(n=6)
    out = tmp_path / "affectnet_plus"
    first = export(manifest.root, out, progress=False, card_plots=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    report_before = first.report_path.read_bytes()
    (find_release(manifest.root).parts["train"].annotations_dir / "0.json").write_text(
        '{"human-label": 1, "soft-label": [0,0,0,0,0,0,0,1]}'
    )

    import affectnetplus_hf.exporter.writer as export_module

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(export_module, "swap", crash)
    with pytest.raises(KeyboardInterrupt):
        export(manifest.root, out, progress=False, card_plots=False)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert first.report_path.read_bytes() == report_before  # the report still describes the folder in place
    assert not list(tmp_path.glob(".affectnet_plus.tmp-*")) and not list(tmp_path.glob(".affectnet_plus.old-*"))
    assert first.fingerprint in (out / "README.md").read_text()


def test_reexport_never_serves_previous_rows(make_release, tmp_path, hf_cache, monkeypatch):
    """datasets caches a local folder by name + YAML configs; the export must change them."""
    manifest = make_release(n=8, parts=("train", "validation"))
    parent = tmp_path / "work"
    parent.mkdir()
    monkeypatch.chdir(parent)
    export(manifest.root, parent / "affectnet_plus", progress=False, card_plots=False)
    first = datasets.load_dataset("affectnet_plus", "all", split="validation")
    assert len(first) == 8
    # the user extracts the part they had not extracted, and fixes a file
    from affectnetplus_hf.release.sample import write_sample

    write_sample(manifest.root, n=8, parts=("unlabeled",))
    annotation = find_release(manifest.root).parts["validation"].annotations_dir / "3.json"
    doc = json.loads(annotation.read_text())
    doc["meta-data"]["valence"] = 0.5
    annotation.write_text(json.dumps(doc))
    export(manifest.root, parent / "affectnet_plus", progress=False, card_plots=False)
    second = datasets.load_dataset("affectnet_plus", "all", split="validation")
    assert second.filter(lambda r: r["image_id"] == "3")[0]["valence"] == 0.5
    assert len(datasets.load_dataset("affectnet_plus", "unlabeled", split="train")) == 8


def test_refuses_to_overwrite_a_foreign_folder(make_release, tmp_path):
    manifest = make_release(n=2, parts=("validation",))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ExportError, match="refusing to overwrite"):
        export(manifest.root, out, progress=False, card_plots=False)
    assert (out / "thesis.tex").read_text() == "precious"


def test_a_part_without_good_records_is_left_out_of_the_configs(make_release, tmp_path, hf_cache):
    manifest = make_release(n=2, parts=("train", "validation"), faults={"train": ["bad_json", "missing_image"]})
    result = export(manifest.root, tmp_path / "affectnet_plus", progress=False, card_plots=False)
    assert result.written == 2 and result.bad == 2
    assert list(datasets.load_dataset(str(result.out_dir), "all")) == ["validation"]


def test_partial_release_exports_the_parts_present(make_release, tmp_path, hf_cache):
    manifest = make_release(n=5, parts=("validation",), layout="pdf")
    result = export(manifest.root, tmp_path / "affectnet_plus", progress=False, card_plots=False)
    ds = datasets.load_dataset(str(result.out_dir), "easy")
    assert list(ds) == ["validation"]
    with pytest.raises(ValueError):
        datasets.load_dataset(str(result.out_dir), "unlabeled")


def test_shard_rule():
    assert auto_num_shards(5_500) == 1
    assert auto_num_shards(414_799) == 48
    assert auto_num_shards(539_607) == 56
    assert all(auto_num_shards(n) % 8 == 0 for n in (20_001, 100_000, 414_799))
