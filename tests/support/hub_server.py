"""A Hub-compatible HTTP server for tests: the routes the real clients call, and no more.

TEST INFRASTRUCTURE ONLY. It is never shipped with the package and never used by it; it lets
the real ``huggingface_hub`` (``HfApi``, ``HfFileSystem``, ``hf_hub_download``) and the real
``datasets`` (``load_dataset(repo_id, streaming=True)``) talk to 127.0.0.1 instead of the Hub,
so that push and streaming are tested end to end without a network.

What it implements (paths as the clients build them; ``{t}`` is ``dataset``, ``model`` or
``space``, ``{p}`` the URL prefix ``datasets/``, ``""`` or ``spaces/``)::

    GET  /api/whoami-v2
    POST /api/repos/create                  json {name, organization, type, visibility|private}
    POST /api/repos/delete
    PUT  /api/{t}s/{repo}/settings          json {gated, visibility|private}
    GET  /api/{t}s/{repo}[/revision/{rev}]  repo info (sha, private, gated, siblings, cardData)
    GET  /api/{t}s/{repo}/tree/{rev}[/{path}]?recursive=&expand=&cursor=   paginated (Link header)
    POST /api/{t}s/{repo}/paths-info/{rev}  form paths=...&expand=
    GET  /api/{t}s/{repo}/commits/{rev}
    GET  /api/{t}s/{repo}/refs
    GET  /api/{t}s/{repo}/auth-check        read access ({} or 401/404), asked by datasets 3.0
    POST /api/{t}s/{repo}/preupload/{rev}   upload mode (lfs|regular) and the remote oid per file
    POST /api/{t}s/{repo}/commit/{rev}      NDJSON: header, file, lfsFile, deletedFile, deletedFolder
    POST /api/{t}s/{repo}/branch/{branch}   json {startingPoint}
    POST /api/validate-yaml
    POST /{p}{repo}.git/info/lfs/objects/batch   LFS batch API, basic transfer
    PUT  /lfs-upload/{sha256}               the "presigned" upload URL handed out by the batch call
    GET|HEAD /{p}{repo}/resolve/{rev}/{path}     with Range (206 / 416), ETag, X-Repo-Commit,
                                                 X-Linked-Etag / X-Linked-Size for LFS files

Auth: a request carries ``Authorization: Bearer <token>``. An unknown token gets 401
("Invalid credentials in Authorization header"); no token gets 401 everywhere except reads of
public repos; a private repo is invisible (401 RepoNotFound) without a token; a ``read`` token
that tries to write gets 403. Xet is not offered: clients must run with
``HF_HUB_DISABLE_XET=1`` (or without ``hf_xet``) and use the LFS basic transfer.

The code is in four modules: the state in :mod:`tests.support.hub_store` (content-addressed blobs and
a ``state.json`` under ``root``; every commit is a full snapshot of the tree, so any commit id
resolves like a branch name), the routes in :mod:`tests.support.hub_routes`, the client set-up in
:mod:`tests.support.hub_clients`, and here the servers themselves (this one and a plain static file
server with or without HTTP Range) and the fixture body.

Pointing the clients at it: both libraries read ``HF_ENDPOINT`` when imported, so
:func:`point_clients_at` re-points every module constant that caches it (see its docstring).
The ``hub`` pytest fixture (:func:`hub_fixture`) does both and stops the server afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .hub_clients import point_clients_at
from .hub_routes import _make_handler
from .hub_store import TOKEN_READ, TOKEN_WRITE, USER, HubStore

__all__ = [
    "HubServer",
    "NoRangeServer",
    "RangeFileServer",
    "TOKEN_READ",
    "TOKEN_WRITE",
    "USER",
    "free_port",
    "hub_fixture",
    "point_clients_at",
    "running_hub",
]


class _QuietServer(ThreadingHTTPServer):
    """Clients that close a connection early (a ranged read done) are normal, not errors."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


