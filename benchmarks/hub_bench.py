"""The workbench's JupyterHub beside a bare JupyterHub: spawn-to-ready, and 100 users on the API.

What it measures, in one run, on hubs it starts itself on free loopback ports (each with its
own configurable-http-proxy, SQLite hub database and state in a temporary folder):

1. Spawn-to-ready, seconds, for fresh users, one spawn at a time, the hubs taken in turn (the
   order rotates each round, so that the machine's other work is shared out fairly):

   - ``bare``: JupyterHub with ``SimpleLocalProcessSpawner`` running ``python -m
     jupyterhub.singleuser`` (the same JupyterLab, the workbench's server extension switched
     off), ``DummyAuthenticator`` and a token-only admin service; the anchor;
   - ``bare+fast-imports``: the same, its servers started as the workbench starts its own
     (``jupyter_workbench.fast_start``: jsonschema does not compile rfc3987-syntax's Lark
     grammar, seconds of CPU on a busy machine), so that the workbench's own cost shows;
   - ``workbench``: ``hub_config/jupyterhub_config.py`` (``LocalWorkbenchSpawner`` with the
     workbench in client mode, the pre-spawn hook that asks the workbench service for quotas
     and secrets, NativeAuthenticator, the workbench service and the culler) with the hub's own
     readiness checks (``--LocalWorkbenchSpawner.ready_check_interval=0``);
   - ``workbench+check``: the same config as it is shipped, where ``start()`` checks every
     0.1 s that the new server answers (JupyterHub's own checks back off exponentially: random
     waits of up to 0.2, 0.4, 0.8, 1.6, 3.2 and then 5 s).

   One spawn: ``POST /hub/api/users/{name}/server`` as an admin, then the user model is read
   every 50 ms until the server is ready and ``/user/{name}/api/status`` answers 200 through
   the proxy; then the server is stopped (not timed). Median and p90 per hub, and the overhead
   of each workbench variant over each bare one (goal: <= 10%). The hub logs then tell where
   the time went, as medians: the request until the process is started (the hub's bookkeeping
   and the pre-spawn hook), the process start until the server says it is running (Python
   imports, extensions), that until the hub notices (its readiness checks), and that until the
   client sees the server ready through the proxy.
2. 100 simulated users on the API through the proxy, ``--concurrency`` at a time: on the
   workbench hub a few sign up through the form, are approved by the admin, log in and take a
   token as a browser would; the rest are created and given tokens through the hub API by the
   admin (NativeAuthenticator's bcrypt makes 100 form sign-ups slow). Each then calls, with its
   own token, ``GET me``, ``GET projects``, ``POST projects``, ``GET projects/{slug}`` and
   ``GET projects`` again at ``/services/workbench/workbench/api/v1/``; requests/s, p50/p99
   latency and errors (goal: 0). The anchor: the same number of users and calls of the bare
   hub's own ``GET /hub/api/user`` through its proxy.

The default run took 4.5-5 minutes on 2 cores that other work kept busy (load average 3-5):
4 hubs starting side by side, 1 warm-up and 5 timed spawns per hub, 100 users of 5 calls.
``--quick`` does 2 timed spawns per hub and 10 users (3.5 minutes there); ``--hubs`` picks the
hubs (``tests/hub/test_hub_bench.py`` runs a bare hub and the workbench's, one spawn each, 4
users: about 40 s). The 1-minute load average is printed beside the figures: on a busy
machine every stage takes longer, the servers' start most.

Run (from the repository root; configurable-http-proxy from ``make install``, or on PATH)::

    .venv/bin/python benchmarks/hub_bench.py
    .venv/bin/python benchmarks/hub_bench.py --quick
    .venv/bin/python benchmarks/hub_bench.py --spawns 12 --users 100 --calls 5 --concurrency 20
    .venv/bin/python benchmarks/hub_bench.py --hubs bare,workbench+check --spawns 1 --warmup 0

Only 127.0.0.1 is contacted. The hubs, their proxies, services and user servers are stopped and
the temporary folder removed at the end. Exit status: 0 when every spawn and request succeeded
(goals met or not), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
SERVICE_API = "/services/workbench/workbench/api/v1"
OVERHEAD_GOAL = 0.10
POLL_S = 0.05
HUB_START_TIMEOUT_S = 180.0
SPAWN_TIMEOUT_S = 120.0
ADMIN, ADMIN_PASSWORD = "admin", "Adm1n-pass-" + secrets.token_hex(4)
FAST_SINGLEUSER = (
    "import sys; sys.modules['rfc3987_syntax'] = None; "
    "from jupyterhub.singleuser import main; main()"
)
VARIANTS = ("bare", "bare+fast-imports", "workbench", "workbench+check")
LOG_LINE = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")

BARE_CONFIG = """\
# A bare JupyterHub for hub_bench.py: the workbench's spawner family, none of the workbench.
import sys
c = get_config()
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {api_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.pid_file = {state!r} + "/jupyterhub-proxy.pid"
c.JupyterHub.cookie_secret_file = {state!r} + "/jupyterhub_cookie_secret"
c.JupyterHub.db_url = "sqlite:///" + {state!r} + "/jupyterhub.sqlite"
c.JupyterHub.authenticator_class = "jupyterhub.auth.DummyAuthenticator"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = {state!r} + "/home/{{username}}"
c.Spawner.cmd = {cmd!r}
c.Spawner.args = {args!r}
c.Spawner.environment = {{"JUPYTER_CONFIG_DIR": {state!r} + "/jupyter-config"}}
c.Spawner.default_url = "/lab"
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 120
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "bench", "services": ["bench"], "scopes": [
    "admin:users", "admin:servers", "access:servers", "tokens", "list:users"]}}]
