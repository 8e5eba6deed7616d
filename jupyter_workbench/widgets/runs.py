"""``RunsTable(experiment)``: sortable, filterable, selectable runs; ``CompareRuns(runs)``:
param diff, metric overlay and parallel coordinates of the runs selected (or given)."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import traitlets as t

from ..client.magics import last_value
from .base import WorkbenchWidget, chart_value, esc, esm, fmt, html_table
from .svg import line_chart

if TYPE_CHECKING:  # pragma: no cover
    from ..client import Client
    from ..client.runs import Run

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "!=": operator.ne,
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
    "~": lambda a, b: str(b).lower() in str(a).lower(),
}
_TERM = re.compile(r"^(?P<key>[\w.\-/]+?)\s*(?P<op>==|<=|>=|!=|=|<|>|~)\s*(?P<value>.*)$")
OPERATORS = ("=", "==", "!=", "<", "<=", ">", ">=", "~")
_NAME = re.compile(r"[\w.\-/]+")
_NAME_OP = re.compile(r"[\w.\-/]+(?:==|<=|>=|!=|=|<|>|~)")
_OP_FIRST = re.compile(r"(?:==|<=|>=|!=|=|<|>|~)")
_FIELDS = ("name", "run_id", "status", "experiment", "start_time")
# a filter's words: split at spaces, except inside quotes; a lone quote is a plain character
_QUOTED = re.compile(r"""(?:[^\s'"]+|'[^']*'|"[^"]*"|['"])+""")


def _number(value: Any) -> float | None:
    """A finite number, else None (NaN and infinities compare as text)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def run_value(run: dict[str, Any], key: str) -> Any:
    """A run's field, ``params.X``/``metrics.X``, or a bare name (param, then metric)."""
    if key in _FIELDS:
        return run.get(key)
    if key.startswith("params."):
        return run.get("params", {}).get(key[7:])
    if key.startswith("metrics."):
        return run.get("metrics", {}).get(key[8:])
    if key in run.get("params", {}):
        return run["params"][key]
    return run.get("metrics", {}).get(key)


def _words(text: str) -> list[str]:
    """The filter's words, a term written with spaces around its operator joined into one
    ('lr < 0.1', 'lr <0.1', 'lr< 0.1' -> 'lr<0.1'); other words stay apart."""
    words: list[str] = []
    for word in _QUOTED.findall(text):  # name='my run': one word (was 'my and run')
        prev = words[-1] if words else ""
        joins = word.lower() != "and" and (
            (_NAME.fullmatch(prev) is not None and _OP_FIRST.match(word) is not None)
            or _NAME_OP.fullmatch(prev) is not None
        )
        if prev.lower() != "and" and joins:
            words[-1] = prev + word
        else:
            words.append(word)
    return words


def parse_filter(text: str) -> list[tuple[str, str, str]]:
    """``"lr<0.05 loss<=0.2 resnet"`` -> ``[("lr", "<", "0.05"), ..., ("", "~", "resnet")]``:
    terms separated by spaces or ``and``; a bare word matches name, id, status, experiment."""
    terms = []
    for word in _words(text):
        if word.lower() == "and":
            continue
        found = _TERM.match(word)
        if found:
            op, value = found["op"].replace("==", "="), found["value"]
            if not value:
                raise ValueError(f"filter: {word!r} needs a value after {op!r}")
            if value[0] in "<>=!~":  # 'lr<<0.1' compared lr with the text '<0.1': no run
                raise ValueError(
                    f"filter: {word!r}: one operator ({', '.join(OPERATORS)}) between name "
                    "and value (quote a value that starts with one: name='<none>')"
                )
            terms.append((found["key"], op, value.strip("'\"")))
        else:
            terms.append(("", "~", word.strip("'\"")))
    return terms


def matches(run: dict[str, Any], terms: Sequence[tuple[str, str, str]]) -> bool:
    for key, op, wanted in terms:
        if not key:
            text = " ".join(
                str(run.get(f) or "") for f in ("name", "run_id", "status", "experiment")
            )
            if wanted.lower() not in text.lower():
                return False
            continue
        value = run_value(run, key)
        if value is None:
            return False
        if key == "status":  # status=finished: the view shows FINISHED; it matched nothing
            value, wanted = str(value).upper(), wanted.upper()
        a, b = _number(value), _number(wanted)
        ok = _OPS[op](a, b) if a is not None and b is not None and op != "~" else None
        if ok is None:
            ok = _OPS[op](str(value), wanted) if op in ("=", "!=", "~") else False
        if not ok:
            return False
    return True


