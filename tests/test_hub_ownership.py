"""Push deletes or replaces a Hub file only with proof that this package wrote it.

The proof is a manifest in the repo that carries the package's marker and format version
and agrees with the repo's card, listing the file with the sha256 its content still has.
A forged manifest, another tool's file of the same shape, or a user's file that a manifest
happens to list proves nothing; ``export_report.jsonl`` and any file push never sends are
never deleted, and every file left alone is named.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from affectnetplus_hf.core.export_files import GENERATOR, marker_problem, read_info
from affectnetplus_hf.errors import PublishError
from affectnetplus_hf.hub.publish import PENDING_FILE, exported_files, push
from tests.support.hub_fixtures import REPO_ID, make_export

pytestmark = pytest.mark.slow

#: Files of the user's, put in the repo by hand: none of them is ever sent by push.
USER_FILES = {
    "notes.md": b"# my notes about this repo\n",
    "data/mine.parquet": b"PAR1 my own table PAR1",
    "export_report.jsonl": b'{"kind": "my own report"}\n',
}


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    import affectnetplus_hf.hub.publish as hub_module

    monkeypatch.setattr(hub_module.time, "sleep", lambda seconds: None)


def _upload(files: dict[str, bytes], repo_id: str = REPO_ID) -> None:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=content) for rel, content in files.items()]
    api.create_commit(repo_id, operations=operations, commit_message="by hand", repo_type="dataset")


def _record(content: bytes) -> dict:
    return {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def _flip_last_byte(content: bytes) -> bytes:
    """Other bytes of the same size: only the sha256 tells them apart."""
    return content[:-1] + bytes([content[-1] ^ 1])


def _files_with(remote: dict[str, bytes], names, *, matching: bool) -> dict:
    return {name: _record(remote[name] if matching else _flip_last_byte(remote[name])) for name in names}


def _second_export(tmp_path):
    return make_export(tmp_path / "second", n=9, seed=5)


def test_export_info_carries_the_generator_marker_and_format_version(exported):
    info = read_info(exported)
    assert info["generator"] == GENERATOR == "affectnetplus-hf"
    assert isinstance(info["format_version"], int) and info["format_version"] >= 3
    assert marker_problem(info) is None
    older = {key: value for key, value in info.items() if key != "generator"}
    assert "generator" in marker_problem(older)
    assert "format_version" in marker_problem({**info, "format_version": 2})
    assert "newer" in marker_problem({**info, "format_version": info["format_version"] + 1})


@pytest.mark.parametrize("matching", [True, False], ids=["matching-hashes", "other-hashes"])
def test_a_forged_manifest_never_gets_user_files_deleted(hub, exported, tmp_path, matching):
    """A marked manifest that agrees with the card, forged to list the user's files (and the
    Hub's .gitattributes) with their true sha256 or with others: push never sends such files,
    so it never deletes them; they are named as left alone. Our own old shards still go."""
    from huggingface_hub import HfApi

    push(exported, REPO_ID, progress=False, echo=None)
    _upload(USER_FILES)
    remote = hub.files(REPO_ID)
    forged = json.loads(remote["export_info.json"])
    forged["files"].update(_files_with(remote, [*USER_FILES, ".gitattributes"], matching=matching))
    HfApi().upload_file(
        path_or_fileobj=json.dumps(forged).encode(),
        path_in_repo="export_info.json",
        repo_id=REPO_ID,
        repo_type="dataset",
    )
    gitattributes = remote[".gitattributes"]
    old = read_info(exported)["fingerprint"]

    messages: list[str] = []
    result = push(_second_export(tmp_path), REPO_ID, progress=False, echo=messages.append)

    after = hub.files(REPO_ID)
    assert {rel: after.get(rel) for rel in USER_FILES} == USER_FILES
    assert after[".gitattributes"] == gitattributes
    assert not set(result.deleted) & {*USER_FILES, ".gitattributes"}
    assert set(USER_FILES) <= set(result.left_alone)
    summary = next(m for m in messages if m.startswith("left alone"))
    assert all(rel in summary for rel in USER_FILES)
    # The shards of the previous export are ours (listed, unchanged): they are still removed.
    assert not any(p.startswith(f"data/{old}/") for p in after)
    assert any(p.startswith(f"data/{old}/") for p in result.deleted)


def test_a_users_export_report_survives_two_pushes(hub, exported, tmp_path):
    _upload({"export_report.jsonl": USER_FILES["export_report.jsonl"]})
    results = [push(exported, REPO_ID, progress=False, echo=None) for _ in range(2)]
    results.append(push(_second_export(tmp_path), REPO_ID, progress=False, echo=None))
    assert hub.files(REPO_ID)["export_report.jsonl"] == USER_FILES["export_report.jsonl"]
    assert all(r.left_alone == ["export_report.jsonl"] and "export_report.jsonl" not in r.deleted for r in results)


def test_a_shard_changed_on_the_hub_after_the_push_is_left_alone(hub, exported, tmp_path):
    """Our own manifest lists the shard, but its content there is no longer what it recorded."""
    push(exported, REPO_ID, progress=False, echo=None)
    shard = next(p for p in exported_files(exported) if p.startswith("data/"))
    theirs = _flip_last_byte((exported / shard).read_bytes())
    _upload({shard: theirs})

    result = push(_second_export(tmp_path), REPO_ID, progress=False, echo=None)

    assert hub.files(REPO_ID)[shard] == theirs
    assert shard in result.left_alone and shard not in result.deleted
    assert result.deleted  # the untouched shards of that export are removed


@pytest.mark.parametrize("marker", [False, True], ids=["no-marker", "our-marker"])
def test_another_tools_manifest_of_the_same_shape_neither_overwrites_nor_deletes(hub, exported, marker):
    """A repo of another tool: its own card, data and an export_info.json of our shape listing
    them all with their true sha256. Without our marker it proves nothing; with it, it still
    disagrees with the card. Push refuses to replace their card and deletes nothing."""
    fingerprint = "0123456789abcdef"
    theirs = {
        "README.md": b"---\nconfigs:\n- config_name: default\n  data_files: data/mine.parquet\n---\n# their dataset\n",
        f"data/{fingerprint}/train/easy-00000-of-00001.parquet": b"PAR1 their shard PAR1",
        **USER_FILES,
    }
    info = {
        "format_version": 3 if marker else 2,
        "fingerprint": fingerprint,
        "data_dir": f"data/{fingerprint}",
        "parts": {"train": {"num_shards": 1, "partitions": ["easy"], "rows": {"easy": 1}}},
        "files": {rel: _record(content) for rel, content in theirs.items()},
    }
    if marker:
        info["generator"] = GENERATOR
    _upload({**theirs, "export_info.json": json.dumps(info).encode()})
    before = hub.files(REPO_ID)
    commits = len(hub.repo(REPO_ID).commits)

    with pytest.raises(PublishError) as err:
        push(exported, REPO_ID, progress=False, echo=None)

    assert "README.md" in str(err.value) and "Nothing was uploaded" in str(err.value)
    assert hub.files(REPO_ID) == before and len(hub.repo(REPO_ID).commits) == commits


def test_an_unmarked_manifest_over_our_export_gets_nothing_deleted(hub, exported, tmp_path):
    """Another tool rewrote export_info.json after our push, same shape, no marker, listing our
    shards and the user's files with their true sha256: nothing it lists is deleted; each is named."""
    from huggingface_hub import HfApi

    push(exported, REPO_ID, progress=False, echo=None)
    _upload(USER_FILES)
    remote = hub.files(REPO_ID)
    other = json.loads(remote["export_info.json"])
    other.pop("generator", None)
    other["format_version"] = 2
    other["files"].update(_files_with(remote, USER_FILES, matching=True))
    HfApi().upload_file(
        path_or_fileobj=json.dumps(other).encode(),
        path_in_repo="export_info.json",
        repo_id=REPO_ID,
        repo_type="dataset",
    )
    before = set(hub.files(REPO_ID))

    messages: list[str] = []
    newer = _second_export(tmp_path)
    result = push(newer, REPO_ID, progress=False, echo=messages.append)

    assert result.deleted == []
    assert before - set(exported_files(newer)) <= set(hub.files(REPO_ID))  # nothing went
    assert set(result.left_alone) == before - set(exported_files(newer)) - {".gitattributes"}
    assert any("older version" in m and "never deleted" in m for m in messages)
    assert {
        p for p in hub.files(REPO_ID) if p.startswith("data/") and "/" + read_info(newer)["fingerprint"] + "/" in p
    } == {p for p in exported_files(newer) if p.startswith("data/")}


