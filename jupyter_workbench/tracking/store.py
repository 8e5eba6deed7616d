"""Fast paths straight into MLflow's own tables (SQLAlchemy Core, one transaction per batch).

MLflow's REST store writes metrics row by row and reads whole histories through its ORM. The
workbench writes a batch of points with one multi-row insert and updates ``latest_metrics``
once per key, exactly as MLflow would have left them, so stock clients (``get_metric_history``)
and the MLflow UI see every point. Histories are read with one query into numpy arrays.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, and_, bindparam, create_engine, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool

from ..core.errors import BadRequest, Conflict, NotFound
from . import rollups

log = logging.getLogger(__name__)

MAX_FLOAT = 1.7976931348623157e308
ROLLUP_RETRY_SECONDS = 300.0
KEY_MAX = 250
PARAM_VALUE_MAX = 8000


def _tables() -> Any:
    from mlflow.store.tracking.dbmodels import models

    return models


@dataclass(frozen=True)
class Point:
    key: str
    value: float
    timestamp: int
    step: int


def sanitize(value: float) -> tuple[bool, float]:
    """MLflow's encoding: NaN is stored as 0 with is_nan; infinities as the largest floats."""
    if math.isnan(value):
        return True, 0.0
    if math.isinf(value):
        return False, MAX_FLOAT if value > 0 else -MAX_FLOAT
    return False, float(value)


def _newer(a: tuple[Any, Any, Any], b: tuple[Any, Any, Any]) -> bool:
    """MLflow's rule for latest_metrics: a higher step wins, then a later timestamp, then value."""
    return a >= b


_METRIC_COLUMNS = ("key", "value", "timestamp", "step", "is_nan", "run_uuid")


_PG_METRIC_INSERT = (
    "INSERT INTO metrics ({columns}) SELECT * FROM unnest(%s::varchar[], %s::float8[], "
    "%s::bigint[], %s::bigint[], %s::boolean[], %s::varchar[]) ON CONFLICT DO NOTHING"
).format(columns=", ".join(f'"{c}"' for c in _METRIC_COLUMNS))


def _columns(rows: list[dict[str, Any]]) -> tuple[list[Any], ...]:
    """Rows as one list per column: six array parameters, however many rows (a short query
    psycopg parses once, where a VALUES list of thousands of placeholders is parsed per call)."""
    return tuple([row[c] for row in rows] for c in _METRIC_COLUMNS)