"""


_GIVEN: set[int] = set()  # ports handed out: the hubs start together and bind them late


def free_port() -> int:
    """A free loopback port not handed out before in this run (two hubs choosing at once must
    not get the same one before either binds it)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def chp_command() -> str:
    local = REPO / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"
    found = str(local) if local.exists() else shutil.which("configurable-http-proxy")
    if not found:
        raise SystemExit("configurable-http-proxy is missing: run `make install` (npm)")
    return found


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def load_note() -> str:
    return f"1-min load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


# -- hubs -----------------------------------------------------------------------------------
@dataclass
class Hub:
    name: str
    url: str
    state: Path
    process: subprocess.Popen[bytes]
    markers: set[str]
    token: str = ""  # an admin's API token
    spawns: list[float] = field(default_factory=list)
    stages: list[dict[str, float]] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.state / "hub.log"

    def ready(self) -> bool:
        path = "/hub/api/" if self.name.startswith("bare") else SERVICE_API + "/openapi.json"
        with suppress(requests.RequestException):
            return requests.get(self.url + path, timeout=2).ok
        return False


def launch(name: str, state: Path, config: Path, env: dict[str, str], args: list[str]) -> Hub:
    state.mkdir(parents=True, exist_ok=True)
    api_port = env["WORKBENCH_HUB_API_PORT"]
    with (state / "hub.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config), *args],
            env=env,
            cwd=state,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    markers = {
        f"WORKBENCH_HUB_DIR={state}",
        f"WORKBENCH_DATA_DIR={state / 'workbench'}",
        f"JUPYTERHUB_API_URL=http://127.0.0.1:{api_port}/hub/api",
    }
    return Hub(name, f"http://127.0.0.1:{env['WORKBENCH_HUB_PORT']}", state, process, markers)


def stop(hub: Hub) -> None:
    """Stop the hub, then whatever it left behind: every process whose environment holds one
    of the hub's markers (its proxy, services and user servers run in sessions of their own)."""
    with suppress(ProcessLookupError):
        os.killpg(hub.process.pid, signal.SIGTERM)
    try:
        hub.process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(hub.process.pid, signal.SIGKILL)
    wanted = {m.encode() for m in hub.markers}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if int(pid) != os.getpid() and environ & wanted:
            with suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def hub_env(state: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "WORKBENCH_HUB_DIR": str(state),
        "WORKBENCH_HUB_PORT": str(free_port()),
        "WORKBENCH_HUB_API_PORT": str(free_port()),
        "WORKBENCH_PROXY_API_PORT": str(free_port()),
        "WORKBENCH_SERVICE_PORT": str(free_port()),
        "WORKBENCH_CHP": chp_command(),
    }
    for key in ("DATABASE_URL", "WORKBENCH_DATA_DIR", "JUPYTERHUB_API_TOKEN"):
        env.pop(key, None)
    return env


def launch_workbench(name: str, state: Path, ready_check: bool) -> Hub:
    args = [] if ready_check else ["--LocalWorkbenchSpawner.ready_check_interval=0"]
    config = REPO / "hub_config" / "jupyterhub_config.py"
    return launch(name, state, config, hub_env(state), args)


def launch_bare(name: str, state: Path, fast_imports: bool) -> Hub:
    env = hub_env(state)
    cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
    if fast_imports:  # what jupyter_workbench.hub.singleuser does, without the workbench
        cmd[1:] = ["-c", FAST_SINGLEUSER]
    token = secrets.token_hex(24)
    (state / "jupyter-config").mkdir(parents=True)
    # the same JupyterLab, without the workbench's server extension (enabled in sys.prefix)
    server_config = {"ServerApp": {"jpserver_extensions": {"jupyter_workbench": False}}}
    (state / "jupyter-config" / "jupyter_server_config.json").write_text(json.dumps(server_config))
    args = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    config = state / "bare_jupyterhub_config.py"
    config.write_text(
        BARE_CONFIG.format(
            port=env["WORKBENCH_HUB_PORT"],
            api_port=env["WORKBENCH_HUB_API_PORT"],
            proxy_port=env["WORKBENCH_PROXY_API_PORT"],
            chp=env["WORKBENCH_CHP"],
            state=str(state),
            args=args,
            cmd=cmd,
            token=token,
        )
    )
    hub = launch(name, state, config, env, [])
    hub.token = token
    return hub


def wait_until_up(hubs: Sequence[Hub]) -> None:
    deadline = time.monotonic() + HUB_START_TIMEOUT_S
    waiting = list(hubs)
    while waiting:
        for hub in list(waiting):
            if hub.ready():
                waiting.remove(hub)
            elif hub.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hub {hub.name} did not start:\n{hub.log.read_text()[-3000:]}")
        time.sleep(0.5)


class Browser:
    """A requests session that fills in the hub's forms as a browser does (cookies, _xsrf)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def post_form(self, path: str, form: dict[str, str]) -> requests.Response:
        page = self.http.get(self.url + path, timeout=30).text
        found = re.search(r'name="_xsrf" value="([^"]+)"', page)
        form["_xsrf"] = found.group(1) if found else str(self.http.cookies.get("_xsrf") or "")
        return self.http.post(self.url + path, data=form, timeout=60)

    def sign_up(self, name: str, password: str) -> None:
        form = {
            "username": name,
            "signup_password": password,
            "signup_password_confirmation": password,
        }
        self.post_form("/hub/signup", form).raise_for_status()

    def log_in(self, name: str, password: str) -> None:
        r = self.post_form("/hub/login", {"username": name, "password": password})
        if r.status_code >= 400 or "/hub/login" in r.url:
            raise RuntimeError(f"{name} could not log in ({r.status_code}, {r.url})")

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"X-XSRFToken": str(self.http.cookies.get("_xsrf") or "")}
        return self.http.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def token(self, name: str) -> str:
        r = self.api("POST", f"/hub/api/users/{name}/tokens", json={"note": "hub_bench"})
        r.raise_for_status()
        return str(r.json()["token"])


def admin_browser(hub: Hub) -> Browser:
    """Sign the admin up (admins are approved on sign-up), log in, keep an API token."""
    browser = Browser(hub.url)
    browser.sign_up(ADMIN, ADMIN_PASSWORD)
    browser.log_in(ADMIN, ADMIN_PASSWORD)
    hub.token = browser.token(ADMIN)
    return browser


# -- 1. spawn-to-ready ----------------------------------------------------------------------
def create_users(hub: Hub, names: Sequence[str]) -> None:
    r = requests.post(
        hub.url + "/hub/api/users",
        json={"usernames": list(names)},
        headers=auth(hub.token),
        timeout=60,
    )
    if r.status_code != 201:
        raise RuntimeError(f"{hub.name}: creating users: {r.status_code} {r.text[:300]}")


def spawn_once(hub: Hub, name: str) -> float:
    """Seconds from the spawn request until the server is ready and answers through the proxy."""
    api = f"{hub.url}/hub/api/users/{name}"
    with requests.Session() as http:
        http.headers.update(auth(hub.token))
        started = time.perf_counter()
        r = http.post(api + "/server", timeout=SPAWN_TIMEOUT_S)
        if r.status_code not in (201, 202):
            raise RuntimeError(f"{hub.name}: spawn of {name}: {r.status_code} {r.text[:300]}")
        deadline = started + SPAWN_TIMEOUT_S
        while not (http.get(api, timeout=30).json().get("servers") or {}).get("", {}).get("ready"):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{hub.name}: {name}'s server never became ready")
            time.sleep(POLL_S)
        status = f"{hub.url}/user/{name}/api/status"
        while http.get(status, timeout=30, allow_redirects=False).status_code != 200:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{hub.name}: {name}'s server never answered")
            time.sleep(POLL_S)
        return time.perf_counter() - started


def stop_server(hub: Hub, name: str) -> None:
    api = f"{hub.url}/hub/api/users/{name}"
    r = requests.delete(api + "/server", headers=auth(hub.token), timeout=60)
    if r.status_code not in (202, 204):
        raise RuntimeError(f"{hub.name}: stopping {name}: {r.status_code} {r.text[:300]}")
    deadline = time.monotonic() + 60
    while (requests.get(api, headers=auth(hub.token), timeout=30).json().get("servers") or {}).get(
        ""
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{hub.name}: {name}'s server did not stop")
        time.sleep(0.2)


def log_time(line: str) -> float | None:
    found = LOG_LINE.match(line)
    if not found:
        return None
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()


def stages(log_part: str, name: str, requested: float, seen: float) -> dict[str, float] | None:
    """Where one spawn's time went, from the hub log written during it (spawns run one at a
    time): request -> process started -> server running -> hub noticed -> client saw it."""
    marks: dict[str, float] = {}
    patterns = {
        "spawned": "Spawning ",
        "running": "is running at:",
        "noticed": f"Adding user {name} to proxy",
    }
    for line in log_part.splitlines():
        when = log_time(line)
        for key, text in patterns.items():
            if when is not None and key not in marks and text in line:
                marks[key] = when
    if len(marks) < len(patterns):
        return None
    return {
        "request -> process": marks["spawned"] - requested,
        "process -> running": marks["running"] - marks["spawned"],
        "running -> hub noticed": marks["noticed"] - marks["running"],
        "noticed -> client saw": seen - marks["noticed"],
    }


def measure_spawns(hubs: Sequence[Hub], rounds: int, warmup: int) -> None:
    """``warmup`` untimed then ``rounds`` timed spawns per hub, the hubs' order rotating."""
    for hub in hubs:
        create_users(hub, [f"spawn{i:03d}" for i in range(warmup + rounds)])
    for i in range(warmup + rounds):
        order = [*hubs[i % len(hubs) :], *hubs[: i % len(hubs)]]
        for hub in order:
            name = f"spawn{i:03d}"
            offset = hub.log.stat().st_size
            requested = time.time()
            seconds = spawn_once(hub, name)
            seen = time.time()
            stop_server(hub, name)
            if i < warmup:
                continue
            hub.spawns.append(seconds)
            with hub.log.open("rb") as f:
                f.seek(offset)
                part = stages(f.read().decode(errors="replace"), name, requested, seen)
            if part:
                hub.stages.append(part)
        print(
            f"  round {i + 1}/{warmup + rounds}{' (warm-up)' if i < warmup else ''}: "
            + ", ".join(f"{h.name} {h.spawns[-1]:.2f} s" for h in hubs if i >= warmup)
            + f"  [{load_note()}]",
            flush=True,
        )


