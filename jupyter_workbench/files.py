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
