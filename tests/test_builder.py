"""The datasets builder: configs, splits, num_proc, streaming, and the missing-data error."""

import datasets
import pytest

from affectnetplus_hf import FEATURES, AffectNetPlus, BadRecordError, ReleaseNotFoundError
from affectnetplus_hf.core.configs import CONFIG_NAMES


def test_configs():
    assert CONFIG_NAMES == ("all", "easy", "challenging", "difficult", "unlabeled")
    assert AffectNetPlus.DEFAULT_CONFIG_NAME == "all"


@pytest.mark.parametrize("config", CONFIG_NAMES)
def test_prepare_with_num_proc_and_stream(make_release, tmp_path, config):
    manifest = make_release(faults={"train": ["truncated_jpeg", "bom_crlf"]}, layout="pdf")
    builder = AffectNetPlus(config_name=config, data_dir=str(manifest.root), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare(num_proc=2)
    ds = builder.as_dataset()
    streamed = builder.as_streaming_dataset()
    expected_splits = ["train"] if config == "unlabeled" else ["train", "validation"]
    assert sorted(ds) == expected_splits == sorted(streamed)
    for split in expected_splits:
        part = "unlabeled" if config == "unlabeled" else split
        good = manifest.good_ids(part)
        if config in ("easy", "challenging", "difficult"):
            code = ("easy", "challenging", "difficult").index(config)
            good = [i for i in good if int(i) % 3 == code]  # the sample's subset rule
        assert ds[split].features == FEATURES
        assert sorted(ds[split]["image_id"], key=int) == good
        assert sorted((r["image_id"] for r in streamed[split]), key=int) == good


def test_missing_data_dir_explains_how_to_get_the_data(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        AffectNetPlus(config_name="all", cache_dir=str(tmp_path)).download_and_prepare()
    assert isinstance(info.value, ReleaseNotFoundError)
    assert "Request access" in str(info.value)
    with pytest.raises(ReleaseNotFoundError, match="no AffectNet\\+ part found"):
        (tmp_path / "empty").mkdir()
        AffectNetPlus(
            config_name="all", data_dir=str(tmp_path / "empty"), cache_dir=str(tmp_path)
        ).download_and_prepare()


def test_config_needing_an_absent_part_says_so(make_release, tmp_path):
    manifest = make_release(n=3, parts=("validation",))
    with pytest.raises(ReleaseNotFoundError, match="needs part\\(s\\) unlabeled"):
        AffectNetPlus(
            config_name="unlabeled", data_dir=str(manifest.root), cache_dir=str(tmp_path)
        ).download_and_prepare()


def test_on_bad_error_config(make_release, tmp_path):
    manifest = make_release(n=3, parts=("validation",), faults={"validation": ["short_soft_label"]})
    builder = AffectNetPlus(config_name="all", data_dir=str(manifest.root), cache_dir=str(tmp_path), on_bad="error")
    with pytest.raises(datasets.exceptions.DatasetGenerationError) as info:
        builder.download_and_prepare()
    cause = info.value.__cause__
    assert isinstance(cause, BadRecordError)
    assert cause.path.endswith("0.json") and "soft-label: expected 8 numbers" in cause.reason
    with pytest.raises(ValueError, match="on_bad must be"):
        AffectNetPlus(config_name="all", data_dir=str(manifest.root), on_bad="maybe")


def test_the_overridden_private_hook_of_datasets_is_still_where_it_was():
    """AffectNetPlus overrides ``DatasetBuilder._check_manual_download`` (private: no public hook
    exists) so that datasets < 4 raises our ReleaseNotFoundError, not its ManualDownloadError.
    If datasets moves or renames it, this fails and names the version."""
    import inspect

    hook = getattr(datasets.DatasetBuilder, "_check_manual_download", None)
    if int(datasets.__version__.split(".")[0]) < 4:
        assert hook is not None and list(inspect.signature(hook).parameters) == ["self", "dl_manager"], (
            f"datasets {datasets.__version__} changed DatasetBuilder._check_manual_download: update AffectNetPlus"
        )
    else:
        assert hook is None, (
            f"datasets {datasets.__version__} has DatasetBuilder._check_manual_download again: check that "
            "AffectNetPlus still answers a missing data_dir with ReleaseNotFoundError"
        )


def test_config_overrides_are_validated(tmp_path):
    with pytest.raises(ValueError, match="subset must be one of"):
        AffectNetPlus(config_name="all", data_dir=str(tmp_path), subset="hard")
