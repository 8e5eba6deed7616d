"""`make run` (python -m jupyter_workbench.hub.run): a local hub that creates its admin account
on the first run and prints how to log in; the printed password works; a second run keeps it."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .conftest import (
    Browser,
    Hub,
    free_port,
    hub_environment,
    processes_with,
    start_server,
    stop_hub,
)

pytestmark = pytest.mark.slow


def start(state: Path, port: int, api_port: int) -> tuple[subprocess.Popen[str], str]:
    env = hub_environment(state, api_port)
    state.mkdir(parents=True, exist_ok=True)
    with (state / "run.err").open("w") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_workbench.hub.run", "--port", str(port)],
            env=env, stdout=subprocess.PIPE, stderr=errors, text=True,
            start_new_session=True,
        )  # fmt: skip
    banner = ""
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    while "Press Ctrl+C" not in banner:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"make run stopped: {banner}")
        banner += line
        if time.monotonic() > deadline:  # pragma: no cover
            raise AssertionError(f"no banner: {banner}")
    return proc, banner


def stop(proc: subprocess.Popen[str], state: Path, api_port: int) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    finally:
        stop_hub(proc, {f"WORKBENCH_HUB_DIR={state}",  # type: ignore[arg-type]
                        f"JUPYTERHUB_API_URL=http://127.0.0.1:{api_port}/hub/api"})  # fmt: skip


def test_make_run_creates_the_admin_and_prints_how_to_log_in(tmp_path: Path) -> None:
    state, port, api_port = tmp_path / "hub", free_port(), free_port()
    proc, banner = start(state, port, api_port)
    try:
        url = f"http://127.0.0.1:{port}"
        assert f"Open:        {url}/" in banner
        assert f"{url}/services/workbench/admin" in banner
        found = re.search(r"Admin:\s+admin / (\S+)", banner)
        assert found, banner
        password = found.group(1)
        assert (state / "admin-password").read_text().strip() == password
        assert oct((state / "admin-password").stat().st_mode & 0o777) == "0o600"
        browser = Browser(url)
        login = browser.log_in("admin", password)
        assert login.ok and "/hub/login" not in login.url, login.url  # signed in, sent on
        wrong = Browser(url).log_in("admin", password + "x")
        assert "/hub/login" in wrong.url  # the form again
        page = browser.http.get(f"{url}/services/workbench/admin", timeout=60)
        assert page.status_code == 200 and "Pending sign-ups" in page.text
    finally:
        stop(proc, state, api_port)
    # the second run keeps the account and its password
    proc, banner = start(state, port, api_port)
    try:
        assert f"admin / {password}" in banner
        browser = Browser(url)
        assert browser.log_in("admin", password).ok
        start_server(Hub(url, state, proc), "admin", browser.token("admin"))  # type: ignore[arg-type]
        # Ctrl+C in the terminal: every process of its group gets SIGINT
        pressed = datetime.now(UTC)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(90) == 0
        exited = datetime.now(UTC)
        left = [command for _, command in processes_with({f"WORKBENCH_HUB_DIR={state}"})]
        assert left == [], f"still running after Ctrl+C: {left}"
        errors = (state / "run.err").read_text()
        assert "Traceback" not in errors and "Failed to stop" not in errors, errors[-3000:]
    finally:
        stop(proc, state, api_port)
    # the hub stopped its services before the server: the next start ends the server's usage
    # run when the hub stopped it, not now
    time.sleep(5)
    proc, banner = start(state, port, api_port)
    try:
        deadline = time.monotonic() + 60
        while (stopped := admin_run_stop(state)) is None:
            assert time.monotonic() < deadline, "the usage run was never ended"
            time.sleep(0.5)
        # between the key press and the hub's exit (a loaded machine may take seconds to stop);
        # the restart came 5 s or more after that
        assert pressed <= stopped <= exited, (pressed, stopped, exited)
        # the terminal closes: the hub does not outlive it
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(90) == 0
        left = [command for _, command in processes_with({f"WORKBENCH_HUB_DIR={state}"})]
        assert left == [], f"still running after the terminal closed: {left}"
    finally:
        stop(proc, state, api_port)


def admin_run_stop(state: Path) -> datetime | None:
    db = sqlite3.connect(state / "workbench" / "workbench.db")
    try:
        row = db.execute(
            "SELECT stopped_at FROM server_usage WHERE username = 'admin' ORDER BY id DESC"
        ).fetchone()
    finally:
        db.close()
    if row is None or row[0] is None:
        return None
    when = datetime.fromisoformat(row[0])
    return when if when.tzinfo else when.replace(tzinfo=UTC)
