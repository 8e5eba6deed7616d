"""Experiments and runs: fast batch logging, downsampled histories, exports, comparisons, search.

Runs live in MLflow; these routes read and write MLflow's tables directly (``tracking/store.py``)
after checking the caller's role on the project that owns the run's experiment.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from ..core import datasets as ds
from ..core import experiments as ex
from ..core.context import Ctx
from ..core.errors import BadRequest, Conflict, NotFound
from ..core.validation import check_text, run_key_problem
from ..tracking.downsample import minmax_indices
from ..tracking.store import Point, RunReader, TrackingStore, now_ms
from ..tracking.upstream import MlflowUnavailable, Upstream
from . import schemas as S
from .base import Param, WorkbenchHandler, attachment, endpoint, page_json

MAX_BATCH_POINTS = 200_000
MAX_EXPORT_RUNS = 100
EXPERIMENT = S.obj(
    {
        "name": {"type": "string"},
        "mlflow_experiment_id": {"type": "string"},
        "mlflow_name": {"type": "string"},
        "description": {"type": "string"},
        "created_at": S.TIME,
    },
    ("name", "mlflow_experiment_id", "mlflow_name", "created_at"),
)


PACKAGES_TAG = "workbench.env.packages"
TAG_VALUE_MAX = 8000  # MLflow's limit on a tag value


def packages_tags(packages: dict[str, Any]) -> dict[str, str]:
    """The environment's package list as MLflow tags: its JSON split into pieces that fit a tag
    (``workbench.env.packages.0``, ``.1`` ...), never cut off."""
    text = json.dumps(packages, sort_keys=True)
    tags = {
        f"{PACKAGES_TAG}.{n}": text[i : i + TAG_VALUE_MAX]
        for n, i in enumerate(range(0, len(text), TAG_VALUE_MAX))
    }
    tags[f"{PACKAGES_TAG}.pieces"] = str(len(tags))  # pieces of an earlier, longer list stay out
    return tags


def packages_from_tags(tags: dict[str, str]) -> dict[str, Any]:
    count = tags.get(f"{PACKAGES_TAG}.pieces", "0")
    # the count is a tag anyone may set: only the pieces that are there are read
    wanted = int(count) if count.isascii() and count.isdigit() and len(count) <= 6 else 0
    pieces = [tags.get(f"{PACKAGES_TAG}.{n}", "") for n in range(min(wanted, len(tags)))]
    text = "".join(pieces) or tags.get(PACKAGES_TAG, "")
    try:
        found = json.loads(text) if text else {}
    except ValueError:  # a list cut off by an earlier version
        return {}
    return found if isinstance(found, dict) else {}


class TrackingHandler(WorkbenchHandler):
    @property
    def upstream(self) -> Upstream:
        upstream: Upstream = self.settings["workbench_mlflow"]
        return upstream

    async def store(self) -> TrackingStore:
        # built off the event loop: the first use imports MLflow's models (seconds)
        store: TrackingStore | None = await asyncio.get_running_loop().run_in_executor(
            self.service.io_executor,
            self.extensionapp.tracking_store,  # type: ignore[attr-defined]
        )
        if store is None:
            raise MlflowUnavailable(
                "fast tracking paths need the MLflow database: "
                "set Workbench.mlflow_backend_store_uri"
            )
        await self.upstream.ready()
        return store

    async def blocking(self, fn: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.service.io_executor, fn)

    async def check_run(self, run_id: str, action: str) -> TrackingStore:
        """The run's project must allow ``action`` to the caller (404 if it cannot see it)."""
        store = await self.store()
        experiment_id, _status, _stage = await self.blocking(lambda: store.run_state(run_id))
        await self.call(
            lambda s, ctx: ex.experiment_project(s, ctx, experiment_id, action), write=False
        )
        return store


