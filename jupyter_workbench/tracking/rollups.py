"""Write-time rollups of MLflow metrics, so a chart of a million points reads a few thousand rows.

A table beside MLflow's ``metrics`` keeps, per (run, key) and per bucket of steps at three widths
(64, 1,024 and 16,384 steps), the point count, the first and last point and the minimum and
maximum point. Database triggers on ``metrics`` maintain it inside the inserting transaction,
whoever writes: the workbench's bulk ingest, MLflow's own server behind the proxy, or anything
else. A downsampled read merges buckets into at most ``max_points // 2`` step ranges (placed half by
step, half by point count) and keeps each range's minimum and maximum -- the same
extremes-keeping rule as ``downsample.minmax_indices``, over step ranges instead of points.

Installing the triggers also backfills points written before, in the same transaction, so a
rollup is never missing points (a run whose rollups are gone, e.g. after ``mlflow gc``, is read
exactly instead).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TABLE = "wb_metric_rollups_v1"
SHIFTS = (6, 10, 14)  # bucket widths of levels 0, 1, 2: 64, 1,024 and 16,384 steps
SKIP_SETTING = "workbench.rollups_written"  # PostgreSQL: set by a writer that summarises itself
EXACT_MAX_POINTS = 50_000  # ranges with fewer points are read point by point (just as fast)

_POINT = ("step", "ts", "val")
_COLUMNS = (
    "run_uuid, key, lvl, bucket, n, f_step, f_ts, f_val, f_nan, l_step, l_ts, l_val, l_nan, "
    "lo_step, lo_ts, lo_val, hi_step, hi_ts, hi_val"
)


def _create_table(dialect: str) -> str:
    floating = "DOUBLE PRECISION" if dialect == "postgresql" else "FLOAT"
    point = ", ".join(
        f"{p}_step BIGINT, {p}_ts BIGINT, {p}_val {floating}" for p in ("f", "l", "lo", "hi")
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (run_uuid VARCHAR(32) NOT NULL, "
        f"key VARCHAR(250) NOT NULL, lvl INTEGER NOT NULL, bucket BIGINT NOT NULL, "
        f"n BIGINT NOT NULL, {point}, f_nan INTEGER NOT NULL, l_nan INTEGER NOT NULL, "
        f"PRIMARY KEY (run_uuid, key, lvl, bucket))"
    )


def _merge() -> str:
    """The ON CONFLICT clause folding one new bucket summary into a stored one.

    Ties are broken so the result does not depend on insertion order: first/last by
    (step, timestamp, value); the minimum by (value, step, timestamp); the maximum by
    (-value, step, timestamp). A bucket of only NaNs has NULL extremes.
    """
    old, new = TABLE, "excluded"

    def pick(prefix: str, better: str, extra: tuple[str, ...] = ()) -> str:
        return ", ".join(
            f"{prefix}_{c} = CASE WHEN {better} THEN {new}.{prefix}_{c} ELSE {old}.{prefix}_{c} END"
            for c in (*_POINT, *extra)
        )

    def key(side: str, prefix: str) -> str:
        return f"({side}.{prefix}_step, {side}.{prefix}_ts, {side}.{prefix}_val)"

    first = f"{key(new, 'f')} < {key(old, 'f')}"
    last = f"{key(new, 'l')} > {key(old, 'l')}"
    lo = (
        f"{new}.lo_val IS NOT NULL AND ({old}.lo_val IS NULL OR "
        f"({new}.lo_val, {new}.lo_step, {new}.lo_ts) < ({old}.lo_val, {old}.lo_step, {old}.lo_ts))"
    )
    hi = (
        f"{new}.hi_val IS NOT NULL AND ({old}.hi_val IS NULL OR {new}.hi_val > {old}.hi_val OR "
        f"({new}.hi_val = {old}.hi_val AND "
        f"({new}.hi_step, {new}.hi_ts) < ({old}.hi_step, {old}.hi_ts)))"
    )
    return (
        f"ON CONFLICT (run_uuid, key, lvl, bucket) DO UPDATE SET n = {old}.n + {new}.n, "
        f"{pick('f', first, ('nan',))}, {pick('l', last, ('nan',))}, "
        f"{pick('lo', lo)}, {pick('hi', hi)}"
    )


def _row_values(level: int, shift: int, source: str = "NEW") -> str:
    """One point as a bucket summary (SQLite triggers and backfill: row by row)."""
    s = source
    number = (
        f"CASE WHEN {s}.is_nan THEN NULL ELSE {s}.step END, "
        f"CASE WHEN {s}.is_nan THEN NULL ELSE {s}.timestamp END, "
        f"CASE WHEN {s}.is_nan THEN NULL ELSE {s}.value END"
    )
    point = f"{s}.step, {s}.timestamp, {s}.value"
    return (
        f"{s}.run_uuid, {s}.key, {level}, {s}.step >> {shift}, 1, {point}, "
        f"CASE WHEN {s}.is_nan THEN 1 ELSE 0 END, {point}, CASE WHEN {s}.is_nan THEN 1 ELSE 0 END, "
        f"{number}, {number}"
    )


def _sqlite_statements() -> list[str]:
    inserts = " ".join(
        f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES ({_row_values(level, shift)}) {_merge()};"
        for level, shift in enumerate(SHIFTS)
    )
    backfill = [
        f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT {_row_values(level, shift, 'm')} "
        f"FROM metrics AS m WHERE true {_merge()}"
        for level, shift in enumerate(SHIFTS)
    ]
    return [
        _create_table("sqlite"),
        f"CREATE TABLE IF NOT EXISTS {TABLE}_skip (writer INTEGER)",
        f"CREATE TRIGGER IF NOT EXISTS {TABLE}_ins AFTER INSERT ON metrics "
        f"WHEN NOT EXISTS (SELECT 1 FROM {TABLE}_skip) BEGIN {inserts} END",
        f"CREATE TRIGGER IF NOT EXISTS {TABLE}_del AFTER DELETE ON metrics BEGIN "
        f"DELETE FROM {TABLE} WHERE run_uuid = OLD.run_uuid AND key = OLD.key; END",
        *backfill,
    ]


def _pg_grouped(source: str) -> str:
    """Bucket summaries of every point in ``source``, one row per (run, key, level, bucket)."""
    levels = ", ".join(f"({level}, {shift})" for level, shift in enumerate(SHIFTS))

    def at(order: str, column: str, where: str = "") -> str:
        filtered = f" FILTER (WHERE {where})" if where else ""
        return f"(array_agg({column} ORDER BY {order}){filtered})[1]"

    first, last = "step, timestamp, value", "step DESC, timestamp DESC, value DESC"
    lo, hi = "value, step, timestamp", "value DESC, step, timestamp"
    number = "NOT is_nan"
    columns = ", ".join(
        [
            "count(*)",
            *(at(first, c) for c in ("step", "timestamp", "value")),
            f"{at(first, 'is_nan')}::int",
            *(at(last, c) for c in ("step", "timestamp", "value")),
            f"{at(last, 'is_nan')}::int",
            *(at(lo, c, number) for c in ("step", "timestamp", "value")),
            *(at(hi, c, number) for c in ("step", "timestamp", "value")),
        ]
    )
    return (
        f"INSERT INTO {TABLE} (run_uuid, key, lvl, bucket, n, f_step, f_ts, f_val, f_nan, "
        f"l_step, l_ts, l_val, l_nan, lo_step, lo_ts, lo_val, hi_step, hi_ts, hi_val) "
        f"SELECT run_uuid, key, lvl, step >> shift, {columns} "
        f"FROM {source} CROSS JOIN (VALUES {levels}) AS levels(lvl, shift) "
        f"GROUP BY run_uuid, key, lvl, step >> shift {_merge()}"
    )


def _pg_statements() -> list[str]:
    return [
        "LOCK TABLE metrics IN SHARE ROW EXCLUSIVE MODE",
        _create_table("postgresql"),
        f"CREATE OR REPLACE FUNCTION {TABLE}_ins() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {_pg_grouped('new_points')}; RETURN NULL; END $$",
        f"CREATE OR REPLACE FUNCTION {TABLE}_del() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN DELETE FROM {TABLE} r USING (SELECT DISTINCT run_uuid, key FROM old_points) o "
        f"WHERE r.run_uuid = o.run_uuid AND r.key = o.key; RETURN NULL; END $$",
        f"CREATE TRIGGER {TABLE}_ins AFTER INSERT ON metrics REFERENCING NEW TABLE AS new_points "
        f"FOR EACH STATEMENT WHEN (current_setting('{SKIP_SETTING}', true) IS DISTINCT FROM 'on') "
        f"EXECUTE FUNCTION {TABLE}_ins()",
        f"CREATE TRIGGER {TABLE}_del AFTER DELETE ON metrics REFERENCING OLD TABLE AS old_points "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_del()",
        _pg_grouped("metrics"),
    ]


TRIGGERS = (f"{TABLE}_ins", f"{TABLE}_del")


def _pg_installed(conn: Any) -> bool:
    if conn.exec_driver_sql(f"SELECT to_regclass('{TABLE}')").scalar() is None:
        return False
    found = conn.exec_driver_sql(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'metrics'::regclass "
        f"AND tgname IN ('{TRIGGERS[0]}', '{TRIGGERS[1]}')"
    ).scalar()
    return int(found) == len(TRIGGERS)


def _sqlite_installed(db: Any) -> bool:
    found = db.execute(
        "SELECT count(*) FROM sqlite_master WHERE (type = 'table' AND name = ?) OR "
        "(type = 'trigger' AND tbl_name = 'metrics' AND name IN (?, ?))",
        (TABLE, *TRIGGERS),
    ).fetchone()[0]
    return int(found) == 1 + len(TRIGGERS)


def _drop(dialect: str) -> list[str]:
    """Leftovers of an installation that lost a trigger (e.g. MLflow rebuilt ``metrics``)."""
    if dialect == "postgresql":
        triggers = [f"DROP TRIGGER IF EXISTS {name} ON metrics" for name in TRIGGERS]
        return [*triggers, f"DROP TABLE IF EXISTS {TABLE}"]
    triggers = [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS]
    return [*triggers, f"DROP TABLE IF EXISTS {TABLE}", f"DROP TABLE IF EXISTS {TABLE}_skip"]


def install(engine: Any) -> bool:
    """Create the rollup table and its triggers and backfill it, once, atomically.

    A table whose triggers are gone (MLflow's migrations may rebuild ``metrics``, which drops
    them) missed points since: it is dropped and rebuilt. Returns False when MLflow's tables do
    not exist yet; True once installed.
    """
    from sqlalchemy import inspect

    if "metrics" not in set(inspect(engine).get_table_names()):
        return False
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            if _pg_installed(conn):
                return True
            statements = _pg_statements()
            conn.exec_driver_sql(statements[0])  # the lock: concurrent installers queue here
            if not _pg_installed(conn):
                for statement in [*_drop("postgresql"), *statements[1:]]:
                    conn.exec_driver_sql(statement)
    else:
        # pysqlite would commit DDL on its own; drive the transaction by hand instead
        connection = engine.raw_connection()
        try:
            db = connection.driver_connection
            if _sqlite_installed(db):
                return True
            isolation = db.isolation_level
            db.isolation_level = None
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    if not _sqlite_installed(db):
                        for statement in [*_drop("sqlite"), *_sqlite_statements()]:
                            db.execute(statement)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.isolation_level = isolation
        finally:
            connection.close()
    log.info("Metric rollups (%s) are installed on the MLflow database", TABLE)
    return True


# -- writing in bulk ------------------------------------------------------------------------
def suspend_triggers(conn: Any) -> None:
    """In this transaction, the caller writes the rollups of its own inserts (``record``).

    The row triggers cost a third of SQLite's bulk insert speed; a batch summarised in numpy
    costs a few upserts. SQLite serialises writers, so the flag row (deleted again before
    commit) is seen by no one else; on PostgreSQL the flag is a transaction-local setting.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT set_config('{SKIP_SETTING}', 'on', true)")
    else:
        conn.exec_driver_sql(f"INSERT INTO {TABLE}_skip VALUES (1)")