def print_spawns(hubs: Sequence[Hub]) -> None:
    medians = {hub.name: statistics.median(hub.spawns) for hub in hubs}
    anchors = [name for name in medians if name.startswith("bare")]
    print(f"\nspawn-to-ready, seconds ({len(hubs[0].spawns)} spawns per hub; {load_note()}):")
    print(
        f"  {'hub':<20}{'median':>8}{'p90':>8}{'min':>8}{'max':>8}"
        + "".join(f"{'vs ' + name:>22}" for name in anchors)
    )
    for hub in hubs:
        cells = []
        for anchor in anchors:
            over = medians[hub.name] / medians[anchor] - 1
            verdict = "met" if over <= OVERHEAD_GOAL else "MISSED"
            cells.append("" if hub.name.startswith("bare") else f"{over:+.1%} {verdict}")
        print(
            f"  {hub.name:<20}{medians[hub.name]:>8.2f}{percentile(hub.spawns, 90):>8.2f}"
            f"{min(hub.spawns):>8.2f}{max(hub.spawns):>8.2f}" + "".join(f"{c:>22}" for c in cells)
        )
    print(f"  (overhead of the medians; goal <= {OVERHEAD_GOAL:.0%})")
    print("\nwhere the time went (medians, seconds, from the hub logs):")
    keys: list[str] = next((list(hub.stages[0]) for hub in hubs if hub.stages), [])
    print(f"  {'hub':<20}" + "".join(f"{k:>24}" for k in keys))
    for hub in hubs:
        if hub.stages:
            seconds = [statistics.median(s[k] for s in hub.stages) for k in keys]
            print(f"  {hub.name:<20}" + "".join(f"{v:>24.2f}" for v in seconds))


