"""Training on AffectNet 2017's full images: ``crop="face"`` cuts each image to its face box
(margin optional), resizes it, moves the landmarks with it, and decodes PNG and grayscale
images to 3 channels; a row without a box is a bad row like an image that does not decode:
named (``on_bad="error"``), or skipped into ``skipped`` / ``loader.skipped`` with the
following rows filling the batch."""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from affectnetplus_hf.errors import BadImageError  # noqa: E402
from affectnetplus_hf.release.sample_original import write_sample_8labels, write_sample_2017  # noqa: E402
from affectnetplus_hf.torch.collate import JpegCollator  # noqa: E402
from affectnetplus_hf.torch.loader import make_loader  # noqa: E402

#: Mean absolute difference (0-255 scale) allowed between the collator's crop and a
#: reference PIL full decode + crop + bilinear resize. The collator decodes at a reduced
#: DCT scale first, which averages 8x8 blocks slightly differently.
TOLERANCE = 6.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import datasets

    from affectnetplus_hf.exporter.writer import export

    tmp = tmp_path_factory.mktemp("crop")
    manifest = write_sample_2017(
        tmp / "AffectNet", n=10, parts=("train", "validation"), faults={"train": ["bad_face_box"]}
    )
    out = tmp / "export"
    export(manifest.root, out, progress=False, card_plots=False)
    ds = datasets.load_dataset(str(out), "all")["train"].cast_column("image", datasets.Image(decode=False))
    return manifest, ds


def _reference(data: bytes, box, margin: float, size: int) -> np.ndarray:
    x, y, w, h = (box[k] for k in ("x", "y", "width", "height"))
    mx, my = margin * w, margin * h
    image = Image.open(io.BytesIO(data)).convert("RGB")
    x0, y0, x1, y1 = x - mx, y - my, x + w + mx, y + h + my
    ix0, iy0 = int(np.floor(x0)), int(np.floor(y0))
    region = image.crop((ix0, iy0, int(np.ceil(x1)), int(np.ceil(y1))))
    return np.asarray(region.resize((size, size), Image.BILINEAR, box=(x0 - ix0, y0 - iy0, x1 - ix0, y1 - iy0)))


def _boxed_rows(ds):
    return [row for row in ds if row["face_box"] is not None]


@pytest.mark.parametrize("size,margin", [(224, 0.0), (56, 0.0), (64, 0.25)])
def test_crop_matches_a_pil_reference_and_moves_the_landmarks(exported, size, margin):
    _, ds = exported
    rows = _boxed_rows(ds)
    batch = JpegCollator(size, crop="face", crop_margin=margin, memory_format="contiguous")(rows)
    assert batch["image"].shape == (len(rows), 3, size, size) and batch["image"].dtype == torch.uint8
    for i, row in enumerate(rows):
        want = _reference(row["image"]["bytes"], row["face_box"], margin, size).astype(np.float32)
        got = batch["image"][i].permute(1, 2, 0).numpy().astype(np.float32)
        assert np.abs(got - want).mean() < TOLERANCE, row["image_id"]
        box = row["face_box"]
        full = np.asarray(row["landmarks"], dtype=np.float64)
        side_w, side_h = box["width"] * (1 + 2 * margin), box["height"] * (1 + 2 * margin)
        x0, y0 = box["x"] - margin * box["width"], box["y"] - margin * box["height"]
        expected = np.stack(
            [(full[:, 0] - x0 + 0.5) * size / side_w - 0.5, (full[:, 1] - y0 + 0.5) * size / side_h - 0.5], axis=1
        )
        np.testing.assert_allclose(batch["landmarks"][i].numpy(), expected, atol=1e-3)


def test_at_the_box_size_the_landmarks_are_the_face_crops_own(exported):
    manifest, ds = exported
    rows = _boxed_rows(ds)
    batch = JpegCollator(224, crop="face")(rows)
    for i, row in enumerate(rows):
        box = row["face_box"]
        want = np.asarray(row["landmarks"], dtype=np.float32) - np.float32([box["x"], box["y"]])
        np.testing.assert_allclose(batch["landmarks"][i].numpy(), want, atol=1e-3)


def test_png_and_grayscale_images_become_three_channels(exported):
    _, ds = exported
    rows = _boxed_rows(ds)
    kinds = {
        (Image.open(io.BytesIO(r["image"]["bytes"])).format, Image.open(io.BytesIO(r["image"]["bytes"])).mode)
        for r in rows
    }
    assert ("PNG", "L") in kinds or ("PNG", "RGB") in kinds
    assert any(mode == "L" for _, mode in kinds)
    batch = JpegCollator(48, crop="face")(rows)
    assert batch["image"].shape == (len(rows), 3, 48, 48)
    for i, row in enumerate(rows):
        if Image.open(io.BytesIO(row["image"]["bytes"])).mode == "L":
            pixels = batch["image"][i]
            assert torch.equal(pixels[0], pixels[1]) and torch.equal(pixels[1], pixels[2])