KEY = {"type": "string", "minLength": 1, "maxLength": 250}  # MLflow's limits on a key
INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}  # MLflow's BIGINT
RUN_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$", "x-pattern-message": "is not a run id"}
BATCH = S.obj(
    {
        "metrics": {
            "type": "array",
            "maxItems": MAX_BATCH_POINTS,
            "items": S.obj(
                {
                    "key": KEY,
                    "value": {
                        "type": ["number", "string"],
                        "description": "a number, or 'NaN', 'Infinity', '-Infinity'",
                    },
                    "step": INT64,
                    "timestamp": INT64,
                },
                ("key", "value"),
            ),
        },
        "params": {
            "type": "object",
            "propertyNames": KEY,
            "additionalProperties": {"type": "string", "maxLength": 8000},
        },
        "tags": {
            "type": "object",
            "propertyNames": KEY,
            "additionalProperties": {"type": "string", "maxLength": 8000},
        },
    }
)
HISTORY = S.obj(
    {
        "run_id": {"type": "string"},
        "key": {"type": "string"},
        "total": {"type": "integer"},
        "downsampled": {"type": "boolean"},
        "steps": {"type": "array", "items": {"type": "integer"}},
        "timestamps": {"type": "array", "items": {"type": "integer"}},
        "values": {"type": "array", "items": {"type": ["number", "null"]}},
    },
    ("run_id", "key", "total", "downsampled", "steps", "values"),
)


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise BadRequest(f"metrics[{key}].value: must be a number, not a boolean")
    if isinstance(value, str):
        names = {
            "nan": float("nan"),
            "infinity": float("inf"),
            "-infinity": float("-inf"),
            "inf": float("inf"),
            "-inf": float("-inf"),
        }
        if value.lower() not in names:
            raise BadRequest(f"metrics[{key}].value: {value!r} is not a number")
        return names[value.lower()]
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise BadRequest(f"metrics[{key}].value: {str(value)[:20]}... is too large") from None


def _check_keys(body: dict[str, Any]) -> None:
    """Refuse names MLflow's own API would refuse (``run_key_problem``), naming the first."""
    named = (
        ("metrics", dict.fromkeys(m["key"] for m in body.get("metrics", []))),  # each once
        ("params", body.get("params") or {}),
        ("tags", body.get("tags") or {}),
    )
    for field, names in named:
        for name in names:
            problem = run_key_problem(name)
            if problem:
                shown = name if len(name) <= 40 else name[:37] + "..."
                raise BadRequest(f"{field} key {shown!r}: {problem}")


class RunBatchHandler(TrackingHandler):
    @endpoint(
        action="experiments.write",
        summary="Log many metric points, params and tags of a run in one transaction",
        body=BATCH,
        response=S.obj(
            {
                "metrics": {"type": "integer"},
                "params": {"type": "integer"},
                "tags": {"type": "integer"},
            }
        ),
        large_body=True,
        errors=(409, 503),
        example={"metrics": [{"key": "loss", "value": 0.5, "step": 1}]},
    )
    async def post(self, run_id: str) -> None:
        store = await self.check_run(run_id, "experiments.write")
        _check_keys(self.body)
        stamp = now_ms()
        points = [
            Point(
                m["key"],
                _number(m["value"], m["key"]),
                int(m.get("timestamp", stamp)),
                int(m.get("step", 0)),
            )
            for m in self.body.get("metrics", [])
        ]
        params, tags = self.body.get("params"), self.body.get("tags")
        result = await self.blocking(lambda: store.log_batch(run_id, points, params, tags))
        self.service.tracking_events.publish(run_id, points)
        self.reply(result)


class HistoryHandler(TrackingHandler):
    @endpoint(
        action="experiments.read",
        summary="A metric's history, downsampled server-side to at most max_points (extremes kept)",
        response=HISTORY,
        errors=(503,),
        query=(
            Param(
                "max_points",
                {"type": "integer", "minimum": 2, "maximum": 100_000},
                "Largest number of points to return (default 2000).",
            ),
            Param("start_step", INT64, "First step to include."),
            Param("end_step", INT64, "Last step to include."),
        ),
    )
    async def get(self, run_id: str, key: str) -> None:
        store = await self.check_run(run_id, "experiments.read")
        q = self.query

        def work() -> dict[str, Any]:
            start, end = q.get("start_step"), q.get("end_step")
            max_points = q.get("max_points", 2000)
            rolled = store.downsampled(run_id, key, max_points, start, end)
            if rolled is not None:
                steps, stamps, picked = rolled.steps, rolled.timestamps, rolled.values
                total = rolled.total
            else:
                steps, stamps, values = store.history(run_id, key, start, end)
                total = len(values)
                chosen = minmax_indices(values, max_points)
                steps, stamps, picked = steps[chosen], stamps[chosen], values[chosen]
            return {
                "run_id": run_id,
                "key": key,
                "total": total,
                "downsampled": len(picked) < total,
                "steps": steps.tolist(),
                "timestamps": stamps.tolist(),
                "values": [None if np.isnan(v) else float(v) for v in picked],
            }

        self.reply(await self.blocking(work))


