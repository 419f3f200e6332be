"""The HTTP routes of the Hub-compatible test server: what the real clients call, and no more.

TEST INFRASTRUCTURE ONLY (see :mod:`tests.support.hub_server` for the list of routes). A handler class
is bound to one :class:`tests.support.hub_store.HubStore` by :func:`_make_handler`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .hub_store import (
    _LFS_SUFFIXES,
    _LFS_THRESHOLD,
    _PREFIXES,
    _TYPE_PREFIX,
    Commit,
    FileEntry,
    HubError,
    HubStore,
    Repo,
    _lfs_pointer,
    _now,
    git_blob_oid,
)


def _make_handler(server: HubStore):
    class Handler(_HubHandler):
        hub = server

    return Handler


def _tree_oid(path: str, entries: list[FileEntry]) -> str:
    return hashlib.sha1(json.dumps([path, sorted((e.path, e.git_oid) for e in entries)]).encode()).hexdigest()


class _HubHandler(BaseHTTPRequestHandler):
    hub: HubStore
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeHub/1.0"

    def log_message(self, format: str, *args) -> None:  # quiet: the server keeps its own log
        pass

    # -------------------------------------------------------------- plumbing
    def _body(self) -> bytes:
        return self._request_body

    def _read_body(self) -> bytes:
        """The whole request body, read before routing so that keep-alive stays in sync on errors."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        if self._suppress:  # an injected "lost response": the work is done, this answer is dropped
            self._suppress = False
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self._status = status

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send(err.status, json.dumps({"error": err.message, **err.extra}).encode(), headers)

    def _user(self) -> tuple[str, str] | None:
        """(user, role) for a valid bearer token, None without one; 401 for an unknown token."""
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        known = self.hub.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if known is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return known

    def _require_user(self) -> tuple[str, str]:
        user = self._user()
        if user is None:
            raise HubError(401, "You must be authenticated to access this resource (send a bearer token).")
        return user

    def _may_write(self, user: tuple[str, str], namespace: str) -> None:
        name, role = user
        if role != "write" or namespace not in (name, *self.hub.orgs):
            raise HubError(403, f"You don't have the rights to write to {namespace} (token role {role!r}).")

    def _repo(self, repo_type: str, repo_id: str, *, write: bool = False) -> Repo:
        user = self._user()
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and user is None):
            # Like the Hub: a private repo is indistinguishable from a missing one without auth.
            raise HubError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        if write:
            if user is None:
                raise HubError(401, "Repository not found", "RepoNotFound")
            self._may_write(user, repo_id.split("/")[0])
        return repo

    # -------------------------------------------------------------- dispatch
    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    _suppress = False

    def _dispatch(self) -> None:
        self._status = 0
        self._suppress = False
        self._logged = False
        self._request_body = self._read_body()
        split = urlsplit(self.path)
        segments = [unquote(s) for s in split.path.split("/")[1:]]
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        method = self.command
        fault = None
        with self.hub.lock:
            for f in self.hub.faults:
                if f.times > 0 and f.method == method and f.pattern.search(split.path):
                    if f.skip > 0:
                        f.skip -= 1
                        continue
                    f.times -= 1
                    fault = f
                    break
        try:
            if fault is not None and not fault.after:
                raise HubError(fault.status, "injected fault")
            self._suppress = fault is not None and fault.after
            self._route(method, segments, query, split)
            if fault is not None:  # after=True: the work is done, the answer is lost
                raise HubError(fault.status, "injected fault (after the work was done)")
        except HubError as err:
            if self._status:  # a response already went out: cannot send another on this connection
                self.close_connection = True
            else:
                self._error(err)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # pragma: no cover - a bug in this server: make it visible
            if not self._status:
                self._error(HubError(500, f"server error: {type(exc).__name__}: {exc}"))
            raise
        finally:
            if not self._logged:  # no answer went out (connection dropped)
                with self.hub.lock:
                    self.hub.log.append((method, self.path, 0))

    def send_response(self, code: int, message: str | None = None) -> None:
        # Logged before the answer is written, so a client never sees a response the log lacks.
        with self.hub.lock:
            self.hub.log.append((self.command, self.path, code))
        self._logged = True
        super().send_response(code, message)

    def _route(self, method: str, seg: list[str], query: dict[str, str], split) -> None:
        if seg[:1] == ["api"]:
            rest = seg[1:]
            if rest == ["whoami-v2"] and method == "GET":
                return self._whoami()
            if rest == ["repos", "create"] and method == "POST":
                return self._create()
            if rest == ["repos", "delete"] and method in ("POST", "DELETE"):
                return self._delete()
            if rest == ["validate-yaml"] and method == "POST":
                self._body()
                return self._json({})
            if len(rest) >= 3 and rest[0] in _PREFIXES:
                repo_type = _PREFIXES[rest[0]]
                repo_id = f"{rest[1]}/{rest[2]}"
                tail = rest[3:]
                if not tail and method == "GET":
                    return self._info(repo_type, repo_id, "main", query)
                action = tail[0] if tail else ""
                if action == "revision" and method == "GET" and len(tail) >= 2:
                    return self._info(repo_type, repo_id, "/".join(tail[1:]), query)
                if action == "tree" and method == "GET" and len(tail) >= 2:
                    return self._tree(repo_type, repo_id, tail[1], "/".join(tail[2:]), query, split)
                if action == "paths-info" and method == "POST" and len(tail) >= 2:
                    return self._paths_info(repo_type, repo_id, "/".join(tail[1:]))
                if action == "commits" and method == "GET" and len(tail) >= 2:
                    return self._commits(repo_type, repo_id, "/".join(tail[1:]))
                if action == "auth-check" and method == "GET" and len(tail) == 1:  # datasets 3.0 asks first
                    self._repo(repo_type, repo_id)  # 401 / 404 like the Hub; no gate-access requests here
                    return self._json({})
                if action == "refs" and method == "GET":
                    return self._refs(repo_type, repo_id)
                if action == "preupload" and method == "POST" and len(tail) >= 2:
                    return self._preupload(repo_type, repo_id, "/".join(tail[1:]))
                if action == "commit" and method == "POST" and len(tail) >= 2:
                    return self._commit(repo_type, repo_id, "/".join(tail[1:]))
                if action == "settings" and method == "PUT":
                    return self._settings(repo_type, repo_id)
                if action == "branch" and method == "POST" and len(tail) >= 2:
                    return self._branch(repo_type, repo_id, "/".join(tail[1:]))
            raise HubError(404, f"no such API route: {method} {split.path}")
        if seg[:1] == ["lfs-upload"] and method == "PUT" and len(seg) == 2:
            return self._lfs_put(seg[1])
        # /{prefix}{ns}/{name}.git/info/lfs/objects/batch and /{prefix}{ns}/{name}/resolve/{rev}/{path}
        repo_type, rest = "model", seg
        if seg and seg[0] in _PREFIXES:
            repo_type, rest = _PREFIXES[seg[0]], seg[1:]
        if (
            len(rest) >= 6
            and rest[1].endswith(".git")
            and rest[2:] == ["info", "lfs", "objects", "batch"]
            and method == "POST"
        ):
            return self._lfs_batch(repo_type, f"{rest[0]}/{rest[1][:-4]}")
        if len(rest) >= 5 and rest[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(repo_type, f"{rest[0]}/{rest[1]}", rest[3], "/".join(rest[4:]))
        raise HubError(404, f"no such route: {method} {split.path}")

    # -------------------------------------------------------------- account and repos
    def _whoami(self) -> None:
        name, role = self._require_user()
        self._json(
            {
                "type": "user",
                "id": hashlib.sha1(name.encode()).hexdigest()[:24],
                "name": name,
                "fullname": name.title(),
                "orgs": [{"type": "org", "name": org, "fullname": org, "roleInOrg": "admin"} for org in self.hub.orgs],
                "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": role}},
            }
        )

    def _create(self) -> None:
        user = self._require_user()
        payload = json.loads(self._body() or b"{}")
        name = payload.get("name")
        namespace = payload.get("organization") or user[0]
        repo_type = payload.get("type") or "model"
        if not name or repo_type not in _TYPE_PREFIX:
            raise HubError(400, f"bad create payload: name={name!r} type={repo_type!r}")
        self._may_write(user, namespace)
        visibility = payload.get("visibility")
        private = bool(payload.get("private", False)) if visibility is None else visibility == "private"
        repo_id = f"{namespace}/{name}"
        with self.hub.lock:
            url = f"{self.hub.url}/{_TYPE_PREFIX[repo_type]}{repo_id}"
            if (repo_type, repo_id) in self.hub.repos:
                raise HubError(409, "You already created this repo", extra={"url": url})
            self.hub._create_repo(repo_type, repo_id, private, user[0])
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _delete(self) -> None:
        user = self._require_user()
        payload = json.loads(self._body() or b"{}")
        namespace = payload.get("organization") or user[0]
        repo_id = f"{namespace}/{payload.get('name')}"
        repo_type = payload.get("type") or "model"
        self._may_write(user, namespace)
        with self.hub.lock:
            if self.hub.repos.pop((repo_type, repo_id), None) is None:
                raise HubError(404, "Repository not found", "RepoNotFound")
            self.hub._save()
        self._json({})

    def _settings(self, repo_type: str, repo_id: str) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        payload = json.loads(self._body() or b"{}")
        with self.hub.lock:
            if "gated" in payload:
                if payload["gated"] not in ("auto", "manual", False):
                    raise HubError(400, f"gated must be 'auto', 'manual' or false, got {payload['gated']!r}")
                repo.gated = payload["gated"]
            if "visibility" in payload:
                repo.private = payload["visibility"] == "private"
            elif "private" in payload:
                repo.private = bool(payload["private"])
            self.hub._save()
        self._json({})

    def _branch(self, repo_type: str, repo_id: str, branch: str) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        payload = json.loads(self._body() or b"{}")
        with self.hub.lock:
            if branch in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            start = self.hub._commit_for(repo, payload.get("startingPoint") or "main")
            repo.branches[branch] = start.oid
            self.hub._save()
        self._json({})

    def _card_data(self, commit: Commit) -> dict | None:
        entry = commit.files.get("README.md")
        if entry is None:
            return None
        import yaml

        text = self.hub.blob_path(entry.sha256).read_text(encoding="utf-8")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
        if not match:
            return None
        try:
            data = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            return None
        return data if isinstance(data, dict) else None

    def _info(self, repo_type: str, repo_id: str, revision: str, query: dict[str, str]) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self.hub._commit_for(repo, revision)
        blobs = query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=entry.size, blobId=entry.git_oid)
                if entry.lfs:
                    sibling["lfs"] = {"size": entry.size, "sha256": entry.sha256, "pointerSize": 134}
            siblings.append(sibling)
        info = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(e.size for e in commit.files.values()),
        }
        card = self._card_data(commit)
        if card is not None:
            info["cardData"] = card
        self._json(info)

    # -------------------------------------------------------------- read routes
    def _path_info(self, commit: Commit, path: str, expand: bool) -> dict | None:
        entry = commit.files.get(path)
        last = None
        if entry is not None:
            info: dict[str, Any] = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": path}
            if entry.lfs:
                info["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": 134}
            last = entry.commit
            if expand:
                info["securityFileStatus"] = {
                    "status": "safe",
                    "avScan": {"virusFound": False},
                    "pickleImportScan": None,
                }
        else:
            prefix = path + "/" if path else ""
            inside = [e for p, e in commit.files.items() if p.startswith(prefix)]
            if not inside:
                return None
            info = {"type": "directory", "oid": _tree_oid(path, inside), "size": 0, "path": path}
            last = max(inside, key=lambda e: self._commit_rank(e.commit)).commit
        if expand:
            repo_commit = self._find_commit(last)
            info["lastCommit"] = {
                "id": last,
                "title": repo_commit.title if repo_commit else "",
                "date": repo_commit.date if repo_commit else _now(),
            }
        return info

    def _commit_rank(self, oid: str) -> int:
        for repo in self.hub.repos.values():
            if oid in repo.commits:
                return list(repo.commits).index(oid)
        return -1

    def _find_commit(self, oid: str) -> Commit | None:
        for repo in self.hub.repos.values():
            if oid in repo.commits:
                return repo.commits[oid]
        return None

    def _listing(self, commit: Commit, path: str, recursive: bool) -> list[str]:
        """Paths under ``path`` (files and folders), folders before their content, sorted."""
        if path in commit.files:
            return [path]
        prefix = path + "/" if path else ""
        below = [p for p in commit.files if p.startswith(prefix)]
        if path and not below:
            raise HubError(404, f"{path} does not exist on this revision", "EntryNotFound")
        out: set[str] = set()
        for p in below:
            parts = p[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, min(depth, len(parts)) + 1):
                out.add(prefix + "/".join(parts[:i]))
        return sorted(out)

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str, query: dict[str, str], split) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self.hub._commit_for(repo, revision)
        recursive = query.get("recursive", "").lower() in ("1", "true")
        expand = query.get("expand", "").lower() in ("1", "true")
        paths = self._listing(commit, path.strip("/"), recursive)
        page_size = max(1, min(self.hub.page_size, 50 if expand else self.hub.page_size))
        start = int(query.get("cursor") or 0)
        page = [self._path_info(commit, p, expand) for p in paths[start : start + page_size]]
        headers = {}
        if start + page_size < len(paths):
            params = {**query, "cursor": str(start + page_size)}
            next_url = f"{self.hub.url}{split.path}?" + "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._json(page, headers=headers)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self.hub._commit_for(repo, revision)
        body = self._body().decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            payload = json.loads(body or "{}")
            paths, expand = payload.get("paths", []), bool(payload.get("expand"))
        else:
            form = parse_qs(body, keep_blank_values=True)
            paths = form.get("paths", [])
            expand = (form.get("expand", ["false"])[-1]).lower() in ("1", "true")
        out = [info for p in paths if (info := self._path_info(commit, p.strip("/"), expand)) is not None]
        self._json(out)

    def _commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        commit: Commit | None = self.hub._commit_for(repo, revision)
        out = []
        while commit is not None:
            out.append(
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.message,
                    "date": commit.date,
                    "authors": [{"user": commit.author}],
                }
            )
            commit = repo.commits.get(commit.parent) if commit.parent else None
        self._json(out)

    def _refs(self, repo_type: str, repo_id: str) -> None:
        repo = self._repo(repo_type, repo_id)
        branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": oid} for n, oid in repo.branches.items()]
        self._json({"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self.hub._commit_for(repo, revision)
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        size = entry.size
        etag = f'"{entry.sha256 if entry.lfs else entry.git_oid}"'
        headers = {"X-Repo-Commit": commit.oid, "ETag": etag, "Accept-Ranges": "bytes"}
        if entry.lfs:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(size)})
        if entry.lfs and self.hub.lfs_redirect:  # the bytes come from elsewhere, signed; the headers from here
            if self._suppress:
                return
            location = f"{self.hub.lfs_redirect}{entry.sha256}?X-Amz-Signature=test-signature"
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self._status = 302
            return
        start, end = 0, size - 1
        status = 200
        range_header = self.headers.get("Range")
        with self.hub.lock:
            self.hub.ranges.append((path, range_header))
        if range_header:
            match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header)
            if not match or (match.group(1) == "" and match.group(2) == ""):
                raise HubError(416, f"unsupported Range {range_header!r}")
            first, last = match.groups()
            if first == "":
                start, end = max(0, size - int(last)), size - 1
            else:
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
            if start >= size or start > end:
                self._send(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1 if size else 0
        if self._suppress:
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self._status = status
        if self.command == "HEAD" or length == 0:
            return
        with open(self.hub.blob_path(entry.sha256), "rb") as handle:
            self.connection.sendfile(handle, offset=start, count=length)

    # -------------------------------------------------------------- write routes
    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        payload = json.loads(self._body() or b"{}")
        commit = self.hub._commit_for(repo, revision)
        out = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item["size"])
            sample = base64.b64decode(item.get("sample", ""))
            lfs = path.lower().endswith(_LFS_SUFFIXES) or size > _LFS_THRESHOLD or b"\x00" in sample
            existing = commit.files.get(path)
            out.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": existing.remote_oid() if existing is not None else None,
                }
            )
        self._json({"files": out, "commitOid": commit.oid})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        self._repo(repo_type, repo_id, write=True)
        payload = json.loads(self._body() or b"{}")
        if payload.get("operation") != "upload":
            raise HubError(400, "only the upload operation is supported")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            blob = self.hub.blob_path(oid)
            if blob.exists() and blob.stat().st_size == size:
                objects.append({"oid": oid, "size": size})  # already there: nothing to upload
            else:
                objects.append(
                    {
                        "oid": oid,
                        "size": size,
                        "authenticated": True,
                        "actions": {"upload": {"href": f"{self.hub.url}/lfs-upload/{oid}", "header": {}}},
                    }
                )
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_put(self, oid: str) -> None:
        content = self._body()
        if hashlib.sha256(content).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its sha256")
        self.hub._store_blob(content)
        self._send(200, b"")

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        user = self._user()
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        with self.hub.lock:
            revision = unquote(revision)
            if revision not in repo.branches:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            head = repo.commits[repo.branches[revision]]
            if header.get("parentCommit") and header["parentCommit"] != head.oid:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = {p: dataclasses.replace(e) for p, e in head.files.items()}
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value", {})
                path = value.get("path", "").strip("/")
                if key == "file":
                    content = (
                        base64.b64decode(value["content"])
                        if value.get("encoding") == "base64"
                        else value["content"].encode()
                    )
                    files[path] = self.hub._entry(path, content, lfs=False)
                elif key == "lfsFile":
                    blob = self.hub.blob_path(value["oid"])
                    if not blob.exists():
                        raise HubError(422, f"LFS object {value['oid']} for {path} was never uploaded")
                    size = blob.stat().st_size
                    files[path] = FileEntry(
                        path, size, value["oid"], True, git_blob_oid(_lfs_pointer(value["oid"], size)), ""
                    )
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    doomed = [p for p in files if p.startswith(path + "/")]
                    if not doomed:
                        raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in doomed:
                        del files[p]
                else:
                    raise HubError(400, f"unknown commit operation {key!r}")
            commit = self.hub._new_commit(
                repo, header.get("summary", ""), header.get("description", ""), user[0], files, revision
            )
            self.hub._save()
        url = f"{self.hub.url}/{_TYPE_PREFIX[repo_type]}{repo_id}/commit/{commit.oid}"
        self._json({"success": True, "commitOid": commit.oid, "commitUrl": url, "pullRequestUrl": None})
