"""Publish an exported AffectNet+ folder to a Hugging Face Hub dataset repo: private and gated.

Everything goes through ``huggingface_hub``; nothing here speaks HTTP itself. What
:func:`push` does, in order:

1. **Checks the folder before any network write** (:func:`local_export`): ``README.md``,
   ``export_info.json``, and every file of the export's manifest with the size and sha256
   the export recorded. A missing, truncated or edited file stops the push, naming it and
   telling the user to re-export. Only the manifest's files (and ``export_info.json``) are
   published: not the report, not any other file in the folder. The small files (card,
   ``export_info.json``, plots) are sent from the bytes checked here; a shard that is gone or
   resized when its commit is built stops the push (the folder was re-exported meanwhile).
2. **Plans against the repo** (:func:`plan_push`): creates it **private** (``exist_ok``;
   an existing public repo is refused unless the push is public), reads the previously
   published manifest (the remote ``export_info.json``), and sorts every remote file into:
   unchanged, to replace, stale and left alone. Nothing in the repo is trusted: a remote
   manifest proves anything only when it carries this package's marker and format version
   and agrees with the repo's card (its configs name the manifest's shards), and a file it
   lists is ours only while its content there (the LFS sha256, or the bytes of a small file)
   still has the sha256 it recorded. Stale, the only files a push deletes: such proven
   shards and plots of the previous manifest, or of the record of an interrupted push
   (:data:`PENDING_FILE`), that the new export does not have. ``export_report.jsonl``,
   ``.gitattributes`` and any file a push never sends are never deleted. Left alone:
   everything else (named in the summary and in :attr:`PushResult.left_alone`, never
   touched). A remote file the push would overwrite that is not proven ours is a conflict:
   refused before anything is written. A format-2 manifest (written before the marker)
   still lets the files it lists be replaced while unchanged, but never deleted.
3. **Access first**: gated access (``gated="manual"`` by default) is turned on before the
   first data byte is sent.
4. **Commits so that no partial dataset is ever loadable.** A repo without a card first gets a
   placeholder card whose configs name a path that holds no file, so ``load_dataset`` fails
   loudly there (and never auto-detects the shards that arrive next). The shards go in
   under ``data/<fingerprint>/``, a folder no published card names yet, in commits of at most
   ``max_files_per_commit`` files / ``max_bytes_per_commit`` bytes; the first also writes
   :data:`PENDING_FILE`, the list of shards sent but not yet published. One last commit adds the
   card, its plots and ``export_info.json`` and deletes the stale files and that list: the configs switch
   from the previous export (or the placeholder) to the new one in that single commit.
5. Only for a public push, the repo is made public last.

Retries never duplicate files: each commit is rebuilt from the remote state on every try,
files already on the Hub with the same content are dropped (``huggingface_hub`` compares the
remote oid with the local sha256), LFS content already uploaded is not sent again, and the
deletions are recomputed. Running ``push`` again after an interruption resumes it.

The token comes from ``token=`` (CLI ``--token``), else ``HF_TOKEN``, else the login cache
(``hf auth login``), exactly as ``huggingface_hub`` looks for it. It is never printed,
logged, written or put in an error message.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..core.choices import Gating
from ..core.export_files import (
    CARD_FILE,
    DATA_DIR,
    FORMAT_VERSION,
    GENERATOR,
    INFO_FILE,
    SHARD_SUFFIX,
    FileRecord,
    check_files,
    data_dir_for,
    is_shard_path,
    manifest,
    marker_problem,
    read_info,
    shard_paths,
)
from ..core.schema import LICENSE_NOTE
from ..errors import ExportError, PublishError

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, HfApi

__all__ = [
    "DEFAULT_GATED",
    "PUBLIC_WARNING",
    "LocalExport",
    "PushPlan",
    "PushResult",
    "exported_files",
    "local_export",
    "placeholder_card",
    "plan_push",
    "push",
    "resolve_token",
]

#: Gating mode set on the repo: every access request is approved by the repo owner.
DEFAULT_GATED: Gating = "manual"
_GATED_CHOICES = ("manual", "auto", False)

#: Printed (and put in the error) when a public push is asked for.
PUBLIC_WARNING = (
    LICENSE_NOTE + " A public repo is visible to anyone; its files are only served to people whose access "
    "request you approve (the repo stays gated), but the AffectNet+ licence still does not allow "
    "redistribution. Make it public only if the AffectNet+ authors gave you written permission to "
    "redistribute, and pass --i-have-redistribution-rights (Python: "
    "i_have_redistribution_rights=True) to say so."
)

#: A line of the placeholder card: how a later push knows the card is its own.
PLACEHOLDER_MARKER = "<!-- affectnetplus-hf: publishing in progress -->"
#: Folder of the repo that holds what only a push in progress needs (never an export's file).
PUBLISHING_DIR = "publishing-in-progress"
#: Where the placeholder card's configs point: a path that never holds a file.
PLACEHOLDER_DATA = f"{PUBLISHING_DIR}/no-data-yet{SHARD_SUFFIX}"
#: The shards a push has sent but no published ``export_info.json`` lists yet (size and sha256,
#: as in a manifest), written with the first shard commit and removed by the card commit. A
#: push interrupted in between leaves it, so the next push knows those shards are ours (and
#: removes them if the new export does not have them) instead of taking them for the user's.
PENDING_FILE = f"{PUBLISHING_DIR}/{INFO_FILE}"
#: The Hub's own file in every repo; never ours, never named.
_HUB_FILES = frozenset({".gitattributes"})

_DEFAULT_FILES_PER_COMMIT = 100
_DEFAULT_BYTES_PER_COMMIT = 20 * 1024**3  # 20 GiB
_TRANSIENT_STATUS = {408, 409, 423, 429, 500, 502, 503, 504}


@dataclass
class PushResult:
    """What a push did. ``uploaded`` / ``unchanged`` / ``deleted`` / ``left_alone`` are repo paths."""

    repo_id: str
    url: str
    revision: str
    private: bool
    gated: Gating | Literal[False]
    commits: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: shards and plots the previously published manifest (or an interrupted push's record) listed, marked as
    #: ours, with the content they still had, and the new one does not
    deleted: list[str] = field(default_factory=list)
    #: every other file in the repo that the export does not have: never touched
    left_alone: list[str] = field(default_factory=list)
    #: files in the local folder that are not in its manifest: never sent
    not_published: list[str] = field(default_factory=list)


log = logging.getLogger(__name__)


def _echo_log(message: str) -> None:
    """The default ``echo``: this module's logger, WARNING for warnings, INFO for progress
    (the CLI shows INFO unless ``--quiet``; a Python caller configures ``logging``)."""
    log.log(logging.WARNING if message.lower().startswith("warning") else logging.INFO, message)


def resolve_token(token: str | None = None) -> str:
    """The token to push with: ``token``, else ``HF_TOKEN``, else the ``hf auth login`` cache.

    Raises :class:`PublishError` (naming the three places, never a token) when there is none.
    """
    if token is not None:
        token = token.strip()
        if not token:
            raise PublishError(
                "--token is empty; pass a Hugging Face access token with write access, or leave it out to use HF_TOKEN or `hf auth login`."
            )
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


@dataclass
class LocalExport:
    """An exported folder, checked file by file against its manifest."""

    root: Path
    info: dict
    #: repo path -> size and sha256 of every file a push publishes (``export_info.json`` included)
    files: dict[str, FileRecord]
    #: repo path -> bytes of the small files outside ``data/`` (card, ``export_info.json``, plots),
    #: read once and checked: the card commit sends these, so it publishes the very card and
    #: manifest that were checked even if the folder is re-exported while the shards go up
    meta: dict[str, bytes] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return str(self.info.get("fingerprint", ""))


def local_export(folder: str | os.PathLike) -> LocalExport:
    """The export in ``folder``, every manifest file checked for its size and sha256.

    Raises :class:`PublishError` naming the first file that is missing, truncated or
    changed since the export (and how many such), and saying to re-export. Reads every
    byte of the export once; touches no network.
    """
    root = Path(folder)
    if not root.is_dir():
        raise PublishError(f"{root}: not a folder; expected the folder written by `affectnetplus export`.")
    try:
        info = read_info(root)
        listed = manifest(info)
        shards = shard_paths(info)
    except ExportError as err:
        raise PublishError(f"{err} Then push the folder it wrote.") from None
    if not isinstance(info.get("files"), dict):
        raise PublishError(
            f"{root / INFO_FILE}: lists no files with sizes and sha256 (written by an older version of the package); "
            "re-run `affectnetplus export` into this folder, then push it."
        )
    data_dir = str(info.get("data_dir", "")).strip("/")
    if not data_dir.startswith(DATA_DIR + "/"):
        raise PublishError(f"{root / INFO_FILE}: data_dir {data_dir!r} is not under {DATA_DIR}/; re-run the export.")
    unlisted = [rel for rel in [CARD_FILE, *shards] if rel not in listed]
    if unlisted:
        raise PublishError(
            f"{root / INFO_FILE}: its manifest lacks {unlisted[0]}, a file of the export; re-run `affectnetplus export`."
        )
    problems = check_files(root, info)
    meta = {
        rel: (root / rel).read_bytes()
        for rel in [INFO_FILE, *(rel for rel in listed if not rel.startswith(DATA_DIR + "/"))]
    }
    for rel, content in meta.items():
        if rel == INFO_FILE:
            try:
                changed = json.loads(content) != info
            except ValueError:
                changed = True
        else:
            changed = hashlib.sha256(content).hexdigest() != listed[rel].sha256
        if changed and not problems:
            problems.append(
                f"{root / rel}: changed while the push was reading the folder (is an export into it running?)"
            )
    if problems:
        raise PublishError(
            f"{problems[0]}"
            + (f" (and {len(problems) - 1} more such file(s))" if len(problems) > 1 else "")
            + ". The folder was changed after the export; re-run `affectnetplus export` into it, then push. "
            "Nothing was uploaded."
        )
    files = {INFO_FILE: FileRecord(len(meta[INFO_FILE]), hashlib.sha256(meta[INFO_FILE]).hexdigest()), **listed}
    return LocalExport(root=root, info=info, files=files, meta=meta)


def exported_files(folder: str | os.PathLike) -> list[str]:
    """The repo paths a push publishes from ``folder``, each checked against the manifest.

    ``README.md``, ``export_info.json``, then the other files of the manifest (the card's
    plots, the shards) sorted. Nothing else in the folder is published.
    """
    files = local_export(folder).files
    return [CARD_FILE, INFO_FILE, *sorted(rel for rel in files if rel not in (CARD_FILE, INFO_FILE))]


def _unpublished(local: LocalExport) -> list[str]:
    """Files in the folder that the export did not write (the report, its own, is never sent either)."""
    from ..exporter.swap import user_files

    return user_files(local.root, local.info)


def _missing_gating_fields(root: Path) -> list[str]:
    """The gating keys (``extra_gated_prompt``, ``extra_gated_fields``) the card's YAML lacks."""
    from .remote import card_metadata

    try:
        meta = card_metadata((root / CARD_FILE).read_text(encoding="utf-8"), str(root / CARD_FILE))
    except PublishError:
        return ["a YAML header"]
    return [key for key in ("extra_gated_prompt", "extra_gated_fields") if not meta.get(key)]


