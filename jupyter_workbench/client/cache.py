"""The client's local cache folder: ``WORKBENCH_CACHE_DIR``, else ``~/.cache/jupyter-workbench``,
with ``datasets/`` (versions' files), ``models/`` (model versions' files) and ``uploads/`` (the ids
of unfinished dataset commits)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(kind: str) -> Path:
    """The cache folder of ``kind`` (``"datasets"``, ``"models"``, ``"uploads"``)."""
    root = os.environ.get("WORKBENCH_CACHE_DIR") or Path.home() / ".cache" / "jupyter-workbench"
    return Path(root) / kind
