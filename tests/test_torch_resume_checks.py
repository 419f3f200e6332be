"""Resume checks what it resumes: a loader state records the dataset and the settings that
decide which rows each batch holds, and ``load_state_dict`` refuses a state of another
configuration naming what differs. Written the way the red team found it: a state of
dataset A loaded into a loader of dataset B, batch size 8 into 5 and 5 into 8, another
``num_workers``."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from affectnetplus_hf.errors import ResumeMismatchError  # noqa: E402
from affectnetplus_hf.torch import make_loader  # noqa: E402
from tests.support.torch_support import exported  # noqa: E402


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return exported(tmp_path_factory.mktemp("resume-checks"), n=16)


def split(export_dir, name="train", streaming=False):
    return datasets.load_dataset(
        str(export_dir), "all", split=name, streaming=streaming, cache_dir=str(export_dir.parent / "cache")
    )


def ids(loader):
    return [batch["image_id"] for batch in loader]


def state_after(loader, batches: int) -> dict:
    iterator = iter(loader)
    for _ in range(batches):
        next(iterator)
    return loader.state_dict()


@pytest.mark.parametrize("streaming", [False, True])
def test_a_state_of_another_dataset_is_refused(export_dir, streaming):
    state = state_after(make_loader(split(export_dir, "train", streaming), 4, num_workers=0, size=16, seed=1), 1)
    other = make_loader(split(export_dir, "validation", streaming), 4, num_workers=0, size=16, seed=1)
    with pytest.raises(ResumeMismatchError) as caught:
        other.load_state_dict(state)
    assert [d[0] for d in caught.value.differences] == ["dataset"]
    message = str(caught.value)
    assert "dataset: this loader has" in message and "the state was taken with" in message
    assert ("split 'validation'" in message and "split 'train'" in message) if streaming else "fingerprint" in message
    # nothing was loaded: the loader still yields its whole epoch
    assert sum(len(batch) for batch in ids(other)) == 16


@pytest.mark.parametrize("taken,loaded", [(8, 5), (5, 8)])
def test_a_state_of_another_batch_size_is_refused(export_dir, taken, loaded):
    train = split(export_dir)
    state = state_after(make_loader(train, taken, num_workers=0, size=16, seed=1), 1)
    with pytest.raises(
        ResumeMismatchError, match=rf"batch_size: this loader has {loaded}, the state was taken with {taken}"
    ):
        make_loader(train, loaded, num_workers=0, size=16, seed=1).load_state_dict(state)


@pytest.mark.parametrize(
    "setting,taken,loaded",
    [
        ("view", {"view": 8}, {"view": 7}),
        ("curriculum", {"curriculum": "epoch:1,2"}, {}),
        ("balanced", {"balanced": True}, {}),
        ("seed", {"seed": 1}, {"seed": 2}),
        ("shuffle", {"seed": 1}, {"seed": 1, "shuffle": False}),
        ("rank", {"rank": 0, "world_size": 2}, {"rank": 1, "world_size": 2}),
        ("world_size", {"rank": 0, "world_size": 2}, {"rank": 0, "world_size": 1}),
        ("drop_last", {}, {"drop_last": True}),
    ],
)
def test_a_state_of_other_settings_is_refused_naming_them(export_dir, setting, taken, loaded):
    train = split(export_dir)
    state = state_after(make_loader(train, 3, num_workers=0, size=16, **taken), 1)
    with pytest.raises(ResumeMismatchError) as caught:
        make_loader(train, 3, num_workers=0, size=16, **loaded).load_state_dict(state)
    assert setting in [d[0] for d in caught.value.differences]
    assert f"{setting}: this loader has" in str(caught.value)


@pytest.mark.parametrize("taken,loaded", [(2, 0), (0, 2)])
def test_a_map_style_state_resumes_exactly_with_another_num_workers(export_dir, taken, loaded, tmp_path):
    train = split(export_dir)
    first = make_loader(train, 3, num_workers=taken, size=16, seed=5)
    iterator = iter(first)
    next(iterator), next(iterator)
    torch.save(first.state_dict(), tmp_path / "state.pt")
    rest = [batch["image_id"] for batch in iterator]
    following = ids(first)
    resumed = make_loader(train, 3, num_workers=loaded, size=16, seed=5)
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert ids(resumed) == rest and rest
    assert ids(resumed) == following


def test_a_streaming_state_of_another_num_workers_is_refused_with_our_message(export_dir):
    state = state_after(make_loader(split(export_dir, streaming=True), 2, num_workers=2, size=16), 1)
    with pytest.raises(
        ResumeMismatchError, match=r"(?s)num_workers: this loader has 0, the state was taken with 2.*num_workers=2"
    ):
        make_loader(split(export_dir, streaming=True), 2, num_workers=0, size=16).load_state_dict(state)
    with pytest.raises(ResumeMismatchError, match="num_workers"):  # not even at the user's own risk
        make_loader(split(export_dir, streaming=True), 2, num_workers=0, size=16).load_state_dict(state, strict=False)


def test_the_same_data_loaded_again_resumes(export_dir):
    """The fingerprint is the data's, not the cache folder's: the same export loaded into
    another cache resumes; strict=False resumes a mismatch anyway, with a warning."""
    state = state_after(make_loader(split(export_dir), 4, num_workers=0, size=16, seed=1), 1)
    again = datasets.load_dataset(
        str(export_dir), "all", split="train", cache_dir=str(export_dir.parent / "other-cache")
    )
    resumed = make_loader(again, 4, num_workers=0, size=16, seed=1)
    resumed.load_state_dict(state)
    assert len(ids(resumed)) == 3
    other = make_loader(split(export_dir, "validation"), 4, num_workers=0, size=16, seed=1)
    with pytest.warns(UserWarning, match="dataset: this loader has"):
        other.load_state_dict(state, strict=False)
    assert len(ids(other)) == 3


def test_a_state_without_recorded_settings_resumes_with_a_warning(export_dir):
    state = state_after(make_loader(split(export_dir), 4, num_workers=0, size=16, seed=1), 1)
    del state["affectnetplus"]["config"]  # as saved before the settings were recorded
    loader = make_loader(split(export_dir), 4, num_workers=0, size=16, seed=1)
    with pytest.warns(UserWarning, match="did not record the loader's settings"):
        loader.load_state_dict(state)
    assert len(ids(loader)) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader.load_state_dict(loader.state_dict())
