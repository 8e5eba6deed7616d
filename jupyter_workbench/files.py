"""Small file operations shared by the server and the client (standard library only)."""

from __future__ import annotations

import os
import shutil
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
