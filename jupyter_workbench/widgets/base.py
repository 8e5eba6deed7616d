"""What every workbench widget shares: its client, the ESM/CSS files, error reporting into the
view, and a static HTML fallback beside the widget view."""

from __future__ import annotations

import html
import math
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from ..client.errors import WorkbenchError
from ..client.magics import number

if TYPE_CHECKING:  # pragma: no cover
    from ..client import Client

STATIC = Path(__file__).parent / "static"


def esm(name: str) -> str:
    """A widget's ES module: the shared helpers (``common.js``) followed by ``name``."""
    return (STATIC / "common.js").read_text() + "\n" + (STATIC / name).read_text()


def default_client(client: Client | None) -> Client:
    if client is not None:
        return client
    from ..client import default

    return default.client()


class WorkbenchWidget(anywidget.AnyWidget):
    """An anywidget whose kernel side talks to the workbench; subclasses set ``_esm``."""

    _css = (STATIC / "widgets.css").read_text()
    error = t.Unicode("", help="The last error the kernel side met (shown in the view).").tag(
        sync=True
    )
    busy = t.Bool(False, help="True while the kernel side fetches.").tag(sync=True)
    failure: WorkbenchError | None = None  # the error of the last fetch, None if it worked

    def __init__(self, client: Client | None = None, **kwargs: Any) -> None:
        client = default_client(client)  # before the comm opens: NotConfigured leaves none
        super().__init__(**kwargs)
        self.client = client
        self._lock = threading.RLock()
        self.on_msg(self._on_view_message)

    def _abandon(self) -> None:
        """Close a widget whose constructor failed after its comm opened, with the layout
        widget made for it: nothing is left registered in the kernel for no view."""
        layout = self._trait_values.get("layout")
        self.close()
        if layout is not None:
            layout.close()

    def _on_view_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """The view's ↻ button sends ``{"type": "reload"}``."""
        if isinstance(content, dict) and content.get("type") == "reload":
            self.reload()

    def reload(self) -> None:
        """Fetch what the widget shows again (the view's ↻ button)."""

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run a fetch for the view: a workbench error shows in the view instead of raising
        inside a comm callback (where nobody would see it)."""
        self.busy = True
        self.failure = None
        try:
            value = fn()
        except WorkbenchError as exc:
            self.error = exc.message if hasattr(exc, "message") else str(exc)
            self.failure = exc  # for a Python caller that should raise it (show_diff)
            return None
        finally:
            self.busy = False
        self.error = ""
        return value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.summary()}>"

    def summary(self) -> str:  # pragma: no cover - every subclass has its own
        return ""

    # -- static fallback ------------------------------------------------------------------
    def fallback_html(self) -> str:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def _repr_html_(self) -> str:
        # the error the view shows (an experiment or dataset that does not exist ...) shows
        # here too: else the snapshot is an empty table that says nothing
        error = f'<p class="wb-error">{esc(self.error)}</p>' if self.error else ""
        return f'<div class="wb-fallback">{error}{self.fallback_html()}</div>'

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        found = super()._repr_mimebundle_(**kwargs)
        data, meta = found if isinstance(found, tuple) else (found or {}, {})
        data = {**data, "text/html": self._repr_html_()}
        return data, meta


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def html_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> str:
    """A plain HTML table (every cell escaped)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def chart_value(value: Any) -> float | None:
    """A metric value a chart can draw: a finite float, else ``None`` (a gap). NaN and
    infinities are gaps, also as MLflow hands them out: the strings ``"NaN"``/``"Infinity"``,
    and the largest float, which its SQL store keeps an infinity as."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and abs(number) != sys.float_info.max else None


def fmt(value: Any) -> str:
    """A metric value, short, as ``%wb runs`` prints it (MLflow's ``"NaN"``/``"Infinity"``
    strings as ``nan``/``inf``); whole numbers in full."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return number(value)