def placeholder_card() -> str:
    """The card a first push commits before any shard: gated, with configs that name a path
    holding no file, so ``load_dataset`` on the repo fails loudly until the real card lands."""
    import yaml

    from ..core.configs import CONFIG_NAMES
    from ..exporter.card import GATING

    header = {
        "license": "other",
        **GATING,
        "configs": [
            {"config_name": name, "data_files": [{"split": "train", "path": PLACEHOLDER_DATA}]} for name in CONFIG_NAMES
        ],
    }
    return (
        "---\n"
        + yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
        + "---\n\n"
        + PLACEHOLDER_MARKER
        + "\n\n# AffectNet+ (being published)\n\n"
        "`affectnetplus push` is uploading this dataset. Until it finishes, the repo has no loadable data: "
        "loading it fails. If the push was interrupted, run it again; it resumes.\n"
    )


# ----------------------------------------------------------------------------- the repo


@dataclass
class RemoteState:
    """What a branch of the repo holds, as far as a push cares.

    Nothing in the repo is taken on trust: a manifest there counts only when it carries this
    package's marker (:func:`~affectnetplus_hf.core.export_files.marker_problem`) and agrees with the repo's card, and a
    file it lists counts as ours only when its content there still has the size and sha256 it
    records (:attr:`sha256`).
    """

    #: repo path -> the tree entry (``RepoFile``: size, blob_id, lfs)
    entries: dict
    #: the previously published ``export_info.json``: marked as ours and consistent with the card
    #: (None: no such file, or one that proves nothing)
    info: dict | None
    #: the card in the repo is our placeholder (it carries :data:`PLACEHOLDER_MARKER`)
    placeholder: bool
    #: repo path -> record of the shards an interrupted push of ours sent (:data:`PENDING_FILE`,
    #: marked as ours); None when the repo has no such file, or one that is not ours
    pending: dict[str, FileRecord] | None = None
    #: an ``export_info.json`` of format 2 (written before the marker) that agrees with the card:
    #: the files it lists may be replaced when unchanged since, never deleted
    legacy: dict | None = None
    #: repo path -> sha256 of its content there, for the repo files a manifest above lists with
    #: the same size (from the LFS pointer, or from the downloaded bytes of a small file)
    sha256: dict[str, str] = field(default_factory=dict)
    #: one line per manifest in the repo that proves nothing, saying why
    notes: list[str] = field(default_factory=list)


