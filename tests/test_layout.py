"""Finding parts and pairing files, whatever the folder spelling."""

import pytest

from affectnetplus_hf.errors import ReleaseNotFoundError
from affectnetplus_hf.release.layout import find_release, list_records, natural_key, normalize_name


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


# ----------------------------------------------------------------------------- odd folders of real downloads

import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import unicodedata  # noqa: E402


def _copy_record(part, src: str, stem: str) -> None:
    shutil.copy(part.images_dir / f"{src}.jpg", part.images_dir / f"{stem}.jpg")
    shutil.copy(part.annotations_dir / f"{src}.json", part.annotations_dir / f"{stem}.json")


def test_record_order_is_total_and_numeric_first():
    stems = ["007", "10", "²", "7", "a", "07", "2", "0", "٣", "1" + "0" * 5000]
    ordered = sorted(stems, key=natural_key)
    assert ordered == ["0", "2", "7", "07", "007", "10", "1" + "0" * 5000, "a", "²", "٣"]
    assert sorted(reversed(stems), key=natural_key) == ordered  # no ties: input order cannot leak through


def test_unicode_stems_are_records(make_release):
    manifest = make_release(n=2, parts=("train",))
    part = find_release(manifest.root).parts["train"]
    _copy_record(part, "0", "²")
    nfc, nfd = unicodedata.normalize("NFC", "é"), unicodedata.normalize("NFD", "é")
    shutil.copy(part.images_dir / "1.jpg", part.images_dir / f"{nfc}.jpg")
    shutil.copy(part.annotations_dir / "1.json", part.annotations_dir / f"{nfd}.json")  # saved on macOS
    os.close(os.open(os.fsencode(part.images_dir) + b"/\xff.jpg", os.O_CREAT | os.O_WRONLY))  # not UTF-8
    records, ignored = list_records(part)
    by_id = {r.image_id: r for r in records}
    assert [r.image_id for r in records] == ["0", "1", "²", nfc]
    assert by_id[nfc].image is not None and by_id[nfc].annotation is not None  # paired across normalisations
    assert [i.reason for i in ignored if "UTF-8" in i.reason]


def test_symlink_loops_are_listed_not_fatal(make_release):
    manifest = make_release(n=2)
    release_root = manifest.root
    os.symlink("loop", release_root / "loop")
    train = release_root / "human_annotated" / "train_set"
    os.symlink("x", train / "x")
    os.symlink("9.jpg", train / "images" / "9.jpg")
    shutil.rmtree(release_root / "no_human_annotated" / "images")
    os.symlink("images", release_root / "no_human_annotated" / "images")
    release = find_release(release_root)
    listed = {}
    for name, part in release.parts.items():
        records, ignored = list_records(part)
        listed.update({i.path.name: (name, i.reason) for i in ignored})
        assert len(records) == 2
    for name in ("loop", "x", "9.jpg", "images"):
        assert "cannot be followed" in listed[name][1] and "symbolic-link loop" in listed[name][1], name
    assert listed["images"][0] == "unlabeled"


def test_a_root_that_is_a_file_or_a_loop_has_its_own_message(tmp_path):
    (tmp_path / "AffectNet+.zip").write_bytes(b"PK")
    with pytest.raises(ReleaseNotFoundError, match="is a file, not a folder .a zip or tar archive: extract it first"):
        find_release(tmp_path / "AffectNet+.zip")
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(ReleaseNotFoundError, match="symbolic link that loops"):
        find_release(tmp_path / "loop")


def test_unknown_sibling_folders_are_listed_with_the_reason(make_release):
    manifest = make_release(n=2)
    human = manifest.root / "human_annotated"
    shutil.copytree(human / "train_set", human / "train")
    (human / "test_set").mkdir()
    (human / "validation_set" / "images_old").mkdir()
    release = find_release(manifest.root)
    ignored = {name: {i.path.name: i.reason for i in list_records(part)[1]} for name, part in release.parts.items()}
    assert "another folder for part train beside 'train_set', which was read" in ignored["train"]["train"]
    assert "not a folder of the AffectNet+ layout" in ignored["train"]["test_set"]
    assert "not a folder of the AffectNet+ layout" in ignored["validation"]["images_old"]
    assert [r.image_id for r in list_records(release.parts["train"])[0]] == ["0", "1"]  # train_set was read


_EXPORT = """
import hashlib, pathlib, sys
from affectnetplus_hf.exporter.writer import export
out = pathlib.Path(sys.argv[2])
export(sys.argv[1], out, num_proc=1, progress=False, card_plots=False)
for path in sorted(p for p in out.rglob("*") if p.is_file()):
    print(path.relative_to(out), hashlib.sha256(path.read_bytes()).hexdigest())
"""


