"""The dataset card: YAML that parses back into FEATURES, gating, tables derived from the data."""

import datasets
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard

from affectnetplus_hf import COLUMNS, EXPRESSIONS, FEATURES, MANUAL_DOWNLOAD_INSTRUCTIONS
from affectnetplus_hf.exporter.writer import export


def test_card_yaml_round_trips_and_tables_match_the_data(make_release, tmp_path, hf_cache):
    manifest = make_release(n=12, faults={"train": ["bad_json"]})
    result = export(manifest.root, tmp_path / "affectnet_plus", progress=False, card_plots=False)
    card = DatasetCard.load(result.out_dir / "README.md")
    data = card.data

    infos = DatasetInfosDict.from_dataset_card_data(data)
    assert sorted(infos) == ["all", "challenging", "difficult", "easy", "unlabeled"]
    for name, info in infos.items():
        assert info.features == FEATURES, name
        loaded = datasets.load_dataset(str(result.out_dir), name)
        assert {split: s.num_examples for split, s in info.splits.items()} == {
            split: len(d) for split, d in loaded.items()
        }

    configs = MetadataConfigs.from_dataset_card_data(data)
    assert configs["all"].get("default") is True
    assert all(result.fingerprint in f["path"] for c in configs.values() for f in c["data_files"])

    assert data["license"] == "other" and data["extra_gated_prompt"] and data["extra_gated_fields"]
    text = card.text
    assert MANUAL_DOWNLOAD_INSTRUCTIONS.splitlines()[0] in text
    for column in COLUMNS:
        assert f"| `{column.name}` |" in text
    for code, name in enumerate(EXPRESSIONS):
        assert f"| {code} | {name} |" in text
    assert "@article{fard2024affectnetplus" in text and "@article{mollahosseini2017affectnet" in text
    assert "do not sum to 1" in text and "-2" in text and "unconfirmed" in text
    # class x subset table: hand count from the sample rule (expression = id % 11, subset = id % 3)
    good = [int(i) for i in manifest.good_ids("validation")]
    validation_table = text.split("**validation**")[1].split("**total**")[0]
    for code in (1, 5):
        per_subset = [sum(1 for i in good if i % 11 == code and i % 3 == s) for s in range(3)]
        expected_row = f"| {EXPRESSIONS[code]} | " + " | ".join(map(str, per_subset)) + f" | {sum(per_subset)} |"
        assert expected_row in validation_table


def test_card_size_fields_are_measured_on_the_files(make_release, tmp_path, hf_cache):
    import pyarrow.parquet as pq

    manifest = make_release(n=12)
    out = export(manifest.root, tmp_path / "affectnet_plus", progress=False, card_plots=False).out_dir
    card = DatasetCard((out / "README.md").read_text(encoding="utf-8"))  # the card the export wrote
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    every_file = sorted(out.glob("data/**/*.parquet"))
    assert every_file
    for name, config_info in infos.items():
        split_files = {f["split"]: sorted(out.glob(f["path"])) for f in configs[name]["data_files"]}
        for split, files in split_files.items():
            uncompressed = sum(
                pq.ParquetFile(path).metadata.row_group(i).total_byte_size
                for path in files
                for i in range(pq.ParquetFile(path).metadata.num_row_groups)
            )
            assert config_info.splits[split].num_bytes == uncompressed > 0, (name, split)
        assert config_info.download_size == sum(p.stat().st_size for files in split_files.values() for p in files), name
        assert config_info.dataset_size == sum(s.num_bytes for s in config_info.splits.values()), name
    # the configs that hold every row once download every data file once
    assert infos["all"].download_size + infos["unlabeled"].download_size == sum(p.stat().st_size for p in every_file)
    assert card.data["size_categories"] == ["n<1K"]  # 36 rows


def test_size_category_counts_each_row_once():
    """960k records: 100K<n<1M, although `all` and the three subset configs hold the human-annotated rows twice."""
    from affectnetplus_hf.exporter.card import card_yaml, distinct_rows

    info = {
        "data_dir": "data/x",
        "parts": {
            "train": {"rows": {"easy": 140_000, "challenging": 140_000, "difficult": 134_799}},
            "validation": {"rows": {"easy": 2_000, "challenging": 2_000, "difficult": 1_500}},
            "unlabeled": {"rows": {"no_subset": 539_607}},
        },
    }
    assert distinct_rows(info) == 414_799 + 5_500 + 539_607
    assert "100K<n<1M" in card_yaml(info)


def test_size_category_labels_at_their_edges():
    from affectnetplus_hf.exporter.card import _size_category

    assert [_size_category(n) for n in (0, 999, 1_000, 959_906, 1_000_000, 12_000_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "100K<n<1M",
        "1M<n<10M",
        "10M<n<100M",
    ]
