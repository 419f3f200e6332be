"""The one rule by which a command proves a folder is its own: the device and inode it recorded.

A folder a command creates and may leave behind (an export's staging folder, the previous
export moved aside, ``stats --out``'s hidden working folder) is recorded with its name, device
and inode when it is created. A later run acts on the folder at that name only while it is
still that very folder: a folder of yours put at the same name since (a new inode), a file, or
a link is never touched. Names alone prove nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["identity", "is_same_folder"]


def identity(st: os.stat_result) -> dict[str, int]:
    """``{"dev": ..., "ino": ...}`` of an ``lstat`` result, as the records keep it."""
    return {"dev": st.st_dev, "ino": st.st_ino}


def is_same_folder(path: Path, dev: int, ino: int) -> bool:
    """Whether ``path`` is (not links to) a folder with device ``dev`` and inode ``ino``."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == (dev, ino)
