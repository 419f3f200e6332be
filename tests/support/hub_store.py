"""The state of the Hub-compatible test server: repos, commits, content-addressed blobs, faults.

TEST INFRASTRUCTURE ONLY (see :mod:`tests.support.hub_server`). Every commit is a full snapshot of
the tree, so any commit id resolves like a branch name; blobs live under ``root/blobs`` by
sha256 and the repos in ``root/state.json``. :class:`HubStore` holds it all; the routes in
:mod:`tests.support.hub_routes` read and change it under ``store.lock``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote

USER = "alice"
ORG = "my-lab"
#: Tokens the server knows by default (looking like real ones so a leak is easy to grep for).
TOKEN_WRITE = "hf_TestWriteTokenDoNotLeak0123456789abcd"
TOKEN_READ = "hf_TestReadTokenDoNotLeak0123456789abcde"

_PREFIXES = {"datasets": "dataset", "spaces": "space", "models": "model"}
_TYPE_PREFIX = {"dataset": "datasets/", "space": "spaces/", "model": ""}
_LFS_SUFFIXES = (
    ".parquet",
    ".arrow",
    ".jpg",
    ".jpeg",
    ".png",
    ".bin",
    ".safetensors",
    ".pt",
    ".zip",
    ".gz",
    ".npy",
    ".tar",
)
_LFS_THRESHOLD = 10 * 1024 * 1024
_GITATTRIBUTES = (
    "*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    "*.arrow filter=lfs diff=lfs merge=lfs -text\n"
    "*.jpg filter=lfs diff=lfs merge=lfs -text\n"
).encode()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def git_blob_oid(content: bytes) -> str:
    """The git object id of a blob (sha1 of ``blob <size>\\0<content>``)."""
    return hashlib.sha1(b"blob %d\x00" % len(content) + content).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclasses.dataclass
class FileEntry:
    path: str
    size: int
    sha256: str
    lfs: bool
    git_oid: str  # of the content (regular) or of the pointer file (LFS), as git would store it
    commit: str  # oid of the commit that last changed it

    def remote_oid(self) -> str:
        """What the preupload route reports: sha256 for LFS files, the git blob id otherwise."""
        return self.sha256 if self.lfs else self.git_oid


@dataclasses.dataclass
class Commit:
    oid: str
    title: str
    message: str
    date: str
    author: str
    parent: str | None
    files: dict[str, FileEntry]


@dataclasses.dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    gated: Any = False
    created_at: str = dataclasses.field(default_factory=_now)
    commits: dict[str, Commit] = dataclasses.field(default_factory=dict)
    branches: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def head(self) -> Commit:
        return self.commits[self.branches["main"]]


class HubError(Exception):
    """Answer the current request with ``status`` and Hub error headers."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


@dataclasses.dataclass
class _Fault:
    method: str
    pattern: re.Pattern
    status: int
    times: int
    after: bool  # True: perform the request, then answer the error (a lost response)
    skip: int = 0  # matching requests to let through before the fault starts


