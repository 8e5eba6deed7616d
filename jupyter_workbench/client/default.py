"""The module-level API (``wb.connect``, ``wb.projects``, ``wb.datasets`` ...) on one default
connection, made on first use from what ``discovery`` finds."""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Iterable
from typing import Any

from . import Client
from .errors import NotConfigured
from .models import ModelVersion
from .resources import DatasetVersion, Project
from .runs import Run, active_run

__all__ = [
    "active_run",
    "client",
    "compare",
    "connect",
    "create_project",
    "datasets",
    "log",
    "models",
    "project",
    "projects",
    "run",
    "use",
]

_default: Client | None = None
_lock = threading.Lock()


def _scope_mlflow(c: Client) -> None:
    """Point the stock ``mlflow`` client of this process at the current project
    (``MLFLOW_TRACKING_URI=.../workbench/mlflow/p/<slug>``, so ``mlflow.set_experiment("x")``
    makes the project's experiment ``x``) with this connection's token, where it points at this
    workbench or nowhere; a tracking URI set to anything else is left alone."""
    if not c.current_project:
        return
    ours = f"{c.url}/workbench/mlflow"
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri and uri.rstrip("/") != ours and not uri.startswith(f"{ours}/p/"):
        return
    os.environ["MLFLOW_TRACKING_URI"] = c.mlflow_url(c.current_project)
    if c.token:  # as whoever this connection is (wb.connect with another token: them)
        os.environ["MLFLOW_TRACKING_TOKEN"] = c.token


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
    _scope_mlflow(new)
    return new


def client() -> Client:
    """The default connection (made on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = Client()
            _scope_mlflow(_default)
        return _default


def projects() -> list[Project]:
    """Every project you can see."""
    return client().projects()


def project(slug: str | None = None) -> Project:
    """One project (default: the current one)."""
    return client().project(slug)


def create_project(
    name: str, slug: str | None = None, *, description: str = "", exist_ok: bool = False
) -> Project:
    """A new project you own (``exist_ok=True``: your existing one, see
    ``Client.create_project``)."""
    return client().create_project(name, slug, description=description, exist_ok=exist_ok)


def use(slug: str) -> Project:
    """Make ``slug`` the current project (of ``%wb``, ``wb.run``... and of plain ``mlflow``
    calls: ``MLFLOW_TRACKING_URI`` follows it)."""
    c = client()
    found = c.use(slug)
    _scope_mlflow(c)
    return found


def run(
    experiment: str = "Default",
    *,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    name: str | None = None,
    project: str | None = None,
) -> Run:
    """Start a run in an experiment of the current project (``with wb.run(...) as run:``)."""
    c = client()
    return c.run(c.project_slug(project), experiment, params=params, tags=tags, name=name)


def log(metrics: dict[str, float], step: int | None = None) -> None:
    """``run.log`` on the active run (the innermost ``wb.run``, or the ``%%wb_run`` cell's)."""
    run = active_run()
    if run is None:
        raise NotConfigured("no active run: use `with wb.run(...) as run:` or a %%wb_run cell")
    run.log(metrics, step=step)


def compare(run_ids: list[str]) -> dict[str, Any]:
    """Params that differ and metrics side by side of several runs (full run ids)."""
    return client().compare(run_ids)


class _DefaultDatasets:
    """``wb.datasets``: the default connection's datasets (connects on first call)."""

    def get(
        self, name: str, version: str | int = "latest", *, project: str | None = None
    ) -> DatasetVersion:
        return client().datasets.get(name, version=version, project=project)

    def list(self, project: str | None = None) -> list[dict[str, Any]]:
        return client().datasets.list(project)

    def commit(
        self,
        name: str,
        folder: str | os.PathLike[str],
        *,
        message: str = "",
        project: str | None = None,
        progress: bool = True,
        parent: str | int | None = None,
        strict_parent: bool = False,
        mode: str = "replace",
        ignore: str | Iterable[str] = (),
    ) -> DatasetVersion:
        return client().datasets.commit(
            name, folder, message=message, project=project, progress=progress, parent=parent,
            strict_parent=strict_parent, mode=mode, ignore=ignore,
        )  # fmt: skip

    def versions(self, name: str, *, project: str | None = None) -> builtins.list[dict[str, Any]]:
        return client().datasets.versions(name, project=project)

    def diff(
        self, name: str, a: str | int, b: str | int, *, project: str | None = None
    ) -> dict[str, Any]:
        return client().datasets.diff(name, a, b, project=project)

    def tag(
        self, name: str, tag: str, version: str | int, *, project: str | None = None
    ) -> dict[str, Any]:
        return client().datasets.tag(name, tag, version, project=project)

    def untag(self, name: str, tag: str, *, project: str | None = None) -> None:
        client().datasets.untag(name, tag, project=project)


class _DefaultModels:
    """``wb.models``: the default connection's model registry."""

    def register(
        self,
        run: Run | str,
        name: str,
        *,
        artifact_path: str = "model",
        description: str = "",
        project: str | None = None,
    ) -> ModelVersion:
        return client().models.register(
            run, name, artifact_path=artifact_path, description=description, project=project
        )

    def get(self, ref: str, *, project: str | None = None) -> ModelVersion:
        return client().models.get(ref, project=project)

    def set_alias(
        self, ref: str | ModelVersion, alias: str, *, project: str | None = None
    ) -> ModelVersion:
        return client().models.set_alias(ref, alias, project=project)

    def load(self, ref: str, *, project: str | None = None) -> Any:
        return client().models.load(ref, project=project)

    def download(self, ref: str, *, project: str | None = None) -> Any:
        return client().models.download(ref, project=project)

    def list(self, project: str | None = None) -> list[dict[str, Any]]:
        return client().models.list(project)


datasets = _DefaultDatasets()
models = _DefaultModels()
