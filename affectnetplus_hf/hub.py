"""Publish an exported AffectNet+ folder to a Hugging Face Hub dataset repo: private and gated.

Everything goes through ``huggingface_hub``; nothing here speaks HTTP itself. What
:func:`push` does, in order:

1. Checks the folder is a whole export (``README.md``, ``export_info.json`` and every shard
   that ``export_info.json`` lists) and that a public push carries the licence
   acknowledgement. Nothing touches the network before these checks pass.
2. Creates the dataset repo **private** (``exist_ok``); refuses to push into an existing
   public repo unless the push itself is public.
3. Uploads the shards in commits of at most ``max_files_per_commit`` files /
   ``max_bytes_per_commit`` bytes, then one last commit with the card, its plots
   (``stats/``) and ``export_info.json`` that also deletes ``data/**`` and ``stats/**`` files
   the new export does not have (the folder of an older fingerprint, old plots). The card, whose configs point at the new shards, only
   lands once they are all there, and in the same commit the old ones go.
4. Turns on gated access (``gated="manual"`` by default; the card's ``extra_gated_*`` fields
   make the request form) and, only for a public push, makes the repo public last.

Retries never duplicate files: each commit is rebuilt from the remote state on every try,
files already on the Hub with the same content are dropped (``huggingface_hub`` compares the
remote oid with the local sha256), LFS content already uploaded is not sent again, and the
deletions are recomputed. Running ``push`` again after an interruption resumes it.

The token comes from ``token=`` (CLI ``--token``), else ``HF_TOKEN``, else the login cache
(``hf auth login``), exactly as ``huggingface_hub`` looks for it. It is never printed,
logged, written or put in an error message.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PublishError
from .schema import LICENSE_NOTE

__all__ = [
    "DEFAULT_GATED",
    "PUBLIC_WARNING",
    "PushResult",
    "exported_files",
    "push",
    "resolve_token",
]

#: Gating mode set on the repo: every access request is approved by the repo owner.
DEFAULT_GATED = "manual"
_GATED_CHOICES = ("manual", "auto", False)

#: Printed (and put in the error) when a public push is asked for.
PUBLIC_WARNING = (
    LICENSE_NOTE
    + " A public repo is visible to anyone; its files are only served to people whose access "
    "request you approve (the repo stays gated), but the AffectNet+ licence still does not allow "
    "redistribution. Make it public only if the AffectNet+ authors gave you written permission to "
    "redistribute, and pass --i-have-redistribution-rights (Python: "
    "i_have_redistribution_rights=True) to say so."
)

_DATA_PREFIX = "data/"
_DEFAULT_FILES_PER_COMMIT = 100
_DEFAULT_BYTES_PER_COMMIT = 20 * 1024**3  # 20 GiB
_TRANSIENT_STATUS = {408, 409, 423, 429, 500, 502, 503, 504}


@dataclass
class PushResult:
    """What a push did. ``uploaded`` / ``unchanged`` / ``deleted`` are repo paths."""

    repo_id: str
    url: str
    revision: str
    private: bool
    gated: str | bool
    commits: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def _echo_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resolve_token(token: str | None = None) -> str:
    """The token to push with: ``token``, else ``HF_TOKEN``, else the ``hf auth login`` cache.

    Raises :class:`PublishError` (naming the three places, never a token) when there is none.
    """
    if token is not None:
        token = token.strip()
        if not token:
            raise PublishError("--token is empty; pass a Hugging Face access token with write access, or leave it out to use HF_TOKEN or `hf auth login`.")
        return token
    from huggingface_hub import get_token

    found = get_token()
    if not found:
        raise PublishError(
            "no Hugging Face token found: expected one in --token (Python: token=...), the HF_TOKEN "
            "environment variable, or the login cache. Create a token with write access at "
            "https://huggingface.co/settings/tokens, then run `hf auth login` or set HF_TOKEN."
        )
    return found


# ----------------------------------------------------------------------------- the folder


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PublishError(
            f"{path}: not found; expected the export_info.json of a folder written by "
            "`affectnetplus export`. Export the release first, then push the folder it wrote."
        ) from None
    except json.JSONDecodeError as err:
        raise PublishError(f"{path}: not valid JSON ({err}); re-run `affectnetplus export` to rewrite it.") from None


def exported_files(folder: str | os.PathLike) -> list[str]:
    """The repo paths a push uploads from an exported ``folder``, checked to be all there.

    ``README.md``, ``export_info.json``, the card's plots (``stats/``) and the shards under
    ``export_info["data_dir"]`` (``<data_dir>/<part>/<partition>-SSSSS-of-NNNNN.parquet`` for
    every part, partition and shard that ``export_info.json`` lists). Nothing else is
    published: not the bad-record report, not stray files. :class:`PublishError` names the
    first missing file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise PublishError(f"{root}: not a folder; expected the folder written by `affectnetplus export`.")
    info = _read_json(root / "export_info.json")
    if not (root / "README.md").is_file():
        raise PublishError(f"{root / 'README.md'}: not found; the dataset card is missing. Re-run `affectnetplus export`.")
    from .remote import shard_paths

    expected = shard_paths(info)
    data_dir = info["data_dir"].strip("/")
    if not data_dir.startswith(_DATA_PREFIX.rstrip("/")):
        raise PublishError(f"{root / 'export_info.json'}: data_dir {data_dir!r} is not under data/; re-run the export.")
    for rel in expected:
        if not (root / rel).is_file():
            raise PublishError(
                f"{root / rel}: missing, but export_info.json lists it; the export is incomplete. "
                "Re-run `affectnetplus export` into this folder."
            )
    local_data = {p.relative_to(root).as_posix() for p in (root / data_dir).rglob("*.parquet")}
    extra = sorted(local_data - set(expected))
    if extra:
        raise PublishError(
            f"{root / extra[0]}: a shard that export_info.json does not list ({len(extra)} such file(s)); "
            "the folder was changed after the export. Re-run `affectnetplus export` into it."
        )
    extras = sorted(
        p.relative_to(root).as_posix()
        for folder in _EXTRA_FOLDERS()
        if (root / folder).is_dir()
        for p in (root / folder).rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    return ["README.md", "export_info.json", *extras, *sorted(expected)]


def _EXTRA_FOLDERS() -> tuple[str, ...]:
    """Folders of the export besides ``data/`` that the card links (its statistics plots)."""
    from .stats.card import CARD_PLOTS_DIR

    return (CARD_PLOTS_DIR,)


def _managed(path: str) -> bool:
    """Whether a repo path belongs to what push keeps in sync (and so may delete when stale)."""
    return path.startswith(_DATA_PREFIX) or any(path.startswith(folder.rstrip("/") + "/") for folder in _EXTRA_FOLDERS())


def _missing_gating_fields(root: Path) -> list[str]:
    """The gating keys (``extra_gated_prompt``, ``extra_gated_fields``) the card's YAML lacks."""
    from .remote import _front_matter

    try:
        meta = _front_matter((root / "README.md").read_text(encoding="utf-8"), str(root / "README.md"))
    except PublishError:
        return ["a YAML header"]
    return [key for key in ("extra_gated_prompt", "extra_gated_fields") if not meta.get(key)]


def _same_as_remote(path: Path, entry) -> bool:
    """Whether the remote ``entry`` (a RepoFile or None) holds exactly the bytes of ``path``."""
    if entry is None or getattr(entry, "size", None) != path.stat().st_size:
        return False
    lfs = getattr(entry, "lfs", None)
    if lfs is not None:
        return lfs.sha256 == _sha256(path)
    content = path.read_bytes()
    return entry.blob_id == hashlib.sha1(b"blob %d\x00" % len(content) + content).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _batches(files: list[tuple[str, int]], max_files: int, max_bytes: int) -> list[list[str]]:
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for path, nbytes in files:
        if current and (len(current) >= max_files or size + nbytes > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(path)
        size += nbytes
    if current:
        batches.append(current)
    return batches


# ----------------------------------------------------------------------------- errors


class _Redactor:
    """Removes the token from any text before it leaves this module."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, text: str) -> str:
        return text.replace(self.token, "<token>") if self.token else text


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _http_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(HTTP client errors, transport errors) of the HTTP library huggingface_hub uses."""
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
            return (module.HTTPError,), (module.TransportError,)
        except ImportError:
            continue
    try:  # huggingface_hub < 1.0 used requests
        import requests

        return (requests.RequestException,), (requests.ConnectionError, requests.Timeout)
    except ImportError:  # pragma: no cover
        return (), ()


def _is_transient(err: BaseException) -> bool:
    _, transport = _http_errors()
    if isinstance(err, (*transport, ConnectionError, TimeoutError)):
        return True
    status = _status(err)
    return status in _TRANSIENT_STATUS


def _explain(err: BaseException, repo_id: str, action: str, redact: _Redactor) -> PublishError:
    status = _status(err)
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if status == 401:
        hint = (
            "the Hub rejected the token (401). Check that it is valid and has write access: create one at "
            "https://huggingface.co/settings/tokens, then `hf auth login` or set HF_TOKEN."
        )
    elif status == 403:
        hint = (
            f"the token may not write to {repo_id} (403). Use a token with write access to the "
            f"namespace {repo_id.split('/')[0]!r}, or push to a namespace you own."
        )
    elif status == 404:
        hint = f"{repo_id} or its revision was not found (404). Check the repo id and --revision."
    else:
        hint = "try again; push resumes where it stopped and never uploads a file twice."
    return PublishError(redact(f"push to {repo_id}: {action} failed: {type(err).__name__}: {first_line}\n{hint}"))


def _with_retries(fn: Callable, *, retries: int, what: str, repo_id: str, redact: _Redactor, echo: Callable[[str], None]):
    """Call ``fn``; on a transient failure wait and call it again, at most ``retries`` more times.

    ``fn`` must rebuild its request from the remote state each time (see :func:`push`), which
    is what makes a retry after a lost answer safe.
    """
    http_errors, _ = _http_errors()
    delay = 1.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except PublishError:
            raise
        except (*http_errors, OSError, ValueError) as err:
            if _is_transient(err) and attempt <= retries:
                echo(redact(f"{what}: {type(err).__name__} (HTTP {_status(err)}); retry {attempt}/{retries} in {delay:.0f} s"))
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            raise _explain(err, repo_id, what, redact) from None


# ----------------------------------------------------------------------------- push


def push(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    public: bool = False,
    i_have_redistribution_rights: bool = False,
    revision: str | None = None,
    gated: str | bool = DEFAULT_GATED,
    commit_message: str | None = None,
    max_files_per_commit: int = _DEFAULT_FILES_PER_COMMIT,
    max_bytes_per_commit: int = _DEFAULT_BYTES_PER_COMMIT,
    retries: int = 3,
    progress: bool = True,
    endpoint: str | None = None,
    echo: Callable[[str], None] | None = _echo_stderr,
) -> PushResult:
    """Upload the exported ``folder`` to the Hub dataset repo ``repo_id``, private and gated.

    Args:
        folder: a folder written by :func:`affectnetplus_hf.export.export`.
        repo_id: ``"namespace/name"`` of the dataset repo (created if missing, private).
        token: a Hub token with write access; default ``HF_TOKEN`` or the login cache.
        public: make the repo public at the end. Needs ``i_have_redistribution_rights=True``:
            the AffectNet+ licence forbids redistribution (see :data:`PUBLIC_WARNING`).
        i_have_redistribution_rights: your statement that the AffectNet+ authors allowed you
            to redistribute the data; only read together with ``public``.
        revision: branch to push to (created from ``main`` if missing); default ``main``.
        gated: ``"manual"`` (default: you approve each request), ``"auto"`` or ``False``.
            A public push must be gated.
        commit_message: prefix of the commit titles.
        max_files_per_commit, max_bytes_per_commit: how the shards are split into commits.
        retries: tries after the first for each Hub call that fails transiently (5xx, 429,
            connection errors); a retry re-reads the remote state, so no file is duplicated.
        progress: show progress bars (overall and per file).
        endpoint: Hub URL; default ``HF_ENDPOINT`` / https://huggingface.co.
        echo: where one-line progress messages go (default stderr; ``None`` for silence).

    Returns:
        A :class:`PushResult`.

    Raises:
        PublishError: the folder is not a whole export, a public push lacks the
            acknowledgement, there is no token, the Hub refused (401/403/404), or a call
            still failed after ``retries``. The message never contains the token.
    """
    echo = echo or (lambda message: None)
    if "/" not in repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PublishError(f"repo id {repo_id!r}: expected 'namespace/name', e.g. my-lab/affectnet_plus.")
    if gated not in _GATED_CHOICES:
        raise PublishError(f"gated={gated!r}: expected one of 'manual', 'auto' or False.")
    if max_files_per_commit < 1 or max_bytes_per_commit < 1:
        raise PublishError("max_files_per_commit and max_bytes_per_commit must be >= 1.")
    if retries < 0:
        raise PublishError(f"retries must be >= 0, got {retries}.")
    if public:
        if not i_have_redistribution_rights:
            raise PublishError(
                f"refusing to make {repo_id} public: {PUBLIC_WARNING}\nNothing was uploaded. Leave out "
                "--public to push a private repo (the default)."
            )
        if gated is False:
            raise PublishError(f"refusing to make {repo_id} public without gating; use gated='manual' or 'auto'.")
        echo(f"WARNING: making {repo_id} public. {PUBLIC_WARNING}")

    root = Path(folder)
    files = exported_files(root)
    missing_gating = _missing_gating_fields(root)
    if missing_gating:
        message = (
            f"{root / 'README.md'}: the card lacks {', '.join(missing_gating)}, so the Hub would not ask "
            "requesters for their AffectNet+ licence. Re-run `affectnetplus export` to rewrite the card."
        )
        if public:
            raise PublishError(message + " Nothing was uploaded.")
        echo("warning: " + message)
    data_files = [p for p in files if p.startswith(_DATA_PREFIX)]
    meta_files = [p for p in files if not p.startswith(_DATA_PREFIX)]

    token = resolve_token(token)
    redact = _Redactor(token)

    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from tqdm.auto import tqdm

    from ._version import __version__

    api = HfApi(endpoint=endpoint, token=token, library_name="affectnetplus-hf", library_version=__version__)
    branch = revision or "main"

    def call(what: str, fn: Callable):
        return _with_retries(fn, retries=retries, what=what, repo_id=repo_id, redact=redact, echo=echo)

    bars_were_disabled = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        echo(f"Pushing {root} to dataset repo {repo_id} ({'public' if public else 'private'}) on {api.endpoint}")
        repo_url = call("create repo", lambda: api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True))
        repo_info = call("read repo info", lambda: api.dataset_info(repo_id))
        if repo_info.private is False and not public:
            raise PublishError(
                f"{repo_id} already exists and is PUBLIC; refusing to push AffectNet+ into it. {LICENSE_NOTE} "
                "Make the repo private in its settings on the Hub, or push to a new repo id. "
                "(A public push needs --public --i-have-redistribution-rights.)"
            )
        if branch != "main":
            call("create branch", lambda: api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True))

        def remote_files() -> dict:
            return {
                entry.path: entry
                for entry in api.list_repo_tree(repo_id, repo_type="dataset", revision=branch, recursive=True)
                if hasattr(entry, "size")
            }

        remote = call("list remote files", remote_files)
        result = PushResult(
            repo_id=repo_id,
            url=str(repo_url),
            revision=branch,
            private=not public,
            gated=gated,
        )

        # Shards whose remote copy has the same size and sha256 are not re-committed.
        to_send: list[tuple[str, int]] = []
        for rel in data_files:
            size = (root / rel).stat().st_size
            if _same_as_remote(root / rel, remote.get(rel)):
                result.unchanged.append(rel)
            else:
                to_send.append((rel, size))
        batches = _batches(to_send, max_files_per_commit, max_bytes_per_commit)
        total_bytes = sum(size for _, size in to_send)
        title = commit_message or "Upload AffectNet+ export"
        fingerprint = json.loads((root / "export_info.json").read_text()).get("fingerprint", "")
        echo(
            f"{len(to_send)} shard(s) to upload ({total_bytes / 1e6:.1f} MB) in {len(batches)} commit(s); "
            f"{len(result.unchanged)} already on the Hub"
        )

        bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="push", disable=not progress)
        try:
            for index, batch in enumerate(batches, start=1):

                def commit_batch(batch=batch, index=index):
                    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(root / rel)) for rel in batch]
                    return api.create_commit(
                        repo_id,
                        operations=operations,
                        commit_message=f"{title}: shards {index}/{len(batches)} ({fingerprint})",
                        repo_type="dataset",
                        revision=branch,
                    )

                commit = call(f"commit shards {index}/{len(batches)}", commit_batch)
                result.commits.append(commit.oid)
                result.uploaded.extend(batch)
                bar.update(sum((root / rel).stat().st_size for rel in batch))
        finally:
            bar.close()

        local = set(files)

        def commit_card():
            # Re-read the remote tree on every try: a lost answer may mean the deletions happened.
            now = remote_files()
            stale = sorted(p for p in now if _managed(p) and p not in local)
            operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(root / rel)) for rel in meta_files]
            operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
            commit = api.create_commit(
                repo_id,
                operations=operations,
                commit_message=f"{title}: card and export_info ({fingerprint})"
                + (f", remove {len(stale)} stale file(s)" if stale else ""),
                repo_type="dataset",
                revision=branch,
            )
            return commit, stale

        changed_meta = [rel for rel in meta_files if not _same_as_remote(root / rel, remote.get(rel))]
        commit, stale = call("commit card", commit_card)
        result.deleted = stale
        if commit.oid not in result.commits and (changed_meta or stale):
            result.commits.append(commit.oid)
        result.uploaded.extend(changed_meta)
        result.unchanged.extend(rel for rel in meta_files if rel not in changed_meta)
        if stale:
            echo(f"removed {len(stale)} file(s) of an earlier export from {repo_id}")

        if gated is not False:
            try:
                call("enable gating", lambda: api.update_repo_settings(repo_id, repo_type="dataset", gated=gated))
            except PublishError as err:
                if public:
                    raise PublishError(
                        redact(f"{err}\n{repo_id} was NOT made public because gating could not be turned on.")
                    ) from None
                result.gated = False
                echo(redact(f"warning: could not turn on gated access for {repo_id}: {err}. The repo is private."))
        if public:
            call("make public", lambda: api.update_repo_settings(repo_id, repo_type="dataset", private=False))
        echo(
            f"Done: {result.url} ({'public' if public else 'private'}, gated={result.gated}); "
            f"{len(result.uploaded)} file(s) sent or updated, {len(result.unchanged)} unchanged, "
            f"{len(result.deleted)} stale removed"
        )
        return result
    finally:
        if not progress and not bars_were_disabled:
            enable_progress_bars()
