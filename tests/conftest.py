"""Shared fixtures: databases on SQLite and PostgreSQL, a workbench service, a real server.

Every test that takes ``db_url`` (directly or through ``service``/``api``) runs twice: on an
embedded SQLite file and on a fresh PostgreSQL database. With CI=true the PostgreSQL runs fail
instead of skipping when the server is unreachable.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from traitlets.config import Config

from jupyter_workbench import fast_start
from jupyter_workbench.core.context import Identity
from jupyter_workbench.db.database import Database
from jupyter_workbench.identity import WorkbenchIdentityProvider
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PG_ADMIN_URL = os.environ.get(
    "WORKBENCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Test users and their API tokens (WorkbenchIdentityProvider.user_tokens).
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
TOKENS = {f"tok-{name}-{uuid.uuid4().hex[:8]}": name for name in USERS}
TOKEN_OF = {name: token for token, name in TOKENS.items()}
OWNER = "wb-owner"  # the server token's user: a workbench administrator


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return str(exc)


def _admin_execute(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


@pytest.fixture(autouse=True)
def _mlflow_env_restored() -> Iterator[None]:
    """Each test ends with the MLFLOW_* environment it began with: ``wb.use`` and runs write
    MLFLOW_TRACKING_URI and friends into the process (as they should, for the stock client),
    and a later test's kernel or MLflow client used a server gone since."""
    before = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_") and k not in before]:
        del os.environ[key]
    os.environ.update(before)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required with CI=true but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"wb_tmpl_{uuid.uuid4().hex[:10]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name)
    db = Database(url.render_as_string(hide_password=False))
    db.migrate()
    db.dispose()
    yield name
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "workbench.db"
        shutil.copy(template, target)
        yield f"sqlite:///{target}"
        return
    template_name: str = request.getfixturevalue("pg_template")
    name = f"wb_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Workbench:
    return Workbench(
        config=Config(
            {
                "Workbench": {
                    "database_url": db_url,
                    "data_dir": str(tmp_path / "data"),
                    "worker_threads": 8,
                }
            }
        )
    )


@pytest.fixture
def service(settings: Workbench) -> Iterator[WorkbenchService]:
    svc = WorkbenchService(settings)
    yield svc
    svc.close()


def ident(name: str, **kw: Any) -> Identity:
    return Identity(username=name, display_name=name.title(), **kw)


@pytest.fixture
def call(service: WorkbenchService) -> Callable[..., Any]:
    """``call("alice", fn)`` runs ``fn(session, ctx)`` as alice in one write transaction."""

    def run(user: str | Identity, fn: Callable[..., Any], *, write: bool = True) -> Any:
        identity = ident(user) if isinstance(user, str) else user
        return service.call(identity, fn, write=write)

    return run


# -- a real jupyter-server with the extension -------------------------------------------
@pytest.fixture
def jp_server_config(db_url: str, tmp_path: Path) -> Config:
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_workbench": True},
                "identity_provider_class": WorkbenchIdentityProvider,
            },
            "WorkbenchIdentityProvider": {"user_tokens": TOKENS, "owner_username": OWNER},
            "Workbench": {
                "database_url": db_url,
                "data_dir": str(tmp_path / "wbdata"),
                "purge_interval_seconds": 0,
                "max_request_bytes": 64 * 1024,
                # tests that need MLflow start one per session (test_mlflow_proxy.py)
                "mlflow_autostart": False,
            },
        }
    )


@dataclass
class Response:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:300]!r}>"


