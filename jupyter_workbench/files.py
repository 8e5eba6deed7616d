"""Small file operations shared by the server and the client (standard library only)."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path


def copy_replacing(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` as a new file put in place (written under a short temporary
    name beside it first): never a write into the old ``target``, which may be a hard link to a
    dataset cache, and never a half-written ``target``."""
    tmp = target.with_name(f".wb-{uuid.uuid4().hex[:16]}.tmp")  # (a long name stays valid)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def first_clash(dest: Path, paths: list[str]) -> str | None:
    """Where in ``dest`` files of these relative ``paths`` cannot go -- a file where one needs a
    folder, or a folder where one puts a file -- said in words; None: they all fit (files
    already there are replaced). Checked before anything is written."""
    folders = sorted({"/".join(path.split("/")[:n]) for path in paths
                      for n in range(1, path.count("/") + 1)})  # fmt: skip
    for folder in folders:
        target = dest / folder
        if target.exists() and not target.is_dir():
            return f"{target} is a file where the version has a folder"
    for path in paths:
        target = dest / path
        if target.is_dir() and not target.is_symlink():
            return f"{target} is a folder where the version has a file"
    return None


def _stamp(digest: str) -> int:
    """The sub-second part (in ns, whole microseconds) of a cached file's modification time: a
    write through a hard link sets a new time, which almost surely lacks it."""
    return int(digest[:8], 16) % 1_000_000 * 1_000


def _stamped(mtime_ns: int, digest: str) -> bool:
    """Whether a cached file still has its stamp. A file system that keeps whole milliseconds
    at best (FAT, exFAT, ext3, Lustre) cannot hold one: there its files are trusted as they
    are (mode and size are still checked) rather than fetched again every time."""
    below_second = mtime_ns % 1_000_000_000
    return below_second == _stamp(digest) or below_second % 1_000_000 == 0


def seal(path: Path, digest: str) -> None:
    """Make a freshly written cache file of content ``digest`` read-only and stamp its
    modification time (``sealed`` tells later whether anyone wrote to it since)."""
    os.chmod(path, 0o444)
    stamped = time.time_ns() // 1_000_000_000 * 1_000_000_000 + _stamp(digest)
    os.utime(path, ns=(stamped, stamped))


def sealed(path: Path, size: int, digest: str) -> bool:
    """Whether the cache file ``path`` is still as ``seal`` left it: there, ``size`` bytes long,
    read-only and stamped (a file made writable or written to is not trusted again)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    return stat.st_size == size and not stat.st_mode & 0o222 and _stamped(stat.st_mtime_ns, digest)
