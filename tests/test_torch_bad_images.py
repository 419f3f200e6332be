"""Training survives a bad image: ``make_loader(..., on_bad="skip")`` skips rows whose image
cannot be used, keeps batches full, names the rows and stays resumable; the default stops
naming the row and the loader option. Bad images as the red team made them: a damaged JPEG
inside the dataset, a header that declares 20000 x 20000 pixels, null image bytes whose
path names a real file in the working directory."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from affectnetplus_hf.errors import BadImageError  # noqa: E402
from affectnetplus_hf.torch import JpegCollator, make_loader  # noqa: E402
from affectnetplus_hf.torch.decoders import MAX_IMAGE_PIXELS, ImageTooLargeError, available_decoders, get_decoder  # noqa: E402
from tests.support.torch_support import exported, jpeg  # noqa: E402

GARBAGE, TRUNCATED, HUGE = 2, 5, 9  # rows made bad: not an image, cut short, a 20000 x 20000 header


def declare_size(data: bytes, height: int, width: int) -> bytes:
    """The JPEG ``data`` with its frame header (SOF0) declaring another size."""
    at = data.index(b"\xff\xc0")
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


def damage(data: bytes, how: str) -> bytes:
    if how == "garbage":
        return b"\xff\xd8\xff\xe0garbage"
    if how == "truncated":  # the header reads, the pixels do not
        return data[: data.index(b"\xff\xda") + 40]
    return declare_size(data, 20000, 20000)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return exported(tmp_path_factory.mktemp("bad-images"), n=12)


@pytest.fixture(scope="module")
def bad(export_dir):
    """The exported train split with rows GARBAGE, TRUNCATED and HUGE damaged."""
    train = datasets.load_dataset(str(export_dir), "all", split="train", cache_dir=str(export_dir.parent / "cache"))
    train = train.cast_column("image", datasets.Image(decode=False))
    kinds = {GARBAGE: "garbage", TRUNCATED: "truncated", HUGE: "huge"}

    def corrupt(row, index):
        if index in kinds:
            return {"image": {"bytes": damage(row["image"]["bytes"], kinds[index]), "path": row["image"]["path"]}}
        return {"image": row["image"]}

    return train.map(corrupt, with_indices=True)


@pytest.fixture(scope="module")
def bad_stream(bad, tmp_path_factory):
    path = tmp_path_factory.mktemp("bad-stream") / "train.parquet"
    bad.to_parquet(str(path))
    return datasets.load_dataset("parquet", data_files=str(path), split="train", streaming=True)


def good_ids(bad):
    return [image_id for i, image_id in enumerate(bad["image_id"]) if i not in (GARBAGE, TRUNCATED, HUGE)]


def ids(batches):
    return [batch["image_id"] for batch in batches]


def test_by_default_a_bad_image_stops_naming_the_row_and_the_loader_option(bad):
    loader = make_loader(bad, 4, num_workers=2, shuffle=False, size=32)
    with pytest.raises(BadImageError) as caught:
        list(loader)
    message = str(caught.value)
    assert f"row {GARBAGE} (image_id {bad[GARBAGE]['image_id']!r})" in message
    assert 'on_bad="skip"' in message and "make_loader" in message
    assert "--on-bad" not in message


@pytest.mark.parametrize("num_workers", [0, 2])
def test_skip_leaves_bad_rows_out_keeps_batches_full_and_names_them(bad, num_workers, caplog):
    loader = make_loader(bad, 4, num_workers=num_workers, shuffle=False, size=32, on_bad="skip")
    with caplog.at_level(logging.WARNING, logger="affectnetplus_hf.torch.loader"):
        batches = list(loader)
    expected = good_ids(bad)
    assert ids(batches) == [expected[0:4], expected[4:8], expected[8:]]  # the following rows fill in
    assert [b["image"].shape[0] for b in batches] == [4, 4, 1]
    assert all(b["soft_label"].shape[0] == b["image"].shape[0] for b in batches)
    assert "skipped" not in batches[0]
    assert [(s.row, s.image_id) for s in loader.skipped] == [
        (i, bad[i]["image_id"]) for i in (GARBAGE, TRUNCATED, HUGE)
    ]
    reasons = [s.reason for s in loader.skipped]
    assert "does not decode" in reasons[1] and "MAX_IMAGE_PIXELS" in reasons[2]
    logged = caplog.text
    assert all(f"row {i} (image_id {bad[i]['image_id']!r})" in logged for i in (GARBAGE, TRUNCATED, HUGE))
    # the next epoch skips them again, and lists only its own
    assert [len(b["image_id"]) for b in loader] == [4, 4, 1] and len(loader.skipped) == 3


@pytest.mark.parametrize("output", ["pixels", "jpeg"])
def test_refilled_batches_hold_the_data_of_the_rows_they_name(bad, output):
    """Rows moved between batches keep every key in step: pixels (channels_last) or JPEG
    bytes, labels, landmarks, masks."""
    size = 32 if output == "pixels" else None
    loader = make_loader(bad, 4, num_workers=2, shuffle=False, size=size, output=output, on_bad="skip")
    alone = JpegCollator(size, output=output)
    by_id = {row["image_id"]: row for row in bad}
    for batch in loader:
        for k, image_id in enumerate(batch["image_id"]):
            single = alone([by_id[image_id]])
            for key, value in single.items():
                if key == "image":
                    assert batch["image"].is_contiguous(memory_format=torch.channels_last)
                    assert torch.equal(batch["image"][k], value[0])
                elif key == "jpeg_data":
                    offsets = batch["jpeg_offsets"]
                    assert torch.equal(batch["jpeg_data"][offsets[k] : offsets[k + 1]], value)
                elif isinstance(value, torch.Tensor) and key != "jpeg_offsets":
                    assert torch.equal(batch[key][k], value[0]) or torch.allclose(
                        batch[key][k], value[0], equal_nan=True
                    ), key


def test_skip_with_drop_last_drops_the_short_last_batch(bad):
    loader = make_loader(bad, 4, num_workers=0, shuffle=False, size=32, on_bad="skip", drop_last=True)
    assert ids(loader) == [good_ids(bad)[0:4], good_ids(bad)[4:8]]


def test_skip_in_a_stream(bad, bad_stream):
    loader = make_loader(bad_stream, 4, num_workers=0, size=32, on_bad="skip")
    expected = good_ids(bad)
    assert ids(loader) == [expected[0:4], expected[4:8], expected[8:]]
    assert [s.image_id for s in loader.skipped] == [bad[i]["image_id"] for i in (GARBAGE, TRUNCATED, HUGE)]


@pytest.mark.parametrize("streaming,num_workers", [(False, 0), (False, 2), (True, 0)])
def test_skip_resumes_after_every_batch(bad, bad_stream, streaming, num_workers, tmp_path):
    """A state after any batch, saved and loaded with torch.load(weights_only=True), resumes
    with exactly the rest of the run, held-back rows included, and keeps the rows skipped so far."""

    def loader():
        return make_loader(
            bad_stream if streaming else bad, 4, num_workers=num_workers, shuffle=False, size=32, on_bad="skip"
        )

    first = loader()
    states, full = [], []
    for batch in first:
        full.append(batch["image_id"])
        states.append((first.state_dict(), [s.row for s in first.skipped]))
    assert len(full) == 3
    for k, (state, skipped_so_far) in enumerate(states):
        torch.save(state, tmp_path / "state.pt")
        resumed = loader()
        resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
        assert [s.row for s in resumed.skipped] == skipped_so_far
        assert ids(resumed) == full[k + 1 :]  # after the last batch: the epoch's (empty) rest, as without skipping
        assert len(resumed.skipped) == 3  # each bad row once, none counted twice
    assert ids(resumed) == full and len(resumed.skipped) == 3  # then the next epoch, whole


def test_a_huge_header_is_refused_before_anything_is_allocated(bad):
    rows = bad.select([HUGE, 0])  # first in its batch: it would size the batch (2 x 20000 x 20000 x 3 bytes)
    with pytest.raises(
        BadImageError, match=rf"row 0 \(image_id {rows[0]['image_id']!r}\).*20000x20000.*MAX_IMAGE_PIXELS"
    ):
        next(iter(make_loader(rows, 2, num_workers=0, shuffle=False)))
    batch = next(iter(make_loader(rows, 2, num_workers=0, shuffle=False, on_bad="skip")))
    assert batch["image_id"] == [rows[1]["image_id"]] and batch["image"].shape == (1, 3, 224, 224)
    # and with output="jpeg", where the header sizes what the GPU would decode
    with pytest.raises(BadImageError, match="MAX_IMAGE_PIXELS"):
        JpegCollator(output="jpeg")([rows[0]])


@pytest.mark.parametrize("name", available_decoders())
def test_every_decoder_refuses_a_header_beyond_the_pixel_limit(name):
    assert MAX_IMAGE_PIXELS == 8192 * 8192
    small = jpeg(np.zeros((16, 16, 3), dtype=np.uint8))
    decoder = get_decoder(name)
    for height, width in [(20000, 20000), (10000, 10000)]:  # beyond Pillow's own limit, and below it
        big = declare_size(small, height, width)
        with pytest.raises(ImageTooLargeError, match="MAX_IMAGE_PIXELS"):
            decoder.header(big)
        with pytest.raises(ImageTooLargeError, match="MAX_IMAGE_PIXELS"):
            decoder.decode(big)
    assert decoder.header(declare_size(small, 8192, 8192)) == (8192, 8192)  # the limit itself is allowed


def test_null_image_bytes_never_read_a_file_of_the_working_directory(bad, tmp_path, monkeypatch):
    """``{"bytes": None, "path": "x.jpg"}`` with a real ``./x.jpg``: a bad row, the file unread."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jpg").write_bytes(jpeg(np.full((224, 224, 3), 255, dtype=np.uint8)))
    rows = [bad[0], dict(bad[1], image={"bytes": None, "path": "x.jpg"})]
    with pytest.raises(BadImageError, match=rf"image_id {rows[1]['image_id']!r}: the image has no bytes .*'x\.jpg'"):
        JpegCollator()(rows)
    batch = JpegCollator(on_bad="skip")(rows)
    assert batch["image_id"] == [rows[0]["image_id"]]
    assert [(s.image_id, "no bytes" in s.reason) for s in batch["skipped"]] == [(rows[1]["image_id"], True)]

    # the same row inside a dataset, through make_loader
    nulled = bad.select([0, 1, 3, 4]).map(
        lambda row, i: {"image": {"bytes": None, "path": "x.jpg"} if i == 1 else row["image"]}, with_indices=True
    )
    assert nulled[1]["image"]["bytes"] is None
    with pytest.raises(BadImageError, match=r"row 1 .*no bytes"):
        list(make_loader(nulled, 2, num_workers=0, shuffle=False, size=32))
    loader = make_loader(nulled, 2, num_workers=0, shuffle=False, size=32, on_bad="skip")
    assert ids(loader) == [[nulled[0]["image_id"], nulled[2]["image_id"]], [nulled[3]["image_id"]]]
    assert [s.row for s in loader.skipped] == [1]


def test_on_bad_is_checked():
    with pytest.raises(ValueError, match=r"on_bad must be one of 'error', 'skip'; got 'ignore'"):
        JpegCollator(on_bad="ignore")
