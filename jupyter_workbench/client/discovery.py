"""Where the workbench is and which token to use, found without being told.

In order: ``WORKBENCH_URL`` (+ ``WORKBENCH_TOKEN``), which every workbench kernel has; inside a
JupyterHub user server ``JUPYTERHUB_SERVICE_URL`` + ``JUPYTERHUB_API_TOKEN``; else the running
Jupyter servers of this machine (their ``jpserver-*.json`` runtime files): the one whose root
folder holds the current directory, or the newest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import NotConfigured

__all__ = ["discover"]


def discover() -> tuple[str, str | None]:
    """``(url, token)`` of the workbench this process belongs to (``NotConfigured`` if none)."""
    token = os.environ.get("WORKBENCH_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN")
    url = os.environ.get("WORKBENCH_URL") or os.environ.get("JUPYTERHUB_SERVICE_URL")
    if url:
        return url.rstrip("/"), token
    found = _running_server()
    if found:
        return found
    raise NotConfigured(
        "no workbench found: set WORKBENCH_URL and WORKBENCH_TOKEN, or call "
        "jupyter_workbench.connect(url, token)"
    )


def _running_server() -> tuple[str, str | None] | None:
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # pragma: no cover - jupyter_core comes with jupyter_server
        return None
    candidates = []
    for path in Path(jupyter_runtime_dir()).glob("jpserver-*.json"):
        try:
            info = json.loads(path.read_text())
            os.kill(int(info["pid"]), 0)  # still running?
        except (OSError, ValueError, KeyError, TypeError):
            continue
        candidates.append((path.stat().st_mtime, info))
    if not candidates:
        return None
    cwd = Path.cwd().resolve()

    def holds_cwd(info: dict[str, object]) -> bool:
        root = Path(str(info.get("root_dir") or "/")).expanduser().resolve()
        return cwd == root or root in cwd.parents

    candidates.sort(key=lambda c: (holds_cwd(c[1]), c[0]), reverse=True)
    info = candidates[0][1]
    return str(info["url"]).rstrip("/"), (str(info.get("token") or "") or None)
