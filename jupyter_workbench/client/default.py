"""The module-level API (``wb.connect``, ``wb.projects``, ``wb.datasets`` ...) on one default
connection, made on first use from what ``discovery`` finds."""

from __future__ import annotations

import threading
from typing import Any

from . import Client
from .resources import DatasetVersion, Project

__all__ = ["client", "connect", "datasets", "project", "projects", "use"]

_default: Client | None = None
_lock = threading.Lock()


def connect(
    url: str | None = None,
    token: str | None = None,
    *,
    project: str | None = None,
    timeout: float = 30,
    retries: int = 3,
) -> Client:
    """Connect (found by itself when ``url``/``token`` are omitted); it becomes the default."""
    global _default
    new = Client(url, token, timeout=timeout, retries=retries, project=project)
    with _lock:
        old, _default = _default, new
    if old is not None:
        old.close()
    return new


def client() -> Client:
    """The default connection (made on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = Client()
        return _default


def projects() -> list[Project]:
    """Every project you can see."""
    return client().projects()


def project(slug: str | None = None) -> Project:
    """One project (default: the current one)."""
    return client().project(slug)


def use(slug: str) -> Project:
    """Make ``slug`` the current project."""
    return client().use(slug)


class _DefaultDatasets:
    """``wb.datasets``: the default connection's datasets (connects on first call)."""

    def get(
        self, name: str, version: str | int = "latest", *, project: str | None = None
    ) -> DatasetVersion:
        return client().datasets.get(name, version=version, project=project)

    def list(self, project: str | None = None) -> list[dict[str, Any]]:
        return client().datasets.list(project)


datasets = _DefaultDatasets()
