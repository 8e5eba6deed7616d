"""Experiments and runs: fast batch logging, downsampled histories, exports, comparisons, search.

Runs live in MLflow; these routes read and write MLflow's tables directly (``tracking/store.py``)
after checking the caller's role on the project that owns the run's experiment.
"""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from ..core import experiments as ex
from ..core.context import Ctx
from ..core.errors import BadRequest, WorkbenchError
from ..tracking.downsample import minmax_indices
from ..tracking.store import Point, TrackingStore, now_ms
from ..tracking.upstream import Upstream
from . import schemas as S
from .base import Param, WorkbenchHandler, endpoint

MAX_BATCH_POINTS = 200_000
MAX_EXPORT_RUNS = 100


class Unavailable(WorkbenchError):
    status = 503
    code = "tracking_unavailable"


class TrackingHandler(WorkbenchHandler):
    @property
    def upstream(self) -> Upstream:
        upstream: Upstream = self.settings["workbench_mlflow"]
        return upstream

    async def store(self) -> TrackingStore:
        store: TrackingStore | None = self.extensionapp.tracking_store()  # type: ignore[attr-defined]
        if store is None:
            raise Unavailable(
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


RUN_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$", "x-pattern-message": "is not a run id"}
BATCH = S.obj(
    {
        "metrics": {
            "type": "array",
            "maxItems": MAX_BATCH_POINTS,
            "items": S.obj(
                {
                    "key": {"type": "string", "minLength": 1, "maxLength": 250},
                    "value": {
                        "type": ["number", "string"],
                        "description": "a number, or 'NaN', 'Infinity', '-Infinity'",
                    },
                    "step": {"type": "integer"},
                    "timestamp": {"type": "integer"},
                },
                ("key", "value"),
            ),
        },
        "params": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 8000}},
        "tags": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 8000}},
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
    return float(value)


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
            Param("start_step", {"type": "integer"}, "First step to include."),
            Param("end_step", {"type": "integer"}, "Last step to include."),
        ),
    )
    async def get(self, run_id: str, key: str) -> None:
        store = await self.check_run(run_id, "experiments.read")
        q = self.query

        def work() -> dict[str, Any]:
            steps, stamps, values = store.history(run_id, key)
            if "start_step" in q or "end_step" in q:
                keep = (steps >= q.get("start_step", steps.min(initial=0))) & (
                    steps <= q.get("end_step", steps.max(initial=0))
                )
                steps, stamps, values = steps[keep], stamps[keep], values[keep]
            total = len(values)
            chosen = minmax_indices(values, q.get("max_points", 2000))
            picked = values[chosen]
            return {
                "run_id": run_id,
                "key": key,
                "total": total,
                "downsampled": len(chosen) < total,
                "steps": steps[chosen].tolist(),
                "timestamps": stamps[chosen].tolist(),
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
        self.set_header("Content-Disposition", f'attachment; filename="metrics.{fmt}"')
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
        self.finish(body)


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
        response={
            "type": "object",
            "properties": {"items": {"type": "array"}},
            "required": ["items"],
        },
    )
    async def get(self, slug: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return {"items": [ex.experiment_json(e) for e in ex.list_experiments(s, ctx, slug)]}

        self.reply(await self.call(work))
