"""JpegCollator: batch shapes, dtypes and nulls, and every input path giving the same batch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from affectnetplus_hf.core.schema import GENDERS, POSE_ANGLES, RACES  # noqa: E402
from affectnetplus_hf.errors import BadRecordError  # noqa: E402
from affectnetplus_hf.torch import BATCH_KEYS, JpegCollator, available_decoders  # noqa: E402
from affectnetplus_hf.torch.loader import ArrowBatches  # noqa: E402
from tests.support.torch_support import NULL_FAULTS, jpeg, pil_decode, rows_dataset  # noqa: E402


@pytest.fixture
def train(tmp_path):
    return rows_dataset(tmp_path / "train", n=12, faults=NULL_FAULTS)


def assert_same_batch(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            assert torch.equal(a[key].nan_to_num(-99), b[key].nan_to_num(-99)), key
        else:
            assert a[key] == b[key], key


def test_import_affectnetplus_hf_does_not_import_torch():
    code = (
        "import sys, affectnetplus_hf; affectnetplus_hf.FEATURES; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[1]))


def test_batch_keys_shapes_dtypes(train):
    batch = JpegCollator()([train[i] for i in range(5)])
    assert list(batch) == list(BATCH_KEYS)
    n = 5
    expected = {
        "image": ((n, 3, 224, 224), torch.uint8),
        "human_label": ((n,), torch.int64),
        "soft_label": ((n, 8), torch.float32),
        "subset": ((n,), torch.int64),
        "valence": ((n,), torch.float32),
        "valence_valid": ((n,), torch.bool),
        "arousal": ((n,), torch.float32),
        "arousal_valid": ((n,), torch.bool),
        "age": ((n,), torch.float32),
        "age_valid": ((n,), torch.bool),
        "gender": ((n, len(GENDERS)), torch.float32),
        "race": ((n, len(RACES)), torch.float32),
        "head_pose": ((n, len(POSE_ANGLES)), torch.float32),
        "landmarks": ((n, 68, 2), torch.float32),
    }
    for key, (shape, dtype) in expected.items():
        assert tuple(batch[key].shape) == shape and batch[key].dtype == dtype, key
    assert batch["image_id"] == [train[i]["image_id"] for i in range(5)]
    assert batch["image"].is_contiguous(memory_format=torch.channels_last)
    # values are the stored ones, members in schema order
    row = train[3]
    assert batch["soft_label"][3].tolist() == pytest.approx(row["soft_label"])
    assert batch["race"][3].tolist() == pytest.approx([row["race"][k] for k in RACES])
    assert batch["head_pose"][3].tolist() == pytest.approx([row["head_pose"][k] for k in POSE_ANGLES])
    assert torch.equal(batch["landmarks"][3], torch.tensor(row["landmarks"]))
    # pixels are the JPEG's, decoded once
    assert (
        np.abs(
            batch["image"][3].permute(1, 2, 0).numpy().astype(int) - pil_decode(row["image"]["bytes"]).astype(int)
        ).max()
        <= 1
    )


def test_nulls_become_nan_minus_one_and_false(train, tmp_path):
    batch = JpegCollator()([train[i] for i in range(3)])  # rows 0..2 carry null_numbers, missing_pose, sentinel
    assert np.isnan(batch["valence"][0].item()) and not batch["valence_valid"][0]
    assert np.isnan(batch["age"][0].item()) and not batch["age_valid"][0]
    assert np.isnan(batch["gender"][0, GENDERS.index("male")].item())
    assert not np.isnan(batch["gender"][0, GENDERS.index("female")].item())
    assert bool(batch["head_pose"][1].isnan().all())
    assert np.isnan(batch["valence"][2].item()) and np.isnan(batch["arousal"][2].item())
    assert not batch["valence_valid"][2] and not batch["arousal_valid"][2]
    assert batch["valence_valid"][1] and not np.isnan(batch["valence"][1].item())
    unlabeled = rows_dataset(tmp_path / "unlabeled", n=3, part="unlabeled")
    batch = JpegCollator()([unlabeled[i] for i in range(3)])
    assert batch["human_label"].tolist() == [-1, -1, -1]
    assert batch["subset"].tolist() == [-1, -1, -1]
    rows = [dict(unlabeled[0], landmarks=None, gender=None)]
    batch = JpegCollator()(rows)
    assert bool(batch["landmarks"].isnan().all()) and bool(batch["gender"].isnan().all())


def test_rows_columns_arrow_and_prepared_rows_agree(train):
    collate = JpegCollator()
    rows = collate([train[i] for i in (4, 0, 2)])
    arrow = collate(train.with_format("arrow")[[4, 0, 2]])
    columns = collate(train[[4, 0, 2]])
    prepared = collate(ArrowBatches(train)[[4, 0, 2]])
    assert_same_batch(rows, arrow)
    assert_same_batch(rows, columns)
    assert_same_batch(rows, prepared)


@pytest.mark.parametrize("decoder", available_decoders())
def test_decoders_agree(train, decoder):
    reference = JpegCollator(decoder="pil")(train.with_format("arrow")[:4])["image"].int()
    image = JpegCollator(decoder=decoder)(train.with_format("arrow")[:4])["image"].int()
    assert (image - reference).abs().max() <= 2


def test_contiguous_layout_and_resize(train):
    table = train.with_format("arrow")[:4]
    last = JpegCollator()(table)
    plain = JpegCollator(memory_format="contiguous")(table)
    assert plain["image"].is_contiguous() and torch.equal(plain["image"], last["image"])
    small = JpegCollator(size=112)(table)
    assert small["image"].shape == (4, 3, 112, 112)
    assert torch.allclose(small["landmarks"], (last["landmarks"] + 0.5) / 2 - 0.5)
    assert (small["image"].float() - torch.nn.functional.avg_pool2d(last["image"].float(), 2)).abs().mean() < 6


def test_jpeg_output_carries_the_stored_bytes(train):
    batch = JpegCollator(output="jpeg")(train.with_format("arrow")[:3])
    assert "image" not in batch
    offsets = batch["jpeg_offsets"].tolist()
    for i in range(3):
        assert bytes(batch["jpeg_data"][offsets[i] : offsets[i + 1]].numpy()) == train[i]["image"]["bytes"]
    assert batch["image_size"].tolist() == [[224, 224]] * 3
    assert batch["landmarks"].shape == (3, 68, 2)


def test_bad_inputs_get_clear_errors(train):
    import datasets

    small = jpeg(np.zeros((100, 80, 3), dtype=np.uint8))
    rows = [train[0], dict(train[1], image={"bytes": small, "path": None}, image_id="small-one")]
    with pytest.raises(ValueError, match="small-one.*80x100.*size="):
        JpegCollator()(rows)
    assert JpegCollator(size=64)(rows)["image"].shape == (2, 3, 64, 64)
    broken = dict(train[2], image={"bytes": b"\xff\xd8\xff\xe0garbage", "path": None}, image_id="broken-one")
    with pytest.raises(BadRecordError, match="broken-one"):
        JpegCollator()([broken])
    decoded = train.cast_column("image", datasets.Image())
    with pytest.raises(TypeError, match=r"Image\(decode=False\)"):
        JpegCollator()([decoded[0]])
    with pytest.raises(ValueError, match="output must be one of"):
        JpegCollator(output="png")
    with pytest.raises(ValueError, match="decoder must be"):
        JpegCollator(decoder="nvjpeg")


def test_view_in_collator_drops_rows_before_decoding(train):
    from affectnetplus_hf.torch import SEVEN_CLASS

    batch = JpegCollator(view=SEVEN_CLASS)(train.with_format("arrow")[:])
    labels = train["human_label"]
    kept = [i for i, label in enumerate(labels) if label is not None and label < 7]
    assert batch["image_id"] == [train[i]["image_id"] for i in kept]
    assert batch["image"].shape[0] == len(kept) == batch["soft_label"].shape[0]
    assert batch["soft_label"].shape[1] == 7
    assert torch.allclose(batch["soft_label"].sum(1), torch.ones(len(kept)))