# -- 2. users on the API ----------------------------------------------------------------------
@dataclass
class Load:
    latencies: dict[str, list[float]] = field(default_factory=dict)  # by operation
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self, label: str) -> list[str]:
        """The whole load (calls, requests/s, p50/p99 ms, errors), then each operation's."""
        everything = [v for values in self.latencies.values() for v in values]
        n = len(everything) + len(self.errors)
        out = [
            f"  {label:<36}{n:>7}{n / self.seconds:>9.1f}"
            + self._ms(everything)
            + f"{len(self.errors):>8}"
        ]
        if len(self.latencies) > 1:
            out += [
                f"    {op:<34}{len(v):>7}{'':>9}" + self._ms(v) for op, v in self.latencies.items()
            ]
        return out

    @staticmethod
    def _ms(seconds: list[float]) -> str:
        ms = [v * 1000 for v in seconds] or [float("nan")]
        return f"{percentile(ms, 50):>9.1f}{percentile(ms, 99):>9.1f}"


def user_tokens(hub: Hub, admin: Browser, count: int, by_form: int) -> list[tuple[str, str]]:
    """``by_form`` users sign up through the form, are approved and log in; the rest are made,
    and given tokens, by the admin through the hub API."""
    tokens = []
    for i in range(min(by_form, count)):
        name, password = f"form{i:03d}", "Pa55-word-" + secrets.token_hex(4)
        browser = Browser(hub.url)
        browser.sign_up(name, password)
        admin.api("GET", f"/hub/authorize/{name}").raise_for_status()
        browser.log_in(name, password)
        tokens.append((name, browser.token(name)))
    return tokens + api_tokens(hub, [f"api{i:03d}" for i in range(count - len(tokens))])


