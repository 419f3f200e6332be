"""Put a finished export into place without losing anything that was in ``OUT``.

The export writes a new folder beside ``OUT`` (``.OUT.tmp-<hex>``) and replaces ``OUT`` by it.
This module does that replacement and everything around it:

* **One writer.** :func:`export_lock` holds ``.OUT.lock`` (``filelock``, an OS lock the kernel
  drops when the process dies, even under ``kill -9``); a second export into the same
  ``OUT`` fails at once with a message, never last-writer-wins.
* **Ownership by proof, never by name.** Every folder an export creates or moves beside
  ``OUT`` is recorded in ``.OUT.journal.json`` with its device and inode, before it can be
  left behind (:func:`claim`). The next export (:func:`recover`) acts only on a folder whose
  name *and* inode match a record; a folder of yours named ``.OUT.tmp-scratch`` or
  ``.OUT.old-2023`` is never removed, emptied or renamed, and a record whose folder is gone
  or is another folder now is dropped. A staging folder is recorded by name just before it is
  created (:func:`reserve`): a kill in the instant before its inode is recorded leaves it
  empty, and the next export removes it with ``rmdir``, which removes only an empty folder.
* **User files carried.** Files in ``OUT`` that the previous export's manifest does not list
  (:func:`~affectnetplus_hf.core.export_files.owned_paths`) are hard-linked into the new folder
  (:func:`carry`) just before the swap, so files written while the export ran are carried
  too: no byte is copied, and until the swap the originals stay where they were. A name the
  new export also writes is a conflict, refused before the swap. A file that lands in
  ``OUT`` in the instant between that scan and the swap is moved into the new ``OUT`` after
  it (:func:`retire`), or, when the new export wrote that name, kept and named. The new
  folder and the folders holding carried files keep the permission bits of the old ones.
* **Atomic swap.** On Linux ``renameat2(RENAME_EXCHANGE)`` swaps the two folders in one step,
  so ``OUT`` is at every instant the old export or the new one. Elsewhere two renames are
  used (``OUT`` -> ``.OUT.old-<hex>``, staging -> ``OUT``); a kill between them leaves ``OUT``
  absent and the next export (or :func:`recover`) renames the old one back first.
* **Safe removal.** The previous export is removed file by file (:func:`remove_owned`): files
  its manifest lists (a card or plot only while its sha256 is still the manifest's), and hard
  links whose inode is the same file in ``OUT``. Anything else keeps the folder, and a warning
  names it; the folder is then yours and no export touches it again. A staging folder is the
  export's own from the first byte (it holds what the export wrote, and hard links to your
  files in ``OUT``, whose removal leaves them in ``OUT``), so it is removed whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..core.export_files import (
    DATA_DIR,
    INFO_FILE,
    file_record,
    journal_path,
    lock_path,
    manifest,
    old_folder,
    owned_paths,
    read_info,
)
from ..core.identity import identity, is_same_folder
from ..errors import AffectNetPlusError, ExportError

__all__ = [
    "carry",
    "claim",
    "edited_files",
    "export_lock",
    "filesystem_error",
    "recover",
    "remove_owned",
    "remove_staging",
    "retire",
    "swap",
    "unclaim",
    "user_files",
]

log = logging.getLogger(__name__)

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


# ----------------------------------------------------------------------------- lock


@contextlib.contextmanager
def export_lock(out_dir: Path) -> Iterator[None]:
    """Hold the lock of exports into ``out_dir`` (``.OUT.lock`` beside it) for the block.

    Raises :class:`ExportError` at once when another process holds it.
    """
    from filelock import FileLock, Timeout

    path = lock_path(out_dir)
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ExportError(
            f"{out_dir}: another export into this folder is running (it holds {path}); wait for it to "
            "finish, or export into another folder. If no export is running, the lock is stale: it is "
            "released when its process ends, so re-run."
        ) from None
    except PermissionError:
        if path.exists():
            raise ExportError(
                f"{path}: the lock of exports into {out_dir} cannot be opened (permission denied: it belongs to "
                "another user, whose export may be running). If none is running, delete that file (it holds no "
                f"data) or ask its owner to; or export into another folder. {out_dir} was not changed."
            ) from None
        raise ExportError(
            f"{out_dir}: cannot create the export's lock {path}: permission denied. An export writes the new folder "
            f"beside OUT and swaps it in, so {path.parent} must be writable for you, not only OUT. Choose an OUT in a "
            "folder you may write to, or change that folder's permissions. Nothing was changed."
        ) from None
    try:
        yield
    finally:
        lock.release()


# ----------------------------------------------------------------------------- journal

_JOURNAL_MARK = "affectnetplus-hf export journal"
#: ``"pending"``: a staging folder about to be created (its inode not known yet); ``"staging"``:
#: one an export created; ``"previous"``: the previous export, moved aside by a swap.
_ROLES = ("pending", "staging", "previous")


def _read_journal(out_dir: Path) -> list[dict]:
    """The records of ``.OUT.journal.json`` (none when it is absent). :class:`ExportError`
    when a file of that name is not a journal this package wrote: it is not ours to replace."""
    path = journal_path(out_dir)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        doc = err
    if not (isinstance(doc, dict) and doc.get("generator") == _JOURNAL_MARK and isinstance(doc.get("folders"), list)):
        raise ExportError(
            f"{path}: not the journal of `affectnetplus export` (expected a JSON object with generator "
            f"{_JOURNAL_MARK!r}); an export keeps there the folders it creates beside {out_dir}, so it will not "
            "replace that file. Move it elsewhere, or choose another OUT. Nothing was changed."
        )
    entries = []
    for entry in doc["folders"]:
        try:
            name, role = str(entry["name"]), str(entry["role"])
            record = {"name": name, "role": role, "dev": int(entry["dev"]), "ino": int(entry["ino"])}
        except (KeyError, TypeError, ValueError):
            continue  # unreadable: it proves nothing, so it is dropped
        if role in _ROLES and name not in ("", ".", "..", out_dir.name) and "/" not in name and os.sep not in name:
            entries.append(record)
    return entries


def _write_journal(out_dir: Path, entries: list[dict]) -> None:
    """Replace the journal by ``entries`` in one rename (readers and a kill see the old or the
    new one); with none left, remove it."""
    path = journal_path(out_dir)
    if not entries:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    text = json.dumps({"generator": _JOURNAL_MARK, "version": 1, "folders": entries}, indent=1) + "\n"
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def reserve(out_dir: Path, folder: Path) -> None:
    """Record in the journal that the staging folder ``folder`` is about to be created.

    A kill between its ``mkdir`` and :func:`claim` leaves it empty and unproven; the next
    export removes it with ``rmdir``, which removes only an empty folder, so whatever is at
    that name then (a folder of yours with files in it, a file) stays as it is."""
    entries = _read_journal(out_dir)
    entries.append({"name": folder.name, "role": "pending", "dev": 0, "ino": 0})
    _write_journal(out_dir, entries)


def claim(out_dir: Path, folder: Path, role: str, st: os.stat_result | None = None) -> None:
    """Record in the journal that ``folder`` (beside ``out_dir``) is an export's: a
    ``"staging"`` folder it created (replacing its :func:`reserve` record), or the
    ``"previous"`` export it is about to move there (``st``: the ``lstat`` of what will be at
    ``folder``; default: what is there now)."""
    st = st if st is not None else os.lstat(folder)
    entries = [e for e in _read_journal(out_dir) if not (e["name"] == folder.name and e["role"] == "pending")]
    entries.append({"name": folder.name, "role": role, **identity(st)})
    _write_journal(out_dir, entries)


def unclaim(out_dir: Path, folder: Path, role: str | None = None) -> None:
    """Drop the journal's records of ``folder`` (of one ``role``, or all)."""
    entries = _read_journal(out_dir)
    left = [e for e in entries if not (e["name"] == folder.name and role in (None, e["role"]))]
    if left != entries:
        _write_journal(out_dir, left)


