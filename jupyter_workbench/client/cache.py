"""The client's local cache folder: ``WORKBENCH_CACHE_DIR``, else ``~/.cache/jupyter-workbench``,
with ``datasets/`` (versions' files), ``models/`` (model versions' files) and ``uploads/`` (the ids
of unfinished dataset commits)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "made", "publish"]

# part of every cached copy's key: a copy made by an older layout (which kept a ``.complete``
# marker among the version's files) is not taken for one of this layout
LAYOUT = "2"


def cache_dir(kind: str) -> Path:
    """The cache folder of ``kind`` (``"datasets"``, ``"models"``, ``"uploads"``)."""
    root = os.environ.get("WORKBENCH_CACHE_DIR") or Path.home() / ".cache" / "jupyter-workbench"
    # "~/cache" as set in a notebook (os.environ) or a pod spec, which no shell expanded:
    # else a folder named '~' in the working directory
    return Path(root).expanduser() / kind


def made(folder: Path) -> Path:
    """``folder`` of the cache, made if missing; one that cannot be (``WORKBENCH_CACHE_DIR`` a
    file, or a folder you cannot write) is the ``OSError`` it was, saying which setting to
    change rather than only ``[Errno 20] Not a directory: '.../datasets'``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        said = (
            f"the cache folder {folder} cannot be made ({exc.strerror or exc}): set "
            "WORKBENCH_CACHE_DIR to a folder you can write"
        )
        raise type(exc)(exc.errno, said) from exc
    return folder


def publish(staging: Path, target: Path) -> Path:
    """Move a finished download ``staging`` into place as ``target`` in one rename, so that a
    ``target`` that exists is whole. When another process put the same copy there first, its copy
    stays (it may be in use) and ``staging`` is left for the caller to remove."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging.rename(target)
    except OSError:
        if not target.is_dir():
            raise
    return target
