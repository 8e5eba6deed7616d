"""Experiment tracking: durable logging throughput and history reads, ours beside stock MLflow.

What it measures, in one run per backend (SQLite, or PostgreSQL with ``--backend``), everything
against the same MLflow tracking server, started by the benchmark with ``MlflowSupervisor`` (one
uvicorn worker on a unix socket, its store on that backend), and one real ``jupyter server`` with
the workbench in front of it (``Workbench.mlflow_url=unix:<socket>``, its own database on the
same backend):

1. Durable logging throughput, points/s (each contender's call returns once the points are
   stored):

   a. the stock ``mlflow`` client, ``MlflowClient.log_metric`` (synchronous) in a loop;
   b. the stock client, ``MlflowClient.log_batch`` with ``--batch-size`` metrics per call;
   c. ours: ``Run.log`` of one point per call (``jupyter_workbench.client``), then ``Run.end()``;
      points/s = points / (the loop + ``end()``), since the points are stored when ``end()``
      returns.

   a and b go through the authorizing proxy (tracking URI
   ``http://127.0.0.1:<port>/workbench/mlflow/p/<project>`` with ``MLFLOW_TRACKING_TOKEN``),
   and again direct to the MLflow server: its unix socket is reached through a small TCP ->
   unix-socket forwarder (a child process of this script; it added ~0.15 ms to a request
   here), so that the proxy's own cost shows. Ours goes through the workbench's batch
   endpoint, which writes MLflow's tables directly.
   Goals: ours >= 2x the stock ``log_batch`` throughput (through the proxy; the ratio to direct
   is shown too); one ``run.log()`` call in the training loop <= 10 us, as the mean of the loop
   alone (without ``end()``; the loop's own dict and division included); the p99 of per-call
   times, taken for every 10th call of the same loop, is shown beside it.
2. History reads, the median of ``--repeat`` timed reads after one untimed one:

   - stock ``MlflowClient.get_metric_history`` of a ``--export-points`` (100k) metric, through
     the proxy and direct (the client pages it, 25,000 points a request; the time includes
     turning the answer into ``Metric`` objects);
   - ours, downsampled: ``GET runs/{id}/metrics/{key}/history?max_points=1000`` of a
     ``--history-points`` (1M) metric (the time includes decoding the JSON). Goal <= 200 ms;
   - ours, full export of the same 100k points as the stock read: ``GET runs/export?run_ids=..
     &keys=..&format=csv`` (the whole body read). Goal >= 10x faster than ``get_metric_history``
     through the proxy (the ratio to direct is shown too). The Parquet export is shown beside it.

   The two metrics are logged first, into one run, with our batch endpoint (chunks of
   ``--load-chunk`` points); that load's rate is printed too.

Before ours is timed, one untimed 1-point batch request warms our fast path up (the stock
clients get their warm-up calls too); how long that first request took is printed. When a goal
is missed (or with ``--breakdown``), the stages of our batch write and of our two reads are then
timed in this process, on the same MLflow store, and printed: where our time goes.

The issue's reference figures for the stock client, measured on this machine before, are printed
in the header (~360 points/s with log_metric, ~13k points/s with log_batch); the verdicts compare
with the figures measured in the same run. The 1-minute load average is printed: other work on
the machine slows every contender, the stock client's one-request-at-a-time loops most.

The default size took about 6.5 minutes per backend on 2 cores that other work kept busy (load
average ~4), most of it the stock log_metric loops (2,000 points, at the 20-40 points/s they
reached there) and loading the 1.1M points; ``--quick`` logs 20,000 points with ours, 100 with
log_metric, 10 log_batch calls, reads a 100k-point metric downsampled and a 20k-point metric in
full (about a minute; 1.5 minutes on those busy cores).

Run (from the repository root; PostgreSQL on 127.0.0.1:5432, or set WORKBENCH_TEST_PG_URL)::

    .venv/bin/python benchmarks/tracking_bench.py                          # SQLite, full size
    .venv/bin/python benchmarks/tracking_bench.py --backend postgresql     # or: both
    .venv/bin/python benchmarks/tracking_bench.py --quick                  # about a minute
    .venv/bin/python benchmarks/tracking_bench.py --points 20000 --history-points 100000 \\
        --export-points 20000 --log-metric-points 100 --batch-calls 10     # the same, spelled out
    .venv/bin/python benchmarks/tracking_bench.py --quick --breakdown      # + where ours spends

Only 127.0.0.1 (and unix sockets in a temporary folder) is contacted. The temporary folder, the
servers and the PostgreSQL databases (``wb_tbench_<random>`` and ``..._mlflow``) are removed at
the end. Exit status: 0 when every step worked (goals met or not), 1 when one failed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from jupyter_workbench.client import Client as WorkbenchClient
from jupyter_workbench.tracking.supervisor import MlflowSupervisor

PG_ADMIN_URL = os.environ.get(
    "WORKBENCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
API = "/workbench/api/v1"
PROJECT = "bench"
USERNAME = "bench-user"
SERVER_START_TIMEOUT_S = 180.0
MLFLOW_START_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 600.0
SAMPLE_EVERY = 10  # time every 10th run.log() call on its own (the p99 sample)

GOAL_VS_BATCH = 2.0  # ours >= 2x stock log_batch points/s
GOAL_LOG_CALL_US = 10.0  # mean cost of one run.log() call
GOAL_DOWNSAMPLED_MS = 200.0  # downsampled read of the big metric
GOAL_EXPORT_SPEEDUP = 10.0  # full export vs get_metric_history
REFERENCE_LOG_METRIC = 360.0  # the figures for the stock client on this machine
REFERENCE_LOG_BATCH = 13_000.0

QUICK = {
    "points": 20_000,
    "history_points": 100_000,
    "export_points": 20_000,
    "log_metric_points": 100,
    "batch_calls": 10,
}


# -- the TCP -> unix socket forwarder (a child process) ------------------------------------
def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 18):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def forward_main(unix_path: str) -> None:
    """Accept on a free loopback port (printed first), relay each connection to ``unix_path``.

    Runs until its stdin closes (the benchmark ended, however it ended)."""
    listener = socket.create_server(("127.0.0.1", 0))
    print(f"PORT {listener.getsockname()[1]}", flush=True)

    def watch_parent() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(unix_path)
        except OSError:
            conn.close()
            upstream.close()
            continue
        threading.Thread(target=_pump, args=(conn, upstream), daemon=True).start()
        threading.Thread(target=_pump, args=(upstream, conn), daemon=True).start()


class Forwarder:
    """This script run with ``--forward SOCKET``: MLflow's unix socket on a loopback port."""

    def __init__(self, unix_path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--forward", str(unix_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        if len(first) != 2 or first[0] != "PORT":
            self.stop()
            raise RuntimeError(f"the forwarder did not start: {first}")
        self.port = int(first[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


# -- the workbench server ------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkbenchServer:
    """A ``jupyter server`` subprocess with the workbench, fronting the given MLflow server."""

    def __init__(self, workdir: Path, database_url: str, mlflow: MlflowSupervisor) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.token = f"wb-tbench-{secrets.token_hex(16)}"
        self.workdir = workdir
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
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
                "user_tokens": {self.token: USERNAME},
                "owner_username": "wb-tbench-owner",
            },
            "Workbench": {
                "database_url": database_url,
                "data_dir": str(workdir / "wbdata"),
                "purge_interval_seconds": 0,
                "mlflow_url": f"unix:{mlflow.socket}",
                "mlflow_backend_store_uri": mlflow.backend_store_uri,
                "mlflow_autostart": False,
            },
        }
        config_dir = workdir / "config"
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(config, indent=1))
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_DATA_DIR": str(workdir / "data"),
            "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        }
        for name in ("DATABASE_URL", "WORKBENCH_DATA_DIR", "WORKBENCH_MLFLOW_URL"):
            self.env.pop(name, None)

    def start(self) -> float:
        """Start the server, wait until ``GET /me`` answers 200; returns the seconds taken."""
        started = time.perf_counter()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.workdir,
                start_new_session=True,
            )
        headers = {"Authorization": f"token {self.token}"}
        with httpx.Client(headers=headers, timeout=5) as http:
            while time.perf_counter() - started < SERVER_START_TIMEOUT_S:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited with status {self.proc.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{self.root}{API}/me").status_code == 200:
                        return time.perf_counter() - started
                time.sleep(0.25)
        raise RuntimeError(f"the server did not answer in {SERVER_START_TIMEOUT_S:.0f} s")

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# -- results -------------------------------------------------------------------------------
@dataclass
class Throughput:
    label: str
    points: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Read:
    label: str
    points: str
    samples_s: list[float]
    note: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_s) * 1000