def test_export_bytes_do_not_depend_on_the_hash_seed(make_release, tmp_path):
    manifest = make_release(n=3, parts=("train",))
    part = find_release(manifest.root).parts["train"]
    for stem in ("07", "007", "00", "²", "b", "a"):
        _copy_record(part, "1", stem)
    listings = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", _EXPORT, str(manifest.root), str(tmp_path / f"seed{seed}" / "affectnet_plus")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        listings.append(proc.stdout)
    assert ".parquet" in listings[0] and listings[0] == listings[1] == listings[2]


def _deny(monkeypatch, *blocked):
    """Make ``os.scandir`` refuse the ``blocked`` folders as a ``chmod 000`` does for a user
    who is not root (the tests may run as root, whom permissions do not stop)."""
    real = os.scandir
    blocked = {os.fspath(b) for b in blocked}

    def scandir(path="."):
        if os.fspath(path) in blocked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_folders_are_named_not_taken_for_missing_ones(make_release, monkeypatch):
    from affectnetplus_hf.release.reader import read_record

    manifest = make_release(n=2)
    human = manifest.root / "human_annotated"
    _deny(monkeypatch, human / "train_set", human / "validation_set" / "images")
    release = find_release(manifest.root)
    assert sorted(release.parts) == ["unlabeled", "validation"]  # train_set cannot be read
    records, ignored = list_records(release.parts["validation"])
    reasons = {i.path.name: i.reason for i in ignored}
    assert "folder cannot be listed (Permission denied)" in reasons["train_set"]  # not "another folder for part train"
    assert "folder cannot be listed (Permission denied)" in reasons["images"]
    assert len(records) == 2
    for files in records:
        reason = read_record(files).bad.reason
        assert reason.startswith("image missing: ") and "images cannot be listed (Permission denied)" in reason


def test_unreadable_root_or_parts_have_their_own_message(make_release, monkeypatch):
    manifest = make_release(n=2, parts=("train",))
    _deny(monkeypatch, manifest.root)
    with pytest.raises(
        ReleaseNotFoundError, match=r"folder cannot be listed \(Permission denied\).*check its permissions"
    ):
        find_release(manifest.root)
    monkeypatch.undo()
    _deny(monkeypatch, manifest.root / "human_annotated")
    with pytest.raises(
        ReleaseNotFoundError, match=r"no AffectNet\+ part could be read; .*human_annotated: folder cannot be listed"
    ):
        find_release(manifest.root)


def test_a_looping_images_folder_is_named_in_its_records_reason(make_release):
    from affectnetplus_hf.release.reader import read_record

    manifest = make_release(n=2, parts=("unlabeled",))
    unlabeled = manifest.root / "no_human_annotated"
    shutil.rmtree(unlabeled / "images")
    os.symlink("images", unlabeled / "images")
    records, _ = list_records(find_release(manifest.root).parts["unlabeled"])
    reasons = [read_record(files).bad.reason for files in records]
    assert len(reasons) == 2 and all("images cannot be followed (a symbolic-link loop" in r for r in reasons)


def test_paths_are_absolute_when_the_root_is_given_relative(make_release, monkeypatch):
    manifest = make_release(n=1, parts=("train",))
    monkeypatch.chdir(manifest.root.parent)
    release = find_release(manifest.root.name)
    assert release.root == manifest.root and release.root.is_absolute()
    records, _ = list_records(release.parts["train"])
    assert all(r.image.is_absolute() and r.annotation.is_absolute() for r in records)


def test_a_part_without_its_images_folder_says_so_in_each_record(make_release):
    from affectnetplus_hf.release.reader import read_record

    manifest = make_release(n=2, parts=("validation",))
    shutil.rmtree(manifest.root / "human_annotated" / "validation_set" / "images")
    records, _ = list_records(find_release(manifest.root).parts["validation"])
    reasons = [read_record(files).bad.reason for files in records]
    assert len(reasons) == 2 and all(
        r.startswith("image missing: ") and "validation_set has no images/ folder" in r for r in reasons
    )


def test_a_record_file_that_is_a_folder_or_a_broken_link_is_named_in_its_records_reason(make_release):
    from affectnetplus_hf.release.reader import read_record

    manifest = make_release(n=2, parts=("train",))
    part = find_release(manifest.root).parts["train"]
    (part.annotations_dir / "0.json").unlink()
    (part.annotations_dir / "0.json").mkdir()  # an annotation path that is a folder
    (part.images_dir / "1.jpg").unlink()
    os.symlink("gone.jpg", part.images_dir / "1.jpg")
    records, ignored = list_records(part)
    reasons = {files.image_id: read_record(files).bad.reason for files in records}
    assert reasons["0"].startswith("annotation missing: ") and "0.json is not a regular file (a folder" in reasons["0"]
    assert reasons["1"].startswith("image missing: ") and "1.jpg is a broken symbolic link" in reasons["1"]
    assert {i.path.name for i in ignored} == {"0.json", "1.jpg"}  # and both are listed as not read
