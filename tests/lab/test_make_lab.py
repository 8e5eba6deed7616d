"""``make lab`` (``python -m jupyter_workbench.run``): JupyterLab with the workbench on embedded
defaults. It prints where it runs, the printed token works and is kept for the next start, and
one Ctrl+C in its terminal stops it, leaving nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ..hub.conftest import processes_with
from .conftest import _free_port, lab_env

pytestmark = pytest.mark.slow


def start(tmp_path: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workbench.run", "--port", str(port),
         "--Workbench.mlflow_autostart=False"],
        env=lab_env(tmp_path), stdout=subprocess.PIPE, stderr=(tmp_path / "lab.err").open("w"),
        text=True, cwd=tmp_path, start_new_session=True,  # a terminal's process group
    )  # fmt: skip
    assert proc.stdout is not None
    banner, deadline = "", time.monotonic() + 120
    while "Press Ctrl+C to stop." not in banner:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"make lab stopped: {(tmp_path / 'lab.err').read_text()[-3000:]}")
        banner += line
        assert time.monotonic() < deadline, banner
    return proc, banner


def left_running(tmp_path: Path) -> list[tuple[int, str]]:
    return processes_with({f"JUPYTER_RUNTIME_DIR={tmp_path / 'runtime'}"})


def ctrl_c(proc: subprocess.Popen[str], tmp_path: Path) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # the terminal sends it to the whole group
    assert proc.wait(60) == 0
    assert not left_running(tmp_path), f"still running after Ctrl+C: {left_running(tmp_path)}"
    # jupyter-server-ydoc 3.0 stops its websocket server at exit even when no shared document
    # started it, and logs that RuntimeError: its noise, not ours
    errors = (tmp_path / "lab.err").read_text().split("Traceback (most recent call last)")
    ours = [e for e in errors[1:] if "RuntimeError: WebsocketServer not running" not in e]
    assert not ours, ours


def test_make_lab_prints_a_working_address_and_stops_on_one_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    proc, banner = start(tmp_path, port)
    try:
        found = re.search(rf"JupyterLab:\s+http://127\.0\.0\.1:{port}/lab\?token=(\w+)", banner)
        assert found, banner
        token = found.group(1)
        saved = tmp_path / "wbdata" / "run-token"
        assert saved.read_text().strip() == token and saved.stat().st_mode & 0o777 == 0o600
        me = requests.get(f"http://127.0.0.1:{port}/workbench/api/v1/me",
                          headers={"Authorization": f"token {token}"}, timeout=30)  # fmt: skip
        assert me.status_code == 200, me.text
        assert f"API:         http://127.0.0.1:{port}/workbench/api/v1/" in banner
        ctrl_c(proc, tmp_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # the next start keeps the token: bookmarks of the printed address still work
    proc, banner = start(tmp_path, port)
    try:
        assert f"/lab?token={token}" in banner
        # killed outright (no chance to pass anything on): JupyterLab stops all the same
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 60
        while left_running(tmp_path):
            assert time.monotonic() < deadline, f"outlived make lab: {left_running(tmp_path)}"
            time.sleep(0.2)
    finally:
        for pid, _ in left_running(tmp_path):
            os.kill(pid, signal.SIGKILL)
