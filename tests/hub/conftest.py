"""A real JupyterHub (with configurable-http-proxy and the workbench service) for the session."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_workbench import fast_start

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Hub:
    url: str
    state: Path
    process: subprocess.Popen[bytes]
    admin: str = "admin"
    admin_password: str = "Adm1n-pass-xyz"
    ready_at: float = 0.0  # time.monotonic() when the hub and its service answered

    def browser(self) -> Browser:
        return Browser(self.url)


class Browser:
    """A requests session that behaves like a browser on the hub's forms (cookies, _xsrf)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def xsrf(self, path: str) -> str:
        page = self.http.get(self.url + path, timeout=30).text
        found = re.search(r'name="_xsrf" value="([^"]+)"', page)
        return found.group(1) if found else self.http.cookies.get("_xsrf", "")

    def sign_up(self, name: str, password: str) -> str:
        form = {
            "username": name,
            "signup_password": password,
            "signup_password_confirmation": password,
            "_xsrf": self.xsrf("/hub/signup"),
        }
        return self.http.post(self.url + "/hub/signup", data=form, timeout=30).text

    def log_in(self, name: str, password: str) -> requests.Response:
        form = {"username": name, "password": password, "_xsrf": self.xsrf("/hub/login")}
        return self.http.post(self.url + "/hub/login", data=form, timeout=60)

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = kw.pop("headers", {})
        headers.setdefault("X-XSRFToken", self.http.cookies.get("_xsrf", ""))
        return self.http.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def token(self, name: str) -> str:
        r = self.api("POST", f"/hub/api/users/{name}/tokens", json={"note": "tests"})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def start_server(
    hub: Hub, name: str, token: str, profile: str | None = None, timeout: float = 120
) -> dict[str, Any]:
    """Start ``name``'s default server (unless it runs) and wait until it is ready."""
    url = f"{hub.url}/hub/api/users/{name}"
    model = requests.get(url, headers=auth(token), timeout=30).json()
    if not (model.get("servers") or {}).get(""):
        body = {"profile": profile} if profile else None
        r = requests.post(f"{url}/server", headers=auth(token), json=body, timeout=60)
        assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + timeout
    while True:
        model = requests.get(url, headers=auth(token), timeout=30).json()
        server = (model.get("servers") or {}).get("", {})
        if server.get("ready"):
            return dict(server)
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}'s server never became ready: {model}")
        time.sleep(0.3)


def stop_server(hub: Hub, name: str, token: str, timeout: float = 60) -> None:
    url = f"{hub.url}/hub/api/users/{name}"
    r = requests.delete(f"{url}/server", headers=auth(token), timeout=60)
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + timeout
    while (requests.get(url, headers=auth(token), timeout=30).json().get("servers") or {}).get(""):
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}'s server did not stop")
        time.sleep(0.3)


def chp_command() -> str:
    local = REPO / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"
    found = str(local) if local.exists() else shutil.which("configurable-http-proxy")
    if not found:
        pytest.fail("configurable-http-proxy is missing: run `make install` (npm)")
    return found


def wait_for_hub(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> bool:
    """Whether the hub came up with the workbench service answering through its proxy."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if requests.get(
                url + "/services/workbench/workbench/api/v1/openapi.json", timeout=2
            ).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def hub_environment(state: Path, api_port: int, **extra: str) -> dict[str, str]:
    """The environment of a test hub in ``state``: free loopback ports, the CHP from npm, none of
    the developer's own database, OAUTH_* or WORKBENCH_HUB_ADMIN settings; then ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("OAUTH_") or k == "WORKBENCH_HUB_ADMIN")}  # fmt: skip
    for key in ("DATABASE_URL", "WORKBENCH_DATA_DIR", "JUPYTERHUB_API_TOKEN"):
        env.pop(key, None)
    env.update(
        WORKBENCH_HUB_DIR=str(state),
        WORKBENCH_HUB_API_PORT=str(api_port),
        WORKBENCH_PROXY_API_PORT=str(free_port()),
        WORKBENCH_SERVICE_PORT=str(free_port()),
        WORKBENCH_CHP=chp_command(),
    )
    env.update(extra)
    return env


@contextmanager
def running_hub(state: Path, *, local_accounts: bool = True, **extra_env: str) -> Iterator[Hub]:
    """A hub of hub_config/jupyterhub_config.py (``extra_env`` added to its environment) with
    its admin account signed up when it has ``local_accounts``; stopped on exit."""
    port, api_port = free_port(), free_port()
    env = hub_environment(state, api_port, WORKBENCH_HUB_PORT=str(port),
                          WORKBENCH_HUB_GROUP_SYNC_INTERVAL="1", **extra_env)  # fmt: skip
    # the proxy, the services and the user servers run in sessions of their own
    markers = {f"WORKBENCH_HUB_DIR={state}", f"WORKBENCH_DATA_DIR={state / 'workbench'}",
               f"JUPYTERHUB_API_URL=http://127.0.0.1:{api_port}/hub/api"}  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for attempt in range(3):
        log = (state / "hub.log").open("wb")
        process = subprocess.Popen(
            fast_start.command("jupyterhub", "-f",
                               str(REPO / "hub_config" / "jupyterhub_config.py")),
            env=env,
            cwd=state,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        if wait_for_hub(url, process):
            break
        stop_hub(process, markers)
        log.close()
        text = (state / "hub.log").read_text(errors="replace")
        # JupyterHub gives a managed service 10 s to answer: on a busy machine, try again
        if "Cannot connect to workbench service" not in text or attempt == 2:
            raise RuntimeError(text[-4000:])
    hub = Hub(url, state, process, ready_at=time.monotonic())
    if local_accounts:
        hub.browser().sign_up(hub.admin, hub.admin_password)  # admins are approved on sign-up
    try:
        yield hub
    finally:
        stop_hub(process, markers)
        log.close()


def stop_hub(process: subprocess.Popen[bytes], markers: set[str]) -> None:
    """Stop the hub, then whatever it left behind (a hub that gave up waiting for a service
    does not stop it; a service's own children outlive it): every process whose environment
    holds one of ``markers``."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:  # pragma: no cover
        os.killpg(process.pid, signal.SIGKILL)
    for pid, _command in processes_with(markers):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def processes_with(markers: set[str]) -> list[tuple[int, str]]:
    """(pid, command line) of the other processes whose environment holds one of ``markers``."""
    wanted = {m.encode() for m in markers}
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
            if int(pid) != os.getpid() and environ & wanted:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                found.append((int(pid), command.decode(errors="replace")))
        except OSError:
            continue
    return found


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(tmp_path_factory.mktemp("hub")) as hub:
        yield hub


@pytest.fixture(scope="session")
def admin(hub: Hub) -> Browser:
    browser = hub.browser()
    r = browser.log_in(hub.admin, hub.admin_password)
    assert r.ok, r.text[-500:]
    return browser


@pytest.fixture
def new_user(hub: Hub, admin: Browser) -> Any:
    """``new_user()`` -> (name, password, logged-in Browser, API token) of an approved user."""
    made = []

    def make(prefix: str = "u") -> tuple[str, str, Browser, str]:
        name = f"{prefix}{len(made)}{os.urandom(3).hex()}"
        password = "Pa55-word-" + os.urandom(4).hex()
        browser = hub.browser()
        browser.sign_up(name, password)
        assert admin.api("GET", f"/hub/authorize/{name}").ok  # the admin approves
        r = browser.log_in(name, password)
        assert r.ok, r.text[-500:]
        made.append(name)
        return name, password, browser, browser.token(name)

    return make
