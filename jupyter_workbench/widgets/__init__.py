"""Notebook widgets on the workbench API (anywidget: JupyterLab, Notebook 7, VS Code, no lab
extension needed): ``wb.widgets.LiveMetrics(run)``, ``RunsTable(experiment)``,
``CompareRuns(runs)``, ``DatasetBrowser(dataset)``, ``ModelCard(model)``.

The kernel side fetches everything through the Python client and syncs it to the view, so a
view never needs its own credentials. Each widget also renders as static HTML where widgets
cannot (``_repr_html_``, and ``text/html`` beside the widget view in its MIME bundle).
Imported on first use: ``import jupyter_workbench`` does not import anywidget.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CompareRuns", "DatasetBrowser", "LiveMetrics", "ModelCard", "RunsTable"]

_WHERE = {
    "LiveMetrics": "live",
    "RunsTable": "runs",
    "CompareRuns": "runs",
    "DatasetBrowser": "datasets",
    "ModelCard": "model_card",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'jupyter_workbench.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