class TrackingStore:
    """Direct access to the MLflow tracking database for bulk writes and fast reads."""

    def __init__(self, url: str) -> None:
        self.url = url
        is_sqlite = url.startswith("sqlite")
        self.engine: Engine = (
            create_engine(url, poolclass=NullPool if is_sqlite else None, future=True)
            if is_sqlite
            else create_engine(url, pool_size=4, pool_pre_ping=True, future=True)
        )
        if is_sqlite:

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

        self.dialect = postgresql if url.startswith("postgresql") else sqlite
        self.m = _tables()
        self._rollups: rollups.RollupReader | None = None
        self._rollups_lock = threading.Lock()
        self._rollups_retry_at = 0.0

    # -- writing -----------------------------------------------------------------------
    def run_state(self, run_id: str) -> tuple[str, str, str]:
        """(experiment id, status, lifecycle stage) of a run; NotFound if it does not exist."""
        runs = self.m.SqlRun.__table__
        with self.engine.connect() as conn:
            row = conn.execute(
                select(runs.c.experiment_id, runs.c.status, runs.c.lifecycle_stage).where(
                    runs.c.run_uuid == run_id
                )
            ).first()
        if row is None:
            raise NotFound(f"run '{run_id}' not found")
        return str(row[0]), str(row[1]), str(row[2])

    def log_batch(
        self,
        run_id: str,
        points: list[Point],
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, int]:
        """Write points, params and tags of one run in one transaction."""
        self.ensure_rollups()
        _experiment, _status, stage = self.run_state(run_id)
        if stage != "active":
            raise Conflict(
                f"run '{run_id}' is deleted; restore it before logging", code="run_deleted"
            )
        metrics = self.m.SqlMetric.__table__
        latest = self.m.SqlLatestMetric.__table__
        rows: list[dict[str, Any]] = []
        best: dict[str, dict[str, Any]] = {}
        for p in points:
            if not p.key or len(p.key) > KEY_MAX:
                raise BadRequest(f"metrics: key {p.key!r} must be 1-{KEY_MAX} characters")
            is_nan, value = sanitize(p.value)
            row = {
                "key": p.key,
                "value": value,
                "timestamp": int(p.timestamp),
                "step": int(p.step),
                "is_nan": is_nan,
                "run_uuid": run_id,
            }
            rows.append(row)
            current = best.get(p.key)
            if current is None or _newer(
                (row["step"], row["timestamp"], value),
                (current["step"], current["timestamp"], current["value"]),
            ):
                best[p.key] = row
        rolled_up = self._rollups is not None
        with self.engine.begin() as conn:
            if rolled_up and rows:
                rollups.suspend_triggers(conn)
            inserted = 0
            if self.dialect is postgresql:
                if rows:
                    inserted = conn.exec_driver_sql(_PG_METRIC_INSERT, _columns(rows)).rowcount
            else:
                stmt = sqlite.insert(metrics).on_conflict_do_nothing()
                for start in range(0, len(rows), 1000):
                    # sqlite3's executemany: one prepared statement looped in C
                    inserted += conn.execute(stmt, rows[start : start + 1000]).rowcount
            if rolled_up and rows:
                rollups.record(conn, run_id, rows, all_inserted=inserted == len(rows))
            if best:
                existing = {
                    r.key: r
                    for r in conn.execute(
                        select(latest).where(
                            latest.c.run_uuid == run_id, latest.c.key.in_(list(best))
                        )
                    )
                }
                inserts, updates = [], []
                for key, row in best.items():
                    old = existing.get(key)
                    if old is None:
                        inserts.append(row)
                    elif _newer(
                        (row["step"], row["timestamp"], row["value"]),
                        (old.step, old.timestamp, old.value),
                    ):
                        updates.append({**row, "b_key": key})
                if inserts:
                    conn.execute(latest.insert(), inserts)
                if updates:
                    conn.execute(
                        update(latest)
                        .where(
                            and_(latest.c.run_uuid == run_id, latest.c.key == bindparam("b_key"))
                        )
                        .values(
                            value=bindparam("value"),
                            timestamp=bindparam("timestamp"),
                            step=bindparam("step"),
                            is_nan=bindparam("is_nan"),
                        ),
                        updates,
                    )
            self._params(conn, run_id, params or {})
            self._tags(conn, run_id, tags or {})
        return {"metrics": len(rows), "params": len(params or {}), "tags": len(tags or {})}

    def _params(self, conn: Any, run_id: str, params: dict[str, str]) -> None:
        if not params:
            return
        table = self.m.SqlParam.__table__
        existing = dict(
            conn.execute(
                select(table.c.key, table.c.value).where(
                    table.c.run_uuid == run_id, table.c.key.in_(list(params))
                )
            ).all()
        )
        new = []
        for key, value in params.items():
            value = str(value)
            if len(value) > PARAM_VALUE_MAX:
                raise BadRequest(f"params.{key}: longer than {PARAM_VALUE_MAX} characters")
            if key in existing:
                if existing[key] != value:
                    raise Conflict(
                        f"params.{key}: already logged as {existing[key]!r}; params cannot change",
                        code="param_changed",
                    )
                continue
            new.append({"key": key, "value": value, "run_uuid": run_id})
        if new:
            conn.execute(table.insert(), new)

    def _tags(self, conn: Any, run_id: str, tags: dict[str, str]) -> None:
        if not tags:
            return
        table = self.m.SqlTag.__table__
        rows = [{"key": k, "value": str(v), "run_uuid": run_id} for k, v in tags.items()]
        stmt = self.dialect.insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key", "run_uuid"], set_={"value": stmt.excluded.value}
        )
        conn.execute(stmt, rows)

    # -- reading -----------------------------------------------------------------------
    def history(
        self, run_id: str, key: str, start_step: int | None = None, end_step: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps, timestamps, values) of one metric, ordered by step then timestamp."""
        where = ["run_uuid = {p}", "key = {p}"]
        args: list[Any] = [run_id, key]
        if start_step is not None:
            where.append("step >= {p}")
            args.append(int(start_step))
        if end_step is not None:
            where.append("step <= {p}")
            args.append(int(end_step))
        sql = (
            f"SELECT step, timestamp, value, is_nan FROM metrics WHERE {' AND '.join(where)} "
            "ORDER BY step, timestamp"
        )
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            cursor = raw.cursor()  # type: ignore[union-attr]
            style = "?" if conn.dialect.name == "sqlite" else "%s"
            cursor.execute(sql.format(p=style), tuple(args))
            rows = cursor.fetchall()
            cursor.close()
        if not rows:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
        data = np.array(rows, dtype=np.float64)
        values = np.where(data[:, 3] > 0, np.nan, data[:, 2])
        return data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), values

    def ensure_rollups(self) -> bool:
        """Install the metric rollups (tables + triggers) once; False while they cannot be.

        Without them (MLflow's tables not there yet, or no right to create triggers on an
        external MLflow database) every read is exact: slower for long series, never wrong.
        """
        if self._rollups is None and time.monotonic() >= self._rollups_retry_at:
            with self._rollups_lock:
                if self._rollups is None and time.monotonic() >= self._rollups_retry_at:
                    try:
                        if rollups.install(self.engine):
                            self._rollups = rollups.RollupReader(self.engine, self.history)
                    except Exception as exc:
                        log.warning("metric rollups unavailable (%s); reads stay exact", exc)
                        self._rollups_retry_at = time.monotonic() + ROLLUP_RETRY_SECONDS
        return self._rollups is not None

    def downsampled(
        self,
        run_id: str,
        key: str,
        max_points: int,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> rollups.Downsampled | None:
        """A long metric downsampled from its rollups; None when reading the points is better."""
        if not self.ensure_rollups():
            return None
        assert self._rollups is not None
        return self._rollups.downsample(run_id, key, max_points, start_step, end_step)

    def metric_keys(self, run_ids: Iterable[str]) -> dict[str, list[str]]:
        latest = self.m.SqlLatestMetric.__table__
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for run_uuid, key in conn.execute(
                select(latest.c.run_uuid, latest.c.key).where(latest.c.run_uuid.in_(list(run_ids)))
            ):
                out.setdefault(run_uuid, []).append(key)
        return out

    def model_summaries(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """For each of these registered models that MLflow has: its description, its latest
        version of each stage (as MLflow's ``latest_versions``, oldest first) and its aliases,
        versions as MLflow's strings. Three queries, however many models."""
        from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
        from mlflow.store.model_registry.dbmodels import models as registry
        from mlflow.utils.workspace_utils import DEFAULT_WORKSPACE_NAME

        models = registry.SqlRegisteredModel.__table__
        versions = registry.SqlModelVersion.__table__
        aliases = registry.SqlRegisteredModelAlias.__table__
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for name, description in conn.execute(
                select(models.c.name, models.c.description).where(
                    models.c.workspace == DEFAULT_WORKSPACE_NAME, models.c.name.in_(names)
                )
            ):
                out[name] = {"description": description or "", "latest_versions": [], "aliases": {}}
            latest = (
                select(versions.c.name, func.max(versions.c.version))
                .where(
                    versions.c.workspace == DEFAULT_WORKSPACE_NAME,
                    versions.c.name.in_(list(out)),
                    versions.c.current_stage != STAGE_DELETED_INTERNAL,
                )
                .group_by(versions.c.name, versions.c.current_stage)
            )
            for name, version in conn.execute(latest):
                out[name]["latest_versions"].append(int(version))
            for name, alias, version in conn.execute(
                select(aliases.c.name, aliases.c.alias, aliases.c.version).where(
                    aliases.c.workspace == DEFAULT_WORKSPACE_NAME, aliases.c.name.in_(list(out))
                )
            ):
                out[name]["aliases"][alias] = str(version)
        for summary in out.values():
            summary["latest_versions"] = [str(v) for v in sorted(summary["latest_versions"])]
        return out

    def dispose(self) -> None:
        self.engine.dispose()


def now_ms() -> int:
    return int(time.time() * 1000)


def _summary_rows(conn: Any, m: Any, run_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    metrics = m.SqlMetric.__table__
    latest = m.SqlLatestMetric.__table__
    from sqlalchemy import func

    out: dict[str, dict[str, dict[str, Any]]] = {}
    rows = conn.execute(
        select(
            metrics.c.run_uuid,
            metrics.c.key,
            func.min(metrics.c.value),
            func.max(metrics.c.value),
            func.count(),
        )
        .where(metrics.c.run_uuid.in_(run_ids), metrics.c.is_nan.is_(False))
        .group_by(metrics.c.run_uuid, metrics.c.key)
    )
    for run_uuid, key, low, high, count in rows:
        out.setdefault(run_uuid, {})[key] = {"min": low, "max": high, "points": count}
    for row in conn.execute(select(latest).where(latest.c.run_uuid.in_(run_ids))):
        entry = out.setdefault(row.run_uuid, {}).setdefault(row.key, {"points": 0})
        entry["last"] = None if row.is_nan else row.value
        entry["last_step"] = row.step
    return out


class RunReader:
    """Reads of whole runs (params, tags, metric summaries) in a few queries for many runs."""

    def __init__(self, store: TrackingStore) -> None:
        self.store = store

    def runs(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        m = self.store.m
        runs = m.SqlRun.__table__
        params = m.SqlParam.__table__
        tags = m.SqlTag.__table__
        out: dict[str, dict[str, Any]] = {}
        with self.store.engine.connect() as conn:
            for row in conn.execute(select(runs).where(runs.c.run_uuid.in_(run_ids))):
                out[row.run_uuid] = {
                    "run_id": row.run_uuid,
                    "name": row.name,
                    "status": row.status,
                    "experiment_id": str(row.experiment_id),
                    "start_time": row.start_time,
                    "end_time": row.end_time,
                    "lifecycle_stage": row.lifecycle_stage,
                    "user": row.user_id,
                    "params": {},
                    "tags": {},
                    "metrics": {},
                }
            for row in conn.execute(select(params).where(params.c.run_uuid.in_(run_ids))):
                out[row.run_uuid]["params"][row.key] = row.value
            for row in conn.execute(select(tags).where(tags.c.run_uuid.in_(run_ids))):
                out[row.run_uuid]["tags"][row.key] = row.value
            for run_uuid, summary in _summary_rows(conn, m, run_ids).items():
                if run_uuid in out:
                    out[run_uuid]["metrics"] = summary
        return out
