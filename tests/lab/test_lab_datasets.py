"""A project's datasets in a real JupyterLab: two versions committed with the CLI, then the
sidebar, the versions timeline, the files (with downloads), the card, tags and the diff."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import OUTPUT, Lab, in_chromium, lab_env
from .test_lab_ui import PANEL, console_error

VIEW = ".jp-WorkbenchDataset"
SALES_V1 = "region,amount\nnorth,10\nsouth,20\neast,30\n"
SALES_V2 = SALES_V1 + "west,40\nnorth,50\n"
CUSTOMERS_V1 = "id,name\n1,Ada\n2,Grace\n"
CUSTOMERS_V2 = "id,name,country\n1,Ada,UK\n2,Grace,US\n"


def _commit(lab: Lab, tmp_path: Path, user: str, folder: Path, message: str) -> None:
    """``jupyter workbench datasets commit sales/orders FOLDER -m MESSAGE``, as ``user``."""
    cmd = [
        sys.executable, "-m", "jupyter_workbench.cli", "datasets", "commit", "sales/orders",
        str(folder), "-m", message, f"--as={user}", "--quiet",
        f"--database-url={lab.database_url}",
    ]  # fmt: skip
    done = subprocess.run(
        cmd, env=lab_env(tmp_path), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout


def _write(folder: Path, files: dict[str, str], prices: list[Any]) -> Path:
    """The CSV files, and prices.parquet with a ``price`` column of these values."""
    import pandas as pd

    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    frame = pd.DataFrame({"sku": [f"s{i}" for i in range(len(prices))], "price": prices})
    frame.to_parquet(folder / "prices.parquet", index=False)
    return folder


@pytest.mark.slow
def test_the_dataset_view_shows_versions_files_and_the_diff(lab: Lab, tmp_path: Path) -> None:
    auth = {"Authorization": f"token {lab.token}"}
    made = requests.post(lab.api("projects"), json={"name": "Sales"}, headers=auth, timeout=30)
    assert made.status_code == 201, made.text
    user = requests.get(lab.api("me"), headers=auth, timeout=30).json()["username"]
    # no "Jupyter news?" toast over the screenshot
    news = requests.put(
        f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
        json={"raw": '{"fetchNews": "false"}'}, headers=auth, timeout=30,
    )  # fmt: skip
    assert news.status_code == 204, news.text
    errors: list[str] = []

    def commit_two_versions() -> None:
        v1 = _write(tmp_path / "v1", {"sales.csv": SALES_V1, "customers.csv": CUSTOMERS_V1}, [3, 4])
        _commit(lab, tmp_path, user, v1, "first import")
        v2 = _write(
            tmp_path / "v2",
            {"sales.csv": SALES_V2, "customers.csv": CUSTOMERS_V2, "README.md": "# Orders\n"},
            [3.5, 4.0],  # int64 -> double
        )
        _commit(lab, tmp_path, user, v2, "May orders, customers' country")
        base = lab.api("projects/sales/datasets/orders")
        card = {"card": "# Orders\n\nOne row per **order**, in EUR."}
        r = requests.patch(base, json=card, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        r = requests.put(
            f"{base}/tags/production", json={"version": "v1"}, headers=auth, timeout=30
        )
        assert r.status_code == 200, r.text

    def delete_dataset() -> str:
        """Delete the dataset behind the view's back: the API's word on it afterwards."""
        base = lab.api("projects/sales/datasets/orders")
        assert requests.delete(base, headers=auth, timeout=30).status_code == 204
        gone = requests.get(base, headers=auth, timeout=30)
        assert gone.status_code == 404, gone.text
        return str(gone.json()["message"])

    in_chromium(
        lambda chromium: dataset_scenario(
            chromium, lab, commit_two_versions, delete_dataset, errors
        )
    )
    # the deliberate 400 (tag 'latest') and 404s (the deleted dataset) are checked in the page
    expected = ("/datasets/orders/tags/latest 400", "/datasets/orders 404", "/versions 404")
    assert not [e for e in errors if not any(x in e for x in expected)], errors


def dataset_scenario(
    chromium: Any, lab: Lab, commit: Any, delete_dataset: Any, errors: list[str]
) -> None:
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(30_000)
    page.on("console", lambda msg: (text := console_error(msg)) and errors.append(text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel")
    page.click(f".jp-SideBar [data-id='{PANEL[1:]}']")
    page.wait_for_selector(f"{PANEL}[data-loaded=true]")

    # no dataset yet: the sidebar says how to commit the first version
    empty = page.locator(f"{PANEL} .jp-WorkbenchPanel-datasetsEmpty")
    empty.wait_for()
    assert "No datasets yet" in empty.inner_text()
    assert "jupyter workbench datasets commit sales/NAME PATH" in empty.inner_text()
    assert 'wb.datasets.commit("NAME", "PATH", project="sales"' in empty.inner_text()

    # two versions committed from a terminal; the sidebar's reload lists the dataset
    commit()
    page.click(f"{PANEL} .jp-WorkbenchPanel-refresh")
    item = page.locator(f"{PANEL} li.jp-WorkbenchPanel-dataset[data-dataset=orders]")
    item.wait_for()
    assert "v2" in item.inner_text()
    assert empty.is_hidden()

    # the keyboard opens it, twice while the view's code is still on its way (held back here):
    # the lab shows it is loading, and one tab opens, not two
    held: list[Any] = []
    chunks = re.compile(r"/extensions/jupyter-workbench/static/[^/]+\.js(\?|$)")

    def hold(route: Any) -> None:
        held.append(route)

    page.route(chunks, hold)
    item.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.wait_for_function("document.body.classList.contains('jp-WorkbenchMod-loading')")
    assert held, "the dataset view's code was loaded before it was asked for"
    for route in held:
        route.continue_()
    page.unroute(chunks, hold)
    view = page.locator(f"{VIEW}[data-loaded=true]")
    view.wait_for()
    tabs = page.locator(".lm-DockPanel-tabBar [data-id='jp-workbench-dataset-sales/orders']")
    assert tabs.count() == 1
    page.wait_for_function("!document.body.classList.contains('jp-WorkbenchMod-loading')")
    versions = view.locator("li.jp-WorkbenchDataset-version")
    assert versions.count() == 2
    assert versions.nth(0).get_attribute("data-version") == "2"
    assert versions.nth(0).get_attribute("aria-selected") == "true"
    assert "May orders" in versions.nth(0).inner_text()
    assert "first import" in versions.nth(1).inner_text()
    assert "production" in versions.nth(1).inner_text()  # the tag, on its version
    assert "production → v1" in view.locator(".jp-WorkbenchDataset-tags").inner_text()
    # the card, rendered as markdown
    view.locator(".jp-WorkbenchDataset-card h1", has_text="Orders").wait_for()
    assert view.locator(".jp-WorkbenchDataset-card strong", has_text="order").is_visible()

    # the files of v2, with sizes and download links that work
    rows = view.locator(".jp-WorkbenchDataset-files tbody tr")
    rows.first.wait_for()
    assert [rows.nth(i).get_attribute("data-path") for i in range(rows.count())] == [
        "README.md",
        "customers.csv",
        "prices.parquet",
        "sales.csv",
    ]
    sales = view.locator(".jp-WorkbenchDataset-files tr[data-path='sales.csv']")
    assert f"{len(SALES_V2)} B" in sales.inner_text()
    href = sales.locator("a").get_attribute("href")
    download = page.request.get(href if href.startswith("http") else lab.url + href)
    assert download.ok and download.text() == SALES_V2

    # arrow down: v1 and its files
    versions.nth(0).focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_selector(f"{VIEW} li[data-version='1'][aria-selected=true]")
    rows.nth(3).wait_for(state="detached")
    assert "Files of v1" in view.locator("section[aria-label=Files] h3").inner_text()
    assert rows.count() == 3

    # the diff v1 -> v2 (the default pair): files, the new column, the added rows
    assert view.locator("select[name=from]").input_value() == "v1"
    assert view.locator("select[name=to]").input_value() == "v2"
    view.locator(".jp-WorkbenchDataset-compare button[type=submit]").click()
    summary = view.locator(".jp-WorkbenchDataset-summary")
    summary.wait_for()
    assert "v1 → v2" in summary.inner_text() and "1 added" in summary.inner_text()
    added = view.locator(".jp-WorkbenchDataset-change.jp-mod-added")
    assert added.count() == 1 and "README.md" in added.inner_text()
    customers = view.locator(".jp-WorkbenchDataset-table[data-path='customers.csv']")
    assert "column added: country" in customers.inner_text()
    table = view.locator(".jp-WorkbenchDataset-table[data-path='sales.csv']")
    assert "rows: 3 → 5 (2 added, 0 removed)" in table.inner_text()
    assert "schema unchanged" in table.inner_text()
    prices = view.locator(".jp-WorkbenchDataset-table[data-path='prices.parquet']")
    assert "column price: int64 → double" in prices.inner_text()
    assert "(parquet)" in prices.inner_text()

    # comparing a version with itself: no change
    view.locator("select[name=from]").select_option("v2")
    view.locator(".jp-WorkbenchDataset-compare button[type=submit]").click()
    page.wait_for_function(
        f"document.querySelector('{VIEW} .jp-WorkbenchDataset-summary')"
        "?.textContent.includes('no file changed')"
    )
    view.locator("select[name=from]").select_option("v1")
    view.locator(".jp-WorkbenchDataset-compare button[type=submit]").click()
    table.wait_for()
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "lab-datasets.png"))

    # tags: 'latest' is refused in the API's words; v2 tagged "staging"; "production" removed
    page.click(f"{VIEW} li[data-version='2']")
    tag_form = view.locator("form.jp-WorkbenchDataset-tagForm")
    assert "Tag v2 as" in tag_form.inner_text()
    tag_form.locator("input[name=tag]").fill("latest")
    tag_form.locator("button[type=submit]").click()
    tag_alert = tag_form.locator("[role=alert]")
    tag_alert.wait_for(state="visible")
    assert "latest" in tag_alert.inner_text() and "newest version" in tag_alert.inner_text()
    tag_form.locator("input[name=tag]").fill("staging")
    tag_form.locator("button[type=submit]").click()
    view.locator(".jp-WorkbenchDataset-tags li[data-tag=staging]", has_text="v2").wait_for()
    assert "staging" in view.locator("li[data-version='2']").inner_text()
    view.get_by_role("button", name="Remove tag production").click()
    view.locator(".jp-WorkbenchDataset-tags li[data-tag=production]").wait_for(state="detached")
    assert "production" not in view.locator("li[data-version='1']").inner_text()

    # "Edit card" opens the card's shared editor, starting with the card's text
    view.get_by_role("button", name="Edit card").click()
    editor = page.locator(".jp-WorkbenchDocument .cm-content")
    editor.filter(has_text="One row per").wait_for()
    # a line more, "Publish to card": the view's reload shows the new card
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n\nUpdated in the lab.")
    page.click(".jp-WorkbenchDocument-publish")
    page.wait_for_function(
        "document.querySelector('.jp-WorkbenchDocument-note')?.textContent.length > 0"
    )
    page.click(".lm-DockPanel-tabBar [data-id='jp-workbench-dataset-sales/orders']")
    view.wait_for(state="visible")
    view.get_by_role("button", name="Reload the dataset").click()
    view.locator(".jp-WorkbenchDataset-card p", has_text="Updated in the lab.").wait_for()

    # an API error shows the API's message: the dataset deleted, the view's reload says so
    message = delete_dataset()
    view.get_by_role("button", name="Reload the dataset").click()
    alert = view.locator(".jp-WorkbenchDataset-header [role=alert]")
    alert.wait_for(state="visible")
    assert alert.inner_text().strip() == message