@dataclass
class _Groups:
    """Per group (ascending ids): the point count, the first and last point's index (by step,
    timestamp, stored value) and the lowest and highest number as (step, ts, value) rows
    (NaN rows for a group of only NaNs; ties go to the earliest step and timestamp), and the
    indexes of those two points (-1 for a group of only NaNs): the rows are float64, exact
    for steps and timestamps up to 2**53 only."""

    ids: np.ndarray
    n: np.ndarray
    first: np.ndarray
    last: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    lo_at: np.ndarray
    hi_at: np.ndarray


def _summarise(
    steps: np.ndarray, stamps: np.ndarray, stored: np.ndarray, nan: np.ndarray, group: np.ndarray
) -> _Groups:
    """Summarise points by group, with the rules of the triggers (``_merge``)."""
    ids, n = np.unique(group, return_counts=True)
    order = np.lexsort((stored, stamps, steps, group))
    starts = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
    extremes, indexes = [], []
    numbers = np.flatnonzero(~nan)
    for sign in (1.0, -1.0):
        out = np.full((len(ids), 3), np.nan)
        at = np.full(len(ids), -1, dtype=np.int64)
        o = numbers[
            np.lexsort((stamps[numbers], steps[numbers], sign * stored[numbers], group[numbers]))
        ]
        if len(o):
            g = group[o]
            best = o[np.concatenate([[True], g[1:] != g[:-1]])]
            rows = np.searchsorted(ids, group[best])
            out[rows] = np.column_stack([steps[best], stamps[best], stored[best]])
            at[rows] = best
        extremes.append(out)
        indexes.append(at)
    return _Groups(ids, n, order[starts], order[starts + n - 1], *extremes, *indexes)


