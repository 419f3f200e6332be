"""The listing stays small at the release's full size: a part's records are a compact
sequence (an id per usual record) that reads, slices and pickles as the records it stands
for, in the same natural order."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from affectnetplus_hf.release.layout import RecordFiles, _natural_sorted, find_release, list_records, natural_key

_stems = st.lists(
    st.one_of(
        st.integers(0, 10**12).map(str), st.from_regex(r"0[0-9]{0,4}", fullmatch=True), st.text(min_size=1, max_size=4)
    ),
    unique=True,
    max_size=40,
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(stems=_stems)
def test_natural_sorted_is_natural_key_order(stems):
    assert _natural_sorted(stems) == sorted(stems, key=natural_key)
    assert _natural_sorted(reversed(stems)) == sorted(stems, key=natural_key)


def _release(tmp_path, n: int = 300):
    base = tmp_path / "human_annotated" / "train_set"
    (base / "images").mkdir(parents=True)
    (base / "annotations").mkdir(parents=True)
    for i in range(n):
        (base / "images" / f"{i}.jpg").write_bytes(b"x")
        (base / "annotations" / f"{i}.json").write_bytes(b"{}")
    (base / "images" / "7.JPG").write_bytes(b"x")  # a second image for 7
    (base / "images" / f"{n}.jpeg").write_bytes(b"x")  # another suffix
    (base / "annotations" / f"{n + 1}.json").write_bytes(b"{}")  # no image
    return find_release(tmp_path).parts["train"]


def test_records_read_slice_and_pickle_as_the_records_they_stand_for(tmp_path):
    part = _release(tmp_path)
    records, _ = list_records(part)
    listed = list(records)
    assert [r.image_id for r in listed] == [str(i) for i in range(302)]
    assert all(type(r) is RecordFiles for r in listed)
    usual = listed[3]
    assert usual == RecordFiles("train", "3", part.images_dir / "3.jpg", part.annotations_dir / "3.json")
    assert [p.name for p in listed[7].duplicates] == ["7.jpg"] and listed[7].image.name == "7.JPG"
    assert listed[300].image.name == "300.jpeg" and listed[301].image is None
    assert [records[i] for i in range(len(records))] == listed
    assert list(records[5:250:7]) == listed[5:250:7] and list(records[-3:]) == listed[-3:]
    assert list(pickle.loads(pickle.dumps(records[100:]))) == listed[100:]


def test_a_listing_is_small_to_keep_and_to_send_to_a_worker(tmp_path):
    records, _ = list_records(_release(tmp_path, n=2000))
    # an id per usual record, not two paths: about 10 bytes a record, where RecordFiles take 300
    assert len(pickle.dumps(records)) < 20 * len(records)


_file_stems = st.lists(
    st.one_of(
        st.integers(0, 10**6).map(str),
        st.integers(10**17, 10**22).map(str),  # past int64's digits: listed as any other stem
        st.from_regex(r"0[0-9]{0,3}", fullmatch=True),
        st.from_regex(r"[a-z][a-z0-9]{0,3}", fullmatch=True),
    ),
    unique=True,
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(stems=_file_stems, data=st.data())
def test_numbered_ids_list_as_every_other_id_does(stems, data):
    """Numbered ids (kept as numbers) list, slice and pickle exactly as they do when every id is
    kept as text: the same records in the same order, odd files (a second image, a missing
    annotation, another suffix) among them."""
    import shutil
    import tempfile
    from pathlib import Path

    from affectnetplus_hf.release import layout

    root = Path(tempfile.mkdtemp(prefix="numbered-"))
    try:
        base = root / "human_annotated" / "train_set"
        (base / "images").mkdir(parents=True)
        (base / "annotations").mkdir(parents=True)
        for stem in stems:
            kind = data.draw(st.sampled_from(["usual"] * 5 + ["no_image", "no_annotation", "second", "jpeg", "JSON"]))
            if kind != "no_image":
                (base / "images" / f"{stem}.{'jpeg' if kind == 'jpeg' else 'jpg'}").write_bytes(b"x")
            if kind == "second":
                (base / "images" / f"{stem}.JPG").write_bytes(b"x")
            if kind != "no_annotation":
                (base / "annotations" / f"{stem}.{'JSON' if kind == 'JSON' else 'json'}").write_bytes(b"{}")
        part = find_release(root).parts["train"]
        records, _ = list_records(part)
        saved = layout._number_stem
        layout._number_stem = lambda stem: False
        try:
            reference, _ = list_records(part)
        finally:
            layout._number_stem = saved
        assert isinstance(reference._items, list)
        assert list(records) == list(reference)
        assert [r.image_id for r in records] == sorted(stems, key=natural_key)
        start, stop, step = data.draw(st.tuples(st.integers(-35, 35), st.integers(-35, 35), st.integers(1, 4)))
        assert list(records[start:stop:step]) == list(reference)[start:stop:step]
        assert list(pickle.loads(pickle.dumps(records[start:stop:step]))) == list(reference)[start:stop:step]
        assert list(records[start:stop:step].paths()) == list(reference[start:stop:step].paths())
    finally:
        shutil.rmtree(root, ignore_errors=True)
