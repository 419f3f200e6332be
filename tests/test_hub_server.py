"""The Hub-compatible test server answers the real huggingface_hub client the way the Hub does.

These pin the behaviours the push and streaming tests rely on: paginated listings, paths-info,
byte ranges with the Hub's headers, auth and privacy.
"""

from __future__ import annotations

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, HfFileSystem, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.support.hub_server import TOKEN_WRITE

pytestmark = pytest.mark.slow

REPO = "my-lab/files"


def _make_repo(private: bool = True) -> dict[str, bytes]:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset", private=private)
    files = {f"data/part{i // 4}/f{i:02d}.txt": f"file {i}\n".encode() * (i + 1) for i in range(10)}
    files["blob.parquet"] = bytes(range(256)) * 40
    api.create_commit(
        REPO,
        [CommitOperationAdd(path_in_repo=p, path_or_fileobj=c) for p, c in files.items()],
        commit_message="files",
        repo_type="dataset",
    )
    return files


def test_tree_listing_is_paginated_and_recursive(hub):
    files = _make_repo()
    hub.page_size = 3
    api = HfApi()
    listed = [e.path for e in api.list_repo_tree(REPO, repo_type="dataset", recursive=True)]
    assert set(files) <= set(listed) and {"data", "data/part0", "data/part2"} <= set(listed)
    assert len(listed) == len(set(listed))
    assert sum("cursor=" in path for _, path, _ in hub.log) >= 3  # followed the Link headers
    top = [e.path for e in api.list_repo_tree(REPO, repo_type="dataset")]
    assert sorted(top) == [".gitattributes", "blob.parquet", "data"]
    fs = HfFileSystem()
    assert sorted(fs.glob(f"datasets/{REPO}/data/*/*.txt")) == sorted(
        f"datasets/{REPO}/{p}" for p in files if p.endswith(".txt")
    )


def test_paths_info_and_lfs_metadata(hub):
    files = _make_repo()
    infos = HfApi().get_paths_info(REPO, ["blob.parquet", "data", "missing.txt"], repo_type="dataset")
    by_path = {i.path: i for i in infos}
    assert set(by_path) == {"blob.parquet", "data"}
    assert by_path["blob.parquet"].size == len(files["blob.parquet"])
    assert by_path["blob.parquet"].lfs is not None  # parquet goes through LFS, like on the Hub


def test_resolve_serves_ranges_with_hub_headers(hub):
    files = _make_repo()
    url = f"{hub.url}/datasets/{REPO}/resolve/main/blob.parquet"
    auth = {"authorization": f"Bearer {TOKEN_WRITE}"}
    content = files["blob.parquet"]
    head = httpx2.head(url, headers=auth)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(content)
    assert head.headers["x-repo-commit"] == hub.repo(REPO).head.oid and head.headers["etag"]
    for header, expected in (
        ("bytes=10-19", content[10:20]),
        ("bytes=-7", content[-7:]),
        ("bytes=10000-", content[10000:]),
    ):
        r = httpx2.get(url, headers={**auth, "range": header})
        assert r.status_code == 206 and r.content == expected, header
    assert httpx2.get(url, headers={**auth, "range": f"bytes={len(content)}-"}).status_code == 416
    path = hf_hub_download(REPO, "data/part1/f05.txt", repo_type="dataset")
    assert open(path, "rb").read() == files["data/part1/f05.txt"]


def test_auth_and_privacy(hub, monkeypatch):
    _make_repo(private=True)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(RepositoryNotFoundError):
        HfApi().dataset_info(REPO, token=False)  # a private repo does not exist for strangers
    with pytest.raises(HfHubHTTPError) as err:
        HfApi().dataset_info(REPO, token="hf_NotAKnownToken000000000000000000000")
    assert err.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as err:
        HfApi().create_repo("my-lab/new", repo_type="dataset", token=False)
    assert err.value.response.status_code == 401
    HfApi().update_repo_settings(REPO, repo_type="dataset", private=False, token=TOKEN_WRITE)
    assert HfApi().dataset_info(REPO, token=False).private is False  # public: readable anonymously
