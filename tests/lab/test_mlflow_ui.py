"""MLflow's own web UI, reached through the workbench's proxy, shows a user only the experiments
of projects they may see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ..collab.server import WorkbenchServer
from .conftest import OUTPUT, in_chromium


@pytest.fixture
def server(tmp_path: Path, mlflow_config: dict[str, str]) -> Iterator[WorkbenchServer]:
    srv = WorkbenchServer(
        tmp_path, f"sqlite:///{tmp_path / 'wb.db'}", ["alice", "bob"], **mlflow_config
    )
    srv.start()
    yield srv
    srv.stop()


def _post(server: WorkbenchServer, user: str, path: str, body: dict[str, Any]) -> Any:
    r = requests.post(
        f"{server.http}/workbench/api/v1/{path}",
        json=body,
        headers={"Authorization": f"token {server.tokens[user]}"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.slow
def test_the_mlflow_ui_lists_only_the_callers_experiments(server: WorkbenchServer) -> None:
    mine = _post(server, "alice", "projects", {"name": "UI alice"})["slug"]
    theirs = _post(server, "bob", "projects", {"name": "UI bob"})["slug"]
    _post(server, "alice", f"projects/{mine}/experiments", {"name": "alice-exp"})
    _post(server, "bob", f"projects/{theirs}/experiments", {"name": "bob-exp"})
    seen: list[str] = []

    def scenario(chromium: Any) -> None:
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        # signing in with the token once leaves a login cookie; the UI's own calls use it
        page.goto(f"{server.http}/workbench/mlflow/?token={server.tokens['alice']}")
        page.goto(f"{server.http}/workbench/mlflow/#/experiments")
        page.wait_for_selector(f"text={mine}/alice-exp")
        page.wait_for_timeout(500)
        seen.append(page.inner_text("body"))
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "mlflow-ui.png"))

    in_chromium(scenario)
    assert f"{mine}/alice-exp" in seen[0]
    assert "bob-exp" not in seen[0] and theirs not in seen[0]
