"""The torch side's string options: each one a ``Literal`` of ``core.choices`` (what a
user's type checker reads), checked with one message; and ``DevicePrefetcher(device="auto")``,
as ``examples/train.py --device auto`` takes it."""

from __future__ import annotations

from typing import get_args, get_type_hints

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from affectnetplus_hf.core.choices import CurriculumBy, MemoryFormat, OnBad, Output  # noqa: E402
from affectnetplus_hf.torch import Curriculum, DevicePrefetcher, JpegCollator, make_loader  # noqa: E402
from affectnetplus_hf.torch.collate import ON_BAD  # noqa: E402


def batches() -> list[dict]:
    return [{"image": torch.full((2, 3, 4, 4), 255, dtype=torch.uint8), "image_id": ["a", "b"]}]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: JpegCollator(on_bad="ignore"), "on_bad must be one of 'error', 'skip'; got 'ignore'"),
        (
            lambda: make_loader([], 2, num_workers=0, on_bad="ignore"),
            "on_bad must be one of 'error', 'skip'; got 'ignore'",
        ),
        (lambda: JpegCollator(output="png"), "output must be one of 'pixels', 'jpeg'; got 'png'"),
        (
            lambda: JpegCollator(memory_format="nhwc"),
            "memory_format must be one of 'channels_last', 'contiguous'; got 'nhwc'",
        ),
        (
            lambda: DevicePrefetcher([], "cpu", memory_format="nhwc"),
            "memory_format must be one of 'channels_last', 'contiguous'; got 'nhwc'",
        ),
        (lambda: Curriculum((2, 4), by="epochs"), "by must be one of 'epoch', 'step'; got 'epochs'"),
    ],
    ids=[
        "collator-on_bad",
        "loader-on_bad",
        "output",
        "collator-memory_format",
        "prefetcher-memory_format",
        "curriculum-by",
    ],
)
def test_a_wrong_choice_names_the_option_the_choices_and_the_value(make, message):
    with pytest.raises(ValueError) as caught:
        make()
    assert str(caught.value) == message


def test_the_annotations_are_the_literals_the_checks_accept():
    assert ON_BAD == get_args(OnBad)
    hints = get_type_hints(make_loader)
    assert (hints["output"], hints["memory_format"], hints["on_bad"]) == (Output, MemoryFormat, OnBad | None)
    hints = get_type_hints(JpegCollator.__init__)
    assert (hints["output"], hints["memory_format"], hints["on_bad"]) == (Output, MemoryFormat, OnBad)
    assert get_type_hints(DevicePrefetcher.__init__)["memory_format"] == MemoryFormat
    assert get_type_hints(Curriculum)["by"] == CurriculumBy
    assert Curriculum.parse("step:3,5").by == "step"


def test_device_auto_is_cuda_when_available_else_cpu(monkeypatch):
    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert DevicePrefetcher(batches(), "auto").device.type == expected.type
    assert DevicePrefetcher(batches()).device.type == expected.type  # the default is the same
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    prefetcher = DevicePrefetcher(batches(), "auto", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert prefetcher.device == torch.device("cpu")
    (batch,) = list(prefetcher)
    assert batch["image"].device.type == "cpu" and batch["image"].dtype == torch.float32
    assert torch.equal(batch["image"], torch.ones(2, 3, 4, 4))
    assert DevicePrefetcher(batches(), torch.device("cpu")).device == torch.device("cpu")  # a device as given


def test_a_seedless_streaming_shuffle_warns_at_the_callers_line():
    stream = datasets.Dataset.from_dict({"image_id": ["a", "b", "c"]}).to_iterable_dataset()
    with pytest.warns(UserWarning, match="streaming shuffle without seed=") as caught:
        make_loader(stream, 2, num_workers=0, shuffle=True)
    assert [w.filename for w in caught] == [__file__]