@dataclass
class PushPlan:
    """Which repo paths a push sends, keeps, deletes and leaves alone."""

    shards: list[str]
    meta: list[str]
    unchanged: list[str]
    stale: list[str]
    left_alone: list[str]
    needs_placeholder: bool
    #: stale path -> its blob id when planned: the card commit deletes it only if still the same
    stale_blobs: dict[str, str] = field(default_factory=dict)


def _same_as_remote(local: LocalExport, rel: str, entry) -> bool:
    """Whether the remote ``entry`` (a RepoFile or None) holds exactly the bytes of ``rel``."""
    record = local.files[rel]
    if entry is None or getattr(entry, "size", None) != record.size:
        return False
    lfs = getattr(entry, "lfs", None)
    if lfs is not None:
        return lfs.sha256 == record.sha256
    content = local.meta[rel] if rel in local.meta else (local.root / rel).read_bytes()
    return entry.blob_id == _git_blob_id(content)


def _git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(content) + content).hexdigest()


def _push_may_send(rel: str) -> bool:
    """Whether ``rel`` is a path some push of this package could have uploaded and a later one may
    therefore delete: a shard, one of the card's plots, or :data:`PENDING_FILE`. The card and
    ``export_info.json`` are always replaced, never deleted; ``export_report.jsonl``,
    ``.gitattributes`` and any other name are never deleted, whatever a manifest lists."""
    return is_shard_path(rel) or rel in _plot_paths() or rel == PENDING_FILE