def order(runs: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    """Numbers (infinities too) first, then text, then NaN, then missing values, whatever the
    direction: a diverged run (a NaN loss, MLflow's ``"NaN"``) is not the top row of a
    descending sort."""
    numbers: list[tuple[float, dict[str, Any]]] = []
    texts: list[tuple[str, dict[str, Any]]] = []
    nans, missing = [], []
    for run in runs:
        value = run_value(run, key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if value is None:
            missing.append(run)
        elif number is None:
            texts.append((str(value).lower(), run))
        elif math.isnan(number):
            nans.append(run)
        else:
            numbers.append((number, run))
    numbers.sort(key=operator.itemgetter(0), reverse=descending)
    texts.sort(key=operator.itemgetter(0), reverse=descending)
    return [r for _, r in numbers] + [r for _, r in texts] + nans + missing


def _shown(param: Any) -> Any:
    """A param of a comparison: a run without it shows "—" (as in the view), not a blank."""
    return "—" if param is None else param


def _experiment(run: dict[str, Any]) -> str:
    """A run's experiment without its project (``lab/sweep`` -> ``sweep``)."""
    return str(run.get("experiment") or "").partition("/")[2]


def _when(ms: Any) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms else ""


class RunsTable(WorkbenchWidget):
    """The runs of an experiment (or of the whole project), one row each: sort by clicking a
    header (``sort_by``/``descending``), filter with ``filter`` (``lr<0.05 loss<=0.2 adam``),
    select rows (``selected``: run ids). ``compare()`` answers a ``CompareRuns`` that follows
    the selection."""

    _esm = esm("runs_table.js")

    project = t.Unicode(help="The project.").tag(sync=True)
    experiment = t.Unicode("", help="The experiment ('' for every experiment).").tag(sync=True)
    runs = t.List(t.Dict(), help="Every run loaded (run_id, name, status, params, metrics).").tag(
        sync=True
    )
    params = t.List(t.Unicode(), help="Param names of the loaded runs (columns).").tag(sync=True)
    metrics = t.List(t.Unicode(), help="Metric names of the loaded runs (columns).").tag(sync=True)
    filter = t.Unicode(
        "", help="Rows shown: terms like lr<0.05, loss<=0.2, status=FINISHED or a word."
    ).tag(sync=True)
    sort_by = t.Unicode(
        "start_time", help="Column sorted: name, status, start_time, params.X or metrics.X."
    ).tag(sync=True)
    descending = t.Bool(True, help="Sort direction.").tag(sync=True)
    visible = t.List(t.Unicode(), help="Run ids shown, filtered and sorted.").tag(sync=True)
    selected = t.List(t.Unicode(), help="Run ids selected (in the order they were picked).").tag(
        sync=True
    )
    more = t.Bool(
        False, help="True when there are more runs than max_results (the oldest not loaded)."
    ).tag(sync=True)

    def __init__(
        self,
        experiment: str | None = None,
        *,
        project: str | None = None,
        filter: str = "",
        sort_by: str = "start_time",
        descending: bool = True,
        search: str = "",
        max_results: int = 200,
        client: Client | None = None,
    ) -> None:
        if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
            raise ValueError(f"max_results: a whole number of at least 1, not {max_results!r}")
        super().__init__(client=client)
        try:
            self.project = self.client.project_slug(project)
            self.experiment = experiment or ""
            self.search, self.max_results = search, max_results
            with self.hold_trait_notifications():
                self.filter, self.sort_by, self.descending = filter, sort_by, descending
            self.observe(self._arrange, names=["filter", "sort_by", "descending", "runs"])
            self.refresh()
        except BaseException:  # no current project ...: no comm left open for no table
            self._abandon()
            raise

    def refresh(self) -> RunsTable:
        """Load the runs again (newest first; ``search`` is an MLflow filter run server-side)."""
        found = self._call(
            lambda: self.client.search_runs(
                [self.project],
                experiment=self.experiment or None,
                filter=self.search,
                max_results=self.max_results + 1,  # one more: are there runs not loaded?
            )
        )
        if found is None:
            return self
        self.more, found = len(found) > self.max_results, found[: self.max_results]
        self.params = sorted({k for r in found for k in r.get("params", {})})
        self.metrics = sorted({k for r in found for k in r.get("metrics", {})})
        self.runs = found
        self.selected = list(self.selected)  # runs no longer loaded leave the selection
        return self

    def reload(self) -> None:
        self.refresh()

    def _arrange(self, _change: Any = None) -> None:
        try:
            terms = parse_filter(self.filter)
        except ValueError as exc:
            self.error = str(exc)
            return
        named = {k for k, _op, _v in terms if k and k not in _FIELDS}
        unknown = sorted(k for k in named if all(run_value(r, k) is None for r in self.runs))
        if unknown and self.runs:  # 'los<0.2': say so, not "no run matches"
            self.error = (
                f"filter: no run has {', '.join(map(repr, unknown))} (params: "
                f"{', '.join(self.params) or 'none'}; metrics: {', '.join(self.metrics) or 'none'})"
            )
            self.visible = []
            return
        self.error = ""
        rows = [r for r in self.runs if matches(r, terms)]
        self.visible = [r["run_id"] for r in order(rows, self.sort_by, self.descending)]

    @t.validate("selected")
    def _known_runs_only(self, proposal: dict[str, Any]) -> list[str]:
        known = {r["run_id"] for r in self.runs}
        return list(dict.fromkeys(i for i in proposal["value"] if i in known))

    @property
    def selected_runs(self) -> list[dict[str, Any]]:
        by_id = {r["run_id"]: r for r in self.runs}
        return [by_id[i] for i in self.selected if i in by_id]

    def compare(self, **kwargs: Any) -> CompareRuns:
        """A ``CompareRuns`` of the selected runs that follows the selection."""
        return CompareRuns(self, client=self.client, **kwargs)

    def _count(self) -> str:
        """``3 of 5 runs``, or ``3 of the newest 200 runs (more not loaded: max_results)``."""
        if not self.more:
            return f"{len(self.visible)} of {len(self.runs)} runs"
        return (
            f"{len(self.visible)} of the newest {len(self.runs)} runs "
            "(more not loaded: max_results)"
        )

    def summary(self) -> str:
        where = f"{self.project}/{self.experiment}" if self.experiment else self.project
        return f"{where}: {self._count()}, {len(self.selected)} selected"

    def fallback_html(self) -> str:
        by_id = {r["run_id"]: r for r in self.runs}
        everywhere = not self.experiment  # runs of every experiment: say whose each is
        rows = [
            [
                ("✓ " if rid in self.selected else "") + rid[:8],
                by_id[rid].get("name"),
                *([_experiment(by_id[rid])] if everywhere else []),
                by_id[rid].get("status"),
                _when(by_id[rid].get("start_time")),
                *(by_id[rid].get("params", {}).get(p, "") for p in self.params),
                *(fmt(by_id[rid].get("metrics", {}).get(m)) for m in self.metrics),
            ]
            for rid in self.visible
        ]
        where = f"{self.project}/{self.experiment}" if self.experiment else self.project
        which = ["experiment"] if everywhere else []
        return html_table(
            ["run", "name", *which, "status", "started", *self.params, *self.metrics],
            rows,
            caption=f"runs of {where} ({self._count()})",
        )


class CompareRuns(WorkbenchWidget):
    """Several runs side by side: the params that differ, one metric's curves overlaid
    (``metric``), and parallel coordinates over the differing params and the last value of
    every metric. ``runs``: run ids, ``Run`` objects (or one), or a ``RunsTable`` (its
    selection)."""

    _esm = esm("compare_runs.js")
    _asked = ""  # the metric= asked for

    run_ids = t.List(t.Unicode(), help="The runs compared.").tag(sync=True)
    comparison = t.Dict(help="The runs/compare answer: runs, params, metrics, system.").tag(
        sync=True
    )
    metric = t.Unicode("", help="The metric overlaid.").tag(sync=True)
    histories = t.Dict(help='Per run id: {"steps", "values"} of the overlaid metric.').tag(
        sync=True
    )
    axes = t.List(
        t.Dict(), help='Parallel coordinates: [{"name", "kind", "values": {run_id: value}}].'
    ).tag(sync=True)

    def __init__(
        self,
        runs: RunsTable | Sequence[Run | str] | Run | str,
        *,
        metric: str | None = None,
        max_points: int = 500,
        client: Client | None = None,
    ) -> None:
        if isinstance(runs, str) or hasattr(runs, "run_id"):  # one run: its id was 32 "runs"
            runs = [runs]  # type: ignore[list-item]
        if isinstance(runs, RunsTable):
            client = client or runs.client
        elif runs and not isinstance(runs[0], str):
            client = client or runs[0].client
        super().__init__(client=client)
        try:
            self.max_points = max_points
            self.table = runs if isinstance(runs, RunsTable) else None
            self.observe(self._load, names=["run_ids"])
            self.observe(self._load_histories, names=["metric"])
            self._asked = metric or ""
            if metric:
                self.metric = metric
            if self.table is not None:
                self.table.observe(self._follow_table, names=["selected"])
                self.run_ids = list(self.table.selected)
            else:
                self.run_ids = [r if isinstance(r, str) else r.run_id for r in runs]
        except BaseException:
            self._abandon()
            raise

    def reload(self) -> None:
        self._load()

    def _follow_table(self, change: dict[str, Any]) -> None:
        self.run_ids = list(change["new"])

    def _load(self, _change: Any = None) -> None:
        if not self.run_ids:
            self.comparison, self.axes, self.histories = {}, [], {}
            return
        found = self._call(lambda: self.client.compare(list(self.run_ids)))
        if found is None:
            return
        self.comparison = found
        self.axes = self._axes(found)
        metrics = sorted(found.get("metrics", {}))
        if self.metric not in metrics:
            asked = self.metric
            self.metric = metrics[0] if metrics else ""  # loads its histories
            if asked and asked == self._asked:  # metric="val_los": another one, silently
                known = ", ".join(metrics) or "none"
                self.error = f"metric {asked!r}: no run here logged it (metrics: {known})"
        else:
            self._load_histories()

    def _axes(self, found: dict[str, Any]) -> list[dict[str, Any]]:
        ids = [r["run_id"] for r in found.get("runs", [])]
        axes = [
            {"name": k, "kind": "param", "values": {i: v.get(i) for i in ids}}
            for k, v in sorted(found.get("params", {}).get("differ", {}).items())
        ]
        for key, per_run in sorted(found.get("metrics", {}).items()):
            values = {i: chart_value((per_run.get(i) or {}).get("last")) for i in ids}
            axes.append({"name": key, "kind": "metric", "values": values})
        return axes

    def _load_histories(self, _change: Any = None) -> None:
        if not self.metric or not self.run_ids:
            self.histories = {}
            return
        out: dict[str, Any] = {}
        for run_id in self.run_ids:
            found = self._call(partial(self.client.history, run_id, self.metric, self.max_points))
            if found is not None:
                values = [chart_value(v) for v in found["values"]]  # inf: a gap, not 1.8e308
                out[run_id] = {"steps": found["steps"], "values": values}
        self.histories = out

    def close(self) -> None:
        table = self.__dict__.get("table")  # absent when __init__ failed early
        if table is not None:
            table.unobserve(self._follow_table, names=["selected"])
        super().close()

    def summary(self) -> str:
        return f"{len(self.run_ids)} runs" + (f", {self.metric} overlaid" if self.metric else "")

    def fallback_html(self) -> str:
        c = self.comparison
        if not c:
            return "<p>no runs to compare: select some</p>"
        runs = c.get("runs", [])
        names = [r.get("name") or r["run_id"][:8] for r in runs]
        # two runs of one name (a sweep re-run ...) are two columns and two curves, told apart
        names = [
            f"{n} ({r['run_id'][:8]})" if names.count(n) > 1 else n
            for n, r in zip(names, runs, strict=True)
        ]
        ids = [r["run_id"] for r in runs]
        differ = c.get("params", {}).get("differ", {})
        same = c.get("params", {}).get("same", {})
        parts = [
            html_table(
                ["param", *names],
                [[k, *(_shown(v.get(i)) for i in ids)] for k, v in sorted(differ.items())],
                caption="params that differ",
            ),
            html_table(
                ["metric (last)", *names],
                [
                    [k, *(last_value(v.get(i)) for i in ids)]
                    for k, v in sorted(c.get("metrics", {}).items())
                ],
                caption="metrics",
            ),
        ]
        if same:
            shared = ", ".join(f"{k}={v}" for k, v in sorted(same.items()))
            parts.append(f"<p>same in all: {esc(shared)}</p>")
        if self.histories:
            label = dict(zip(ids, names, strict=False))
            series = {
                label.get(i, i[:8]): (h["steps"], h["values"]) for i, h in self.histories.items()
            }
            parts.append(line_chart(series, title=self.metric))
        return "".join(parts)
