"""The managed MLflow tracking server: started, watched and stopped with the workbench.

Standalone, MLflow listens on a unix socket in a private (0700) folder of the data dir, so its own
API is never exposed: every request reaches it through the authorizing proxy. Its store is a
SQLite file and its artifacts a folder, both in the data dir. At scale it is an external server
(``Workbench.mlflow_url``) and this supervisor is not used.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from .group_leader import PARENT_ENV

log = logging.getLogger("jupyter_workbench.mlflow")

READY_TIMEOUT = 120.0
CHECK_INTERVAL = 2.0


class MlflowSupervisor:
    """Runs ``mlflow server`` (one uvicorn worker) and restarts it if it dies."""

    def __init__(
        self,
        root: Path,
        *,
        backend_store_uri: str = "",
        artifacts_destination: str = "",
        python: str = sys.executable,
    ) -> None:
        self.root = Path(root)
        self.socket_dir = self.root / "run"
        self.socket = self.socket_dir / "mlflow.sock"
        self.backend_store_uri = backend_store_uri or f"sqlite:///{self.root / 'mlflow.db'}"
        self.artifacts_destination = artifacts_destination or str(self.root / "artifacts")
        self.python = python
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._ready = threading.Event()
        self.restarts = 0

    # -- lifecycle ------------------------------------------------------------------------
    def command(self) -> list[str]:
        return [
            self.python, "-m", "mlflow", "server",
            "--backend-store-uri", self.backend_store_uri,
            "--artifacts-destination", self.artifacts_destination,
            "--serve-artifacts",
            "--workers", "1",
            # idle connections kept a minute: the proxy drops its own after 2 s
            "--uvicorn-opts", f"--uds {shlex.quote(str(self.socket))} --timeout-keep-alive 60",
        ]  # fmt: skip

    def ensure_started(self) -> None:
        """Start the server unless it runs already (the proxy's first request may start it)."""
        with self._lock:
            running = self._watcher is not None and self._watcher.is_alive()
        if not running:
            self.start()

    def start(self) -> None:
        """Start the server and a watcher thread that restarts it when it exits."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.socket_dir, 0o700)
        Path(self.artifacts_destination).mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="mlflow-watch", daemon=True)
        self._watcher.start()

    def _spawn(self) -> None:
        with self._lock:
            self.socket.unlink(missing_ok=True)
            self._ready.clear()
            logfile = open(self.root / "mlflow-server.log", "ab")  # noqa: SIM115
            env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                   PARENT_ENV: str(os.getpid())}  # fmt: skip
            # a group leader of ours: MLflow and its uvicorn go when it is stopped or when this
            # process dies, clean exit or not
            self._proc = subprocess.Popen(
                [self.python, "-m", "jupyter_workbench.tracking.group_leader", *self.command()],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=env,
                start_new_session=True,  # one group: MLflow, its uvicorn, the leader (killpg)
            )
            logfile.close()
            log.info("Started the MLflow tracking server (pid %s)", self._proc.pid)

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            proc = self._proc
            if proc is not None and proc.poll() is not None and not self._stopping.is_set():
                log.warning("The MLflow server exited (code %s); restarting", proc.returncode)
                self.restarts += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                if not self._stopping.is_set():
                    self._spawn()
                continue
            if not self._ready.is_set() and self._healthy():
                self._ready.set()
                backoff = 1.0
                log.info("The MLflow tracking server is ready")
            self._stopping.wait(0.2 if not self._ready.is_set() else CHECK_INTERVAL)

    def _healthy(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), timeout=2) as c:
                return c.get("http://localhost/health").status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> bool:
        """Whether the server is ready within ``timeout`` seconds; False as soon as it is being
        stopped (a request waiting for it must not hold up the process's exit)."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            if self._stopping.is_set() or time.monotonic() >= deadline:
                return False
        return True

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=timeout)
                except ProcessLookupError:
                    pass
        if self._watcher is not None:
            self._watcher.join(timeout=timeout)
        self.socket.unlink(missing_ok=True)

    @staticmethod
    def available() -> bool:
        return shutil.which("mlflow") is not None or _importable("mlflow")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