class ExportHandler(TrackingHandler):
    @endpoint(
        action="experiments.read",
        summary="Every point of some runs' metrics, streamed as CSV or Parquet",
        produces="*/*",
        errors=(503,),
        query=(
            Param(
                "run_ids",
                {
                    "type": "string",
                    "maxLength": 33 * MAX_EXPORT_RUNS,
                    "pattern": "^[0-9a-f]{32}(,[0-9a-f]{32})*$",
                    "x-pattern-message": "must be run ids separated by commas",
                },
                f"Comma-separated run ids (at most {MAX_EXPORT_RUNS}).",
                required=True,
                example="{run_id}",
            ),
            Param(
                "keys",
                {"type": "string", "maxLength": 1000},
                "Comma-separated metric keys (default all).",
            ),
            Param(
                "format",
                {"type": "string", "enum": ["csv", "parquet"]},
                "csv (default) or parquet.",
            ),
        ),
    )
    async def get(self) -> None:
        q = self.query
        run_ids = [r for r in q["run_ids"].split(",") if r]
        if not run_ids or len(run_ids) > MAX_EXPORT_RUNS:
            raise BadRequest(f"run_ids: give 1-{MAX_EXPORT_RUNS} run ids")
        store = None
        for run_id in run_ids:
            store = await self.check_run(run_id, "experiments.read")
        assert store is not None
        wanted = [k for k in (q.get("keys") or "").split(",") if k]
        keys = await self.blocking(lambda: store.metric_keys(run_ids))
        fmt = q.get("format", "csv")
        self.set_header(
            "Content-Type",
            "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.apache.parquet",
        )
        self.set_header("Content-Disposition", attachment(f"metrics.{fmt}"))
        series = [
            (r, k) for r in run_ids for k in sorted(keys.get(r, [])) if not wanted or k in wanted
        ]
        if fmt == "csv":
            self.write("run_id,key,step,timestamp,value\n")
            for run_id, key in series:
                steps, stamps, values = await self.blocking(
                    lambda r=run_id, k=key: store.history(r, k)
                )
                out = io.StringIO()
                writer = csv.writer(out)
                writer.writerows(
                    zip(
                        [run_id] * len(steps),
                        [key] * len(steps),
                        steps.tolist(),
                        stamps.tolist(),
                        values.tolist(),
                        strict=True,
                    )
                )
                self.write(out.getvalue())
                await self.flush()
            self.finish()
            return
        body = await self.blocking(lambda: _parquet(store, series))
        self.finish(body, set_content_type="application/vnd.apache.parquet")