class Client:
    """Calls the workbench API as one user (or anonymously with ``user=None``)."""

    def __init__(self, fetch: Callable[..., Any], token: str | None) -> None:
        self._fetch = fetch
        self.token = token

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Response:
        hdrs = dict(headers or {})
        hdrs["Authorization"] = f"token {self.token}" if self.token else ""
        payload = (
            raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        )
        if payload is None and method in ("POST", "PATCH", "PUT"):
            payload = b""
        resp = await self._fetch(
            "workbench/api/v1",
            *[p for p in path.strip("/").split("/") if p],
            method=method,
            body=payload,
            headers=hdrs,
            params=params,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        return Response(resp.code, resp.headers, resp.body or b"")

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("POST", path, body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("PATCH", path, body, **kw)

    async def delete(self, path: str, **kw: Any) -> Response:
        return await self.request("DELETE", path, **kw)


@pytest.fixture
def api(jp_fetch: Callable[..., Any], jp_serverapp: Any) -> Callable[[str | None], Client]:
    """``api("alice")`` -> a Client acting as alice; ``api(None)`` is anonymous; ``api(OWNER)``
    uses the server's own token."""

    def make(user: str | None) -> Client:
        if user is None:
            return Client(jp_fetch, None)
        if user == OWNER:
            return Client(jp_fetch, jp_serverapp.identity_provider.token)
        return Client(jp_fetch, TOKEN_OF[user])

    return make


# -- S3 through moto's server mode ---------------------------------------------------------
S3_REGION = "us-east-1"
S3_ACCESS_KEY = "testing-access-key"
S3_SECRET_KEY = "testing-secret-key"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port: the real boto3 client talks HTTP to it."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_admin(moto_endpoint: str) -> Any:
    """A plain boto3 client of the moto server, for setup and for looking behind a store."""
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name=S3_REGION,
    )


@pytest.fixture
def s3_bucket(s3_admin: Any) -> str:
    """A new, empty bucket on the moto server."""
    name = f"wb-test-{uuid.uuid4().hex[:20]}"
    s3_admin.create_bucket(Bucket=name)
    return name


def storage_config(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """``Workbench`` settings for a local or an S3 (moto) blob store."""
    if kind == "local":
        return {"storage_backend": "local", "storage_dir": str(tmp_path / "blobs")}
    return {
        "storage_backend": "s3",
        "s3_bucket": request.getfixturevalue("s3_bucket"),
        "s3_endpoint_url": request.getfixturevalue("moto_endpoint"),
        "s3_access_key": S3_ACCESS_KEY,
        "s3_secret_key": S3_SECRET_KEY,
        "s3_region": S3_REGION,
    }


# -- one real MLflow tracking server for the session --------------------------------------
@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real MLflow tracking server (SQLite store, unix socket), shared by the session."""
    from jupyter_workbench.tracking.supervisor import MlflowSupervisor

    supervisor = MlflowSupervisor(tmp_path_factory.mktemp("mlflow"))
    supervisor.start()
    assert supervisor.wait_ready(240), (supervisor.root / "mlflow-server.log").read_text()[-3000:]
    yield supervisor
    supervisor.stop()


@pytest.fixture
def mlflow_config(mlflow_server: Any) -> dict[str, str]:
    """``Workbench`` settings pointing a test server at the session's MLflow server."""
    return {
        "mlflow_url": f"unix:{mlflow_server.socket}",
        "mlflow_backend_store_uri": mlflow_server.backend_store_uri,
    }


# -- a real jupyter server process -----------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A real ``jupyter server`` process with the workbench on a fixed loopback port, which a
    test can stop (as a crash does) and start again on the same port and database."""

    def __init__(self, db_url: str, tmp_path: Path, mlflow_config: dict[str, str]) -> None:
        self.port, self.token = _free_port(), "live-owner-token"
        self.root = f"http://127.0.0.1:{self.port}"
        self.tmp_path = tmp_path
        self.log_path = tmp_path / "server.log"
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
            "JUPYTER_DATA_DIR": str(tmp_path / "data"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        }
        self.cmd = [
            *fast_start.command("jupyter_server"),
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", "--ServerApp.open_browser=False", "--allow-root",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.identity_provider_class=jupyter_workbench.identity.WorkbenchIdentityProvider",
            "--WorkbenchIdentityProvider.owner_username=owner",
            f"--Workbench.database_url={db_url}",
            f"--Workbench.data_dir={tmp_path / 'wb'}",
            "--Workbench.purge_interval_seconds=0",
            "--Workbench.mlflow_autostart=False",
            *(f"--Workbench.{key}={value}" for key, value in mlflow_config.items()),
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp_path
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"{self.root}/workbench/api/v1/openapi.json"
                with urllib.request.urlopen(url, timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(self.log_path.read_text()[-3000:]) from None
                time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()
            self.proc.wait(timeout=20)


@pytest.fixture
def live_server(db_url: str, tmp_path: Path, mlflow_config: dict[str, str]) -> Iterator[Any]:
    """A real ``jupyter server`` process with the workbench, on loopback:
    (root URL, owner token, log file, process)."""
    server = LiveServer(db_url, tmp_path, mlflow_config)
    server.start()
    yield server.root, server.token, server.log_path, server.proc
    server.stop()


@pytest.fixture
def restartable_server(
    db_url: str, tmp_path: Path, mlflow_config: dict[str, str]
) -> Iterator[LiveServer]:
    """A ``LiveServer``, started; stopped at the end whatever the test did to it."""
    server = LiveServer(db_url, tmp_path, mlflow_config)
    server.start()
    yield server
    server.stop()