def api_tokens(hub: Hub, names: list[str]) -> list[tuple[str, str]]:
    if not names:
        return []
    create_users(hub, names)
    tokens = []
    for name in names:
        r = requests.post(
            f"{hub.url}/hub/api/users/{name}/tokens",
            headers=auth(hub.token),
            json={"note": "hub_bench"},
            timeout=60,
        )
        r.raise_for_status()
        tokens.append((name, str(r.json()["token"])))
    return tokens


def run_users(
    users: Sequence[tuple[str, str]], concurrency: int, session: Callable[..., None]
) -> Load:
    load = Load()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda user: session(*user, load), users))
    load.seconds = time.perf_counter() - started
    return load


def timed(http: requests.Session, load: Load, op: str, method: str, url: str, **kw: Any) -> Any:
    started = time.perf_counter()
    try:
        r = http.request(method, url, timeout=60, allow_redirects=False, **kw)
    except requests.RequestException as e:
        load.errors.append(f"{method} {url}: {e}")
        return None
    elapsed = time.perf_counter() - started
    if r.status_code >= 300:
        load.errors.append(f"{method} {url}: {r.status_code} {r.text[:200]}")
        return None
    load.latencies.setdefault(op, []).append(elapsed)  # list.append: atomic across threads
    return r.json()


def workbench_session(hub: Hub, calls: int) -> Callable[[str, str, Load], None]:
    def session(name: str, token: str, load: Load) -> None:
        api = hub.url + SERVICE_API
        with requests.Session() as http:
            http.headers.update(auth(token))
            slug = f"{name}-{secrets.token_hex(3)}"
            steps: list[tuple[str, str, str, dict[str, Any]]] = [
                ("GET me (the user's first call)", "GET", "/me", {}),
                ("GET projects", "GET", "/projects", {}),
                ("POST projects", "POST", "/projects", {"json": {"name": slug, "slug": slug}}),
                ("GET projects/{slug}", "GET", f"/projects/{slug}", {}),
            ]
            again: tuple[str, str, str, dict[str, Any]] = (
                "GET projects (again)",
                "GET",
                "/projects",
                {},
            )
            for i in range(calls):
                op, method, path, kw = steps[i] if i < len(steps) else again
                timed(http, load, op, method, api + path, **kw)

    return session


