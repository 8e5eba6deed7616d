"""A real ``jupyter server`` process with the workbench that tests can stop, kill and restart
on the same port and database (what a crash or a redeploy does to co-editing rooms)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

from jupyter_workbench import fast_start

# every server extension the test environment enables (jupyter_server_config.d)
SERVER_EXTENSIONS = (
    "jupyter_lsp",
    "jupyter_server_fileid",
    "jupyter_server_terminals",
    "jupyter_server_ydoc",
    "jupyter_workbench",
    "jupyterlab",
    "notebook",
    "notebook_shim",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkbenchServer:
    def __init__(self, tmp_path: Path, db_url: str, users: list[str], **workbench: Any) -> None:
        self.dir = tmp_path
        self.port = free_port()
        self.tokens = {user: f"tok-{user}-{os.urandom(6).hex()}" for user in users}
        config_dir = tmp_path / "config"
        config_dir.mkdir(exist_ok=True)
        config = {
            "ServerApp": {
                "ip": "127.0.0.1",
                "port": self.port,
                "port_retries": 0,
                "open_browser": False,
                "allow_root": True,
                # the workbench alone: the lab, the language servers and the rest of what the
                # environment enables would make every (re)start several times slower
                "jpserver_extensions": {
                    name: name == "jupyter_workbench" for name in SERVER_EXTENSIONS
                },
                "identity_provider_class": "jupyter_workbench.identity.WorkbenchIdentityProvider",
            },
            "IdentityProvider": {"token": f"owner-{os.urandom(6).hex()}"},
            "WorkbenchIdentityProvider": {
                "user_tokens": {token: user for user, token in self.tokens.items()},
                "owner_username": "owner",
            },
            "Workbench": {
                "database_url": db_url,
                "data_dir": str(tmp_path / "wb"),
                "purge_interval_seconds": 0,
                "mlflow_autostart": False,
                **workbench,
            },
        }
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_DATA_DIR": str(tmp_path / "data"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def api(self, user: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self.http}/workbench/api/v1/",
            headers={"Authorization": f"token {self.tokens[user]}"},
            timeout=30,
        )

    def start(self) -> None:
        self.starts += 1
        log = (self.dir / f"server-{self.starts}.log").open("w")
        self.proc = subprocess.Popen(
            fast_start.command("jupyter_server"),
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"{self.http}/workbench/api/v1/openapi.json"
                with urllib.request.urlopen(url, timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    text = (self.dir / f"server-{self.starts}.log").read_text()
                    raise RuntimeError(text[-3000:]) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None