@functools.cache
def _plot_paths() -> frozenset[str]:
    """Repo paths of every plot an export of this package draws or drew onto its card."""
    from ..core.export_files import FORMAT1_PLOTS, STATS_DIR
    from ..stats.plots import PLOTS

    return frozenset(f"{STATS_DIR}/{name}" for name in (*FORMAT1_PLOTS, *(plot.file for plot in PLOTS)))


def _still_recorded(remote: RemoteState, records: dict[str, FileRecord]) -> set[str]:
    """The paths of ``records`` whose content in the repo has the recorded size and sha256."""
    return {
        rel
        for rel, record in records.items()
        if rel in remote.sha256 and record.size == remote.entries[rel].size and remote.sha256[rel] == record.sha256
    }


def _proven(remote: RemoteState) -> tuple[set[str], set[str]]:
    """``(replaceable, deletable)``: the repo files this push may overwrite, and those it may delete.

    Replaceable: files a manifest of ours (or of format 2, see :attr:`RemoteState.legacy`) lists
    with their content unchanged since, that manifest itself, and our placeholder card.
    Deletable: of those, only the ones a marked manifest or pending record lists and a push may
    have sent (:func:`_push_may_send`).
    """
    replaceable: set[str] = set()
    deletable: set[str] = set()
    if remote.info is not None:
        found = _still_recorded(remote, manifest(remote.info))
        replaceable |= found | {INFO_FILE}
        deletable |= {rel for rel in found if _push_may_send(rel)}
    if remote.legacy is not None:
        replaceable |= _still_recorded(remote, manifest(remote.legacy)) | {INFO_FILE}
    if remote.pending is not None:
        found = _still_recorded(remote, remote.pending)
        replaceable |= found | {PENDING_FILE}
        deletable |= {rel for rel in found if is_shard_path(rel)} | {PENDING_FILE}
    if remote.placeholder:
        replaceable.add(CARD_FILE)
    return replaceable, deletable


def plan_push(local: LocalExport, remote: RemoteState, repo_id: str) -> PushPlan:
    """Sort the export's files and the repo's into what to send, keep, delete and leave alone.

    A repo file is deleted only when a manifest of ours in the repo lists it with the content it
    still has, and it is a file a push sends (:func:`_proven`); every other repo file that this
    export does not have is left alone. Raises :class:`PublishError` (nothing written yet) when the
    push would overwrite a repo file that holds other bytes and is not proven ours.
    """
    replaceable, deletable = _proven(remote)
    unchanged = {rel for rel in local.files if _same_as_remote(local, rel, remote.entries.get(rel))}
    conflicts = sorted(
        rel for rel in local.files if rel in remote.entries and rel not in replaceable and rel not in unchanged
    )
    if PENDING_FILE in remote.entries and PENDING_FILE not in deletable:
        conflicts.append(PENDING_FILE)
    if conflicts:
        raise _conflict_error(repo_id, conflicts, remote)
    stale = sorted(p for p in remote.entries if p in deletable and p not in local.files)
    left_alone = sorted(p for p in remote.entries if p not in local.files and p not in stale and p not in _HUB_FILES)
    data_prefix = DATA_DIR + "/"
    return PushPlan(
        shards=[rel for rel in sorted(local.files) if rel.startswith(data_prefix) and rel not in unchanged],
        meta=[
            CARD_FILE,
            INFO_FILE,
            *(
                rel
                for rel in sorted(local.files)
                if not rel.startswith(data_prefix) and rel not in (CARD_FILE, INFO_FILE)
            ),
        ],
        unchanged=sorted(unchanged),
        stale=stale,
        left_alone=left_alone,
        needs_placeholder=CARD_FILE not in remote.entries,
        stale_blobs={p: remote.entries[p].blob_id for p in stale},
    )


def _conflict_error(repo_id: str, conflicts: list[str], remote: RemoteState) -> PublishError:
    listed = {rel for source in (remote.info, remote.legacy) if source is not None for rel in manifest(source)}
    listed |= set(remote.pending or {})
    if any(rel in listed for rel in conflicts):
        why = f"the repo's {INFO_FILE} lists them, but their content there differs from what it recorded (changed on the Hub?)"
    else:
        why = f"no {INFO_FILE} of ours in the repo lists them" + (f"; {remote.notes[0]}" if remote.notes else "")
    return PublishError(
        f"{repo_id}: holds {', '.join(conflicts[:5])}"
        + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        + f", which this push would replace, and nothing proves `affectnetplus push` wrote them ({why}). "
        "Nothing was uploaded. Push to a new repo id, or remove those files from the repo yourself "
        "(download them first if they hold changes you want to keep)."
    )


