"""Jupyter Workbench: an AI lab that lives inside Jupyter."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import WorkbenchApp

    return [{"module": "jupyter_workbench.app", "app": WorkbenchApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension (built from labextension/ by `make labextension`)."""
    return [{"src": "labextension", "dest": "jupyter-workbench"}]
