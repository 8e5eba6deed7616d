"""The managed MLflow server: private socket, restarted when it dies, stopped with us."""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from jupyter_workbench.tracking.supervisor import MlflowSupervisor

pytestmark = pytest.mark.slow


def health(supervisor: MlflowSupervisor) -> int:
    transport = httpx.HTTPTransport(uds=str(supervisor.socket))
    with httpx.Client(transport=transport, timeout=5) as client:
        return client.get("http://localhost/health").status_code


def test_restart_after_a_crash_and_clean_stop(tmp_path: Path) -> None:
    supervisor = MlflowSupervisor(tmp_path / "mlflow")
    supervisor.start()
    try:
        assert supervisor.wait_ready(240)
        assert health(supervisor) == 200
        # only its owner can reach the socket's folder: MLflow's port is never exposed
        assert stat.S_IMODE(supervisor.socket_dir.stat().st_mode) == 0o700
        assert (tmp_path / "mlflow" / "mlflow.db").exists()
        first = supervisor.pid
        assert first is not None
        os.killpg(first, signal.SIGKILL)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and (supervisor.pid == first or not supervisor.ready):
            time.sleep(0.5)
        assert supervisor.pid != first and supervisor.restarts == 1
        assert supervisor.wait_ready(240) and health(supervisor) == 200
    finally:
        supervisor.stop()
    assert not supervisor.socket.exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(supervisor.pid or 0, 0)


class NeverReady(MlflowSupervisor):
    """A server that starts (through the real group leader) but never answers."""

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(120)"]


def test_stop_releases_requests_still_waiting_for_the_server(tmp_path: Path) -> None:
    """A request that started MLflow waits for it in a worker thread; stopping the workbench
    (Ctrl+C right after that request) must end the wait at once: Python joins those threads
    before it exits, so the server would hang for the whole start-up timeout."""
    supervisor = NeverReady(tmp_path / "mlflow")
    supervisor.start()
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(supervisor.wait_ready, 120)
        time.sleep(0.5)
        assert not waiting.done()
        supervisor.stop()
        assert waiting.result(timeout=10) is False
    assert not supervisor.ready
