"""Metric rollups on MLflow's own database: whoever writes (MLflow itself, the workbench's bulk
ingest, a retried batch, points written before the rollups existed), the rollups summarise
exactly the stored points, and downsampled reads keep every extreme."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.entities import Metric
from sqlalchemy.engine import make_url

from jupyter_workbench.tracking import rollups
from jupyter_workbench.tracking.store import Point, TrackingStore

from .conftest import IN_CI, PG_ADMIN_URL, _admin_execute, _pg_available


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def mlflow_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A fresh MLflow tracking database (MLflow's own migrations) and MLflow's own store."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'mlflow.db'}"
        name = None
    else:
        problem = _pg_available()
        if problem:
            if IN_CI:
                pytest.fail(f"PostgreSQL is required with CI=true: {problem}")
            pytest.skip(problem)
        name = f"wb_mlflow_{uuid.uuid4().hex[:10]}"
        _admin_execute(f'CREATE DATABASE "{name}"')
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    mlflow_store = SqlAlchemyStore(url, str(tmp_path / "artifacts"))
    yield url, mlflow_store
    mlflow_store.engine.dispose()
    if name:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _new_run(mlflow_store: Any) -> str:
    experiment = mlflow_store.create_experiment(f"e-{uuid.uuid4().hex[:8]}")
    return mlflow_store.create_run(experiment, "alice", 0, [], "run").info.run_id


def _mlflow_log(mlflow_store: Any, run_id: str, points: list[tuple[int, int, float]]) -> None:
    metrics = [Metric("loss", v, ts, step) for step, ts, v in points]
    for i in range(0, len(metrics), 1000):
        mlflow_store.log_batch(run_id, metrics[i : i + 1000], [], [])


def _stored(store: TrackingStore, run_id: str) -> list[tuple[int, int, float, bool]]:
    with store.engine.connect() as conn:
        return [
            (int(s), int(t), float(v), bool(n))
            for s, t, v, n in conn.exec_driver_sql(
                "SELECT step, timestamp, value, is_nan FROM metrics WHERE run_uuid = "
                + ("?" if conn.dialect.name == "sqlite" else "%s"),
                (run_id,),
            )
        ]


def _expected(points: list[tuple[int, int, float, bool]], shift: int) -> dict[int, tuple]:
    """Bucket summaries computed the plain way, from the stored points."""
    buckets: dict[int, list[tuple[int, int, float, bool]]] = {}
    for p in points:
        buckets.setdefault(p[0] >> shift, []).append(p)
    out = {}
    for bucket, pts in buckets.items():
        first = min(pts, key=lambda p: (p[0], p[1], p[2]))
        last = max(pts, key=lambda p: (p[0], p[1], p[2]))
        numbers = [p for p in pts if not p[3]]
        lo = min(numbers, key=lambda p: (p[2], p[0], p[1]))[:3] if numbers else (None,) * 3
        hi = min(numbers, key=lambda p: (-p[2], p[0], p[1]))[:3] if numbers else (None,) * 3
        out[bucket] = (len(pts), first[:3], int(first[3]), last[:3], int(last[3]), lo, hi)
    return out


def _rolled(store: TrackingStore, run_id: str, level: int) -> dict[int, tuple]:
    p = "?" if store.engine.dialect.name == "sqlite" else "%s"
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT bucket, n, f_step, f_ts, f_val, f_nan, l_step, l_ts, l_val, l_nan, lo_step, "
            f"lo_ts, lo_val, hi_step, hi_ts, hi_val FROM {rollups.TABLE} "
            f"WHERE run_uuid = {p} AND key = 'loss' AND lvl = {p}",
            (run_id, level),
        ).all()

    def point(a: Any, b: Any, c: Any) -> tuple:
        return (None, None, None) if c is None else (int(a), int(b), float(c))

    return {
        int(r[0]): (
            int(r[1]),
            point(*r[2:5]),
            int(r[5]),
            point(*r[6:9]),
            int(r[9]),
            point(*r[10:13]),
            point(*r[13:16]),
        )
        for r in rows
    }


def test_rollups_summarise_exactly_the_stored_points_whoever_wrote_them(mlflow_db) -> None:
    url, mlflow_store = mlflow_db
    run_id = _new_run(mlflow_store)
    rng = random.Random(7)
    # written by MLflow itself before the rollups exist: the installation backfills them
    _mlflow_log(mlflow_store, run_id, [(s, 1000 + s, rng.uniform(-1, 1)) for s in range(0, 600)])
    store = TrackingStore(url)
    assert store.ensure_rollups()
    assert TrackingStore(url).ensure_rollups()  # a second installer finds it done
    # the workbench's bulk ingest: out of order, NaN, infinities, several points per step,
    # negative steps, crossing bucket edges of both levels
    batch = [Point("loss", rng.uniform(-5, 5), 5000 + s, s) for s in range(20_000, 15_000, -1)]
    batch += [Point("loss", math.nan, 9, 700), Point("loss", math.inf, 10, 701)]
    batch += [Point("loss", -math.inf, 11, 16_383), Point("loss", 3.0, 12, 16_384)]
    batch += [Point("loss", float(i), 20 + i, 300) for i in range(5)]  # one step, many times
    batch += [Point("loss", 1.5, 1, -3), Point("loss", math.nan, 2, 40_000)]
    store.log_batch(run_id, batch)
    # MLflow again, after installation: the database triggers summarise it
    _mlflow_log(mlflow_store, run_id, [(s, 9000 + s, rng.uniform(-9, 9)) for s in range(590, 900)])
    mlflow_store.log_metric(run_id, Metric("loss", 77.0, 1, 18_000))
    # a retried batch: half of it is already stored (duplicates are skipped by MLflow's key)
    store.log_batch(run_id, [*batch[:50], Point("loss", -77.0, 3, 18_001)])

    stored = _stored(store, run_id)
    assert len(stored) == 600 + len(batch) + 310 + 1 + 1
    for level, shift in enumerate(rollups.SHIFTS):
        assert _rolled(store, run_id, level) == _expected(stored, shift), f"level {level}"
    store.dispose()


def test_downsampled_reads_keep_extremes_and_count_every_point(mlflow_db) -> None:
    url, mlflow_store = mlflow_db
    run_id = _new_run(mlflow_store)
    store = TrackingStore(url)
    n = 120_000
    values = [math.sin(i / 500) for i in range(n)]
    values[77_777], values[1_234], values[100_001] = 40.0, -40.0, math.nan
    for start in range(0, n, 10_000):
        store.log_batch(
            run_id, [Point("loss", values[i], i, i) for i in range(start, min(n, start + 10_000))]
        )
    got = store.downsampled(run_id, "loss", 1000)
    assert got is not None and got.total == n and len(got.values) <= 1000
    assert got.steps.tolist() == sorted(got.steps.tolist())
    assert got.steps[0] == 0 and got.steps[-1] == n - 1
    assert max(got.values[~np.isnan(got.values)]) == 40.0
    assert min(got.values[~np.isnan(got.values)]) == -40.0
    for step, stamp, value in zip(got.steps, got.timestamps, got.values, strict=True):
        assert stamp == step and (math.isnan(value) or value == values[step])

    # a range whose ends fall inside buckets: counted exactly, nothing outside it
    start, end = 1_000, 101_999
    ranged = store.downsampled(run_id, "loss", 500, start, end)
    assert ranged is not None and ranged.total == end - start + 1  # the NaN point counts too
    assert ranged.steps[0] == start and ranged.steps[-1] == end
    assert 40.0 in ranged.values and -40.0 in ranged.values and len(ranged.values) <= 500
    narrow = store.downsampled(run_id, "loss", 500, 77_700, 77_800)
    assert narrow is None  # 101 points: read exactly instead

    # MLflow's garbage collection deletes a run's points: its rollups go with them
    p = "?" if store.engine.dialect.name == "sqlite" else "%s"
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM metrics WHERE run_uuid = {p}", (run_id,))
    assert store.downsampled(run_id, "loss", 1000) is None
    store.dispose()


def test_one_far_off_step_does_not_flatten_the_chart(mlflow_db) -> None:
    """Steps counted in tokens seen: one point at 2**40 after 60,000 at steps 0..59,999 made
    the read put the whole curve in one of its equal step ranges (four points came back)."""
    url, mlflow_store = mlflow_db
    run_id = _new_run(mlflow_store)
    store = TrackingStore(url)
    n = 60_000
    values = [math.sin(i / 300) for i in range(n)]
    values[31_111] = 50.0
    store.log_batch(run_id, [Point("loss", values[i], i, i) for i in range(n)])
    store.log_batch(run_id, [Point("loss", 0.5, n, 2**40)])
    got = store.downsampled(run_id, "loss", 1000)
    assert got is not None and got.total == n + 1 and len(got.values) <= 1000
    head = got.steps[got.steps < n]
    assert len(head) >= 400, len(head)  # the curve, not its two extremes
    assert np.diff(head).max() <= 400  # no long straight stretch across it
    assert got.steps[-1] == 2**40 and 50.0 in got.values
    # the last step there is: read last, not wrapped to -2**63 and read first
    store.log_batch(run_id, [Point("loss", 0.25, n + 1, 2**63 - 1)])
    got = store.downsampled(run_id, "loss", 1000)
    assert got is not None and got.steps.tolist() == sorted(got.steps.tolist())
    assert got.steps[0] == 0 and got.steps[-1] > 2**62
    store.dispose()


def test_rollups_that_lost_their_triggers_are_rebuilt(mlflow_db) -> None:
    """MLflow's migrations may rebuild ``metrics`` (dropping triggers): points written after that
    were never rolled up, so the next start rebuilds the rollups from the points."""
    url, mlflow_store = mlflow_db
    run_id = _new_run(mlflow_store)
    store = TrackingStore(url)
    store.log_batch(run_id, [Point("loss", float(i % 13), i, i) for i in range(3000)])
    with store.engine.begin() as conn:
        for name in rollups.TRIGGERS:
            on = " ON metrics" if conn.dialect.name == "postgresql" else ""
            conn.exec_driver_sql(f"DROP TRIGGER {name}{on}")
    _mlflow_log(mlflow_store, run_id, [(s, s, -1.0) for s in range(3000, 3500)])
    stale = _rolled(store, run_id, 0)
    assert sum(b[0] for b in stale.values()) == 3000  # the last 500 points are missing
    store.dispose()

    again = TrackingStore(url)
    assert again.ensure_rollups()
    stored = _stored(again, run_id)
    for level, shift in enumerate(rollups.SHIFTS):
        assert _rolled(again, run_id, level) == _expected(stored, shift)
    _mlflow_log(mlflow_store, run_id, [(s, s, 5.0) for s in range(3500, 3600)])  # triggers back
    assert sum(b[0] for b in _rolled(again, run_id, 2).values()) == 3600
    again.dispose()