@dataclass
class Goal:
    label: str
    value: str
    goal: str
    met: bool


@dataclass
class BackendResult:
    backend: str
    logging: list[Throughput] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    breakdown: list[str] = field(default_factory=list)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def percentile(values: Sequence[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def step(message: str) -> Callable[[], None]:
    print(f"  # {message} ...", end="", flush=True)
    started = time.perf_counter()

    def done() -> None:
        print(f" {time.perf_counter() - started:.1f} s", flush=True)

    return done


# -- the stock client ----------------------------------------------------------------------
def stock_client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def stock_log_metric(client: Any, experiment_id: str, points: int, label: str) -> Throughput:
    run_id = client.create_run(experiment_id, run_name=f"log_metric {label}").info.run_id
    for i in range(10):  # warm-up: connections, the proxy's run lookup
        client.log_metric(run_id, "warmup", float(i), step=i, synchronous=True)
    started = time.perf_counter()
    for i in range(points):
        client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i, synchronous=True)
    seconds = time.perf_counter() - started
    client.set_terminated(run_id)
    return Throughput(f"stock log_metric, {label}", points, seconds)


def stock_log_batch(
    client: Any, experiment_id: str, calls: int, size: int, label: str
) -> Throughput:
    from mlflow.entities import Metric

    run_id = client.create_run(experiment_id, run_name=f"log_batch {label}").info.run_id
    stamp = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric("warmup", 0.0, stamp, 0)], synchronous=True)
    started = time.perf_counter()
    for call in range(calls):
        base = call * size
        metrics = [
            Metric("loss", 1.0 / (base + i + 1), stamp + base + i, base + i) for i in range(size)
        ]
        client.log_batch(run_id, metrics=metrics, synchronous=True)
    seconds = time.perf_counter() - started
    client.set_terminated(run_id)
    return Throughput(f"stock log_batch x{size:,}, {label}", calls * size, seconds)


