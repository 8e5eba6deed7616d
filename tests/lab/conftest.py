"""A real ``jupyter lab`` with the workbench and its JupyterLab extension (as ``make lab``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jupyter_workbench import fast_start
from tests.conftest import _free_port

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def lab_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user's Jupyter: private config/data/runtime dirs, the environment's
    own ``bin`` first (``jupyter labextension`` runs ``jupyter-builder`` from there)."""
    return {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "WORKBENCH_DATA_DIR": str(tmp_path / "wbdata"),
        # first in every Jupyter search path: this checkout's extension (link_checkout_extension)
        "JUPYTER_PATH": str(tmp_path / "jupyter-path"),
    }


@dataclass
class Lab:
    url: str
    token: str
    log: Path
    user_tokens: dict[str, str]  # username -> token (a team sharing one server)
    database_url: str
    root: Path  # the server's root folder (the user's files)

    def api(self, path: str) -> str:
        return f"{self.url}/workbench/api/v1/{path}"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from start_lab(tmp_path)


@pytest.fixture
def team_lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab shared by alice, bob and carol, each with their own token."""
    yield from start_lab(tmp_path, ["alice", "bob", "carol"])


def start_lab(
    tmp_path: Path, users: list[str] | None = None, config: dict[str, Any] | None = None
) -> Iterator[Lab]:
    """``config``: more jupyter_server_config (e.g. ``{"Workbench": mlflow_config}``)."""
    port, token = _free_port(), "lab-ui-token"
    (tmp_path / "notebooks").mkdir()
    user_tokens = {user: f"lab-{user}-{os.urandom(6).hex()}" for user in users or []}
    if user_tokens or config:
        config = dict(config or {})
        if user_tokens:
            config["WorkbenchIdentityProvider"] = {
                "user_tokens": {t: u for u, t in user_tokens.items()}
            }
        (tmp_path / "config").mkdir(exist_ok=True)
        (tmp_path / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
    link_checkout_extension(tmp_path / "jupyter-path")
    database_url = f"sqlite:///{tmp_path / 'workbench.db'}"
    cmd = [
        *fast_start.command("jupyterlab"),
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False", "--allow-root",
        f"--ServerApp.root_dir={tmp_path / 'notebooks'}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.identity_provider_class=jupyter_workbench.identity.WorkbenchIdentityProvider",
        f"--Workbench.database_url={database_url}",
        "--Workbench.mlflow_autostart=False",
    ]  # fmt: skip
    log = tmp_path / "lab.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, env=lab_env(tmp_path), stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    request = urllib.request.Request(
        f"{url}/workbench/api/v1/me", headers={"Authorization": f"token {token}"}
    )
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(log.read_text()[-3000:]) from None
            time.sleep(0.2)
    yield Lab(url, token, log, user_tokens, database_url, tmp_path / "notebooks")
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()


def link_checkout_extension(jupyter_path: Path) -> None:
    """Serve this checkout's built extension (JUPYTER_PATH comes first in JupyterLab's search
    path), not whichever one the environment's link points at."""
    built = Path(__file__).resolve().parents[2] / "jupyter_workbench" / "labextension"
    if (built / "package.json").is_file():
        (jupyter_path / "labextensions").mkdir(parents=True, exist_ok=True)
        (jupyter_path / "labextensions" / "jupyter-workbench").symlink_to(built)


def in_chromium(scenario: Callable[[Any], None], timeout: float = 120) -> None:
    """Run ``scenario(browser)`` in Debian's Chromium, on a thread of its own (Playwright's sync
    API runs an event loop in its thread, which must not be the tests' one)."""

    def run() -> None:
        from playwright.sync_api import sync_playwright

        executable = shutil.which("chromium") or shutil.which("chromium-browser")
        if executable is None:
            raise AssertionError("Chromium is missing: `make test` installs Debian's chromium")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, headless=True)
            try:
                scenario(browser)
            finally:
                browser.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result(timeout=timeout)


def run_from_palette(page: Any, label: str, done: str, *, shortcut: bool = False) -> None:
    """Run the command labelled ``label`` from JupyterLab's command palette, as a user does,
    until the page-side condition ``done`` (a JavaScript expression) holds.

    JupyterLab's router runs its start-up commands (workspace, URL handlers) for a while after
    the page looks ready, and the modal palette closes whenever any command runs, so a palette
    opened early can vanish under the user's typing: like a user, open it again (four tries)."""
    for attempt in range(4):
        if shortcut:
            page.keyboard.press("Control+Shift+C")
        else:
            page.click("#jp-menu-panel .lm-MenuBar-item:has-text('View')")
            page.click(".lm-Menu-item[data-command='apputils:activate-command-palette']")
        box = page.locator(".lm-CommandPalette-input:visible")
        try:
            box.fill(label, timeout=3_000)
            page.keyboard.press("Enter")
            page.wait_for_function(done, timeout=5_000)
            return
        except Exception:
            if attempt == 3:
                raise
            page.keyboard.press("Escape")


def show_sidebar_panel(page: Any, panel: str) -> None:
    """Show the left-sidebar panel ``panel`` (a CSS id selector), clicking its tab if the
    restored layout has not opened it (the restorer may collapse the sidebar after a first
    click while the lab is still starting: try again, four times)."""
    for attempt in range(4):
        if page.locator(panel).is_hidden():
            page.click(f".jp-SideBar [data-id='{panel[1:]}']")
        try:
            page.locator(panel).wait_for(state="visible", timeout=3_000)
            page.wait_for_timeout(300)  # still open once the restorer has had its say?
            if page.locator(panel).is_visible():
                return
        except Exception:
            if attempt == 3:
                raise
    raise AssertionError(f"the sidebar panel {panel} does not stay open")
