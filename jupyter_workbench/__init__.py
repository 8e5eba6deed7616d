"""Jupyter Workbench: an AI lab that lives inside Jupyter.

``import jupyter_workbench as wb`` stays light: the client (``wb.connect``, ``wb.connection``
(the default ``Client``, made on first use), ``wb.projects``,
``wb.project``, ``wb.use``, ``wb.datasets``, ``wb.run``, ``wb.log``, ``wb.active_run``,
``wb.models``, ``wb.compare``, ``wb.errors``, ``wb.Client``) is imported on first use, and
nothing of the server extension is imported at all; so are the notebook widgets
(``wb.widgets.LiveMetrics`` ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from . import widgets as widgets
    from .client import Client as Client
    from .client import errors as errors
    from .client.default import active_run as active_run
    from .client.default import client as connection  # noqa: F401 - wb.connection()
    from .client.default import compare as compare
    from .client.default import connect as connect
    from .client.default import create_project as create_project
    from .client.default import datasets as datasets
    from .client.default import log as log
    from .client.default import models as models
    from .client.default import project as project
    from .client.default import projects as projects
    from .client.default import run as run
    from .client.default import use as use

__version__ = "0.1.0"

_CLIENT_API = {
    "connect",
    "create_project",
    "projects",
    "project",
    "use",
    "datasets",
    "run",
    "log",
    "active_run",
    "models",
    "compare",
}


def __getattr__(name: str) -> Any:
    if name in _CLIENT_API:
        from .client import default

        return getattr(default, name)
    if name == "connection":  # (``wb.client`` is the subpackage)
        from .client import default

        return default.client
    if name in ("errors", "Client"):
        from . import client

        return getattr(client, name)
    if name == "widgets":
        from importlib import import_module

        return import_module(".widgets", __name__)
    raise AttributeError(f"module 'jupyter_workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_CLIENT_API, "connection", "errors", "Client", "widgets"])


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_workbench``: the ``%wb`` magic."""
    from .client.magics import load_ipython_extension as load

    load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import WorkbenchApp

    return [{"module": "jupyter_workbench.app", "app": WorkbenchApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension (built from labextension/ by `make labextension`)."""
    return [{"src": "labextension", "dest": "jupyter-workbench"}]
