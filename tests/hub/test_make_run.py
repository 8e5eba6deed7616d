"""`make run` (python -m jupyter_workbench.hub.run): a local hub that creates its admin account
on the first run and prints how to log in; the printed password works; a second run keeps it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Browser, free_port, hub_environment, stop_hub

pytestmark = pytest.mark.slow


def start(state: Path, port: int, api_port: int) -> tuple[subprocess.Popen[str], str]:
    env = hub_environment(state, api_port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_workbench.hub.run", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
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
    finally:
        stop(proc, state, api_port)