def test_a_row_without_a_box_is_named_or_skipped(exported):
    manifest, ds = exported
    boxless = [row["image_id"] for row in ds if row["face_box"] is None]
    assert boxless  # the planted bad_face_box fault is stored null
    with pytest.raises(BadImageError, match=boxless[0].replace("/", ".")):
        JpegCollator(32, crop="face")(list(ds))
    batch = JpegCollator(32, crop="face", on_bad="skip")(list(ds))
    assert len(batch["image_id"]) == len(ds) - len(boxless) and boxless[0] not in batch["image_id"]
    assert [(s.image_id, s.reason.split(":")[0]) for s in batch["skipped"]] == [(i, "no face_box") for i in boxless]


@pytest.mark.parametrize("view", [None, 8])
def test_the_loader_skips_boxless_rows_naming_them_and_keeps_batches_full(exported, view):
    _, ds = exported
    kept = [
        i for i, row in enumerate(ds) if view is None or (row["human_label"] is not None and row["human_label"] < 8)
    ]
    boxless = [i for i in kept if ds[i]["face_box"] is None]
    assert boxless
    loader = make_loader(ds, 3, num_workers=0, size=32, crop="face", view=view, on_bad="skip", shuffle=False)
    sizes = [len(batch["image_id"]) for batch in loader]
    assert sum(sizes) == len(kept) - len(boxless) and all(n == 3 for n in sizes[:-1])  # refilled from the next rows
    assert [(s.row, s.image_id) for s in loader.skipped] == [(i, ds[i]["image_id"]) for i in boxless]  # rows of ds
    assert all(s.reason.startswith("no face_box") for s in loader.skipped)
    with pytest.raises(BadImageError, match=rf"row {boxless[0]} \(image_id"):
        list(make_loader(ds, 3, num_workers=0, size=32, crop="face", view=view, shuffle=False))


def test_a_cropped_image_that_does_not_decode_is_skipped_and_the_others_keep_their_data(exported):
    _, ds = exported
    rows = [row for row in _boxed_rows(ds) if row["image"]["bytes"][:2] == b"\xff\xd8"]  # JPEGs
    assert len(rows) >= 3
    cut = rows[1]["image"]["bytes"]
    damaged = [*rows[:1], {**rows[1], "image": {"bytes": cut[: cut.index(b"\xff\xda") + 40], "path": None}}, *rows[2:]]
    with pytest.raises(BadImageError, match=rows[1]["image_id"].replace("/", ".")):
        JpegCollator(32, crop="face")(damaged)
    batch = JpegCollator(32, crop="face", on_bad="skip")(damaged)
    assert [(s.image_id, "does not decode" in s.reason) for s in batch["skipped"]] == [(rows[1]["image_id"], True)]
    clean = JpegCollator(32, crop="face")([rows[0], *rows[2:]])
    assert batch["image_id"] == clean["image_id"]
    assert torch.equal(batch["image"], clean["image"]) and torch.equal(batch["landmarks"], clean["landmarks"])


def test_make_loader_threads_the_crop(exported):
    _, ds = exported
    loader = make_loader(ds, 4, num_workers=0, size=40, crop="face", crop_margin=0.1, on_bad="skip", shuffle=False)
    seen = []
    for batch in loader:
        assert batch["image"].shape[1:] == (3, 40, 40)
        seen += batch["image_id"]
    assert sorted(seen) == sorted(r["image_id"] for r in ds if r["face_box"] is not None)


def test_face_crops_without_a_box_column_are_told_to_use_no_crop(tmp_path):
    import datasets

    from affectnetplus_hf.exporter.writer import export

    manifest = write_sample_8labels(tmp_path / "eight", n=3, parts=("validation",))
    export(manifest.root, tmp_path / "out", progress=False, card_plots=False)
    ds = datasets.load_dataset(str(tmp_path / "out"), "all")["validation"].cast_column(
        "image", datasets.Image(decode=False)
    )
    with pytest.raises(BadImageError, match="crop=None"):
        JpegCollator(32, crop="face")(list(ds))


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"crop": "face"}, "needs a size"),
        ({"crop": "body", "size": 8}, "crop must be"),
        ({"crop": "face", "size": 8, "crop_margin": -1}, "crop_margin"),
        ({"crop": "face", "size": 8, "on_bad": "ignore"}, "on_bad"),
    ],
)
def test_bad_crop_arguments_are_refused(kwargs, words):
    size = kwargs.pop("size", None)
    with pytest.raises(ValueError, match=words):
        JpegCollator(size, **kwargs)