def _proven(out_dir: Path, entry: dict) -> Path | None:
    """The folder of a journal record when it is still that folder (same device and inode)."""
    path = out_dir.parent / entry["name"]
    return path if is_same_folder(path, entry["dev"], entry["ino"]) else None


# ----------------------------------------------------------------------------- user files


def user_files(out_dir: Path, info: dict | None) -> list[str]:
    """Paths in ``out_dir`` (files, symlinks and empty folders, POSIX, relative) that the
    export described by ``info`` does not own. Symlinked folders are entries, not descended."""
    if not out_dir.is_dir():
        return []
    owned = owned_paths(info) if info is not None else set()
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(out_dir, followlinks=False):
        base = Path(dirpath)
        rel_base = base.relative_to(out_dir)
        for name in list(dirnames):
            if (base / name).is_symlink():
                dirnames.remove(name)
                filenames.append(name)
        if not dirnames and not filenames and base != out_dir:
            found.append(rel_base.as_posix() + "/")
        for name in filenames:
            rel = (rel_base / name).as_posix()
            if rel not in owned:
                found.append(rel)
    return sorted(found)


def edited_files(out_dir: Path, info: dict | None) -> list[str]:
    """Files the export described by ``info`` wrote outside ``data/`` (the card, the plots) whose
    bytes differ from its manifest: edited by you since, so a re-export must not replace them
    unasked. Shards are left out (a changed shard is damage a re-export repairs), and so are
    exports without sizes (format 1)."""
    if info is None:
        return []
    found = []
    for rel, record in manifest(info).items():
        path = out_dir / rel
        if rel.startswith(DATA_DIR + "/") or record.size < 0 or path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size != record.size or file_record(path).sha256 != record.sha256:
            found.append(rel)
    return sorted(found)