def _parquet(store: TrackingStore, series: list[tuple[str, str]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    schema = pa.schema(
        [
            ("run_id", pa.string()),
            ("key", pa.string()),
            ("step", pa.int64()),
            ("timestamp", pa.int64()),
            ("value", pa.float64()),
        ]
    )
    with pq.ParquetWriter(sink, schema) as writer:
        for run_id, key in series:
            steps, stamps, values = store.history(run_id, key)
            writer.write_table(
                pa.table(
                    {
                        "run_id": pa.array([run_id] * len(steps)),
                        "key": pa.array([key] * len(steps)),
                        "step": steps,
                        "timestamp": stamps,
                        "value": values,
                    },
                    schema=schema,
                )
            )
    return sink.getvalue()


class ExperimentsHandler(TrackingHandler):
    @endpoint(
        action="experiments.read",
        summary="A project's experiments (each one MLflow experiment)",
        response=S.page_of(EXPERIMENT),
        query=(
            Param("q", {"type": "string", "maxLength": 200}, "Text in the name (any case)."),
            Param("name", {"type": "string", "maxLength": 200}, "This name exactly."),
            *S.paging(ex.EXPERIMENT_SORTS),
        ),
    )
    async def get(self, slug: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = ex.list_experiments(
                s, ctx, slug, q=q.get("q"), name=q.get("name"), **self.page_args()
            )
            return page_json(page, ex.experiment_json)

        self.reply(await self.call(work))

    @endpoint(
        action="experiments.write",
        summary="Create an experiment in a project (one MLflow experiment)",
        status=201,
        body=S.obj({"name": {**S.NAME, "maxLength": 200}, "description": S.DESCRIPTION}, ("name",)),
        response=EXPERIMENT,
        errors=(409, 503),
        example={"name": "{fresh}"},
    )
    async def post(self, slug: str) -> None:
        name = self.body["name"]
        if "/" in name:
            raise BadRequest("name: must not contain '/'")

        def project_of(s: Session, ctx: Ctx) -> Any:
            from ..core.access import require_project

            project, _ = require_project(s, ctx, slug, "experiments.write")
            if ex.experiment_in_project(s, slug, name) is not None:
                raise Conflict(f"name: project '{slug}' already has an experiment '{name}'")
            return project

        project = await self.call(project_of, write=False)
        mlflow_name = ex.mlflow_experiment_name(project, name)
        status, data = await self.upstream.post_json(
            "/api/2.0/mlflow/experiments/create",
            {
                "name": mlflow_name,
                "tags": [
                    {"key": ex.PROJECT_TAG, "value": slug},
                    {"key": ex.PROJECT_ID_TAG, "value": str(project.id)},
                ],
            },
        )
        if status != 200:
            raise Conflict(str((data or {}).get("message", "MLflow refused")), code="mlflow_error")
        exp_id = str(data["experiment_id"])

        def record(s: Session, ctx: Ctx) -> dict[str, Any]:
            from ..core.access import require_project

            current, _ = require_project(s, ctx, slug, "experiments.write")
            row = ex.record_experiment(s, ctx, current, name, exp_id, mlflow_name)
            if self.body.get("description"):
                row.description = self.body["description"]
            return ex.experiment_json(row)

        self.reply(await self.call(record, write=True), status=201)


RUN_IDS = {"type": "array", "items": RUN_ID, "minItems": 1, "maxItems": MAX_EXPORT_RUNS}


class AnalysisHandler(TrackingHandler):
    """Shared: check every run is readable, load them in a few queries."""

    async def readable_runs(self, run_ids: list[str]) -> tuple[TrackingStore, dict[str, Any]]:
        store = await self.store()
        reader = RunReader(store)
        runs = await self.blocking(lambda: reader.runs(run_ids))
        for run_id in run_ids:
            if run_id not in runs:
                raise NotFound(f"run '{run_id}' not found")
        experiments = {r["experiment_id"] for r in runs.values()}

        def check(s: Session, ctx: Ctx) -> dict[str, str]:
            names = {}
            for experiment_id in experiments:
                project = ex.experiment_project(s, ctx, experiment_id, "experiments.read")
                owner = ex.experiment_owner(s, experiment_id)
                names[experiment_id] = f"{project.slug}/{owner[0].name if owner else '?'}"
            return names

        names = await self.call(check, write=False)
        for run in runs.values():
            run["experiment"] = names[run["experiment_id"]]
        return store, runs


class CompareHandler(AnalysisHandler):
    @endpoint(
        action="experiments.read",
        summary="Compare runs: params that differ, metrics side by side (last/min/max), system",
        body=S.obj({"run_ids": RUN_IDS}, ("run_ids",)),
        response={"type": "object", "required": ["runs", "params", "metrics", "system"]},
        errors=(503,),
        example={"run_ids": ["{run_id}"]},
    )
    async def post(self) -> None:
        run_ids = list(dict.fromkeys(self.body["run_ids"]))
        _store, runs = await self.readable_runs(run_ids)
        keys = sorted({k for r in runs.values() for k in r["params"]})
        values = {k: {rid: runs[rid]["params"].get(k) for rid in run_ids} for k in keys}
        differ = {k: v for k, v in values.items() if len(set(v.values())) > 1}
        same = {k: next(iter(v.values())) for k, v in values.items() if k not in differ}
        metric_keys = sorted({k for r in runs.values() for k in r["metrics"]})
        metrics = {k: {rid: runs[rid]["metrics"].get(k) for rid in run_ids} for k in metric_keys}
        system = {
            rid: {
                "user": runs[rid]["user"],
                "start_time": runs[rid]["start_time"],
                "end_time": runs[rid]["end_time"],
                "status": runs[rid]["status"],
                **{k: v for k, v in runs[rid]["tags"].items() if k.startswith("mlflow.")},
            }
            for rid in run_ids
        }
        summary = [
            {key: runs[rid][key] for key in ("run_id", "name", "experiment", "status")}
            for rid in run_ids
        ]
        self.reply(
            {
                "runs": summary,
                "params": {"differ": differ, "same": same},
                "metrics": metrics,
                "system": system,
            }
        )


class AggregateHandler(AnalysisHandler):
    @endpoint(
        action="experiments.read",
        summary="Group runs by a param (e.g. seed) and aggregate a metric per step: mean, std, "
        "min/max band",
        body=S.obj(
            {
                "run_ids": RUN_IDS,
                "metric": {"type": "string", "minLength": 1, "maxLength": 250},
                "group_by": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 250,
                    "description": "A param; runs with the same value of every OTHER "
                    "param form a group (so group_by='seed' averages over seeds).",
                },
                "max_points": {"type": "integer", "minimum": 2, "maximum": 100_000},
            },
            ("run_ids", "metric", "group_by"),
        ),
        response={"type": "object", "required": ["groups"]},
        errors=(503,),
        example={"run_ids": ["{run_id}"], "metric": "loss", "group_by": "seed"},
    )
    async def post(self) -> None:
        b = self.body
        run_ids = list(dict.fromkeys(b["run_ids"]))
        store, runs = await self.readable_runs(run_ids)
        metric, group_by = b["metric"], b["group_by"]

        def work() -> dict[str, Any]:
            groups: dict[str, list[str]] = {}
            for rid in run_ids:
                others = {k: v for k, v in sorted(runs[rid]["params"].items()) if k != group_by}
                groups.setdefault(json.dumps(others, sort_keys=True), []).append(rid)
            out = []
            for key, members in groups.items():
                series = [store.history(rid, metric) for rid in members]
                steps = (
                    np.unique(np.concatenate([s for s, _t, _v in series]))
                    if series
                    else np.empty(0)
                )
                table = np.full((len(series), len(steps)), np.nan)
                for row, (s, _t, v) in enumerate(series):
                    if len(s):
                        # the last value logged at each step
                        order = np.argsort(s, kind="stable")
                        s, v = s[order], v[order]
                        last = np.r_[s[1:] != s[:-1], True]
                        table[row, np.searchsorted(steps, s[last])] = v[last]
                counts = np.sum(~np.isnan(table), axis=0)
                keep = counts > 0
                table, steps, counts = table[:, keep], steps[keep], counts[keep]
                with np.errstate(all="ignore"):
                    mean = np.nanmean(table, axis=0)
                    std = np.nanstd(table, axis=0)
                    low = np.nanmin(table, axis=0)
                    high = np.nanmax(table, axis=0)
                chosen = minmax_indices(mean, b.get("max_points", 2000))
                out.append(
                    {
                        "params": json.loads(key),
                        "runs": members,
                        group_by + "_values": [runs[r]["params"].get(group_by) for r in members],
                        "steps": steps[chosen].tolist(),
                        "count": counts[chosen].tolist(),
                        "mean": _floats(mean[chosen]),
                        "std": _floats(std[chosen]),
                        "min": _floats(low[chosen]),
                        "max": _floats(high[chosen]),
                    }
                )
            return {"metric": metric, "group_by": group_by, "groups": out}

        self.reply(await self.blocking(work))


def _floats(values: Any) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


class SearchRunsHandler(TrackingHandler):
    @endpoint(
        action="runs.search",
        summary="Search runs across the experiments and projects you can read (MLflow filter "
        "syntax, ordering, paging)",
        body=S.obj(
            {
                "projects": {"type": "array", "items": S.SLUG, "maxItems": 100},
                "experiment_ids": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[0-9]+$", "maxLength": 20},
                    "maxItems": 100,
                    "description": "Only these MLflow experiment ids (of the readable ones)",
                },
                "filter": {
                    "type": "string",
                    "maxLength": 4000,
                    "description": "e.g. \"metrics.loss < 0.1 and params.lr = '0.01'\"",
                },
                "order_by": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 300},
                    "maxItems": 10,
                },
                "max_results": {"type": "integer", "minimum": 1, "maximum": 1000},
                "page_token": {"type": "string", "maxLength": 4000},
            }
        ),
        response={"type": "object", "required": ["runs"]},
        errors=(503,),
        example={"filter": "metrics.loss < 10", "max_results": 10},
    )
    async def post(self) -> None:
        b = self.body
        wanted = b.get("projects")

        def visible(s: Session, ctx: Ctx) -> dict[str, str]:
            from ..core.access import require_project

            scopes = [require_project(s, ctx, slug, "experiments.read")[0] for slug in wanted or []]
            ids: set[str] = set()
            if scopes:
                for project in scopes:
                    ids |= ex.readable_experiment_ids(s, ctx, project)
            else:
                ids = ex.readable_experiment_ids(s, ctx)
            names = {}
            for exp_id in ids:
                owner = ex.experiment_owner(s, exp_id)
                if owner:
                    names[exp_id] = f"{owner[1].slug}/{owner[0].name}"
            return names

        names = await self.call(visible, write=False)
        if "experiment_ids" in b:
            wanted = set(b["experiment_ids"])
            names = {i: n for i, n in names.items() if i in wanted}
        if not names:
            self.reply({"runs": [], "next_page_token": None})
            return
        request = {
            "experiment_ids": sorted(names),
            "filter": b.get("filter", ""),
            "max_results": b.get("max_results", 100),
            "order_by": b.get("order_by", []),
        }
        if b.get("page_token"):
            request["page_token"] = b["page_token"]
        status, data = await self.upstream.post_json("/api/2.0/mlflow/runs/search", request)
        if status != 200:
            raise BadRequest(f"filter: {(data or {}).get('message', 'MLflow refused the search')}")
        runs = []
        for run in (data or {}).get("runs", []):
            info, rdata = run["info"], run.get("data", {})
            runs.append(
                {
                    "run_id": info["run_id"],
                    "name": info.get("run_name"),
                    "experiment": names.get(str(info["experiment_id"])),
                    "status": info.get("status"),
                    "start_time": info.get("start_time"),
                    "end_time": info.get("end_time"),
                    "params": {p["key"]: p["value"] for p in rdata.get("params", [])},
                    "metrics": {m["key"]: m["value"] for m in rdata.get("metrics", [])},
                    "tags": {
                        t["key"]: t["value"]
                        for t in rdata.get("tags", [])
                        if not t["key"].startswith("mlflow.")
                    },
                }
            )
        self.reply({"runs": runs, "next_page_token": (data or {}).get("next_page_token")})