# -- ours ----------------------------------------------------------------------------------
@dataclass
class OursLogging:
    throughput: Throughput
    loop_s: float
    end_s: float
    per_call_ns: list[int]
    stored: int


def ours_log(wb: WorkbenchClient, points: int) -> OursLogging:
    run = wb.run(PROJECT, "ours", name="ours run.log")
    log = run.log
    clock = time.perf_counter_ns
    samples: list[int] = []
    started = time.perf_counter()
    for i in range(points):
        if i % SAMPLE_EVERY == 0:
            t0 = clock()
            log({"loss": 1.0 / (i + 1)}, step=i)
            samples.append(clock() - t0)
        else:
            log({"loss": 1.0 / (i + 1)}, step=i)
    loop_end = time.perf_counter()
    run.end()
    ended = time.perf_counter()
    stored = int(wb.history(run.run_id, "loss", max_points=2)["total"])
    return OursLogging(
        Throughput("ours run.log + end()", points, ended - started),
        loop_end - started,
        ended - loop_end,
        samples,
        stored,
    )


def load_points(wb: WorkbenchClient, run_id: str, key: str, count: int, chunk: int) -> float:
    """Log ``count`` points of ``key`` with our batch endpoint; returns the seconds taken."""
    stamp = int(time.time() * 1000)
    started = time.perf_counter()
    for start in range(0, count, chunk):
        end = min(count, start + chunk)
        metrics = [
            {"key": key, "value": (i % 1000) / 1000 + 1.0 / (i + 1), "step": i, "timestamp": stamp}
            for i in range(start, end)
        ]
        wb.post(f"runs/{run_id}/batch", {"metrics": metrics})
    return time.perf_counter() - started