class HubStore:
    """Repos, blobs, the request log and the injected faults of one test Hub, stored under ``root``.

    ``tokens`` maps token -> (user, role) with role ``"write"`` or ``"read"``; ``orgs`` are the
    namespaces every known user may also write to. ``page_size`` caps tree listing pages (small
    values exercise the clients' pagination).
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        tokens: dict[str, tuple[str, str]] | None = None,
        orgs: tuple[str, ...] = (ORG,),
        page_size: int = 1000,
    ):
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="hub-server-"))
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "blobs").mkdir(exist_ok=True)
        (self.root / "incoming").mkdir(exist_ok=True)
        self.tokens = dict(tokens) if tokens is not None else {TOKEN_WRITE: (USER, "write"), TOKEN_READ: (USER, "read")}
        self.orgs = tuple(orgs)
        self.page_size = page_size
        self.repos: dict[tuple[str, str], Repo] = {}
        self.log: list[tuple[str, str, int]] = []  # (method, path with query, status): never headers
        self.ranges: list[tuple[str, str | None]] = []  # (path, Range header) of every resolve request
        self.faults: list[_Fault] = []
        #: Set to a base URL (a CDN's, e.g. a RangeFileServer over ``root / "blobs"``) to answer a
        #: ``resolve`` of an LFS file with ``302`` to ``<base><sha256>?...``, as the real Hub does.
        self.lfs_redirect: str | None = None
        self.lock = threading.RLock()
        self._counter = itertools.count()

    # ------------------------------------------------------------------ test helpers
    def inject(
        self, method: str, path_regex: str, status: int = 500, *, times: int = 1, after: bool = False, skip: int = 0
    ) -> None:
        """Answer ``times`` requests matching ``method`` and ``path_regex`` with ``status``, after
        letting the first ``skip`` matching requests through (``skip=2`` on the commit route fails
        the third commit: a push interrupted at that commit boundary).

        With ``after=True`` the request is carried out first and only its answer is replaced by
        the error: the client sees a failure for something that in fact happened (a lost response).
        """
        self.faults.append(_Fault(method.upper(), re.compile(path_regex), status, times, after, skip))

    def repo(self, repo_id: str, repo_type: str = "dataset") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> dict[str, bytes]:
        """path -> content of every file of a repo at ``revision``."""
        repo = self.repo(repo_id, repo_type)
        commit = self._commit_for(repo, revision)
        return {path: self.blob_path(entry.sha256).read_bytes() for path, entry in commit.files.items()}

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def stored_paths(self) -> list[Path]:
        """Every file the server has written (blobs, state, leftovers)."""
        return [p for p in self.root.rglob("*") if p.is_file()]

    # ------------------------------------------------------------------ state
    def _save(self) -> None:
        state = {
            f"{t}:{rid}": {
                "private": r.private,
                "gated": r.gated,
                "created_at": r.created_at,
                "branches": r.branches,
                "commits": {
                    oid: {**dataclasses.asdict(c), "files": {p: dataclasses.asdict(e) for p, e in c.files.items()}}
                    for oid, c in r.commits.items()
                },
            }
            for (t, rid), r in self.repos.items()
        }
        tmp = self.root / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, self.root / "state.json")

    def _store_blob(self, content: bytes) -> str:
        sha = hashlib.sha256(content).hexdigest()
        path = self.blob_path(sha)
        if not path.exists():
            tmp = self.root / "incoming" / f"{sha}.{next(self._counter)}"
            tmp.write_bytes(content)
            os.replace(tmp, path)
        return sha

    def _new_commit(
        self, repo: Repo, title: str, message: str, author: str, files: dict[str, FileEntry], branch: str = "main"
    ) -> Commit:
        parent = repo.branches.get(branch)
        seed = json.dumps(
            [repo.repo_id, parent, title, next(self._counter), sorted((p, e.sha256) for p, e in files.items())]
        )
        oid = hashlib.sha1(seed.encode()).hexdigest()
        for entry in files.values():
            if entry.commit == "":
                entry.commit = oid
        commit = Commit(oid=oid, title=title, message=message, date=_now(), author=author, parent=parent, files=files)
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        return commit

    def _entry(self, path: str, content: bytes, lfs: bool) -> FileEntry:
        sha = self._store_blob(content)
        git_oid = git_blob_oid(_lfs_pointer(sha, len(content)) if lfs else content)
        return FileEntry(path=path, size=len(content), sha256=sha, lfs=lfs, git_oid=git_oid, commit="")

    def _commit_for(self, repo: Repo, revision: str) -> Commit:
        revision = unquote(revision)
        if revision in repo.branches:
            return repo.commits[repo.branches[revision]]
        if revision in repo.commits:
            return repo.commits[revision]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            matches = [c for oid, c in repo.commits.items() if oid.startswith(revision)]
            if len(matches) == 1:
                return matches[0]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _create_repo(self, repo_type: str, repo_id: str, private: bool, user: str) -> Repo:
        repo = Repo(repo_type=repo_type, repo_id=repo_id, private=private)
        files = {".gitattributes": self._entry(".gitattributes", _GITATTRIBUTES, lfs=False)}
        self._new_commit(repo, "initial commit", "", user, files)
        self.repos[(repo_type, repo_id)] = repo
        self._save()
        return repo
