"""Latency of the workbench REST API with 100k projects and 1M memberships.

What it measures: p50/p99 latency, over HTTP with keep-alive, of

- list-my-projects  ``GET  /workbench/api/v1/projects?limit=50`` (first page, and the second page
  through ``next_cursor`` as its own line),
- get-project       ``GET  /workbench/api/v1/projects/{slug}`` (a project the caller belongs to),
- create-project    ``POST /workbench/api/v1/projects``,
- add-member        ``POST /workbench/api/v1/projects/{slug}/members`` (a project the caller owns),

on SQLite and on PostgreSQL, against the goals p99 <= 50 ms for reads and <= 100 ms for writes.

How: for each backend it makes a fresh database (an SQLite file in a temporary folder, or a
PostgreSQL database ``wb_bench_<random>`` that is dropped at the end), migrates it with
``Database(url).migrate()``, bulk-loads deterministic data (by default 10,000 users, 500 teams of
20, 100,000 projects each with one owner, 1,000,000 project-member rows in all, owners and 1% team
rows included, so a typical user is a member of ~100 projects), runs ANALYZE (VACUUM ANALYZE on
PostgreSQL), starts a real ``jupyter server`` with the extension on a free loopback port, and sends
a bounded number of requests per operation, one at a time, as a few of the loaded users (each with
its own token): the reads first, on the data as loaded, then the writes. A non-2xx answer is an
error; errors are counted and reported. When list-my-projects misses its goal (or with
``--explain``) the SQL it runs, timed, and the plan of its main query are printed.

The full size takes about 1.5 minutes per backend on 2 cores, half of it loading.

Run (from the repository root; PostgreSQL on 127.0.0.1:5432, or set WORKBENCH_TEST_PG_URL)::

    .venv/bin/python benchmarks/api_bench.py                       # both backends, full size
    .venv/bin/python benchmarks/api_bench.py --backend sqlite
    .venv/bin/python benchmarks/api_bench.py --projects 2000 --memberships 20000 \\
        --users 500 --requests 50                                    # a quick run

Only 127.0.0.1 is contacted. Exit status: 0 when every request succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from traitlets.config import Config

from jupyter_workbench.core import projects as core_projects
from jupyter_workbench.core.context import Ctx, Identity
from jupyter_workbench.db.database import Database
from jupyter_workbench.db.models import Base
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench

API = "/workbench/api/v1"
PG_ADMIN_URL = os.environ.get(
    "WORKBENCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
READ_GOAL_MS = 50.0
WRITE_GOAL_MS = 100.0
SERVER_START_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 60.0
TEAM_SIZE = 20
TEAM_ROW_SHARE = 0.01  # share of project_members rows that are team memberships
MEMBER_ROLES = ("viewer", "editor", "admin")
MEMBER_ROLE_WEIGHTS = (50, 35, 15)
ADJECTIVES = ("amber", "bold", "calm", "deep", "eager", "fast", "golden", "quiet", "swift", "wild")
NOUNS = ("atlas", "bay", "comet", "delta", "fox", "hill", "lake", "orbit", "river", "tiger")


# -- data ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    users: int
    teams: int
    projects: int
    memberships: int
    seed: int

    @property
    def team_rows(self) -> int:
        """Project memberships held by teams (the rest are users, owners included)."""
        return min(int(self.memberships * TEAM_ROW_SHARE), self.projects * self.teams)

    @property
    def direct_rows(self) -> int:
        """Non-owner user memberships."""
        return self.memberships - self.projects - self.team_rows

    def check(self) -> None:
        if self.users < 2 or self.projects < 1 or self.teams < 1:
            raise SystemExit("need at least 2 users, 1 team and 1 project")
        if self.direct_rows < 0:
            raise SystemExit("--memberships must be at least --projects (one owner each)")
        if self.direct_rows / self.projects > (self.users - 1) / 2:
            raise SystemExit("too many memberships per project for this many users")


def username(user_id: int) -> str:
    return f"user{user_id:06d}"


Row = tuple[Any, ...]


@dataclass
class Dataset:
    """The rows to load, generated deterministically from ``Scale.seed``."""

    scale: Scale
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def users(self) -> Iterator[Row]:
        start = self.now - timedelta(days=800)
        for uid in range(1, self.scale.users + 1):
            name = username(uid)
            created = start + timedelta(minutes=uid)
            # As jupyter-server reports them: no e-mail, avatar or colour, not an administrator.
            yield (uid, name, name, None, None, None, False, created, self.now)

    def teams_and_members(self) -> tuple[list[Row], list[Row]]:
        rng = random.Random(self.scale.seed * 7 + 1)
        created = self.now - timedelta(days=700)
        teams: list[Row] = []
        members: list[Row] = []
        size = min(TEAM_SIZE, self.scale.users)
        for tid in range(1, self.scale.teams + 1):
            name = f"team-{tid:04d}"
            teams.append((tid, name, f"Team {tid}", "", "workbench", created, created, 1))
            for i, uid in enumerate(rng.sample(range(1, self.scale.users + 1), size)):
                members.append((tid, uid, "maintainer" if i == 0 else "member", created))
        return teams, members

    def projects_and_members(self) -> tuple[Iterator[Row], Iterator[Row]]:
        """Two row streams; the member stream must be consumed after the project stream."""
        sc = self.scale
        rng = random.Random(sc.seed)
        span = timedelta(days=730) / sc.projects
        start = self.now - timedelta(days=730)
        owners: list[int] = []
        created_at: list[datetime] = []

        def project_rows() -> Iterator[Row]:
            for pid in range(1, sc.projects + 1):
                adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
                created = start + span * pid
                roll = rng.random()
                visibility, team_id = "private", None
                if roll < 0.05:
                    visibility = "public"
                elif roll < 0.10:
                    visibility, team_id = "team", rng.randrange(1, sc.teams + 1)
                archived = created + timedelta(days=1) if rng.random() < 0.03 else None
                deleted = self.now - timedelta(days=1) if rng.random() < 0.01 else None
                owners.append(rng.randrange(1, sc.users + 1))
                created_at.append(created)
                yield (
                    pid,
                    f"{adjective}-{noun}-{pid}",
                    f"{adjective.title()} {noun} {pid}",
                    "",
                    visibility,
                    team_id,
                    created,
                    created + timedelta(hours=rng.randrange(1, 5000)),
                    archived,
                    deleted,
                    1,
                )

        def member_rows() -> Iterator[Row]:
            assert len(owners) == sc.projects, "consume the project rows first"
            base, extra = divmod(sc.direct_rows, sc.projects)
            users = range(1, sc.users + 1)
            row_id = 0
            for index in range(sc.projects):
                pid, owner, created = index + 1, owners[index], created_at[index]
                row_id += 1
                yield (row_id, pid, owner, None, "owner", created, created, None, 1)
                count = base + (1 if index < extra else 0)
                picked = [u for u in rng.sample(users, count + 1) if u != owner][:count]
                roles = rng.choices(MEMBER_ROLES, MEMBER_ROLE_WEIGHTS, k=count)
                for uid, role in zip(picked, roles, strict=True):
                    row_id += 1
                    yield (row_id, pid, uid, None, role, created, created, owner, 1)
            pairs: set[tuple[int, int]] = set()
            for _ in range(sc.team_rows * 100):  # bounded; duplicates are rare at these sizes
                if len(pairs) >= sc.team_rows:
                    break
                pairs.add((rng.randrange(1, sc.projects + 1), rng.randrange(1, sc.teams + 1)))
            for pid, tid in sorted(pairs):
                row_id += 1
                created = created_at[pid - 1]
                role = rng.choices(MEMBER_ROLES, MEMBER_ROLE_WEIGHTS)[0]
                yield (row_id, pid, None, tid, role, created, created, owners[pid - 1], 1)

        return project_rows(), member_rows()


_COLUMN_NAMES = {
    "users": "id username display_name email avatar_url color is_admin created_at last_seen_at",
    "teams": "id name display_name description source created_at updated_at version",
    "team_members": "team_id user_id role created_at",
    "projects": "id slug name description visibility team_id created_at updated_at archived_at "
    "deleted_at version",
    "project_members": "id project_id user_id team_id role created_at updated_at added_by_id "
    "version",
}
# The columns of each loaded table, in the order of the row tuples that ``Dataset`` yields.
COLUMNS = {table: tuple(names.split()) for table, names in _COLUMN_NAMES.items()}


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def insert_rows(conn: Connection, table: str, rows: Iterable[Row]) -> int:
    """COPY on PostgreSQL, batched executemany of a Core insert on SQLite."""
    columns = COLUMNS[table]
    count = 0
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
                count += 1
        return count
    insert = Base.metadata.tables[table].insert()
    for chunk in _chunks(rows, 20_000):
        conn.execute(insert, [dict(zip(columns, row, strict=True)) for row in chunk])
        count += len(chunk)
    return count


def load(url: str, scale: Scale) -> float:
    """Migrate and bulk-load the database at ``url``; returns the seconds it took."""
    started = time.perf_counter()
    db = Database(url)
    db.migrate()
    db.dispose()
    engine = create_engine(url)
    is_pg = engine.dialect.name == "postgresql"
    data = Dataset(scale)
    try:
        with engine.connect() as conn:
            if not is_pg:  # a throwaway file: no journal, no fsync while loading
                conn.exec_driver_sql("PRAGMA journal_mode=OFF")
                conn.exec_driver_sql("PRAGMA synchronous=OFF")
                conn.exec_driver_sql("PRAGMA cache_size=-500000")
                conn.commit()
            insert_rows(conn, "users", data.users())
            teams, team_members = data.teams_and_members()
            insert_rows(conn, "teams", teams)
            insert_rows(conn, "team_members", team_members)
            project_rows, member_rows = data.projects_and_members()
            insert_rows(conn, "projects", project_rows)
            insert_rows(conn, "project_members", member_rows)
            if is_pg:
                for table in ("users", "teams", "projects", "project_members"):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
            conn.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if is_pg:
                # Autovacuum would do this in production; without it the visibility map is
                # empty and index-only scans visit the heap.
                conn.exec_driver_sql("VACUUM (ANALYZE)")
            else:
                conn.exec_driver_sql("ANALYZE")
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    finally:
        engine.dispose()
    return time.perf_counter() - started


def row_counts(engine: Engine) -> dict[str, int]:
    queries = {
        "users": "SELECT count(*) FROM users",
        "teams": "SELECT count(*) FROM teams",
        "team_members": "SELECT count(*) FROM team_members",
        "projects": "SELECT count(*) FROM projects",
        "project_members": "SELECT count(*) FROM project_members",
        "owners": "SELECT count(*) FROM project_members WHERE role = 'owner'",
        "team rows": "SELECT count(*) FROM project_members WHERE team_id IS NOT NULL",
    }
    with engine.connect() as conn:
        return {name: int(conn.exec_driver_sql(sql).scalar_one()) for name, sql in queries.items()}


# -- the work plan: callers and their targets ---------------------------------------------
@dataclass
class Caller:
    username: str
    user_id: int
    token: str
    visible: list[str]  # slugs of live projects the caller is a member of (directly or by team)
    owned: list[tuple[int, str]]  # (id, slug) of live projects the caller owns
    members_of_owned: dict[int, set[int]]


def pick_callers(engine: Engine, count: int, seed: int) -> list[Caller]:
    """``count`` users who own a few live projects, with the projects they can read and own."""
    rng = random.Random(seed + 99)
    with engine.connect() as conn:
        owners = conn.execute(
            text(
                "SELECT m.user_id, count(*) AS n FROM project_members m "
                "JOIN projects p ON p.id = m.project_id "
                "WHERE m.role = 'owner' AND p.deleted_at IS NULL "
                "GROUP BY m.user_id ORDER BY n DESC, m.user_id"
            )
        ).all()
        pool = [int(uid) for uid, n in owners if n >= 3] or [int(uid) for uid, _ in owners]
        chosen = sorted(rng.sample(pool, min(count, len(pool))))
        callers = []
        for uid in chosen:
            visible = conn.execute(
                text(
                    "SELECT p.slug FROM projects p WHERE p.deleted_at IS NULL AND p.id IN ("
                    " SELECT project_id FROM project_members WHERE user_id = :u UNION"
                    " SELECT project_id FROM project_members WHERE team_id IN"
                    "  (SELECT team_id FROM team_members WHERE user_id = :u)) ORDER BY p.id"
                ),
                {"u": uid},
            ).all()
            owned = conn.execute(
                text(
                    "SELECT p.id, p.slug FROM projects p JOIN project_members m "
                    "ON m.project_id = p.id WHERE m.user_id = :u AND m.role = 'owner' "
                    "AND p.deleted_at IS NULL ORDER BY p.id"
                ),
                {"u": uid},
            ).all()
            members: dict[int, set[int]] = {int(pid): set() for pid, _ in owned}
            for pid, member in conn.execute(
                text(
                    "SELECT m.project_id, m.user_id FROM project_members m "
                    "JOIN project_members o ON o.project_id = m.project_id "
                    "WHERE o.user_id = :u AND o.role = 'owner' AND m.user_id IS NOT NULL"
                ),
                {"u": uid},
            ):
                members.setdefault(int(pid), set()).add(int(member))
            callers.append(
                Caller(
                    username=username(uid),
                    user_id=uid,
                    token=f"wb-bench-{secrets.token_hex(16)}",
                    visible=[slug for (slug,) in visible],
                    owned=[(int(pid), str(slug)) for pid, slug in owned],
                    members_of_owned=members,
                )
            )
    return callers


# -- the server ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A ``jupyter server`` subprocess with the workbench extension, on loopback."""

    def __init__(self, url: str, callers: Sequence[Caller], workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        config_dir = workdir / "config"
        for sub in ("config", "data", "runtime", "root", "wbdata"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        config = {
            "ServerApp": {
                "ip": "127.0.0.1",
                "port": self.port,
                "port_retries": 0,
                "open_browser": False,
                "allow_root": True,
                "root_dir": str(workdir / "root"),
                "jpserver_extensions": {"jupyter_workbench": True},
                "identity_provider_class": "jupyter_workbench.identity.WorkbenchIdentityProvider",
            },
            "IdentityProvider": {"token": secrets.token_hex(24)},
            "WorkbenchIdentityProvider": {
                "user_tokens": {c.token: c.username for c in callers},
                "owner_username": "wb-bench-owner",
            },
            "Workbench": {
                "database_url": url,
                "data_dir": str(workdir / "wbdata"),
                "purge_interval_seconds": 0,
                "mlflow_autostart": False,
            },
        }
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(config, indent=1))
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_DATA_DIR": str(workdir / "data"),
            "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        }
        for name in ("DATABASE_URL", "WORKBENCH_DATA_DIR"):
            self.env.pop(name, None)

    def start(self, probe_token: str) -> float:
        """Start the server and wait until ``GET /me`` answers 200; returns the seconds taken."""
        started = time.perf_counter()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.workdir,
                start_new_session=True,  # a Ctrl-C reaches us only; stop() ends the server
            )
        client = Client(self.port, probe_token)
        try:
            while time.perf_counter() - started < SERVER_START_TIMEOUT_S:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited with status {self.proc.returncode}")
                status, _, _ = client.request("GET", f"{API}/me")
                if status == 200:
                    return time.perf_counter() - started
                time.sleep(0.25)
        finally:
            client.close()
        raise RuntimeError(f"the server did not answer in {SERVER_START_TIMEOUT_S:.0f} s")

    def tail(self, lines: int = 40) -> str:
        try:
            text_ = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text_.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Client:
    """One keep-alive HTTP/1.1 connection, authenticated as one user."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes, float]:
        """(status, body, seconds); status 0 when the connection failed."""
        headers = {"Authorization": f"token {self.token}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()  # reconnects on the next request
            return 0, repr(exc).encode(), time.perf_counter() - started
        return response.status, data, time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


# -- measuring ----------------------------------------------------------------------------
@dataclass
class Request:
    client: Client
    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass
class Result:
    operation: str
    kind: str  # 'read' | 'write'
    samples_ms: list[float]
    errors: int
    error_examples: list[str]

    @property
    def goal_ms(self) -> float:
        return READ_GOAL_MS if self.kind == "read" else WRITE_GOAL_MS

    def percentile(self, p: int) -> float:
        data = self.samples_ms
        if not data:
            return float("nan")
        if len(data) == 1:
            return data[0]
        return statistics.quantiles(data, n=100, method="inclusive")[p - 1]

    @property
    def met(self) -> bool:
        return self.errors == 0 and bool(self.samples_ms) and self.percentile(99) <= self.goal_ms


def measure(
    operation: str,
    kind: str,
    make_request: Callable[[int], Request],
    warmup: int,
    count: int,
    check: Callable[[bytes], bool] | None = None,
) -> Result:
    """Send ``warmup`` then ``count`` requests one at a time; only the latter are timed."""
    result = Result(operation, kind, [], 0, [])
    for i in range(warmup + count):
        req = make_request(i)
        status, body, seconds = req.client.request(req.method, req.path, req.body)
        ok = 200 <= status < 300 and (check is None or check(body))
        if not ok:
            result.errors += 1
            if len(result.error_examples) < 3:
                result.error_examples.append(
                    f"{req.method} {req.path} -> {status} {body[:200].decode(errors='replace')}"
                )
        elif i >= warmup:
            result.samples_ms.append(seconds * 1000)
    return result


def _has_items(body: bytes) -> bool:
    try:
        return len(json.loads(body)["items"]) > 0
    except (ValueError, KeyError, TypeError):
        return False


class Workload:
    """The requests of each operation, sent as the callers (each on its own connection)."""

    def __init__(
        self, port: int, callers: Sequence[Caller], warmup: int, count: int, users: int, seed: int
    ) -> None:
        self.callers = callers
        self.clients = [Client(port, c.token) for c in callers]
        self.warmup = warmup
        self.count = count
        self.users = users
        self.rng = random.Random(seed + 7)
        self.run_id = uuid.uuid4().hex[:6]
        self.list_path = f"{API}/projects?limit=50"
        self.cursors: list[str | None] = []  # each caller's cursor to page 2 of its projects

    def _client(self, i: int) -> Client:
        return self.clients[i % len(self.clients)]

    def reads(self) -> list[Result]:
        results = [
            measure(
                "list-my-projects",
                "read",
                lambda i: Request(self._client(i), "GET", self.list_path),
                self.warmup,
                self.count,
                check=_has_items,
            )
        ]
        for client in self.clients:
            status, body, _ = client.request("GET", self.list_path)
            self.cursors.append(json.loads(body)["next_cursor"] if status == 200 else None)
        paged = [i for i, cursor in enumerate(self.cursors) if cursor]
        if paged:
            results.append(
                measure(
                    "list-my-projects p2",
                    "read",
                    lambda i: Request(
                        self.clients[paged[i % len(paged)]],
                        "GET",
                        f"{self.list_path}&cursor={self.cursors[paged[i % len(paged)]]}",
                    ),
                    self.warmup,
                    self.count,
                )
            )
        total, n = self.warmup + self.count, len(self.callers)
        slugs = [self.rng.choice(self.callers[i % n].visible) for i in range(total)]
        results.append(
            measure(
                "get-project",
                "read",
                lambda i: Request(self._client(i), "GET", f"{API}/projects/{slugs[i]}"),
                self.warmup,
                self.count,
            )
        )
        return results

    def writes(self) -> list[Result]:
        results = [
            measure(
                "create-project",
                "write",
                lambda i: Request(
                    self._client(i), "POST", f"{API}/projects", {"name": f"Bench {self.run_id} {i}"}
                ),
                self.warmup,
                self.count,
            )
        ]
        adds = plan_member_adds(self.callers, self.warmup + self.count, self.users, self.rng)
        results.append(
            measure(
                "add-member",
                "write",
                lambda i: Request(
                    self.clients[adds[i][0]],
                    "POST",
                    f"{API}/projects/{adds[i][1]}/members",
                    {"user": adds[i][2], "role": "viewer"},
                ),
                self.warmup,
                self.count,
            )
        )
        return results

    def close(self) -> None:
        for client in self.clients:
            client.close()


def plan_member_adds(
    callers: Sequence[Caller], total: int, users: int, rng: random.Random
) -> list[tuple[int, str, str]]:
    """(caller index, slug of a project it owns, a user not yet a member) for each request."""
    plan: list[tuple[int, str, str]] = []
    candidates = list(range(1, users + 1))
    cursor = {i: rng.randrange(len(candidates)) for i in range(len(callers))}
    for i in range(total):
        index = i % len(callers)
        caller = callers[index]
        if not caller.owned:
            raise RuntimeError(f"{caller.username} owns no project to add members to")
        pid, slug = caller.owned[(i // len(callers)) % len(caller.owned)]
        members = caller.members_of_owned.setdefault(pid, set())
        for _ in range(len(candidates)):
            uid = candidates[cursor[index] % len(candidates)]
            cursor[index] += 1
            if uid not in members:
                break
        else:
            raise RuntimeError(f"no user left to add to project {slug}")
        members.add(uid)
        plan.append((index, slug, username(uid)))
    return plan


# -- reporting ----------------------------------------------------------------------------
def print_table(backend: str, results: Sequence[Result], note: str = "") -> None:
    print(f"\n  {backend}: latency over HTTP, one request at a time{note}")
    header = (
        f"  {'operation':<22}{'n':>6}{'errors':>8}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'goal (p99)':>14}  result"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in results:
        verdict = "met" if r.met else ("ERRORS" if r.errors else "MISSED")
        print(
            f"  {r.operation:<22}{len(r.samples_ms):>6}{r.errors:>8}"
            f"{r.percentile(50):>10.2f}{r.percentile(99):>10.2f}"
            f"{'<= ' + format(r.goal_ms, '.0f') + ' ms':>14}  {verdict}"
        )
    for r in results:
        for example in r.error_examples:
            print(f"  error ({r.operation}): {example}")


def explain_list_query(url: str, workdir: Path, user: str, cursor: str | None) -> list[str]:
    """Run list_projects as ``user`` in-process; the timings of its SQL and its main query's plan.

    SQLite shows EXPLAIN QUERY PLAN (and the query's own time); PostgreSQL EXPLAIN ANALYZE.
    """
    settings = Workbench(
        config=Config({"Workbench": {"database_url": url, "data_dir": str(workdir / "explain")}})
    )
    service = WorkbenchService(settings, migrate=False)
    captured: list[tuple[str, Any, float]] = []
    starts: list[float] = []

    def before(*_: Any) -> None:
        starts.append(time.perf_counter())

    def after(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters, (time.perf_counter() - starts.pop()) * 1000))

    def work(s: Session, ctx: Ctx) -> None:
        captured.clear()  # only this function's statements, not the unit of work's own
        page = core_projects.list_projects(s, ctx, limit=50, cursor=cursor)
        core_projects.projects_json(s, page)

    # Listen before any connection exists: connections made earlier would not report.
    event.listen(service.db.engine, "before_cursor_execute", before)
    event.listen(service.db.engine, "after_cursor_execute", after)
    out = [f"list-my-projects{' page 2' if cursor else ''} as {user}, in-process:"]
    try:
        identity = Identity(username=user, display_name=user)
        for _ in range(2):  # the first run warms the caches; the second is the one shown
            service.call(identity, work, write=False)
        statements = list(captured)
        out.append("  SQL statements of one call (ms):")
        out += [f"    {ms:7.2f}  {' '.join(sql.split())[:105]}" for sql, _, ms in statements]
        statement, params, _ = next(
            (c for c in statements if "FROM projects" in c[0] and "LIMIT" in c[0]), statements[0]
        )
        with service.db.engine.connect() as conn:
            if service.db.is_sqlite:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
                depth: dict[int, int] = {0: -1}
                lines = []
                for node, parent, _unused, detail in plan:
                    depth[node] = depth.get(parent, -1) + 1
                    lines.append("  " * depth[node] + str(detail))
                timings = []
                for _ in range(5):
                    started = time.perf_counter()
                    conn.exec_driver_sql(statement, params).all()
                    timings.append((time.perf_counter() - started) * 1000)
                lines.append(f"(query alone: median {statistics.median(timings):.2f} ms of 5 runs)")
            else:
                sql = f"EXPLAIN (ANALYZE, BUFFERS) {statement}"
                lines = [row[0] for row in conn.exec_driver_sql(sql, params).all()]
    finally:
        event.remove(service.db.engine, "before_cursor_execute", before)
        event.remove(service.db.engine, "after_cursor_execute", after)
        service.close()
    out.append("  main query: " + " ".join(statement.split()))
    out.append(f"  parameters: {params}")
    out.append("  plan:")
    out += [f"    {line}" for line in lines]
    return out


# -- one backend --------------------------------------------------------------------------
def admin_execute(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def run_backend(backend: str, args: argparse.Namespace, scale: Scale) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="wb_bench_") as tmp:
        workdir = Path(tmp)
        pg_name = None
        if backend == "sqlite":
            url = f"sqlite:///{workdir / 'workbench.db'}"
        else:
            pg_name = f"wb_bench_{uuid.uuid4().hex[:10]}"
            admin_execute(f'CREATE DATABASE "{pg_name}"')
            url = make_url(PG_ADMIN_URL).set(database=pg_name).render_as_string(hide_password=False)
        server: Server | None = None
        try:
            print(f"\n== {backend} ==")
            print(f"  loading {scale.projects:,} projects, {scale.memberships:,} memberships ...")
            seconds = load(url, scale)
            engine = create_engine(url)
            try:
                counts = row_counts(engine)
                callers = pick_callers(engine, args.callers, scale.seed)
            finally:
                engine.dispose()
            print(f"  loaded in {seconds:.1f} s (schema, rows, ANALYZE): " + _counts_line(counts))
            direct = (counts["project_members"] - counts["team rows"]) / counts["users"]
            print(
                f"  user memberships per user: {direct:.0f} on average; callers (live projects "
                "they are a member of / own): "
                + ", ".join(f"{c.username} {len(c.visible)}/{len(c.owned)}" for c in callers)
            )
            server = Server(url, callers, workdir)
            started = server.start(callers[0].token)
            print(f"  server up on 127.0.0.1:{server.port} in {started:.1f} s")
            workload = Workload(
                server.port, callers, args.warmup, args.requests, counts["users"], scale.seed
            )
            load_before = os.getloadavg()[0]
            try:
                # Reads first, on the data as loaded; the plans are taken before any write.
                results = workload.reads()
                listing = [r for r in results if r.operation.startswith("list-my-projects")]
                plans: list[str] = []
                if args.explain or any(not r.met for r in listing):
                    plans += explain_list_query(url, workdir, callers[0].username, None)
                    cursor = workload.cursors[0]
                    if cursor and (args.explain or any(not r.met for r in listing[1:])):
                        plans += explain_list_query(url, workdir, callers[0].username, cursor)
                results += workload.writes()
            finally:
                workload.close()
            # Other work on the machine shows in the tails: say how busy it was.
            note = (
                f"; 1-min load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}"
                f" on {os.cpu_count()} CPUs"
            )
            print_table(backend, results, note)
            if plans:
                print()
                print("\n".join(f"  {line}" for line in plans))
            return results
        except Exception:
            if server is not None and server.tail():
                print(f"  server log (last lines):\n{server.tail()}", file=sys.stderr)
            raise
        finally:
            if server is not None:
                server.stop()
            if pg_name is not None:
                admin_execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {value:,}" for name, value in counts.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--teams", type=int, help=f"default: users / {TEAM_SIZE}")
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument(
        "--memberships", type=int, default=1_000_000, help="project_members rows, owners included"
    )
    parser.add_argument("--requests", type=int, default=300, help="timed requests per operation")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per operation")
    parser.add_argument("--callers", type=int, default=5, help="users the requests act as")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--explain", action="store_true", help="print the list query's plan even if it met"
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0 or args.callers < 1:
        parser.error("--requests and --callers must be positive, --warmup not negative")
    scale = Scale(
        users=args.users,
        teams=args.teams if args.teams is not None else max(1, args.users // TEAM_SIZE),
        projects=args.projects,
        memberships=args.memberships,
        seed=args.seed,
    )
    scale.check()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and make_url(PG_ADMIN_URL).host not in LOOPBACK:
        parser.error(f"PostgreSQL must be on loopback (got {make_url(PG_ADMIN_URL).host})")
    print(
        f"workbench API benchmark: {scale.users:,} users, {scale.teams:,} teams, "
        f"{scale.projects:,} projects, {scale.memberships:,} memberships; "
        f"{args.requests} timed requests per operation after {args.warmup} warm-up, "
        f"{args.callers} callers, seed {scale.seed}"
    )
    all_results: dict[str, list[Result]] = {}
    for backend in backends:
        all_results[backend] = run_backend(backend, args, scale)
    print("\nsummary (p99 against goal):")
    for backend, results in all_results.items():
        for r in results:
            print(
                f"  {backend:<11}{r.operation:<22} p99 {r.percentile(99):8.2f} ms"
                f"  goal <= {r.goal_ms:.0f} ms  {'met' if r.met else 'MISSED'}"
                + (f"  ({r.errors} errors)" if r.errors else "")
            )
    errors = sum(r.errors for results in all_results.values() for r in results)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
