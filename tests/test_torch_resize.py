"""Resized batches: DCT scaling while decoding, then a cheap resize the rest of the way,
must give what decoding whole and resizing with Pillow gives, within a stated tolerance.

Tolerance (the reference: the same decoder's full decode, then ``PIL.Image.resize(BILINEAR)``):

* only resized (no DCT scaling possible): every pixel within 2 levels of the reference
  (torch's uint8 kernel and Pillow's round differently);
* DCT-scaled (libjpeg's own filter, not bilinear; checked here at 1/2): each image's
  mean absolute difference at most 3.5 levels (of 255) and its PSNR at least 30 dB. (At
  1/8, a 28 px batch of the smooth test photo, the difference reaches 9 levels: the two
  filters part ways on detail near the new size's limit.)
"""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from affectnetplus_hf.torch import JpegCollator, available_decoders  # noqa: E402
from affectnetplus_hf.torch.decoders import dct_factor, get_decoder  # noqa: E402
from tests.support.torch_support import jpeg, pil_decode, rows_dataset  # noqa: E402

SCALING = [name for name in available_decoders() if name in ("simplejpeg", "turbojpeg")]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """The synthetic release's 224 x 224 face-like JPEGs, plus smooth photos of odd shapes."""
    import datasets
    import pyarrow as pa

    train = rows_dataset(tmp_path_factory.mktemp("resize") / "train", n=6)
    rows = train.with_format("arrow")[:6]
    rng = np.random.default_rng(0)
    extra = []
    for h, w in ((300, 200), (225, 223), (97, 61)):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([np.sin(x / 9.0 + c) * np.cos(y / 13.0 - c) for c in range(3)], axis=-1)
        image = np.clip(128 + 90 * base + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)
        extra.append(jpeg(image))
    images = rows.column("image").to_pylist() + [{"bytes": data, "path": None} for data in extra]
    return pa.table({"image": pa.array(images, type=datasets.Image().pa_type)})


def reference(data: bytes, h: int, w: int, decoder: str = "pil") -> np.ndarray:
    from PIL import Image

    whole = pil_decode(data) if decoder == "pil" else get_decoder(decoder).decode(data)
    return np.asarray(Image.fromarray(whole).resize((w, h), Image.BILINEAR)).astype(np.int32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("decoder", SCALING or ["pil"])
@pytest.mark.parametrize("memory_format", ["channels_last", "contiguous"])
@pytest.mark.parametrize("size", [(112, 112), (100, 100), (160, 160), (56, 90), (250, 250)])
def test_resized_batch_matches_decode_then_resize(table, decoder, memory_format, size):
    h, w = size
    batch = JpegCollator(size, decoder=decoder, memory_format=memory_format)(table)["image"]
    assert batch.shape == (table.num_rows, 3, h, w) and batch.dtype == torch.uint8
    for i, data in enumerate(table.column("image").combine_chunks().field("bytes").to_pylist()):
        got = batch[i].permute(1, 2, 0).numpy().astype(np.int32)
        want = reference(data, h, w, decoder)
        source = get_decoder(decoder).header(data)
        if decoder == "pil" or dct_factor(source, size) == 1:
            assert np.abs(got - want).max() <= 2, (i, source, size)
        else:
            assert np.abs(got - want).mean() <= 3.5, (i, source, size)
            assert psnr(got, want) >= 30.0, (i, source, size)


@pytest.mark.parametrize("decoder", SCALING)
def test_decoders_scale_by_powers_of_two_only(decoder):
    """1/2, 1/4, 1/8 and nothing in between: libjpeg-turbo's 3/8 ... 7/8 scalings cost more
    than a full decode. ``scaled_shape`` says what ``decode`` returns."""
    dec = get_decoder(decoder)
    data = jpeg(np.full((224, 224, 3), 90, dtype=np.uint8))
    for min_size, shape in (
        ((113, 113), (224, 224)),
        ((112, 112), (112, 112)),
        ((100, 60), (112, 112)),
        ((28, 28), (28, 28)),
        ((300, 300), (224, 224)),
    ):
        assert dec.decode(data, min_size=min_size).shape[:2] == shape, min_size
        assert dec.scaled_shape((224, 224), min_size) == shape


@pytest.mark.parametrize("decoder", SCALING)
def test_pillow_fallback_scales_like_libjpeg(decoder):
    """A JPEG libjpeg-turbo will not convert to RGB (CMYK) is decoded by Pillow, at the size
    ``scaled_shape`` promised, so it still fits its slot in a resized batch."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((150, 90, 3), 200, dtype=np.uint8)).convert("CMYK").save(buffer, format="JPEG")
    data = buffer.getvalue()
    dec = get_decoder(decoder)
    assert dec.decode(data, min_size=(40, 20)).shape[:2] == dec.scaled_shape((150, 90), (40, 20)) == (75, 45)
    import datasets
    import pyarrow as pa

    one = pa.table({"image": pa.array([{"bytes": data, "path": None}], type=datasets.Image().pa_type)})
    batch = JpegCollator((60, 36), decoder=decoder)(one)["image"]
    assert batch.shape == (1, 3, 60, 36)
    assert np.abs(batch[0].permute(1, 2, 0).numpy().astype(np.int32) - reference(data, 60, 36)).max() <= 3