def _remote_files(api, repo_id: str, branch: str) -> dict:
    """repo path -> tree entry (``RepoFile``) of every file on ``branch``; folders left out."""
    return {
        e.path: e
        for e in api.list_repo_tree(repo_id, repo_type="dataset", revision=branch, recursive=True)
        if hasattr(e, "size")
    }


def _card_problem(info: dict, card: bytes | None) -> str | None:
    """Why the manifest ``info`` does not agree with the repo's ``card``; None when it does: its
    ``data_dir`` is ``data/<its fingerprint>`` and every ``data_files`` pattern of the card's
    configs lies in that folder and matches a shard the manifest lists."""
    import fnmatch

    from .remote import read_card_configs

    if card is None:
        return f"the repo has no {CARD_FILE}"
    data_dir = str(info.get("data_dir", "")).strip("/")
    if data_dir != data_dir_for(str(info.get("fingerprint", ""))):
        return f"its data_dir {data_dir!r} is not {DATA_DIR}/<its fingerprint>"
    try:
        configs = read_card_configs(card.decode("utf-8", errors="replace"), CARD_FILE)
    except PublishError as err:
        return f"the repo's {err}"
    shards = [rel for rel in manifest(info) if rel.startswith(data_dir + "/")]
    for name, splits in configs.items():
        for patterns in splits.values():
            for pattern in patterns:
                rel = pattern.removeprefix("./")
                if not rel.startswith(data_dir + "/") or not any(fnmatch.fnmatchcase(s, rel) for s in shards):
                    return f"the repo's {CARD_FILE} (config {name!r}) names {pattern!r}, which is not a shard it lists"
    return None


def _is_format2(info: dict) -> bool:
    """Whether ``info`` has the shape of a manifest of format 2 (sizes and sha256, no marker)."""
    if "generator" in info or info.get("format_version") != 2 or not isinstance(info.get("files"), dict):
        return False
    try:
        manifest(info)
    except ExportError:
        return False
    return True


def _parse_json(content: bytes | None):
    try:
        return json.loads(content) if content is not None else None
    except (ValueError, UnicodeDecodeError):
        return None


def _read_remote(api, repo_id: str, branch: str, call: Callable, local: LocalExport) -> RemoteState:
    """The branch's files, its ``export_info.json`` and :data:`PENDING_FILE` when they prove to
    be ours, whether its card is our placeholder, and the content sha256 of the repo files those
    list that matter to this push (the export's own paths, and those a push may delete)."""
    entries = call("list remote files", lambda: _remote_files(api, repo_id, branch))
    state = RemoteState(entries=entries, info=None, placeholder=False)
    fetched: dict[str, bytes] = {}

    def content(path: str) -> bytes:
        if path not in fetched:
            fetched[path] = _download(api, repo_id, branch, path, call)
        return fetched[path]

    card = content(CARD_FILE) if CARD_FILE in entries else None
    state.placeholder = card is not None and PLACEHOLDER_MARKER.encode() in card
    if INFO_FILE in entries:
        candidate = _parse_json(content(INFO_FILE))
        problem = marker_problem(candidate) or _card_problem(candidate, card)
        if problem is None:
            state.info = candidate
        elif isinstance(candidate, dict) and _is_format2(candidate) and _card_problem(candidate, card) is None:
            state.legacy = candidate
            state.notes.append(
                f"{INFO_FILE} in {repo_id} was written by an older version of {GENERATOR} (format 2, no marker): "
                "the files it lists are replaced where this export has them, never deleted"
            )
        else:
            state.notes.append(
                f"{INFO_FILE} in {repo_id} is not one this package published ({problem}), so it proves nothing"
            )
    if PENDING_FILE in entries:
        candidate = _parse_json(content(PENDING_FILE))
        problem = marker_problem(candidate)
        if problem is None:
            state.pending = manifest(candidate)
        else:
            state.notes.append(f"{PENDING_FILE} in {repo_id} is not a record of this package ({problem})")
    records = [
        *(manifest(m).items() for m in (state.info, state.legacy) if m is not None),
        (state.pending or {}).items(),
    ]
    for rel, record in (item for group in records for item in group):
        entry = entries.get(rel)
        if (
            entry is None
            or rel in state.sha256
            or record.size != entry.size
            or not (rel in local.files or _push_may_send(rel))
        ):
            continue
        lfs = getattr(entry, "lfs", None)
        if lfs is not None:
            state.sha256[rel] = lfs.sha256
        else:  # a small file (the Hub keeps anything large in LFS): its bytes, checked against the listing
            data = content(rel)
            if _git_blob_id(data) == entry.blob_id:
                state.sha256[rel] = hashlib.sha256(data).hexdigest()
    return state


