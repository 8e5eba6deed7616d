"""Where the workbench is and which token to use, found without being told.

In order: ``WORKBENCH_URL`` (+ ``WORKBENCH_TOKEN``), which every workbench kernel has; inside a
JupyterHub user server ``JUPYTERHUB_SERVICE_URL`` + ``JUPYTERHUB_API_TOKEN``; else the running
Jupyter servers of this machine (their ``jpserver-*.json`` runtime files): the one whose root
folder holds the current directory, or the newest. When several run, the first of them (in that
order) that answers as a workbench is taken, so a plain Jupyter server started later in the same
folder is passed over.
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
    found = [
        (str(info["url"]).rstrip("/"), (str(info.get("token") or "") or None))
        for _, info in candidates
    ]
    if len(found) > 1:
        for url, token in found:
            if _is_workbench(url, token):
                return url, token
    return found[0]  # none answered as a workbench: the client's first call says why


PROBE_SECONDS = 1.0


def _is_workbench(url: str, token: str | None) -> bool:
    """Whether the server at ``url`` serves the workbench API (a JSON answer, even a refusal,
    where a server without the extension answers 404 or a login redirect)."""
    import httpx

    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        response = httpx.get(f"{url}/workbench/api/v1/me", headers=headers, timeout=PROBE_SECONDS)
    except httpx.HTTPError:
        return False
    return response.status_code in (200, 401, 403) and response.headers.get(
        "content-type", ""
    ).startswith("application/json")