class _BackgroundServer:
    """A ``_QuietServer`` served from a daemon thread: its URL, start and stop, for both test servers."""

    _httpd: "_QuietServer"
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def _serve_in_background(self, name: str) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=name, daemon=True)
        self._thread.start()

    def _shut_down(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


class HubServer(HubStore, _BackgroundServer):
    """A threaded Hub-compatible server on ``127.0.0.1`` at a free port, storing under ``root``
    (see :class:`tests.support.hub_store.HubStore` for the options). Use as a context manager or call
    :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self, root: str | os.PathLike | None = None, *, host: str = "127.0.0.1", port: int = 0, **store_options
    ):
        super().__init__(root, **store_options)
        self._httpd = _QuietServer((host, port), _make_handler(self))

    def start(self) -> "HubServer":
        self._serve_in_background("hub-server")
        return self

    def stop(self) -> None:
        self._shut_down()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def running_hub(root: str | os.PathLike | None = None, **kwargs):
    """``with running_hub(root) as hub:`` a started :class:`HubServer`, stopped on exit."""
    server = HubServer(root, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def hub_fixture(tmp_path, monkeypatch):
    """Body of the ``hub`` fixture: a started server, clients pointed at it, write token in HF_TOKEN."""
    import huggingface_hub

    with running_hub(tmp_path / "hub-server") as server:
        point_clients_at(server.url, monkeypatch)
        monkeypatch.setenv("HF_TOKEN", TOKEN_WRITE)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        # raising=False: older huggingface_hub (the floor, docs/compatibility.md) has no Xet transfer
        # and no stored-tokens file, hence neither constant
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True, raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
        monkeypatch.setattr(
            huggingface_hub.constants,
            "HF_STORED_TOKENS_PATH",
            str(tmp_path / "no-login" / "stored_tokens"),
            raising=False,
        )
        yield server
        # HfFileSystem instances are cached per (endpoint, token): drop them with the server.
        from huggingface_hub import HfFileSystem

        HfFileSystem.clear_instance_cache()


# ---------------------------------------------------------------------- plain static file servers


class RangeFileServer(_BackgroundServer):
    """A static file server over a folder, like a lab's web server, with or without HTTP Range.

    ``ranges=True`` answers ``Range: bytes=a-b`` with 206 (what nginx or S3 do);
    ``ranges=False`` ignores Range and sends the whole file with 200, as Python's own
    ``python -m http.server`` does.
    """

    def __init__(self, folder: str | os.PathLike, *, ranges: bool = True, host: str = "127.0.0.1"):
        self.folder = Path(folder)
        self.ranges = ranges
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.authorized: list[bool] = []  # per request: whether it carried an Authorization header
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._serve()

            def do_GET(self):
                self._serve()

            def _serve(self):
                outer.requests.append((self.command, self.path, self.headers.get("Range")))
                outer.authorized.append("Authorization" in self.headers)
                rel = unquote(urlsplit(self.path).path).lstrip("/")
                target = (outer.folder / rel).resolve()
                if outer.folder.resolve() not in target.parents or not target.is_file():
                    body = b"not found"
                    self.send_response(404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command == "GET":
                        self.wfile.write(body)
                    return
                size = target.stat().st_size
                start, end, status = 0, size - 1, 200
                match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
                if outer.ranges and match and (match.group(1) or match.group(2)):
                    first, last = match.groups()
                    if first == "":
                        start = max(0, size - int(last))
                    else:
                        start, end = int(first), min(int(last), size - 1) if last else size - 1
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                length = max(0, end - start + 1)
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                if outer.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.end_headers()
                if self.command == "GET" and length:
                    with open(target, "rb") as handle:
                        self.connection.sendfile(handle, offset=start, count=length)

        self._httpd = _QuietServer((host, 0), Handler)

    def __enter__(self) -> "RangeFileServer":
        self._serve_in_background("range-file-server")
        return self

    def __exit__(self, *exc) -> None:
        self._shut_down()


def NoRangeServer(folder: str | os.PathLike) -> RangeFileServer:
    """A static file server that ignores Range (answers 200 with the whole file)."""
    return RangeFileServer(folder, ranges=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
