"""The lab smoke test through a real JupyterHub: a user logs in at the hub, opens JupyterLab in
her own server, creates a project in the Workbench sidebar, sees a dataset's versions and their
diff, watches a run's chart receive points while a process logs to it through her server, and
compares two runs -- the same lab extension as standalone, every request forwarded by her
server to the hub's workbench service under her hub identity."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_workbench.client import Client

from .conftest import Hub, auth, start_server
from .test_admin_panel import ARTIFACTS, in_chromium

pytestmark = pytest.mark.slow

PANEL = "#jupyter-workbench-panel"
SERVICE = "/services/workbench/workbench/api/v1"


def _ignorable(text: str) -> bool:
    # JupyterLab asks for news once; nothing of ours
    return "jupyterlab/apputils-extension:notification" in text or "favicon" in text


def test_the_lab_extension_works_through_the_hub(hub: Hub, new_user: Any, tmp_path: Path) -> None:
    alice, password, _, token = new_user("alice")
    start_server(hub, alice, token)
    errors: list[str] = []
    server = f"{hub.url}/user/{alice}"
    found: dict[str, Any] = {}

    def seed(slug: str) -> None:
        """A laptop script with her hub token, through her server: two dataset versions, two
        finished runs and one that keeps logging."""
        client = Client(server, token, project=slug)
        folder = tmp_path / "orders"
        folder.mkdir()
        (folder / "orders.csv").write_text("id,total\n1,10\n2,20\n")
        client.datasets.commit("orders", folder, message="April", progress=False)
        (folder / "orders.csv").write_text("id,total,currency\n1,10,EUR\n2,20,EUR\n3,5,USD\n")
        client.datasets.commit("orders", folder, message="May", progress=False)
        ids = []
        for lr in ("0.1", "0.01"):
            with client.run(slug, "sweep", params={"lr": lr, "seed": "1"}, name=f"lr{lr}") as run:
                for step in range(20):
                    run.log({"loss": float(lr) + 1 / (step + 1)}, step=step)
            ids.append(run.run_id)
        live = client.run(slug, "sweep", params={"lr": "0.5", "seed": "2"}, name="live")
        live.log({"loss": 3.0}, step=0)
        live.flush()
        stop = threading.Event()

        def keep_logging() -> None:
            step = 1
            while not stop.wait(0.2):
                live.log({"loss": 2.0 + 1 / (step + 1)}, step=step)
                step += 1

        thread = threading.Thread(target=keep_logging, daemon=True)
        thread.start()
        found.update(ids=ids, live=live, stop=stop, thread=thread, client=client)

    def scenario(chromium: Any) -> None:
        # the hub's login page, as a user types it; her running server's lab opens after it
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(f"{hub.url}/hub/login?next=/user/{alice}/lab")
        page.fill("input[name=username]", alice)
        page.fill("input[name=password]", password)
        page.click("input[type=submit], button[type=submit]")
        page.on(
            "console",
            lambda m: m.type == "error" and not _ignorable(m.text) and errors.append(m.text),
        )
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.wait_for_url(f"**/user/{alice}/lab**")
        page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
        page.click(f".jp-SideBar [data-id='{PANEL[1:]}']")
        page.wait_for_selector(f"{PANEL}[data-loaded=true]")
        # a project made in the sidebar is hers on the hub's service
        page.fill(f"{PANEL} input[name=name]", f"Hub smoke {alice}")
        page.click(f"{PANEL} button[type=submit]")
        item = page.locator(f"{PANEL} li.jp-WorkbenchPanel-project", has_text="Hub smoke")
        item.wait_for()
        slug = item.get_attribute("data-slug") or ""
        assert slug, item.evaluate("e => e.outerHTML")
        owner = page.locator(f"{PANEL} li.jp-WorkbenchPanel-member").first
        owner.wait_for()
        assert alice in owner.inner_text() and "owner" in owner.inner_text()

        seed(slug)
        page.click(f"{PANEL} .jp-WorkbenchPanel-refresh")
        # the dataset: both versions and the diff, CSV schema included
        page.locator(f"{PANEL} li.jp-WorkbenchPanel-dataset[data-dataset=orders]").click()
        dataset = page.locator(".jp-WorkbenchDataset[data-loaded=true]")
        dataset.wait_for()
        assert dataset.locator("li.jp-WorkbenchDataset-version").count() == 2
        dataset.locator(".jp-WorkbenchDataset-compare button[type=submit]").click()
        dataset.locator(".jp-WorkbenchDataset-summary").wait_for()
        changed = dataset.locator(".jp-WorkbenchDataset-table[data-path='orders.csv']")
        changed.wait_for()
        assert "currency" in changed.inner_text()

        # the experiment: the live run's chart receives points, then two runs compared
        page.locator(f"{PANEL} li.jp-WorkbenchPanel-experiment[data-experiment=sweep]").click()
        view = page.locator(".jp-WorkbenchExperiment[data-loaded=true]")
        view.wait_for()
        rows = view.locator(".jp-WorkbenchExperiment-row")
        rows.first.wait_for()
        assert rows.count() == 3
        live_id = found["live"].run_id
        view.locator(f".jp-WorkbenchExperiment-row[data-run-id='{live_id}']").click()
        legend = view.locator(f".jp-WorkbenchExperiment-legendItem[data-run-id='{live_id}']")
        legend.wait_for()
        start = int(legend.get_attribute("data-points") or 0)
        page.wait_for_function(
            "([id, n]) => Number(document.querySelector("
            "`.jp-WorkbenchExperiment-legendItem[data-run-id='${id}']`)?.dataset.points) >= n",
            arg=[live_id, start + 5],
            timeout=60_000,
        )
        view.locator(f".jp-WorkbenchExperiment-row[data-run-id='{live_id}']").click()  # off
        for run_id in found["ids"]:
            view.locator(f".jp-WorkbenchExperiment-row[data-run-id='{run_id}']").click()
        page.wait_for_function(
            "document.querySelectorAll('.jp-WorkbenchExperiment-row.jp-mod-selected').length === 2"
        )
        view.locator("button.jp-WorkbenchExperiment-compare").click()
        compare = page.locator(".jp-WorkbenchCompare[data-loaded=true]")
        compare.wait_for()
        lr = compare.locator("tr[data-param=lr]")
        assert "jp-mod-differs" in (lr.get_attribute("class") or "")
        assert sorted(lr.locator("td").all_inner_texts()) == ["0.01", "0.1"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hub-lab-compare.png"))

    try:
        in_chromium(scenario)
    finally:
        if "stop" in found:
            found["stop"].set()
            found["thread"].join(10)
            found["live"].end()
            found["client"].close()
    assert not errors, errors
    # what the sidebar made is on the service, owned by her hub identity
    r = requests.get(f"{hub.url}{SERVICE}/projects", headers=auth(token), timeout=30)
    assert any(p["name"] == f"Hub smoke {alice}" for p in r.json()["items"]), r.text
