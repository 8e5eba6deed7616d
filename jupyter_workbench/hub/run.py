"""``make run``: a local JupyterHub with the workbench service, on http://127.0.0.1:8000.

On the first run it creates the admin account (a generated password, kept in the hub's state
folder) and prints how to log in; users sign up at /hub/signup and the admin approves them at
/hub/authorize.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from jupyter_workbench import fast_start
from jupyter_workbench.hub.oauth import OAuthConfigError, oauth_provider

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "hub_config" / "jupyterhub_config.py"


def state_dir() -> Path:
    return Path(
        os.environ.get("WORKBENCH_HUB_DIR")
        or Path.home() / ".local" / "share" / "jupyter" / "workbench-hub"
    )


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    return False


def sign_up(base: str, username: str, password: str) -> bool:
    """Create an account through the hub's own sign-up form (XSRF cookie and field, as a
    browser does). The admin account is approved by being in admin_users."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    page = opener.open(f"{base}/hub/signup", timeout=10).read().decode()
    found = re.search(r'name="_xsrf" value="([^"]+)"', page)
    form = {
        "username": username,
        "signup_password": password,
        "signup_password_confirmation": password,
        "_xsrf": found.group(1) if found else "",
    }
    data = urllib.parse.urlencode(form).encode()
    body = opener.open(f"{base}/hub/signup", data=data, timeout=10).read().decode()
    return "exists" not in body.lower()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ip", default=os.environ.get("WORKBENCH_HUB_IP", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("WORKBENCH_HUB_PORT", "8000"))
    )
    args = parser.parse_args(argv)
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WORKBENCH_HUB_DIR": str(state), "WORKBENCH_HUB_IP": args.ip,
           "WORKBENCH_HUB_PORT": str(args.port)}  # fmt: skip
    admin = env.get("WORKBENCH_HUB_ADMIN", "admin")
    try:
        provider = oauth_provider(env)  # None: local accounts, with an admin account to create
    except OAuthConfigError:
        provider = "OAuth"  # the hub stops at start and names the setting to fix
    password_file = state / "admin-password"
    first_run = provider is None and not password_file.exists()
    if first_run:
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(12))
    password = password_file.read_text().strip() if provider is None else ""
    base = f"http://{args.ip}:{args.port}"
    for attempt in range(3):
        # In a session of its own: a terminal's Ctrl+C reaches only this process, which hands
        # the hub one signal, and the hub stops its services and servers itself. (Sent to the
        # whole group, the hub began its shutdown twice and its service died mid-way with a
        # KeyboardInterrupt.) A closed terminal (SIGHUP) stops the hub too.
        hub = subprocess.Popen(
            fast_start.command("jupyterhub", "-f", str(CONFIG)),
            env=env,
            cwd=state,
            start_new_session=True,
        )
        forward = hub.send_signal
        for received, sent in (
            (signal.SIGINT, signal.SIGINT),
            (signal.SIGTERM, signal.SIGTERM),
            (signal.SIGHUP, signal.SIGTERM),
        ):
            signal.signal(received, lambda _n, _f, forward=forward, sent=sent: forward(sent))  # type: ignore[misc]
        if wait_up(f"{base}/hub/login", hub):
            break
        # JupyterHub gives its services 10 s to answer; a first start on a busy machine
        # (migrations, imports) can take longer: try again before giving up
        if hub.poll() is None or attempt == 2:
            print("The hub did not start; see its log above.", file=sys.stderr)
            hub.terminate()
            return hub.wait()
        print("The hub stopped while starting; starting it again.", file=sys.stderr)
        time.sleep(1)
    if first_run:
        sign_up(base, admin, password)
    accounts = (
        f"    Log in:      with {provider} (OAuth); admins: OAUTH_ADMIN_USERS\n"
        if provider
        else f"    Admin:       {admin} / {password}   (kept in {password_file})\n"
        f"    New users:   sign up at {base}/hub/signup, the admin approves them at\n"
        f"                 {base}/hub/authorize\n"
    )
    print(
        "\n"
        "  Jupyter Workbench hub is running\n"
        f"    Open:        {base}/\n"
        f"{accounts}"
        f"    Workbench:   {base}/services/workbench/workbench/api/v1/  (and in each user server)\n"
        f"    Admin panel: {base}/services/workbench/admin\n"
        f"    State:       {state}\n"
        "  Press Ctrl+C to stop.\n",
        flush=True,
    )
    return hub.wait()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
