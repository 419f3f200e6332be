"""The configs as plain data: the builder, the card and stats all read them from affectnetplus_hf.core.configs."""

from __future__ import annotations

import pytest

from affectnetplus_hf.core import configs
from affectnetplus_hf.core.schema import SUBSETS
from affectnetplus_hf.release.builder import BUILDER_CONFIGS, AffectNetPlus


def test_configs_parts_and_default():
    assert configs.CONFIG_NAMES == ("all", "easy", "challenging", "difficult", "unlabeled")
    assert configs.DEFAULT_CONFIG == "all" == AffectNetPlus.DEFAULT_CONFIG_NAME
    assert configs.PARTS == ("train", "validation", "unlabeled")
    for subset in SUBSETS:
        spec = configs.config_spec(subset)
        assert spec.subset == subset and dict(spec.splits) == {"train": "train", "validation": "validation"}
    assert dict(configs.config_spec("unlabeled").splits) == {"train": "unlabeled"}
    with pytest.raises(ValueError, match="unknown config 'nope'; valid: \\['all'"):
        configs.config_spec("nope")


def test_builder_configs_are_the_data():
    # AffectNet+'s configs, then the original releases' configs of another name (2017's automatic)
    others = [
        s for kind in configs.RELEASE_KINDS for s in configs.configs_for(kind) if s.name not in configs.CONFIG_NAMES
    ]
    assert [s.name for s in others] == ["automatic"]
    assert [(c.name, c.splits, c.subset, c.description) for c in BUILDER_CONFIGS] == [
        (s.name, dict(s.splits), s.subset, s.description) for s in (*configs.CONFIGS, *others)
    ]


def test_configs_depend_on_the_release_kind():
    names = {kind: [s.name for s in configs.configs_for(kind)] for kind in configs.RELEASE_KINDS}
    assert names == {
        "affectnet_plus": ["all", "easy", "challenging", "difficult", "unlabeled"],
        "affectnet_2017": ["all", "automatic"],
        "affectnet_8labels": ["all"],
    }
    assert configs.part_of_split("automatic", "train") == "automatic"
    assert configs.config_reading("automatic", "affectnet_2017") == "automatic"
    with pytest.raises(ValueError, match="unknown config 'easy'; valid: \\['all'\\]"):
        configs.config_spec("easy", "affectnet_8labels")


def test_split_rename_is_undone_for_statistics():
    assert configs.part_of_split("unlabeled", "train") == "unlabeled"
    assert configs.part_of_split("all", "validation") == "validation"
    assert configs.part_of_split("someone_elses_config", "test") == "test"
    # the configs that hold every row once cover every part once
    parts = [p for name in configs.ROW_CONFIGS for p in configs.config_spec(name).splits.values()]
    assert sorted(parts) == sorted(configs.PARTS)
    assert configs.ROW_CONFIGS == ("all", "unlabeled")


def test_the_config_that_reads_each_part():
    assert configs.PARTS == (*configs.HUMAN_PARTS, configs.UNLABELED_PART)
    assert [configs.config_reading(p) for p in configs.PARTS] == ["all", "all", "unlabeled"]
    with pytest.raises(ValueError, match="unknown part 'test'"):
        configs.config_reading("test")


def test_null_spellings():
    assert (configs.NULL_LABEL, configs.NULL_SUBSET) == ("no_label", "no_subset")


def test_code_names_use_the_null_spellings():
    assert configs.label_name(0) == "neutral" and configs.label_name(None) == configs.NULL_LABEL
    assert [configs.subset_name(c) for c in (0, 1, 2, None)] == [
        "easy",
        "challenging",
        "difficult",
        configs.NULL_SUBSET,
    ]
