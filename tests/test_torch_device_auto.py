"""``DevicePrefetcher(loader, "auto")``: the one spelling a script can use on a GPU machine and a laptop alike."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from affectnetplus_hf.torch import DevicePrefetcher, resolve_device  # noqa: E402


def _batch(n: int = 2) -> dict:
    return {
        "image": torch.full((n, 3, 4, 4), 255, dtype=torch.uint8),
        "human_label": torch.arange(n),
        "image_id": ["0", "1"][:n],
    }


def test_auto_is_cuda_when_present_else_cpu():
    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert DevicePrefetcher([_batch()], "auto").device == expected
    assert DevicePrefetcher([_batch()]).device == expected  # the default is "auto"
    assert resolve_device("auto") == resolve_device(None) == expected


def test_auto_batches_land_on_that_device_normalised():
    prefetcher = DevicePrefetcher([_batch()], "auto", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    batches = list(prefetcher)
    assert len(batches) == 1
    image = batches[0]["image"]
    assert image.device.type == prefetcher.device.type and image.dtype == torch.float32
    assert torch.allclose(image.cpu(), torch.ones(2, 3, 4, 4))  # 255 on the 0..1 scale
    assert batches[0]["human_label"].device.type == prefetcher.device.type


def test_explicit_devices_are_kept():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(RuntimeError):
        resolve_device("tpu-please")  # torch's own message for an unknown device