def _summaries(run_id: str, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rollup rows (in ``_COLUMNS`` order) of metric rows, every level."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_key.setdefault(r["key"], []).append(r)
    out: list[tuple[Any, ...]] = []
    for key, points in by_key.items():
        steps = np.array([p["step"] for p in points], dtype=np.int64)
        stamps = np.array([p["timestamp"] for p in points], dtype=np.int64)
        stored = np.array([p["value"] for p in points], dtype=np.float64)
        nan = np.array([p["is_nan"] for p in points], dtype=bool)

        # (step, ts, stored value, is_nan) of each point, as the table stores them
        stored_points = list(
            zip(steps.tolist(), stamps.tolist(), stored.tolist(), nan.astype(int).tolist(),
                strict=True)
        )  # fmt: skip
        for level, shift in enumerate(SHIFTS):
            g = _summarise(steps, stamps, stored, nan, steps >> shift)
            for j, bucket in enumerate(g.ids.tolist()):
                lo, hi = (
                    stored_points[i][:3] if i >= 0 else (None,) * 3  # NULLs: only NaNs
                    for i in (int(g.lo_at[j]), int(g.hi_at[j]))
                )
                out.append(
                    (run_id, key, level, bucket, int(g.n[j]), *stored_points[g.first[j]],
                     *stored_points[g.last[j]], *lo, *hi)
                )  # fmt: skip
    return out


def record(conn: Any, run_id: str, rows: list[dict[str, Any]], all_inserted: bool) -> None:
    """Fold the rollups of rows this transaction inserted (after ``suspend_triggers``).

    When some rows were duplicates MLflow already had (``all_inserted`` False: a retried
    batch), the touched buckets are summarised again from the stored points instead.
    """
    p = "%s" if conn.dialect.name == "postgresql" else "?"
    if not all_inserted:
        rows = _restate(conn, p, run_id, rows)
    summaries = _summaries(run_id, rows)
    if summaries:
        marks = ", ".join([p] * 19)
        conn.exec_driver_sql(
            f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES ({marks}) {_merge()}", summaries
        )
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT set_config('{SKIP_SETTING}', 'off', true)")
    else:
        conn.exec_driver_sql(f"DELETE FROM {TABLE}_skip")


def _restate(conn: Any, p: str, run_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop the rollups of every coarse bucket the rows touch; return all their stored points."""
    coarse = SHIFTS[-1]
    spans = sorted({(r["key"], r["step"] >> coarse) for r in rows})
    stored: list[dict[str, Any]] = []
    levels = " OR ".join(f"(lvl = {p} AND bucket >= {p} AND bucket <= {p})" for _ in SHIFTS)
    for key, bucket in spans:
        lo, hi = bucket << coarse, ((bucket + 1) << coarse) - 1
        bounds = [v for lvl, shift in enumerate(SHIFTS) for v in (lvl, lo >> shift, hi >> shift)]
        conn.exec_driver_sql(
            f"DELETE FROM {TABLE} WHERE run_uuid = {p} AND key = {p} AND ({levels})",
            (run_id, key, *bounds),
        )
        for step, stamp, value, is_nan in conn.exec_driver_sql(
            f"SELECT step, timestamp, value, is_nan FROM metrics WHERE run_uuid = {p} "
            f"AND key = {p} AND step >= {p} AND step <= {p}",
            (run_id, key, lo, hi),
        ):
            stored.append(
                {
                    "key": key,
                    "step": step,
                    "timestamp": stamp,
                    "value": value,
                    "is_nan": bool(is_nan),
                }
            )
    return stored


# -- reading -------------------------------------------------------------------------------


@dataclass
class Buckets:
    """Bucket summaries as parallel numpy arrays (one entry per non-empty bucket)."""

    start: np.ndarray  # first step the bucket covers
    n: np.ndarray
    first: np.ndarray  # (k, 3) step, ts, value (NaN when the point is NaN)
    last: np.ndarray
    lo: np.ndarray  # (k, 3); NaN rows where the bucket has only NaNs
    hi: np.ndarray

    def __len__(self) -> int:
        return len(self.n)

    @staticmethod
    def empty() -> Buckets:
        none = np.empty((0, 3))
        return Buckets(np.empty(0, np.int64), np.empty(0, np.int64), none, none, none, none)


def _bucket_rows(cursor: Any, sql: str, args: tuple[Any, ...], shift: int) -> Buckets:
    cursor.execute(sql, args)
    rows = cursor.fetchall()
    if not rows:
        return Buckets.empty()
    data = np.array(rows, dtype=np.float64)  # NULL -> nan
    first = data[:, 2:5].copy()
    first[data[:, 5] > 0, 2] = np.nan
    last = data[:, 6:9].copy()
    last[data[:, 9] > 0, 2] = np.nan
    return Buckets(
        start=data[:, 0].astype(np.int64) << shift,
        n=data[:, 1].astype(np.int64),
        first=first,
        last=last,
        lo=data[:, 10:13],
        hi=data[:, 13:16],
    )


def _points_as_buckets(steps: np.ndarray, stamps: np.ndarray, values: np.ndarray) -> Buckets:
    """Raw points (a partial edge bucket) summarised as one bucket."""
    if len(values) == 0:
        return Buckets.empty()
    nan = np.isnan(values)
    g = _summarise(steps, stamps, np.where(nan, 0.0, values), nan, np.zeros(len(values)))
    pts = np.column_stack([steps, stamps, values]).astype(np.float64)
    return Buckets(
        start=steps[g.first].astype(np.int64),
        n=g.n,
        first=pts[g.first],
        last=pts[g.last],
        lo=g.lo,
        hi=g.hi,
    )


def _concat(parts: list[Buckets]) -> Buckets:
    return Buckets(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in Buckets.__dataclass_fields__)
    )


@dataclass
class Downsampled:
    steps: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    total: int


class RollupReader:
    """Downsampled metric reads from the rollup table (None: read the points instead)."""

    def __init__(self, engine: Any, read_points: Any) -> None:
        self.engine = engine
        self.read_points = read_points  # (run, key, start, end) -> (steps, stamps, values)

    def downsample(
        self,
        run_id: str,
        key: str,
        max_points: int,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> Downsampled | None:
        groups = (max_points - 2) // 2
        if groups < 1:
            return None
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            cursor = raw.cursor()
            p = "?" if conn.dialect.name == "sqlite" else "%s"
            try:
                chosen = None
                top = len(SHIFTS) - 1
                for level in range(top, -1, -1):  # the coarsest level that resolves enough
                    shift = SHIFTS[level]
                    sql, args = self._select(p, run_id, key, level, start_step, end_step)
                    buckets = _bucket_rows(cursor, sql, args, shift)
                    if level == top and int(buckets.n.sum()) <= EXACT_MAX_POINTS:
                        return None  # small (or not rolled up): the exact read is as fast
                    enough = groups if level else max(1, groups // 4)
                    if len(buckets) >= enough:
                        chosen = (buckets, shift)
                        break
                if chosen is None:
                    return None  # too few buckets for the resolution asked: read the points
            finally:
                cursor.close()
        buckets, shift = chosen
        buckets = self._trim_edges(run_id, key, buckets, shift, start_step, end_step)
        return _reduce(buckets, groups)

    @staticmethod
    def _select(
        p: str, run_id: str, key: str, level: int, start: int | None, end: int | None
    ) -> tuple[str, tuple[Any, ...]]:
        shift = SHIFTS[level]
        where, args = [f"run_uuid = {p}", f"key = {p}", f"lvl = {p}"], [run_id, key, level]
        if start is not None:
            where.append(f"bucket >= {p}")
            args.append(start >> shift)
        if end is not None:
            where.append(f"bucket <= {p}")
            args.append(end >> shift)
        sql = (
            f"SELECT bucket, n, f_step, f_ts, f_val, f_nan, l_step, l_ts, l_val, l_nan, "
            f"lo_step, lo_ts, lo_val, hi_step, hi_ts, hi_val FROM {TABLE} "
            f"WHERE {' AND '.join(where)} ORDER BY bucket"
        )
        return sql, tuple(args)

    def _trim_edges(
        self,
        run_id: str,
        key: str,
        buckets: Buckets,
        shift: int,
        start: int | None,
        end: int | None,
    ) -> Buckets:
        """Replace buckets that stick out of [start, end] by their points inside the range."""
        if not len(buckets) or (start is None and end is None):
            return buckets
        width = 1 << shift
        keep = np.ones(len(buckets), dtype=bool)
        edges: list[Buckets] = []
        for i in sorted({0, len(buckets) - 1}):
            below = start is not None and buckets.first[i, 0] < start
            above = end is not None and buckets.last[i, 0] > end
            if not (below or above):
                continue
            keep[i] = False
            lo = int(buckets.start[i]) if start is None else max(start, int(buckets.start[i]))
            hi = int(buckets.start[i]) + width - 1
            hi = hi if end is None else min(end, hi)
            edges.append(_points_as_buckets(*self.read_points(run_id, key, lo, hi)))
        if keep.all():
            return buckets
        fields = Buckets.__dataclass_fields__
        merged = _concat([*edges, Buckets(*(getattr(buckets, f)[keep] for f in fields))])
        order = np.argsort(merged.first[:, 0], kind="stable")
        return Buckets(*(getattr(merged, f)[order] for f in fields))


# the largest float64 below 2**63: a step of 2**63-1 is 2**63 as a float64, which casts to
# -2**63 (the last point read first)
_INT64_FLOAT_MAX = float(np.nextafter(2.0**63, 0))


def _int64(column: np.ndarray) -> np.ndarray:
    """A float64 column of steps or timestamps back as int64 (exact up to 2**53, the bucket
    summaries' precision; clamped at the ends of the range, never wrapped)."""
    return np.clip(column, -(2.0**63), _INT64_FLOAT_MAX).astype(np.int64)


def _reduce(buckets: Buckets, groups: int) -> Downsampled:
    """Merge buckets into ``groups`` step ranges; keep each range's min and max point.

    A bucket's range is placed half by its step and half by the points before it: equal step
    ranges alone would put a whole run in one range when one step is far off (a step counted
    in tokens seen), equal point counts alone a sparse tail of many steps in one range."""
    total = int(buckets.n.sum())
    if not len(buckets):
        empty = np.empty(0, np.int64)
        return Downsampled(empty, empty, np.empty(0), 0)
    s0, s1 = buckets.first[0, 0], buckets.last[-1, 0]
    span = max(float(s1) - float(s0) + 1.0, 1.0)
    by_step = (np.maximum(buckets.first[:, 0], s0).astype(np.float64) - float(s0)) / span
    by_count = (np.cumsum(buckets.n) - buckets.n).astype(np.float64) / max(total, 1)
    position = (by_step + by_count) / 2
    group = np.minimum((position * groups).astype(np.int64), groups - 1)
    chosen = [buckets.first[:1], buckets.last[-1:]]

    def extremes(pts: np.ndarray) -> _Groups:
        nan = np.isnan(pts[:, 2])
        return _summarise(pts[:, 0], pts[:, 1], np.where(nan, 0.0, pts[:, 2]), nan, group)

    lows, highs = extremes(buckets.lo).lo, extremes(buckets.hi).hi
    chosen += [lows[~np.isnan(lows[:, 2])], highs[~np.isnan(highs[:, 2])]]
    # groups holding only NaN points show their first point (a gap in the chart)
    nan_only = np.isnan(lows[:, 2])
    if nan_only.any():
        chosen.append(buckets.first[extremes(buckets.first).first[nan_only]])
    pts = np.concatenate(chosen)
    # one row per distinct point, ordered by (step, timestamp)
    pts = pts[np.lexsort((pts[:, 2], pts[:, 1], pts[:, 0]))]
    same = np.zeros(len(pts), dtype=bool)
    same[1:] = (
        (pts[1:, 0] == pts[:-1, 0])
        & (pts[1:, 1] == pts[:-1, 1])
        & ((pts[1:, 2] == pts[:-1, 2]) | (np.isnan(pts[1:, 2]) & np.isnan(pts[:-1, 2])))
    )
    pts = pts[~same]
    return Downsampled(
        steps=_int64(pts[:, 0]),
        timestamps=_int64(pts[:, 1]),
        values=pts[:, 2],
        total=total,
    )