def carry(out_dir: Path, staging: Path, rels: list[str]) -> None:
    """Hard-link each of ``rels`` from ``out_dir`` into ``staging`` at the same path (symlinks
    are recreated, empty folders made). Raises :class:`ExportError` naming the file when
    the new export writes the same path, or when a link cannot be made."""
    clashes = [rel for rel in rels if os.path.lexists(staging / rel.rstrip("/")) and not rel.endswith("/")]
    if clashes:
        raise ExportError(
            f"{out_dir / clashes[0]}: not a file of the previous export, but the new export writes a file of that "
            f"name ({len(clashes)} such: {', '.join(clashes[:5])}); refusing to replace it. Move it out of "
            f"{out_dir} and export again. Nothing was changed."
        )
    for rel in rels:
        target = staging / rel.rstrip("/")
        source = out_dir / rel.rstrip("/")
        if rel.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if source.is_symlink():
                os.symlink(os.readlink(source), target)
            else:
                os.link(source, target, follow_symlinks=False)
        except OSError as err:
            raise ExportError(
                f"{source}: a file of yours in the export folder could not be kept in the new export "
                f"({err.strerror or err}); move it out of {out_dir} and export again. Nothing was changed."
            ) from None
    _copy_modes(out_dir, staging, rels)


def _copy_modes(out_dir: Path, staging: Path, rels: list[str]) -> None:
    """Give the new folder, and every folder of it that holds a carried path, the permission
    bits of the same folder in ``out_dir``: a folder you closed to other users (``chmod 700``
    on licensed data) stays closed after a re-export."""
    if not out_dir.is_dir():
        return
    folders = {Path(rel.rstrip("/")) for rel in rels if rel.endswith("/")}
    for rel in rels:
        folders.update(Path(rel.rstrip("/")).parents)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):  # OUT itself ("." ) last
        source, target = out_dir / folder, staging / folder
        if source.is_dir() and not source.is_symlink() and target.is_dir():
            shutil.copymode(source, target)
    shutil.copymode(out_dir, staging)


# ----------------------------------------------------------------------------- swap