def _pending_record(local: LocalExport, plan: PushPlan, remote: RemoteState) -> bytes:
    """The :data:`PENDING_FILE` the first shard commit writes (marked as ours, as a manifest is):
    the shards this push sends, and those an earlier interrupted push sent that are still in the
    repo unchanged and still unpublished."""
    earlier = remote.pending or {}
    files = {rel: earlier[rel].to_json() for rel in _still_recorded(remote, earlier) if is_shard_path(rel)}
    files.update({rel: local.files[rel].to_json() for rel in plan.shards})
    record = {
        "generator": GENERATOR,
        "format_version": FORMAT_VERSION,
        "fingerprint": local.fingerprint,
        "files": dict(sorted(files.items())),
    }
    return (json.dumps(record, indent=1) + "\n").encode()


def _download(api, repo_id: str, branch: str, path: str, call: Callable) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="affectnetplus-push-") as tmp:
        local = call(
            f"read {path}",
            lambda: api.hf_hub_download(repo_id, path, repo_type="dataset", revision=branch, local_dir=tmp),
        )
        return Path(local).read_bytes()


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


def _http_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
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
        if action.startswith("commit"):
            hint += f" Until a push finishes, {repo_id} serves the export it served before (none, on a first push: loading fails)."
    return PublishError(redact(f"push to {repo_id}: {action} failed: {type(err).__name__}: {first_line}\n{hint}"))


def _with_retries(
    fn: Callable, *, retries: int, what: str, repo_id: str, redact: _Redactor, echo: Callable[[str], None]
):
    """Call ``fn``; on a transient failure wait and call it again, at most ``retries`` more times.

    ``fn`` must rebuild its request from the remote state each time (see :func:`push`), which
    is what makes a retry after a lost answer safe.
    """
    http_errors, _ = _http_errors()
    transient: tuple[type[Exception], ...] = (*http_errors, OSError, ValueError)
    delay = 1.0
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except PublishError:
            raise
        except transient as err:
            if _is_transient(err) and attempt <= retries:
                echo(
                    redact(
                        f"{what}: {type(err).__name__} (HTTP {_status(err)}); retry {attempt}/{retries} in {delay:.0f} s"
                    )
                )
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            raise _explain(err, repo_id, what, redact) from None


# ----------------------------------------------------------------------------- commits


@dataclass
class _Session:
    """What every Hub call of one push shares."""

    api: HfApi
    repo_id: str
    branch: str
    title: str
    call: Callable
    echo: Callable[[str], None]


def _commit(session: _Session, operations: list, message: str) -> CommitInfo:
    return session.api.create_commit(
        session.repo_id, operations=operations, commit_message=message, repo_type="dataset", revision=session.branch
    )


def _commit_placeholder(session: _Session) -> CommitInfo:
    """The first commit into a repo without a card: the placeholder card (no data)."""
    from huggingface_hub import CommitOperationAdd

    content = placeholder_card().encode("utf-8")
    return session.call(
        "commit placeholder card",
        lambda: _commit(
            session,
            [CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=content)],
            f"{session.title}: placeholder card",
        ),
    )


def _commit_shards(
    session: _Session, local: LocalExport, plan: PushPlan, limits: tuple[int, int], progress: bool, pending: bytes
) -> list[str]:
    """Send the shards in commits of bounded size, the first with ``pending`` (the
    :data:`PENDING_FILE`); returns the commit ids."""
    from huggingface_hub import CommitOperationAdd
    from tqdm.auto import tqdm

    sizes = [(rel, local.files[rel].size) for rel in plan.shards]
    batches = _batches(sizes, *limits)
    total = sum(size for _, size in sizes)
    session.echo(
        f"{len(plan.shards)} shard(s) to upload ({total / 1e6:.1f} MB) in {len(batches)} commit(s); "
        f"{sum(1 for p in plan.unchanged if p.startswith(DATA_DIR + '/'))} already on the Hub"
    )
    commits = []
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="push", disable=not progress)
    try:
        for index, batch in enumerate(batches, start=1):

            def attempt(batch=batch, index=index):
                _check_still_there(local, batch)
                operations = [
                    CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(local.root / rel)) for rel in batch
                ]
                if index == 1:
                    operations.insert(0, CommitOperationAdd(path_in_repo=PENDING_FILE, path_or_fileobj=pending))
                return _commit(
                    session, operations, f"{session.title}: shards {index}/{len(batches)} ({local.fingerprint})"
                )

            commits.append(session.call(f"commit shards {index}/{len(batches)}", attempt).oid)
            bar.update(sum(local.files[rel].size for rel in batch))
    finally:
        bar.close()
    return commits


