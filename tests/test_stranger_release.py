"""A release generated independently of the package exports with every field equal to its source."""

import hashlib

import datasets
import pytest

from affectnetplus_hf import FEATURES
from affectnetplus_hf.exporter.writer import export
from tests.support.stranger_release import write_stranger_release


@pytest.mark.parametrize("spelling", ["release", "pdf"])
def test_stranger_release_round_trips(tmp_path, hf_cache, spelling):
    expected = write_stranger_release(tmp_path / "AffectNet+", spelling)
    result = export(tmp_path / "AffectNet+", tmp_path / "affectnet_plus", num_proc=2, progress=False, card_plots=False)
    bad_expected = {key: row[1] for key, row in expected.items() if isinstance(row, tuple)}
    assert result.read == len(expected)
    assert result.bad == len(bad_expected) and result.written == len(expected) - len(bad_expected)
    report = result.report_path.read_text()
    for (_part, image_id), words in bad_expected.items():
        assert f'"image_id": "{image_id}"' in report and words in report

    seen = set()
    for config, split, part in (
        ("all", "train", "train"),
        ("all", "validation", "validation"),
        ("unlabeled", "train", "unlabeled"),
    ):
        ds = datasets.load_dataset(str(result.out_dir), config, split=split)
        assert ds.features == FEATURES
        ds = ds.cast_column("image", datasets.Image(decode=False))
        for row in ds:
            want = expected[(part, row["image_id"])]
            assert isinstance(want, dict), row["image_id"]
            seen.add((part, row["image_id"]))
            assert hashlib.sha256(row["image"]["bytes"]).hexdigest() == hashlib.sha256(want["image_bytes"]).hexdigest()
            for key in ("human_label", "subset", "landmarks", "landmarks_29"):
                assert row[key] == want[key], key
            for key in ("soft_label", "valence", "arousal", "age", "gender", "race", "head_pose"):
                if want[key] is None:
                    assert row[key] is None, key
                else:
                    assert row[key] == pytest.approx(want[key], abs=1e-6), key
    assert seen == {key for key, row in expected.items() if isinstance(row, dict)}