def _exchange(a: Path, b: Path) -> bool:
    """Swap the folders ``a`` and ``b`` atomically; False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _step(name: str) -> None:
    """A named point of the swap; does nothing (tests replace it to stop a run exactly there)."""


def swap(staging: Path, out_dir: Path, token: str, atomic: bool = True) -> Path | None:
    """Replace ``out_dir`` by ``staging``. Returns the folder now holding the previous export
    (to be removed with :func:`retire`), or None when ``out_dir`` did not exist.

    Before the previous export moves beside ``out_dir`` the journal records it there
    (:func:`claim`), so a kill at any instant leaves nothing that the next export cannot prove
    is its own."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return None
    previous = os.lstat(out_dir)
    if atomic:
        claim(out_dir, staging, "previous", previous)
        if _exchange(staging, out_dir):
            return staging
        unclaim(out_dir, staging, "previous")
    old = old_folder(out_dir, token)
    claim(out_dir, old, "previous", previous)
    out_dir.rename(old)
    _step("between_renames")
    try:
        staging.rename(out_dir)
    except OSError:
        old.rename(out_dir)  # put the previous export back before reporting the failure
        unclaim(out_dir, old)
        raise
    return old


# ----------------------------------------------------------------------------- cleanup


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are the same inode (symlinks not followed); False when either is missing."""
    try:
        return os.path.samestat(a.lstat(), b.lstat())
    except OSError:
        return False


def _carried(path: Path, mine: Path) -> bool:
    """Whether ``path`` (in a previous export) was carried to ``mine`` (in ``OUT``): the same
    inode, or a symlink with the same target."""
    return _same_file(path, mine) or (
        path.is_symlink() and mine.is_symlink() and os.readlink(path) == os.readlink(mine)
    )


def _info_of(folder: Path) -> dict | None:
    try:
        return read_info(folder)
    except ExportError:
        return None


def remove_owned(folder: Path, out_dir: Path) -> list[str]:
    """Remove from ``folder`` (a previous export, proven ours by the journal) what may go,
    then the folder if it is empty. Returns the paths kept.

    Goes: ``export_info.json``, the report and the files its manifest lists (a card or a plot
    only while its bytes are still the manifest's: one you edited stays), and files that are
    the same inode as the file at the same path in ``out_dir`` (user files carried by hard
    link). A symlink goes when ``out_dir`` has the same link. Everything else stays, named in
    a warning; a folder without a readable ``export_info.json`` (an empty ``OUT`` replaced)
    owns nothing but the carried links.
    """
    info = _info_of(folder)
    owned = owned_paths(info) if info is not None else set()
    edited = set(edited_files(folder, info))  # your changes to its card or plots stay
    kept: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False, followlinks=False):
        base = Path(dirpath)
        for name in [*filenames, *(d for d in dirnames if (base / d).is_symlink())]:
            path = base / name
            rel = path.relative_to(folder).as_posix()
            if _carried(path, out_dir / rel) or (rel in owned and rel not in edited):
                path.unlink()
            else:
                kept.append(rel)
        if base != folder:
            with contextlib.suppress(OSError):
                base.rmdir()  # only when empty
    with contextlib.suppress(OSError):
        folder.rmdir()
    if kept:
        log.warning(
            "kept %s: it holds %d file(s) that are not the export's and are not in %s (%s); move them "
            "where you want them, then delete the folder (no export touches it again)",
            folder,
            len(kept),
            out_dir,
            ", ".join(kept[:5]),
        )
    return sorted(kept)


def remove_staging(folder: Path) -> None:
    """Remove a staging folder proven ours by the journal, whole (see the module's notes)."""
    shutil.rmtree(folder)


def _move_late(previous: Path, out_dir: Path, info: dict | None) -> list[str]:
    """Move into ``out_dir`` the files of yours that reached ``previous`` (the old ``OUT``)
    after the last scan before the swap: each to the same path, never over a file there
    (hard link, then unlink). Returns the paths moved; the rest stay for :func:`remove_owned`
    to name."""
    moved = []
    for rel in user_files(previous, info):
        source, target = previous / rel.rstrip("/"), out_dir / rel.rstrip("/")
        try:
            if rel.endswith("/"):
                if not os.path.lexists(target):
                    target.mkdir(parents=True)
                    moved.append(rel)
                continue
            if _carried(source, target):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target, follow_symlinks=False)  # fails when the name is taken: nothing replaced
        except OSError:
            continue
        source.unlink()
        moved.append(rel)
    return moved


def retire(previous: Path, out_dir: Path) -> tuple[list[str], list[str]]:
    """Clear the previous export out of ``previous`` once the new one is ``out_dir``:
    :func:`_move_late`, then :func:`remove_owned`. Returns (moved into ``out_dir``, kept)."""
    moved = _move_late(previous, out_dir, _info_of(previous))
    if moved:
        log.warning(
            "carried %d file(s) written into %s while the export ran into the new export: %s",
            len(moved),
            out_dir,
            ", ".join(moved[:5]),
        )
    return moved, remove_owned(previous, out_dir)


def recover(out_dir: Path) -> None:
    """Undo what killed runs left, acting only on folders the journal proves are theirs:
    restore a previous export stranded between the two renames of a swap, then remove
    leftover staging folders (:func:`remove_staging`) and previous exports (:func:`retire`).
    A folder beside ``out_dir`` that the journal does not prove is never touched, whatever
    its name. A leftover that cannot be removed (files of another user) is named in a
    warning, stays in the journal for the next run, and never stops the export."""
    entries = _read_journal(out_dir)
    for entry in entries:
        if entry["role"] == "pending":  # created, then killed before it held anything: empty, if still there
            with contextlib.suppress(OSError):  # gone, not empty (not ours), or not a folder: left as it is
                os.rmdir(out_dir.parent / entry["name"])
    proven = [
        (entry, folder)
        for entry in entries
        if entry["role"] != "pending" and (folder := _proven(out_dir, entry)) is not None
    ]
    previous = [(e, f) for e, f in proven if e["role"] == "previous"]
    if not out_dir.exists() and previous:
        entry, newest = max(previous, key=lambda pair: pair[1].stat().st_mtime)
        log.warning("restoring %s from %s, left by an export that was killed while swapping", out_dir, newest)
        try:
            newest.rename(out_dir)
        except OSError as err:
            raise ExportError(
                f"{out_dir}: missing; the previous export is in {newest}, left by an export killed while swapping, and "
                f"could not be put back ({err.strerror or err}). Rename {newest} to {out_dir} yourself, then export again."
            ) from None
        proven.remove((entry, newest))
    left = []
    for entry, folder in proven:
        log.info("removing %s, left by an earlier export that did not finish", folder)
        try:
            if entry["role"] == "staging":
                remove_staging(folder)
            else:
                retire(folder, out_dir)
        except OSError as err:  # not ours to fix, and no reason to refuse this export
            left.append(entry)
            log.warning(
                "could not remove %s, left by an earlier export (%s: %s); it does not affect %s. Delete it "
                "yourself (or ask the owner of its files to)",
                folder,
                err.strerror or err,
                err.filename or folder,
                out_dir,
            )
    if left != entries:
        _write_journal(out_dir, left)


# ----------------------------------------------------------------------------- messages


_ADVICE: dict[int | None, str] = {  # looked up by an OSError's errno, which may be None
    errno.ENOSPC: "free space on that disk (an export needs about the size of the release) or export to another disk",
    errno.EDQUOT: "free space within your disk quota or export to another disk",
    errno.EROFS: "the disk is read-only: choose an OUT on a writable disk",
    errno.EACCES: "choose an OUT you may write to, or change the folder's permissions",
    errno.EPERM: "choose an OUT you may write to, or change the folder's permissions",
}


def filesystem_error(err: OSError, out_dir: Path) -> ExportError:
    """One line for an OS error met while exporting into ``out_dir``: the user's path, what
    happened, what to do, and that the previous export is unchanged."""
    if isinstance(err, AffectNetPlusError):  # pragma: no cover - callers re-raise ours unchanged
        return err  # type: ignore[return-value]
    code = err.errno
    if code is None and "No space left" in str(err):
        code = errno.ENOSPC
    what = os.strerror(code) if code else (err.strerror or str(err).splitlines()[0] if str(err) else type(err).__name__)
    advice = _ADVICE.get(code, "fix the cause and export again")
    if (out_dir / INFO_FILE).is_file():
        outcome = f"The previous export in {out_dir} is unchanged."
    else:
        outcome = f"{out_dir} was not changed." if out_dir.is_dir() else f"{out_dir} was not created."
    return ExportError(f"{out_dir}: cannot write the export: {what}; {advice}. {outcome}")
