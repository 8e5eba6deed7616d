"""The server extension: enabled on install, serves under base_url, purges the trash."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from jupyter_workbench.core import audit
from jupyter_workbench.core.context import Identity
from jupyter_workbench.db.models import Project, utcnow


def test_extension_is_enabled_by_the_installed_config() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "jupyter_workbench" in output and "enabled" in output.split("jupyter_workbench", 1)[1]


@pytest.fixture
def jp_server_config(jp_server_config):
    jp_server_config["Workbench"]["purge_interval_seconds"] = 1
    jp_server_config["Workbench"]["trash_retention_days"] = 30
    return jp_server_config


async def test_server_purges_projects_past_their_retention(api, jp_serverapp) -> None:
    # A real server runs this once its event loop starts; pytest-jupyter does not start it.
    await jp_serverapp._post_start()
    alice = api("alice")
    for name in ("old", "recent"):
        assert (await alice.post("projects", {"name": name})).status == 201
        assert (await alice.delete(f"projects/{name}")).status == 204
    service = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.service
    admin = Identity("seeder", is_admin=True)
    long_ago = utcnow() - timedelta(days=31)
    service.call(
        admin,
        lambda s, _ctx: s.execute(
            update(Project).where(Project.slug == "old").values(deleted_at=long_ago)
        ),
        write=True,
    )
    for _ in range(50):
        trash = (await alice.get("projects", params={"deleted": "true"})).json["items"]
        if [p["slug"] for p in trash] == ["recent"]:
            break
        await asyncio.sleep(0.1)
    assert [p["slug"] for p in trash] == ["recent"]
    purges = service.call(
        admin,
        lambda s, ctx: [
            (e.action, e.actor_name, e.project_slug)
            for e in audit.list_events(s, ctx, action="project.purge").items
        ],
        write=False,
    )
    assert purges == [("project.purge", "[system]", "old")]


async def test_kernels_get_the_workbench_and_mlflow_environment(
    jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("WORKBENCH_URL", "WORKBENCH_TOKEN", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WORKBENCH_URL", "http://kept.example/")  # an explicit setting wins
    await jp_serverapp._post_start()
    km = jp_serverapp.kernel_manager
    kernel_id = await km.start_kernel(kernel_name="python3")
    try:
        client = km.get_kernel(kernel_id).client()
        client.start_channels()
        await client.wait_for_ready(timeout=60)
        keys = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "WORKBENCH_URL")
        code = f"import os; print(*(os.environ[k] for k in {keys!r}))"
        outputs: list[str] = []
        await client.execute_interactive(
            code, output_hook=lambda m: outputs.append(m["content"].get("text", "")), timeout=60
        )
        client.stop_channels()
    finally:
        await km.shutdown_kernel(kernel_id, now=True)
    uri, token, url = "".join(outputs).split()
    assert uri.endswith("/workbench/mlflow") and uri.startswith("http://")
    assert token == jp_serverapp.identity_provider.token
    assert url == "http://kept.example/"