def timed(repeat: int, fn: Callable[[], Any], check: Callable[[Any], None]) -> list[float]:
    """One untimed call (checked), then ``repeat`` timed ones (each checked, after its timing)."""
    check(fn())
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
        check(result)
    return samples


def expect(what: str, got: Any, wanted: Any) -> None:
    if got != wanted:
        raise RuntimeError(f"{what}: got {got!r}, expected {wanted!r}")


# -- one backend ---------------------------------------------------------------------------
def admin_execute(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


@contextlib.contextmanager
def databases(backend: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """(workbench database URL, MLflow store URI) on ``backend``; PostgreSQL ones are dropped."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'workbench.db'}", f"sqlite:///{workdir / 'mlflow.db'}"
        return
    base = f"wb_tbench_{uuid.uuid4().hex[:10]}"
    names = [base, f"{base}_mlflow"]
    urls = [
        make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        for name in names
    ]
    created: list[str] = []
    try:
        for name in names:
            admin_execute(f'CREATE DATABASE "{name}"')
            created.append(name)
        yield urls[0], urls[1]
    finally:
        for name in created:
            admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_backend(backend: str, args: argparse.Namespace) -> BackendResult:
    result = BackendResult(backend)
    print(f"\n== {backend} ==", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="wb_tbench_") as tmp,
        databases(backend, Path(tmp)) as (wb_url, mlflow_uri),
    ):
        workdir = Path(tmp)
        mlflow = MlflowSupervisor(workdir / "mlflow", backend_store_uri=mlflow_uri)
        server = WorkbenchServer(workdir / "server", wb_url, mlflow)
        forwarder: Forwarder | None = None
        try:
            done = step("starting the MLflow server (migrating its store)")
            mlflow.start()
            if not mlflow.wait_ready(MLFLOW_START_TIMEOUT_S):
                log = (mlflow.root / "mlflow-server.log").read_text(errors="replace")
                raise RuntimeError(f"MLflow did not start:\n{log[-3000:]}")
            done()
            done = step("starting jupyter server with the workbench")
            server.start()
            done()
            forwarder = Forwarder(mlflow.socket)
            measure_backend(result, args, server, forwarder, mlflow.backend_store_uri)
        except Exception:
            if server.tail():
                print(f"\n  server log (last lines):\n{server.tail()}", file=sys.stderr)
            raise
        finally:
            server.stop()
            if forwarder is not None:
                forwarder.stop()
            mlflow.stop()
    print_backend(result, args)
    return result


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure_backend(
    result: BackendResult,
    args: argparse.Namespace,
    server: WorkbenchServer,
    forwarder: Forwarder,
    store_uri: str,
) -> None:
    proxy_uri = f"{server.root}/workbench/mlflow/p/{PROJECT}"
    direct_uri = f"http://127.0.0.1:{forwarder.port}"
    wb = WorkbenchClient(server.root, server.token, timeout=REQUEST_TIMEOUT_S)
    # The token is the proxy's (MLflow itself ignores it); no "View run" lines on stdout.
    env = {"MLFLOW_TRACKING_TOKEN": server.token, "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "1"}
    with environment(**env), contextlib.closing(wb):
        wb.post("projects", {"name": "Tracking bench", "slug": PROJECT})
        proxy, direct = stock_client(proxy_uri), stock_client(direct_uri)
        experiment_id = str(proxy.create_experiment("stock"))
        load_before = os.getloadavg()[0]

        # 1. logging
        n = args.log_metric_points
        done = step(f"stock log_metric, {n:,} points, through the proxy and direct")
        result.logging.append(stock_log_metric(proxy, experiment_id, n, "through the proxy"))
        result.logging.append(stock_log_metric(direct, experiment_id, n, "direct"))
        done()
        calls, size = args.batch_calls, args.batch_size
        done = step(f"stock log_batch, {calls} calls of {size:,}, through the proxy and direct")
        batch_proxy = stock_log_batch(proxy, experiment_id, calls, size, "through the proxy")
        batch_direct = stock_log_batch(direct, experiment_id, calls, size, "direct")
        result.logging += [batch_proxy, batch_direct]
        done()
        # Our warm-up, as the stock clients had theirs: the first batch request opens the
        # fast path (TrackingStore, MLflow's table models); its time is reported on its own.
        history = wb.run(PROJECT, "history", name="history")
        history_run = history.run_id
        started = time.perf_counter()
        wb.post(f"runs/{history_run}/batch", {"metrics": [{"key": "warmup", "value": 0}]})
        cold_s = time.perf_counter() - started
        result.notes.append(
            f"our first batch request after the server started (1 point, untimed warm-up) "
            f"took {cold_s * 1000:,.0f} ms"
        )
        done = step(f"ours, run.log of {args.points:,} points, then end()")
        ours = ours_log(wb, args.points)
        done()
        expect("points stored by ours", ours.stored, args.points)
        result.logging.append(ours.throughput)
        logging_goals(result, args, ours, batch_proxy, batch_direct)

        # 2. history reads
        done = step(
            f"loading {args.history_points:,} + {args.export_points:,} points with our "
            f"batch endpoint (chunks of {args.load_chunk:,})"
        )
        load_s = load_points(wb, history_run, "big", args.history_points, args.load_chunk)
        load_s += load_points(wb, history_run, "full", args.export_points, args.load_chunk)
        done()
        loaded = args.history_points + args.export_points
        result.notes.append(
            f"the history run was loaded through our batch endpoint at {loaded / load_s:,.0f} "
            f"points/s ({loaded:,} points in chunks of {args.load_chunk:,}, {load_s:.1f} s)"
        )
        done = step(f"history reads, {args.repeat} timed each")
        result.reads += history_reads(wb, proxy, direct, history_run, args)
        done()
        result.notes.append(
            f"1-min load average {load_before:.2f} -> {os.getloadavg()[0]:.2f} on "
            f"{os.cpu_count()} CPUs (other work on the machine slows every contender)"
        )
        read_goals(result, args)
        if args.breakdown or not all(g.met for g in result.goals):
            done = step("timing the stages of our paths in-process (goal missed or --breakdown)")
            result.breakdown = breakdown(store_uri, history_run, args)
            done()
        history.end()  # not left for the exit hook, after the client is closed


def logging_goals(
    result: BackendResult,
    args: argparse.Namespace,
    ours: OursLogging,
    batch_proxy: Throughput,
    batch_direct: Throughput,
) -> None:
    ours.throughput.note = f"loop {ours.loop_s:.2f} s + end() {ours.end_s:.2f} s"
    for anchor in (batch_proxy, batch_direct):
        ratio = ours.throughput.rate / anchor.rate
        result.goals.append(
            Goal(
                f"ours / {anchor.label.removeprefix('stock ')}",
                f"{ratio:.2f}x",
                f">= {GOAL_VS_BATCH:.0f}x",
                ratio >= GOAL_VS_BATCH,
            )
        )
    per_call_us = [ns / 1000 for ns in ours.per_call_ns]
    mean_us = ours.loop_s / args.points * 1e6
    p50_us, p99_us = percentile(per_call_us, 50), percentile(per_call_us, 99)
    result.goals.append(
        Goal(
            f"run.log() mean over {args.points:,} calls",
            f"{mean_us:.2f} us",
            f"<= {GOAL_LOG_CALL_US:.0f} us",
            mean_us <= GOAL_LOG_CALL_US,
        )
    )
    result.goals.append(
        Goal(
            f"run.log() p99 of {len(per_call_us):,} timed calls (p50 {p50_us:.2f} us)",
            f"{p99_us:.2f} us",
            f"<= {GOAL_LOG_CALL_US:.0f} us",
            p99_us <= GOAL_LOG_CALL_US,
        )
    )


def read_goals(result: BackendResult, args: argparse.Namespace) -> None:
    stock_proxy, stock_direct, downsampled, export_csv = result.reads[:4]
    result.goals.append(
        Goal(
            f"downsampled read of {args.history_points:,} points",
            f"{downsampled.median_ms:.1f} ms",
            f"<= {GOAL_DOWNSAMPLED_MS:.0f} ms",
            downsampled.median_ms <= GOAL_DOWNSAMPLED_MS,
        )
    )
    for anchor, where in ((stock_proxy, "through the proxy"), (stock_direct, "direct")):
        speedup = anchor.median_ms / export_csv.median_ms
        result.goals.append(
            Goal(
                f"export csv vs get_metric_history {where}",
                f"{speedup:.1f}x faster",
                f">= {GOAL_EXPORT_SPEEDUP:.0f}x",
                speedup >= GOAL_EXPORT_SPEEDUP,
            )
        )


def history_reads(
    wb: WorkbenchClient, proxy: Any, direct: Any, run_id: str, args: argparse.Namespace
) -> list[Read]:
    full, big = args.export_points, args.history_points
    reads: list[Read] = []

    def check_history(got: Any) -> None:
        expect("get_metric_history points", len(got), full)

    for client, where in ((proxy, "through the proxy"), (direct, "direct")):

        def read(c: Any = client) -> Any:
            return c.get_metric_history(run_id, "full")

        samples = timed(args.repeat, read, check_history)
        reads.append(Read(f"stock get_metric_history, {where}", f"{full:,}", samples))

    http = wb.http

    def downsampled() -> Any:
        response = http.get(
            wb.api_url(f"runs/{run_id}/metrics/big/history"), params={"max_points": 1000}
        )
        response.raise_for_status()
        return response.json()

    def check_downsampled(got: Any) -> None:
        expect("downsampled total", got["total"], big)
        if len(got["values"]) > 1000:
            raise RuntimeError(f"downsampled read returned {len(got['values'])} points")

    samples = timed(args.repeat, downsampled, check_downsampled)
    reads.append(Read("ours downsampled, max_points=1000", f"{big:,} -> 1,000", samples))

    def export(fmt: str) -> bytes:
        response = http.get(
            wb.api_url("runs/export"), params={"run_ids": run_id, "keys": "full", "format": fmt}
        )
        response.raise_for_status()
        return response.content

    def check_csv(body: bytes) -> None:
        expect("exported CSV rows (header included)", body.count(b"\n"), full + 1)

    samples = timed(args.repeat, lambda: export("csv"), check_csv)
    size = len(export("csv"))
    reads.append(Read("ours export csv", f"{full:,}", samples, f"{size / 1e6:.1f} MB"))

    def check_parquet(body: bytes) -> None:
        if body[:4] != b"PAR1":
            raise RuntimeError("the parquet export is not a Parquet file")

    samples = timed(args.repeat, lambda: export("parquet"), check_parquet)
    size = len(export("parquet"))
    reads.append(
        Read("ours export parquet (no goal)", f"{full:,}", samples, f"{size / 1e6:.1f} MB")
    )
    return reads


# -- where our time goes ---------------------------------------------------------------------
def breakdown(store_uri: str, run_id: str, args: argparse.Namespace) -> list[str]:
    """The stages of our batch write and history reads, timed in this process on the same
    MLflow store (no HTTP, no event loop): the median of ``--repeat`` runs of each."""
    try:
        from jupyter_workbench.client import BATCH_POINTS
        from jupyter_workbench.handlers import runs as runs_handlers
        from jupyter_workbench.handlers.base import _validate
        from jupyter_workbench.tracking.downsample import minmax_indices
        from jupyter_workbench.tracking.store import Point, TrackingStore
    except ImportError as exc:  # the internals moved: say so, do not fail the benchmark
        return [f"(breakdown unavailable: {exc})"]
    store = TrackingStore(store_uri)
    stages: dict[str, list[float]] = {}

    def clock(name: str, started: float) -> float:
        now = time.perf_counter()
        stages.setdefault(name, []).append((now - started) * 1000)
        return now

    try:
        n, stamp = BATCH_POINTS, int(time.time() * 1000)
        for rep in range(args.repeat):
            t = time.perf_counter()
            body = {
                "metrics": [
                    {"key": "breakdown", "value": 1.0 / (i + 1), "step": rep * n + i}
                    for i in range(n)
                ]
            }
            raw = json.dumps(body).encode()
            t = clock("client: json.dumps of the body", t)
            data = json.loads(raw)
            t = clock("server: json.loads", t)
            _validate(runs_handlers.BATCH, data)
            t = clock("server: schema validation (handlers/base.py _validate)", t)
            points = [
                Point(
                    m["key"],
                    runs_handlers._number(m["value"], m["key"]),
                    int(m.get("timestamp", stamp)),
                    int(m.get("step", 0)),
                )
                for m in data["metrics"]
            ]
            t = clock("server: Point + _number (handlers/runs.py)", t)
            store.log_batch(run_id, points)
            clock("server: TrackingStore.log_batch (tracking/store.py)", t)
        batch_ms = {name: statistics.median(v) for name, v in stages.items()}
        stages.clear()

        sql = (
            "SELECT step, timestamp, value, is_nan FROM metrics "
            "WHERE run_uuid = {p} AND key = {p} ORDER BY step, timestamp"
        )
        for _ in range(args.repeat):
            t = time.perf_counter()
            rolled = store.downsampled(run_id, "big", 1000)
            t = clock("TrackingStore.downsampled from the rollups (tracking/rollups.py)", t)
            if rolled is not None:
                json.dumps(
                    {
                        "steps": rolled.steps.tolist(),
                        "timestamps": rolled.timestamps.tolist(),
                        "values": [float(v) for v in rolled.values],
                    }
                )
                t = clock("JSON of the reply", t)
            steps, stamps, values = store.history(run_id, "big")
            t = clock("(the exact read it replaces: TrackingStore.history)", t)
            minmax_indices(values, 1000)
            t = clock("(the exact read it replaces: minmax_indices)", t)
            del steps, stamps, values
            with store.engine.connect() as conn:
                raw_conn = conn.connection.driver_connection
                style = "?" if conn.dialect.name == "sqlite" else "%s"
                t = time.perf_counter()
                cursor = raw_conn.cursor()  # type: ignore[union-attr]
                cursor.execute(sql.format(p=style), (run_id, "big"))
                rows = cursor.fetchall()
                cursor.close()
                clock("(its SQL query + fetchall, timed on their own)", t)
            del rows
        history_ms = {name: statistics.median(v) for name, v in stages.items()}
        stages.clear()

        for _ in range(args.repeat):
            t = time.perf_counter()
            steps, stamps, values = store.history(run_id, "full")
            t = clock("TrackingStore.history (tracking/store.py)", t)
            out = io.StringIO()
            csv.writer(out).writerows(
                zip(
                    [run_id] * len(steps),
                    ["full"] * len(steps),
                    steps.tolist(),
                    stamps.tolist(),
                    values.tolist(),
                    strict=True,
                )
            )
            clock("csv rows, as ExportHandler writes them (handlers/runs.py)", t)
        export_ms = {name: statistics.median(v) for name, v in stages.items()}
    finally:
        store.dispose()

    lines = [
        f"where our time goes: the stages timed in this process on the same MLflow store (no "
        f"HTTP, no event loop), median of {args.repeat}:"
    ]
    total = sum(batch_ms.values())
    lines.append(f"  one batch of {n:,} points, the client's batch size ({total:,.1f} ms in all):")
    lines += [f"    {ms:9.1f} ms  {name}" for name, ms in batch_ms.items()]
    lines.append(
        f"    -> at most {n / total * 1000:,.0f} points/s for one sender, before HTTP; "
        f"validation alone caps it at "
        f"{n / batch_ms[next(k for k in batch_ms if 'validation' in k)] * 1000:,.0f}"
    )
    lines.append(f"  downsampled read of {args.history_points:,} points:")
    lines += [f"    {ms:9.1f} ms  {name}" for name, ms in history_ms.items()]
    lines.append(f"  export of {args.export_points:,} points:")
    lines += [f"    {ms:9.1f} ms  {name}" for name, ms in export_ms.items()]
    return lines


# -- reporting -----------------------------------------------------------------------------
def print_backend(result: BackendResult, args: argparse.Namespace) -> None:
    backend = result.backend
    print(f"\n  {backend}: durable logging throughput (higher is better)")
    header = f"  {'contender':<46}{'points':>10}{'seconds':>10}{'points/s':>11}  note"
    print(header)
    print("  " + "-" * (len(header) - 2 + 30))
    for t in result.logging:
        print(
            f"  {t.label:<46}{t.points:>10,}{t.seconds:>10.2f}{t.rate:>11,.0f}  {t.note}".rstrip()
        )
    print(f"\n  {backend}: history reads, median of {args.repeat} (lower is better)")
    header = f"  {'read':<46}{'points':>18}{'median ms':>11}{'min-max ms':>18}  note"
    print(header)
    print("  " + "-" * (len(header) - 2 + 10))
    for r in result.reads:
        spread = f"{min(r.samples_s) * 1000:.1f}-{max(r.samples_s) * 1000:.1f}"
        print(f"  {r.label:<46}{r.points:>18}{r.median_ms:>11.1f}{spread:>18}  {r.note}".rstrip())
    print(f"\n  {backend}: goals")
    for g in result.goals:
        print(f"  {g.label:<58}{g.value:>14}   goal {g.goal:<10} {verdict(g.met)}")
    for note in result.notes:
        print(f"  ({note})")
    if result.breakdown:
        print()
        print("\n".join(f"  {line}" for line in result.breakdown))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="the small sizes (about a minute)")
    parser.add_argument("--points", type=int, help="points logged with ours (default 200,000)")
    parser.add_argument(
        "--log-metric-points", type=int, help="points per log_metric run (default 2,000)"
    )
    parser.add_argument("--batch-calls", type=int, help="log_batch calls per run (default 100)")
    parser.add_argument("--batch-size", type=int, default=1000, help="metrics per log_batch call")
    parser.add_argument(
        "--history-points", type=int, help="points of the downsampled metric (default 1,000,000)"
    )
    parser.add_argument(
        "--export-points",
        type=int,
        help="points of the metric read in full by get_metric_history and the export "
        "(default 100,000)",
    )
    parser.add_argument(
        "--load-chunk", type=int, default=50_000, help="points per batch request when loading"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions of each read")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="time the stages of our paths in-process even when every goal is met",
    )
    parser.add_argument("--forward", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.forward:
        forward_main(args.forward)
        return 0
    defaults = {
        "points": 200_000,
        "log_metric_points": 2_000,
        "batch_calls": 100,
        "history_points": 1_000_000,
        "export_points": 100_000,
    }
    for name, value in (QUICK if args.quick else defaults).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    sizes = (
        args.points,
        args.log_metric_points,
        args.batch_calls,
        args.batch_size,
        args.history_points,
        args.export_points,
        args.load_chunk,
        args.repeat,
    )
    if min(sizes) < 1:
        parser.error("sizes and counts must be positive")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and make_url(PG_ADMIN_URL).host not in LOOPBACK:
        parser.error(f"PostgreSQL must be on loopback (got {make_url(PG_ADMIN_URL).host})")
    import mlflow

    print(
        f"workbench tracking benchmark: Python {platform.python_version()}, mlflow "
        f"{mlflow.__version__}, {os.cpu_count()} CPUs; ours {args.points:,} points, "
        f"log_metric {args.log_metric_points:,} points, log_batch {args.batch_calls} x "
        f"{args.batch_size:,}, history {args.history_points:,} points (downsampled) and "
        f"{args.export_points:,} (full), {args.repeat} timed reads each"
    )
    print(
        "  stock = MlflowClient against one MLflow server (one uvicorn worker, unix socket): "
        "'through the proxy' = via the workbench's /workbench/mlflow/p/<project> with "
        "MLFLOW_TRACKING_TOKEN; 'direct' = via a TCP -> unix-socket forwarder (a child process)"
    )
    print(
        "  the issue's reference figures (stock client, this machine): "
        f"~{REFERENCE_LOG_METRIC:,.0f} points/s with log_metric, "
        f"~{REFERENCE_LOG_BATCH:,.0f} with log_batch"
    )
    results = [run_backend(backend, args) for backend in backends]
    print("\nsummary:")
    for r in results:
        for g in r.goals:
            print(
                f"  {r.backend:<11}{g.label:<58}{g.value:>14}  goal {g.goal:<10} {verdict(g.met)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
