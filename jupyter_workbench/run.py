"""``make lab``: start JupyterLab with the workbench on embedded defaults and print its URL.

The server token is kept in the workbench data dir so bookmarks survive restarts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import fast_start
from .settings import Workbench


def _token(data_dir: Path) -> str:
    path = data_dir / "run-token"
    data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_hex(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token


def _stop_with_parent() -> None:
    """In the child: SIGTERM when this wrapper dies, however it dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_ready(url: str, token: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8888)
    args, extra = parser.parse_known_args(argv)
    data_dir = Path(Workbench().data_dir)
    token = _token(data_dir)
    cmd = [
        *fast_start.command("jupyterlab"),
        f"--ServerApp.ip={args.host}",
        f"--ServerApp.port={args.port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        f"--IdentityProvider.token={token}",
        "--ServerApp.identity_provider_class=jupyter_workbench.identity.WorkbenchIdentityProvider",
        *extra,
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    # Its own session: Ctrl+C reaches this process only, which asks JupyterLab to stop once
    # (SIGTERM: no "Shutdown this server?" prompt). Sharing the terminal's group, it got the
    # key's SIGINT and the forwarded one, and without a terminal the second interrupted its
    # shutdown (a traceback, exit 254).
    proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=_stop_with_parent)
    base = f"http://{args.host}:{args.port}"

    def stop(_signum: int, _frame: object) -> None:
        proc.send_signal(signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    if _wait_ready(f"{base}/workbench/api/v1/me", token, proc):
        print(
            "\n"
            "  Jupyter Workbench is running\n"
            f"    JupyterLab:  {base}/lab?token={token}\n"
            f"    API:         {base}/workbench/api/v1/  (header 'Authorization: token {token}')\n"
            f"    API docs:    {base}/workbench/api/v1/openapi.json\n"
            f"    Data:        {data_dir}\n"
            "  Press Ctrl+C to stop.\n",
            flush=True,
        )
    elif proc.poll() is None:
        print(f"The server did not answer on {base} yet; see its log above.", file=sys.stderr)
    return proc.wait()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
