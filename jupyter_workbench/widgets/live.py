"""``LiveMetrics(run)``: a chart of a run's metrics that updates while the run trains."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import traitlets as t

from .base import WorkbenchWidget, chart_value, esc, esm
from .follow import TERMINAL, RunFollower, run_info
from .svg import ema, line_chart

if TYPE_CHECKING:  # pragma: no cover
    from ..client import Client
    from ..client.runs import Run


KEEP = 20  # points kept per metric, in max_points: past that, thinned to half


def thin(items: list[tuple[int, Any]], most: int) -> list[tuple[int, Any]]:
    """At most ``most`` of ``(step, value)`` sorted by step: the lowest and the highest value
    of equal buckets (so spikes and dips survive, as in the server's downsampling), and the
    last point."""
    if len(items) <= most:
        return items
    buckets = max(1, (most - 1) // 2)
    size = len(items) / buckets
    out: list[tuple[int, Any]] = []
    for b in range(buckets):
        bucket = items[int(b * size) : int((b + 1) * size)]
        numbers = [p for p in bucket if p[1] is not None and math.isfinite(p[1])]
        if not numbers:
            out.append(bucket[-1])
            continue
        low, high = min(numbers, key=lambda p: p[1]), max(numbers, key=lambda p: p[1])
        out.extend(sorted({low, high}))
    return out if out[-1] == items[-1] else [*out, items[-1]]


class LiveMetrics(WorkbenchWidget):
    """A line chart of several metrics of one run, following it while it trains.

    The kernel loads the stored history (downsampled to ``max_points`` per metric), then
    follows the run: new points arrive over the run's live WebSocket (polling the history
    where the socket cannot open) and the run's status is checked every second; following
    stops when the run ends. ``keys=None`` shows every metric, new ones as they appear;
    ``run=None`` follows the active run (``wb.run``).
    """

    _esm = esm("live_metrics.js")
    _follower: RunFollower | None = None  # also for a widget whose __init__ raised

    run_id = t.Unicode(help="The run followed.").tag(sync=True)
    run_name = t.Unicode("", help="Its name.").tag(sync=True)
    status = t.Unicode("", help="RUNNING, FINISHED, FAILED or KILLED.").tag(sync=True)
    metrics = t.List(t.Unicode(), help="The metrics shown, in legend order.").tag(sync=True)
    series = t.Dict(
        help='Per metric: {"steps": [...], "values": [...]} (None for NaN and infinities), '
        "sorted by step."
    ).tag(sync=True)
    smoothing = t.Float(
        0.0, min=0.0, max=0.99, help="Exponential smoothing of the lines (0: none)."
    ).tag(sync=True)
    points = t.Int(0, help="Points received so far (history and live).").tag(sync=True)
    mode = t.Unicode(
        "", help="How the run is followed: websocket, polling, or stopped (not following)."
    ).tag(sync=True)

    def __init__(
        self,
        run: Run | str | None = None,
        keys: list[str] | str | None = None,
        *,
        project: str | None = None,
        smoothing: float = 0.0,
        max_points: int = 2000,
        follow: bool = True,
        websocket: bool = True,
        client: Client | None = None,
    ) -> None:
        if run is None:
            from ..client.runs import active_run

            run = active_run()
            if run is None:
                raise ValueError("LiveMetrics: no run given and no active run (wb.run(...))")
        if not isinstance(run, str):
            client = client or run.client
            project = project or run.project
        run_id = run if isinstance(run, str) else run.run_id
        if isinstance(keys, str):  # LiveMetrics(run, "loss") drew metrics l, o, s and s
            keys = [keys]
        super().__init__(client=client, run_id=run_id, smoothing=smoothing, mode="stopped")
        try:
            self._start(run_id, keys, project, max_points, follow, websocket)
        except BaseException:  # a run that does not exist, an interrupt ...: no comm is left
            self._abandon()  # open, and no thread following the run for no chart (close())
            raise

    def _start(
        self,
        run_id: str,
        keys: list[str] | None,
        project: str | None,
        max_points: int,
        follow: bool,
        websocket: bool,
    ) -> None:
        if project is None:  # a run id: of whichever project holds it, not the current one
            found = self.client.compare([run_id])["runs"]  # (its MLflow is that project's)
            project = str(found[0]["experiment"]).partition("/")[0] if found else None
        self.project = self.client.project_slug(project)
        self.max_points = max(2, max_points)
        self._fixed_keys = list(keys) if keys else None
        self._data: dict[str, dict[int, float | None]] = {}
        self._dirty = False
        self.metrics = list(keys or [])
        info = self._fetch_info()
        self._set_run(info)
        if follow and self.status not in TERMINAL:
            self._follower = RunFollower(
                self.client,
                self.project,
                run_id,
                on_points=self._on_points,
                on_run=self._on_run,
                on_tick=self._publish,
                on_error=self._on_follow_error,
                websocket=websocket,
            )
            self._follower.start()
            self._follower.connected.wait(15)  # live first, then the history: no gap
            self.mode = self._follower.mode
        for key in self.metrics:
            self._load_history(key)
        self._publish()

    # -- data in ------------------------------------------------------------------------
    def _fetch_info(self) -> dict[str, Any]:
        info = run_info(self.client, self.project, self.run_id)
        self.run_name = info["run_name"]
        return info

    def _set_run(self, info: dict[str, Any]) -> None:
        self.status = str(info["status"])
        if self._fixed_keys is None:
            new = [k for k in sorted(info["latest"]) if k not in self.metrics]
            if new:
                self.metrics = [*self.metrics, *new]

    def _wanted(self, key: str) -> bool:
        return self._fixed_keys is None or key in self._fixed_keys

    def _last_step(self, key: str) -> int | None:
        steps = self._data.get(key)
        return max(steps) if steps else None

    def _load_history(self, key: str, start_step: int | None = None) -> None:
        found = self.client.history(self.run_id, key, self.max_points, start_step=start_step)
        with self._lock:
            store = self._data.setdefault(key, {})
            before = len(store)
            values = (chart_value(v) for v in found.get("values", []))
            store.update(zip(found.get("steps", []), values, strict=False))
            self.points += len(store) - before
            self._dirty = True

    def _on_points(self, points: list[dict[str, Any]]) -> None:
        with self._lock:
            added, new = 0, []
            for p in points:
                key = str(p.get("key"))
                if not self._wanted(key):
                    continue
                if key not in self._data and key not in self.metrics:
                    new.append(key)
                store = self._data.setdefault(key, {})
                step = int(p.get("step") or 0)
                added += step not in store
                store[step] = chart_value(p.get("value"))
            if new:
                self.metrics = [*self.metrics, *new]
            if added:
                self.points += added
                self._dirty = True

    def _on_run(self, info: dict[str, Any]) -> None:
        """The status poll: new keys, and any points the socket did not bring (a gap, points
        logged some other way, or polling mode) fetched from the history."""
        self._set_run(info)
        if self._follower is not None:
            self.mode = self._follower.mode
        for key, step in info["latest"].items():
            last = self._last_step(key)
            # a metric not loaded yet is loaded whatever its steps (all may be negative)
            if self._wanted(key) and (last is None or step > last):
                try:
                    self._load_history(key, start_step=None if last is None else last + 1)
                except Exception as exc:  # shown in the view; following goes on
                    self._on_follow_error(getattr(exc, "message", None) or str(exc))
        if info["status"] in TERMINAL:
            self.mode = "stopped"
            self._publish()

    def _on_follow_error(self, message: str) -> None:
        """The status poll failed (shown, following goes on), or works again (cleared)."""
        if message:
            self.error = f"following the run: {message} (trying again)"
        elif self.error.startswith("following the run: "):
            self.error = ""

    # -- data out -----------------------------------------------------------------------
    def _publish(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            series = {}
            for key in self.metrics:
                store = self._data.get(key, {})
                items = thin(sorted(store.items()), self.max_points)
                if len(store) > KEEP * self.max_points:  # a long run: memory stays bounded
                    self._data[key] = dict(thin(sorted(store.items()), KEEP // 2 * self.max_points))
                series[key] = {
                    "steps": [s for s, _ in items],
                    "values": [v for _, v in items],
                }
            # sent under the lock: wait() (and so its cell) must not end while the follower
            # thread is still sending the last points to the view
            self.series = series

    # -- control ------------------------------------------------------------------------
    @property
    def following(self) -> bool:
        return self._follower is not None and self._follower.alive

    def wait(self, points: int | None = None, timeout: float = 60.0) -> LiveMetrics:
        """Block until ``points`` points arrived, or the run ended (no more will: a finished
        run's downsampled history may hold fewer), default until the run ends and the last
        points are shown; ``TimeoutError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            if (points is not None and self.points >= points) or not self.following:
                self._publish()
                # ... and the whole state again from this thread: the follower thread's last
                # message may carry the parent of the cell that made the chart, which a
                # notebook runner (nbclient) does not count as this cell's output
                with self._lock:
                    self.send_state()
                return self
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"LiveMetrics: {self.points} points, status {self.status} after {timeout} s"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop following the run (the chart keeps what it has)."""
        if self._follower is not None:
            self._follower.stop()
        self.mode = "stopped"

    def close(self) -> None:
        self.stop()
        super().close()

    def summary(self) -> str:
        return f"run {self.run_id[:8]} {self.status}: {', '.join(self.metrics) or 'no metrics'}"

    def fallback_html(self) -> str:
        series = {
            key: (data["steps"], ema(data["values"], self.smoothing))
            for key, data in self.series.items()
        }
        title = f"run {self.run_name or self.run_id[:8]} ({self.status})"
        return f"<p><b>{esc(title)}</b></p>" + line_chart(series, title=title)