def test_an_interrupted_push_is_cleaned_up_but_a_forged_pending_record_deletes_no_user_file(hub, exported, tmp_path):
    """The record of an interrupted push (publishing-in-progress/) still lets the next push
    remove the shards it sent; entries forged into it for the user's files delete nothing."""
    from huggingface_hub import HfApi

    hub.inject(
        "POST", rf"/{REPO_ID}/commit/main$", 503, skip=2, times=10
    )  # placeholder and 1st shard commit go through
    with pytest.raises(PublishError):
        push(exported, REPO_ID, progress=False, echo=None, retries=0, max_files_per_commit=3)
    hub.faults.clear()
    remote = hub.files(REPO_ID)
    pending = json.loads(remote[PENDING_FILE])
    assert marker_problem(pending) is None  # the record is marked as ours, like a manifest
    sent = [p for p in remote if p.startswith("data/")]
    assert sent and set(sent) <= set(pending["files"])

    _upload(USER_FILES)
    pending["files"].update(_files_with(hub.files(REPO_ID), USER_FILES, matching=True))
    HfApi().upload_file(
        path_or_fileobj=json.dumps(pending).encode(), path_in_repo=PENDING_FILE, repo_id=REPO_ID, repo_type="dataset"
    )

    newer = _second_export(tmp_path)
    result = push(newer, REPO_ID, progress=False, echo=None)

    after = hub.files(REPO_ID)
    assert {rel: after.get(rel) for rel in USER_FILES} == USER_FILES
    assert set(sent) <= set(result.deleted) and not set(sent) & set(after)
    assert set(after) - {".gitattributes"} == set(exported_files(newer)) | set(USER_FILES)
    assert result.left_alone == sorted(USER_FILES)