def hub_session(hub: Hub, calls: int) -> Callable[[str, str, Load], None]:
    def session(name: str, token: str, load: Load) -> None:
        with requests.Session() as http:
            http.headers.update(auth(token))
            for _ in range(calls):
                timed(http, load, "GET /hub/api/user", "GET", hub.url + "/hub/api/user")

    return session


# -- main -------------------------------------------------------------------------------------
def launch_variant(name: str, tmp: Path) -> Hub:
    state = tmp / name.replace("+", "-")
    if name.startswith("bare"):
        return launch_bare(name, state, fast_imports=name == "bare+fast-imports")
    return launch_workbench(name, state, ready_check=name == "workbench+check")


@contextmanager
def hubs_running(tmp: Path, variants: Sequence[str]) -> Iterator[list[Hub]]:
    with ExitStack() as stack:
        hubs = []
        for name in variants:
            hub = launch_variant(name, tmp)
            stack.callback(stop, hub)
            hubs.append(hub)
        try:
            yield hubs
        except BaseException:
            for hub in hubs:
                print(
                    f"--- {hub.name} hub log (last lines) ---\n{hub.log.read_text()[-2500:]}",
                    file=sys.stderr,
                )
            raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 spawns per hub, 10 users")
    parser.add_argument("--spawns", type=int, help="timed spawns per hub (default 5; quick 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed spawns per hub first")
    parser.add_argument("--users", type=int, help="simulated users (default 100; quick 10)")
    parser.add_argument("--calls", type=int, default=5, help="API calls per user")
    parser.add_argument("--concurrency", type=int, default=20, help="users at a time")
    parser.add_argument(
        "--form-users", type=int, default=3, help="users that sign up and log in through the forms"
    )
    parser.add_argument(
        "--hubs",
        default=",".join(VARIANTS),
        help=f"comma-separated, of {', '.join(VARIANTS)} (default: all)",
    )
    args = parser.parse_args(argv)
    spawns = args.spawns or (2 if args.quick else 5)
    users = args.users or (10 if args.quick else 100)
    variants = [name for name in VARIANTS if name in args.hubs.split(",")]
    if spawns < 1 or users < 1 or args.calls < 1 or not 1 <= args.concurrency <= 50:
        parser.error("--spawns, --users and --calls must be positive, --concurrency 1..50")
    if set(args.hubs.split(",")) - set(VARIANTS) or not any(v.startswith("bare") for v in variants):
        parser.error(f"--hubs: one bare hub at least, of {', '.join(VARIANTS)}")
    print(
        f"hub benchmark: {', '.join(variants)}; {spawns} timed spawns per hub after "
        f"{args.warmup} warm-up; {users} users x {args.calls} API calls, {args.concurrency} at "
        f"a time; {load_note()}",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="wb_hubbench_") as tmp,
        hubs_running(Path(tmp), variants) as hubs,
    ):
        started = time.perf_counter()
        wait_until_up(hubs)
        admins = {hub.name: admin_browser(hub) for hub in hubs if not hub.name.startswith("bare")}
        print(f"  {len(hubs)} hubs up in {time.perf_counter() - started:.1f} s", flush=True)

        measure_spawns(hubs, spawns, args.warmup)
        print_spawns(hubs)

        bare = hubs[0]
        started = time.perf_counter()
        anchor = run_users(
            api_tokens(bare, [f"load{i:03d}" for i in range(users)]),
            args.concurrency,
            hub_session(bare, args.calls),
        )
        print(f"\n{users} users through the proxy, {args.concurrency} at a time ({load_note()}):")
        print(f"  {'':<36}{'calls':>7}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
        print("\n".join(anchor.lines(f"{bare.name} hub: GET /hub/api/user")))
        errors = anchor.errors
        if admins:
            workbench = hubs[-1]
            started = time.perf_counter()
            wb_users = user_tokens(workbench, admins[workbench.name], users, args.form_users)
            made = time.perf_counter() - started
            wb = run_users(wb_users, args.concurrency, workbench_session(workbench, args.calls))
            print("\n".join(wb.lines(f"{workbench.name}: workbench API")))
            print(
                f"  ({min(args.form_users, users)} of the workbench's users signed up, were "
                f"approved and logged in through the forms; making all {users} and their "
                f"tokens took {made:.1f} s)"
            )
            errors += wb.errors
        for error in errors[:5]:
            print(f"  error: {error}")
        print(f"\nerrors: {len(errors)} (goal 0)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
