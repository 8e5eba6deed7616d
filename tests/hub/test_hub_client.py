"""The Python client and the stock mlflow client on a real JupyterHub: in a "Python 3
(Workbench)" kernel of a user's own server they find the workbench with nothing set; from
outside (a laptop script) ``WORKBENCH_URL`` + the user's hub token reach the same data."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from jupyter_workbench.client import Client

from .conftest import Hub, auth, start_server

pytestmark = pytest.mark.slow

SERVICE = "/services/workbench/workbench/api/v1"


class Kernel:
    """A kernel of a user's server, driven over its WebSocket as JupyterLab does."""

    def __init__(self, hub: Hub, user: str, token: str) -> None:
        self.base = f"{hub.url}/user/{user}"
        self.token = token
        r = requests.post(
            f"{self.base}/api/kernels",
            json={"name": "workbench-python3"},
            headers=auth(token),
            timeout=60,
        )
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]
        self.socket: Any = None

    async def connect(self) -> Kernel:
        url = self.base.replace("http://", "ws://") + f"/api/kernels/{self.id}/channels"
        self.socket = await websocket_connect(HTTPRequest(url, headers=auth(self.token)))
        return self

    async def run(self, code: str, timeout: float = 120) -> str:
        """Execute ``code``; its printed output, or AssertionError with the kernel's error."""
        msg_id = uuid.uuid4().hex
        await self.socket.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "test",
                        "session": "hub-client-test",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "content": {"code": code, "silent": False, "stop_on_error": True},
                }
            )
        )
        out: list[str] = []
        errors: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.socket.read_message(), timeout)
            assert raw is not None, "the kernel's socket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["header"]["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                errors.append("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                break
        assert not errors, "\n".join(errors)[-3000:]
        return "".join(out)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        requests.delete(f"{self.base}/api/kernels/{self.id}", headers=auth(self.token), timeout=60)


def test_client_and_stock_mlflow_in_a_hub_kernel_and_from_outside(
    hub: Hub, new_user: Any, tmp_path: Any
) -> None:
    alice, _, _, token = new_user("alice")
    start_server(hub, alice, token)
    slug = f"hubclient-{uuid.uuid4().hex[:6]}"

    async def in_kernel() -> str:
        kernel = await Kernel(hub, alice, token).connect()
        try:
            return await kernel.run(
                f"""
import os, pathlib
import jupyter_workbench as wb
import mlflow
project = wb.create_project("Hub client", slug={slug!r}, exist_ok=True)
wb.use(project.slug)
folder = pathlib.Path("hub-client-data"); folder.mkdir(exist_ok=True)
(folder / "a.csv").write_text("x,y\\n1,2\\n3,4\\n")
wb.datasets.commit("points", folder, message="two points")
with wb.run(experiment="hub", params={{"seed": 1}}) as run:
    rows = wb.datasets.get("points").to_pandas("a.csv")
    for step in range(20):
        run.log({{"loss": 1 / (step + 1)}}, step=step)
mlflow.set_experiment("{slug}/hub")
with mlflow.start_run() as stock:
    mlflow.log_metric("acc", 0.75)
print("RUN", run.run_id, "STOCK", stock.info.run_id, "ROWS", len(rows))
# the datasets command in a terminal of her server (no WORKBENCH_* there): the hub's store
import subprocess, sys
env = {{k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}}
cli = subprocess.run(
    [sys.executable, "-m", "jupyter_workbench.cli", "datasets", "list", f"{slug}/points"],
    capture_output=True, text=True, env=env, timeout=120,
)
print("CLI", cli.returncode, (cli.stdout or cli.stderr).split()[0])
"""
            )
        finally:
            kernel.close()

    out = asyncio.run(in_kernel())
    words = out.split()
    run_id, stock_id = words[words.index("RUN") + 1], words[words.index("STOCK") + 1]
    assert words[words.index("ROWS") + 1] == "2"
    assert words[words.index("CLI") + 1 : words.index("CLI") + 3] == ["0", "v1"], out

    # the service saw alice (her hub name), her run with its points and its dataset lineage
    def get(path: str, **params: str) -> Any:
        r = requests.get(
            f"{hub.url}{SERVICE}/{path}", params=params, headers=auth(token), timeout=30
        )
        assert r.ok, r.text
        return r.json()

    assert get("me")["username"] == alice
    history = get(f"runs/{run_id}/metrics/loss/history")
    assert history["total"] == 20 and history["values"][-1] == pytest.approx(1 / 20)
    lineage = get(f"runs/{run_id}/lineage")
    assert [d["dataset"] for d in lineage["datasets_read"]] == ["points"]
    assert get(f"runs/{stock_id}/metrics/acc/history")["values"] == [0.75]

    # a laptop script: WORKBENCH_URL (her server, or the service itself) + her hub token
    for url in (f"{hub.url}/user/{alice}", f"{hub.url}/services/workbench"):
        client = Client(url, token)
        assert slug in [p.slug for p in client.projects()]
        assert client.history(run_id, "loss", max_points=10)["total"] == 20
    # through her server, URLs the service answers with are her server's own
    via = f"{hub.url}/user/{alice}/workbench/api/v1"
    made = requests.post(f"{via}/projects", json={"name": f"Located {slug}"},
                         headers=auth(token), timeout=30)  # fmt: skip
    assert made.status_code == 201, made.text
    assert (
        made.headers["Location"]
        == f"/user/{alice}/workbench/api/v1/projects/" + (made.json()["slug"])
    )
    lost = requests.get(f"{via}/no-such-route", headers=auth(token), timeout=30)
    assert lost.status_code == 404 and "'/no-such-route'" in lost.json()["message"]
    assert "/services/" not in lost.json()["message"]
    # her server offers the example notebooks and copies one into her folder; the hub's
    # service, which has no user files, does not
    examples = requests.get(
        f"{hub.url}/user/{alice}/workbench/examples", headers=auth(token), timeout=30
    )
    assert examples.ok and examples.json()["items"][0]["name"] == "quickstart", examples.text
    copied = requests.post(
        f"{hub.url}/user/{alice}/workbench/examples/quickstart",
        json={},
        headers=auth(token),
        timeout=30,
    )
    assert copied.status_code == 201 and copied.json()["path"] == "quickstart.ipynb"
    opened = requests.get(
        f"{hub.url}/user/{alice}/api/contents/quickstart.ipynb", headers=auth(token), timeout=30
    )
    assert opened.json()["content"]["metadata"]["kernelspec"]["name"] == "workbench-python3"
    service = requests.get(
        f"{hub.url}/services/workbench/workbench/examples", headers=auth(token), timeout=30
    )
    assert service.status_code == 404

    # and a stranger's token sees none of it
    _bob, _, _, bob_token = new_user("bob")
    r = requests.get(
        f"{hub.url}{SERVICE}/runs/{run_id}/metrics/loss/history",
        headers=auth(bob_token),
        timeout=30,
    )
    assert r.status_code == 404