LINEAGE_REF = S.obj(
    {
        "project": S.SLUG,
        "dataset": {"type": "string", "minLength": 1, "maxLength": 100},
        "version": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    ("project", "dataset", "version"),
)
RUN_LINEAGE = S.obj(
    {
        "datasets_read": {"type": "array", "items": LINEAGE_REF, "maxItems": 1000},
        "datasets_written": {"type": "array", "items": LINEAGE_REF, "maxItems": 1000},
        "model_config": S.obj(
            {
                "name": {"type": "string", "maxLength": 200},
                "revision": {"type": "integer", "minimum": 1},
            },
            ("name", "revision"),
        ),
        "code": S.obj(
            {
                "path": {"type": "string", "maxLength": 1000},
                "git_commit": {"type": "string", "maxLength": 64},
                "sha256": {"type": "string", "maxLength": 64},
            }
        ),
        "environment": S.obj(
            {
                "python": {"type": "string", "maxLength": 100},
                "packages": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "maxLength": 200},
                },
            }
        ),
        "notes": {"type": "string", "maxLength": 20_000},
    }
)


class RunLineageHandler(TrackingHandler):
    """What a run used and made: dataset versions, model config, code, environment, notes."""

    @endpoint(
        action="experiments.write",
        summary="Record a run's lineage: datasets read/written, model config revision, code "
        "snapshot, environment, notes",
        body=RUN_LINEAGE,
        response={"type": "object"},
        errors=(503,),
        example={"code": {"path": "train.ipynb", "sha256": "ab" * 32}, "notes": "baseline"},
    )
    async def post(self, run_id: str) -> None:
        b = self.body
        if "notes" in b:  # shown in terminals (%wb runs) and pages: no escape sequences
            notes = b["notes"].replace("\r\n", "\n")
            b["notes"] = check_text(notes, "notes", max_length=20_000, allow_empty=True)
        store = await self.check_run(run_id, "experiments.write")
        consumer = f"run:{run_id}"

        def record(s: Session, ctx: Ctx) -> None:
            from ..core import model_configs as mc

            for direction, key in (("read", "datasets_read"), ("write", "datasets_written")):
                for ref in b.get(key, []):
                    ds.record_lineage(
                        s,
                        ctx,
                        ref["project"],
                        ref["dataset"],
                        ref["version"],
                        consumer=consumer,
                        direction=direction,
                    )
            if "model_config" in b:
                owner = ex.experiment_owner(s, experiment_id)
                assert owner is not None
                mc.get_revision(
                    s, ctx, owner[1].slug, b["model_config"]["name"], b["model_config"]["revision"]
                )

        experiment_id, _st, _lc = await self.blocking(lambda: store.run_state(run_id))
        await self.call(record, write=True)
        tags: dict[str, str] = {}
        if "model_config" in b:
            tags["workbench.model_config"] = (
                f"{b['model_config']['name']}@{b['model_config']['revision']}"
            )
        for key, value in (b.get("code") or {}).items():
            tags[f"workbench.code.{key}"] = value
        env = b.get("environment") or {}
        if "python" in env:
            tags["workbench.env.python"] = env["python"]
        if env.get("packages"):
            tags.update(packages_tags(env["packages"]))
        if "notes" in b:
            tags["mlflow.note.content"] = b["notes"]
        if tags:
            await self.blocking(lambda: store.log_batch(run_id, [], None, tags))
        self.reply(await self.lineage(run_id, store))

    @endpoint(
        action="experiments.read",
        summary="A run's lineage",
        response={"type": "object"},
        errors=(503,),
    )
    async def get(self, run_id: str) -> None:
        store = await self.check_run(run_id, "experiments.read")
        self.reply(await self.lineage(run_id, store))

    async def lineage(self, run_id: str, store: TrackingStore) -> dict[str, Any]:
        runs = await self.blocking(lambda: RunReader(store).runs([run_id]))
        tags = runs[run_id]["tags"]

        def work(s: Session, ctx: Ctx) -> list[dict[str, Any]]:
            page = ds.consumer_lineage(s, ctx, f"run:{run_id}", limit=500)
            return [ds.lineage_json(s, r) for r in page.items]

        used = await self.call(work, write=False)
        packages = packages_from_tags(tags)
        return {
            "run_id": run_id,
            "datasets_read": [u for u in used if u["direction"] == "read"],
            "datasets_written": [u for u in used if u["direction"] == "write"],
            "model_config": tags.get("workbench.model_config"),
            "code": {
                k.split(".", 2)[2]: v for k, v in tags.items() if k.startswith("workbench.code.")
            },
            "environment": {
                "python": tags.get("workbench.env.python"),
                "packages": packages,
            },
            "notes": tags.get("mlflow.note.content", ""),
        }