def _check_still_there(local: LocalExport, batch: list[str]) -> None:
    """Raise :class:`PublishError` when a shard about to be sent is gone or resized since the
    check (the folder was re-exported during the push): nothing of this export is published yet."""
    for rel in batch:
        path = local.root / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = None
        if size != local.files[rel].size:
            raise PublishError(
                f"{path}: {'gone' if size is None else 'changed'} since the push checked the folder (was it re-exported "
                "meanwhile?). The repo still serves what it served before this push; run the push again."
            )


def _commit_card(session: _Session, local: LocalExport, plan: PushPlan) -> tuple[CommitInfo, list[str]]:
    """The last commit: card, plots and ``export_info.json`` in, stale files out. Returns the
    commit and the files it deleted."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    def attempt():
        # Re-read the tree on every try: a lost answer may mean the deletions happened.
        # A stale file replaced by someone else since the plan is no longer the one proven ours.
        now = _remote_files(session.api, session.repo_id, session.branch)
        stale = [p for p in plan.stale if p in now and now[p].blob_id == plan.stale_blobs.get(p)]
        if (
            plan.shards and PENDING_FILE in now and PENDING_FILE not in stale
        ):  # written by this push's first shard commit
            stale.append(PENDING_FILE)
        operations: list[CommitOperationAdd | CommitOperationDelete]
        operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=local.meta[rel]) for rel in plan.meta]
        operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
        message = f"{session.title}: card and export_info ({local.fingerprint})" + (
            f", remove {len(stale)} stale file(s)" if stale else ""
        )
        return _commit(session, operations, message), stale

    return session.call("commit card", attempt)


# ----------------------------------------------------------------------------- access


def _set_gating(
    session: _Session, gated: Gating | Literal[False], public: bool, redact: "_Redactor"
) -> Gating | Literal[False]:
    """Turn on gated access; returns the gating in force. A private push goes on without it
    (a warning); a public push stops."""
    if gated is False:
        return False
    try:
        session.call(
            "enable gating", lambda: session.api.update_repo_settings(session.repo_id, repo_type="dataset", gated=gated)
        )
    except PublishError as err:
        if public:
            raise PublishError(
                redact(f"{err}\n{session.repo_id} was NOT made public because gating could not be turned on.")
            ) from None
        session.echo(
            redact(f"warning: could not turn on gated access for {session.repo_id}: {err}. The repo is private.")
        )
        return False
    return gated


def _make_public(session: _Session) -> None:
    session.call(
        "make public", lambda: session.api.update_repo_settings(session.repo_id, repo_type="dataset", private=False)
    )


# ----------------------------------------------------------------------------- push


def _check_arguments(repo_id: str, gated, public: bool, rights: bool, limits: tuple[int, int], retries: int) -> None:
    from ..core.repo_id import repo_id_problem

    problem = repo_id_problem(repo_id)
    if problem:
        raise PublishError(f"repo id {repo_id!r}: expected 'namespace/name', e.g. my-lab/affectnet_plus ({problem}).")
    if gated not in _GATED_CHOICES:
        raise PublishError(f"gated={gated!r}: expected one of 'manual', 'auto' or False.")
    if min(limits) < 1:
        raise PublishError("max_files_per_commit and max_bytes_per_commit must be >= 1.")
    if retries < 0:
        raise PublishError(f"retries must be >= 0, got {retries}.")
    if public:
        if not rights:
            raise PublishError(
                f"refusing to make {repo_id} public: {PUBLIC_WARNING}\nNothing was uploaded. Leave out "
                "--public to push a private repo (the default)."
            )
        if gated is False:
            raise PublishError(f"refusing to make {repo_id} public without gating; use gated='manual' or 'auto'.")


def push(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    public: bool = False,
    i_have_redistribution_rights: bool = False,
    revision: str | None = None,
    gated: Gating | Literal[False] = DEFAULT_GATED,
    commit_message: str | None = None,
    max_files_per_commit: int = _DEFAULT_FILES_PER_COMMIT,
    max_bytes_per_commit: int = _DEFAULT_BYTES_PER_COMMIT,
    retries: int = 3,
    progress: bool = True,
    endpoint: str | None = None,
    echo: Callable[[str], None] | None = _echo_log,
) -> PushResult:
    """Upload the exported ``folder`` to the Hub dataset repo ``repo_id``, private and gated.

    Args:
        folder: a folder written by :func:`affectnetplus_hf.exporter.writer.export`.
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
        echo: where one-line progress messages go (default: the ``affectnetplus_hf.hub.publish`` logger,
            warnings at WARNING, progress at INFO; ``None`` for silence).

    Returns:
        A :class:`PushResult`.

    Raises:
        PublishError: the folder is not a whole, unchanged export, a public push lacks the
            acknowledgement, there is no token, the repo holds files of the same names that
            are not ours, the Hub refused (401/403/404), or a call still failed after
            ``retries``. The message never contains the token.
    """
    echo = echo or (lambda message: None)
    limits = (max_files_per_commit, max_bytes_per_commit)
    _check_arguments(repo_id, gated, public, i_have_redistribution_rights, limits, retries)
    if public:
        echo(f"WARNING: making {repo_id} public. {PUBLIC_WARNING}")

    local = local_export(folder)
    missing_gating = _missing_gating_fields(local.root)
    if missing_gating:
        message = (
            f"{local.root / CARD_FILE}: the card lacks {', '.join(missing_gating)}, so the Hub would not ask "
            "requesters for their AffectNet+ licence. Re-run `affectnetplus export` to rewrite the card."
        )
        if public:
            raise PublishError(message + " Nothing was uploaded.")
        echo("warning: " + message)

    unmarked = marker_problem(local.info)
    if unmarked:
        echo(
            f"warning: {local.root / INFO_FILE} was written by an older version of {GENERATOR} ({unmarked}), so a later "
            "push cannot prove these files are ours and will never delete them from the Hub (they stay, named as "
            "left alone). Re-run `affectnetplus export` into the folder, then push, to avoid that."
        )

    token = resolve_token(token)
    redact = _Redactor(token)

    from huggingface_hub import HfApi
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    from .._version import __version__

    api = HfApi(endpoint=endpoint, token=token, library_name="affectnetplus-hf", library_version=__version__)

    def call(what: str, fn: Callable):
        return _with_retries(fn, retries=retries, what=what, repo_id=repo_id, redact=redact, echo=echo)

    session = _Session(api, repo_id, revision or "main", commit_message or "Upload AffectNet+ export", call, echo)
    bars_were_disabled = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        echo(f"Pushing {local.root} to dataset repo {repo_id} ({'public' if public else 'private'}) on {api.endpoint}")
        repo_url = call(
            "create repo", lambda: api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
        )
        repo_info = call("read repo info", lambda: api.dataset_info(repo_id))
        if repo_info.private is False and not public:
            raise PublishError(
                f"{repo_id} already exists and is PUBLIC; refusing to push AffectNet+ into it. {LICENSE_NOTE} "
                "Make the repo private in its settings on the Hub, or push to a new repo id. "
                "(A public push needs --public --i-have-redistribution-rights.)"
            )
        if session.branch != "main":
            call(
                "create branch",
                lambda: api.create_branch(repo_id, branch=session.branch, repo_type="dataset", exist_ok=True),
            )
        remote = _read_remote(api, repo_id, session.branch, call, local)
        for note in remote.notes:
            echo("warning: " + note)
        plan = plan_push(local, remote, repo_id)
        result = PushResult(
            repo_id=repo_id, url=str(repo_url), revision=session.branch, private=not public, gated=gated
        )
        result.left_alone = plan.left_alone
        result.not_published = _unpublished(local)

        result.gated = _set_gating(session, gated, public, redact)  # before the first data byte
        if plan.needs_placeholder:
            result.commits.append(_commit_placeholder(session).oid)
        result.commits += _commit_shards(session, local, plan, limits, progress, _pending_record(local, plan, remote))
        result.uploaded += [rel for rel in plan.shards]
        changed_meta = [rel for rel in plan.meta if rel not in plan.unchanged]
        if plan.shards or changed_meta or plan.stale or remote.pending is not None:
            commit, stale = _commit_card(session, local, plan)
            result.deleted = [p for p in stale if p != PENDING_FILE]  # our own bookkeeping, not a file of an export
            if commit.oid not in result.commits and (changed_meta or stale):
                result.commits.append(commit.oid)
        # else: the repo already holds exactly this export; an empty commit would only be refused
        result.uploaded += changed_meta
        result.unchanged = plan.unchanged
        if public:
            _make_public(session)
        _summarise(result, echo)
        return result
    finally:
        if not progress and not bars_were_disabled:
            enable_progress_bars()


def _summarise(result: PushResult, echo: Callable[[str], None]) -> None:
    if result.deleted:
        echo(
            f"removed {len(result.deleted)} file(s) of the previously published export (or of an interrupted push) from {result.repo_id}"
        )
    if result.left_alone:
        echo(
            f"left alone {len(result.left_alone)} file(s) in {result.repo_id} that this push cannot prove it published "
            "(no export_info.json of ours lists them with their present content, or push never sends such a file): "
            + ", ".join(result.left_alone[:10])
            + (" ..." if len(result.left_alone) > 10 else "")
        )
    if result.not_published:
        echo(
            f"not sent: {len(result.not_published)} local file(s) outside the export's manifest (e.g. {result.not_published[0]})"
        )
    echo(
        f"Done: {result.url} ({'private' if result.private else 'public'}, gated={result.gated}); "
        f"{len(result.uploaded)} file(s) sent or updated, {len(result.unchanged)} unchanged, "
        f"{len(result.deleted)} stale removed, {len(result.left_alone)} left alone"
    )
