"""Finding parts and pairing files, whatever the folder spelling."""

import pytest

from affectnetplus_hf.errors import ReleaseNotFoundError
from affectnetplus_hf.layout import find_release, list_records, natural_key, normalize_name


@pytest.mark.parametrize("layout", ["release", "pdf"])
def test_both_folder_spellings_find_all_parts(make_release, layout):
    manifest = make_release(layout=layout)
    release = find_release(manifest.root)
    assert list(release.parts) == ["train", "validation", "unlabeled"]
    for name, part in release.parts.items():
        records, ignored = list_records(part)
        assert [r.image_id for r in records] == manifest.ids[name]
        assert ignored == []


def test_wrapping_folder_is_looked_through(make_release):
    manifest = make_release(parts=("validation",))
    release = find_release(manifest.root.parent.parent)  # two levels above the release
    assert release.root == manifest.root
    assert list(release.parts) == ["validation"]


def test_partial_extraction_is_normal(make_release):
    manifest = make_release(parts=("train",))
    assert list(find_release(manifest.root).parts) == ["train"]


def test_no_release_raises_file_not_found_with_instructions(tmp_path):
    (tmp_path / "something_else").mkdir()
    with pytest.raises(FileNotFoundError) as info:
        find_release(tmp_path)
    assert isinstance(info.value, ReleaseNotFoundError)
    assert "human_annotated/train_set" in str(info.value)
    assert "Request access" in str(info.value)
    with pytest.raises(ReleaseNotFoundError, match="no such folder"):
        find_release(tmp_path / "missing")
    with pytest.raises(ReleaseNotFoundError, match="data_dir is None"):
        find_release(None)


def test_records_pair_by_stem_and_report_orphans_and_strays(make_release):
    manifest = make_release(faults={"train": ["missing_image", "missing_annotation"]})
    part = find_release(manifest.root).parts["train"]
    (part.images_dir / ".DS_Store").write_bytes(b"x")
    (part.images_dir / "notes.txt").write_text("x")
    (part.images_dir / "2.JPEG").write_bytes(b"\xff\xd8\xff\xd9")  # a second image for id 2
    records, ignored = list_records(part)
    by_id = {r.image_id: r for r in records}
    assert len(records) == 12
    assert by_id["0"].image is None and by_id["0"].annotation is not None
    assert by_id["1"].annotation is None and by_id["1"].image is not None
    assert [p.name for p in by_id["2"].duplicates] == ["2.jpg"] or [p.name for p in by_id["2"].duplicates] == ["2.JPEG"]
    assert by_id["3"].duplicates == () and by_id["3"].image.name == "3.jpg"
    assert {i.path.name for i in ignored} == {".DS_Store", "notes.txt"}


def test_names_and_order():
    assert normalize_name("Human Annotated") == normalize_name("human_annotated") == normalize_name("HUMAN-annotated")
    assert sorted(["10", "2", "a", "1"], key=natural_key) == ["1", "2", "10", "a"]


def test_two_spellings_of_one_folder_is_an_error(make_release):
    manifest = make_release(parts=("validation",))
    (manifest.root / "Human Annotated" / "Validation Set" / "Images").mkdir(parents=True)
    # "human_annotated" and "Human Annotated" side by side are the same folder twice
    with pytest.raises(ReleaseNotFoundError, match="several folders"):
        find_release(manifest.root)
