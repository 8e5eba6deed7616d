"""A project's experiments in a real JupyterLab with a real MLflow: runs logged with the Python
client, then the sidebar, the runs table (sort, filter, columns), the live chart of a run that a
background thread keeps logging to, the comparison of two runs and the group-by-seed bands."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_workbench.client import Client

from .conftest import OUTPUT, Lab, in_chromium, run_from_palette, start_lab
from .test_lab_ui import PANEL, console_error

VIEW = ".jp-WorkbenchExperiment"
COMPARE = ".jp-WorkbenchCompare"
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "experiments.png"
# the sweep: (lr, seed) -> the loss at step s is BASE / (s + 1) + offset
SWEEP = [("0.1", "1"), ("0.1", "2"), ("0.01", "1"), ("0.01", "2")]


@pytest.fixture
def tracking_lab(tmp_path: Path, mlflow_config: dict[str, str]) -> Iterator[Lab]:
    """``jupyter lab`` with the workbench and the session's MLflow server."""
    (tmp_path / "config").mkdir()
    config = {"Workbench": mlflow_config}
    (tmp_path / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
    yield from start_lab(tmp_path)


def final_loss(index: int) -> float:
    return 1 / 50 + index * 0.1


def log_sweep(client: Client, project: str) -> list[str]:
    """Four finished runs of "sweep": two learning rates x two seeds, 50 steps of loss each."""
    ids = []
    for index, (lr, seed) in enumerate(SWEEP):
        with client.run(
            project, "sweep", params={"lr": lr, "seed": seed}, name=f"lr{lr}-s{seed}"
        ) as run:
            for step in range(50):
                run.log({"loss": 1 / (step + 1) + index * 0.1, "acc": step / 50}, step=step)
        ids.append(run.run_id)
    return ids


class LiveRun:
    """A RUNNING run of "sweep" that a background thread keeps logging to until stopped."""

    def __init__(self, client: Client, project: str) -> None:
        self.run = client.run(project, "sweep", params={"lr": "0.5", "seed": "9"}, name="live")
        self.run.log({"loss": 6.0}, step=0)
        self.run.flush()
        self.stop = threading.Event()
        self.steps = 1
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while not self.stop.wait(0.15):
            # above every loss of the sweep: the sort puts it last
            self.run.log({"loss": 5.0 + 1 / (self.steps + 1)}, step=self.steps)
            self.steps += 1

    def end(self) -> None:
        if not self.stop.is_set():
            self.stop.set()
            self.thread.join(10)
            self.run.end()


@pytest.mark.slow
def test_the_experiment_view_sorts_filters_charts_live_and_compares(
    tracking_lab: Lab, tmp_path: Path
) -> None:
    lab = tracking_lab
    auth = {"Authorization": f"token {lab.token}"}
    made = requests.post(lab.api("projects"), json={"name": "Vision"}, headers=auth, timeout=30)
    assert made.status_code == 201, made.text
    slug = made.json()["slug"]
    news = requests.put(
        f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
        json={"raw": '{"fetchNews": "false"}'}, headers=auth, timeout=30,
    )  # fmt: skip
    assert news.status_code == 204, news.text
    empty = requests.post(
        lab.api(f"projects/{slug}/experiments"), json={"name": "empty"}, headers=auth, timeout=60
    )
    assert empty.status_code == 201, empty.text
    client = Client(lab.url, lab.token, project=slug)
    ids = log_sweep(client, slug)
    live = LiveRun(client, slug)
    errors: list[str] = []
    try:
        in_chromium(lambda chromium: scenario(chromium, lab, slug, ids, live, errors))
    finally:
        live.end()
        client.close()
    # the deliberate bad filter's 400 is checked in the page
    assert not [e for e in errors if "/runs/search 400" not in e], errors


def scenario(
    chromium: Any, lab: Lab, slug: str, ids: list[str], live: LiveRun, errors: list[str]
) -> None:
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    page.on("console", lambda msg: (text := console_error(msg)) and errors.append(text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel")
    page.click(f".jp-SideBar [data-id='{PANEL[1:]}']")
    page.wait_for_selector(f"{PANEL}[data-loaded=true]")

    # the sidebar lists the project's experiments; an empty one says how to log a run
    page.locator(f"{PANEL} li.jp-WorkbenchPanel-experiment[data-experiment=empty]").click()
    empty_view = page.locator(f"{VIEW}[data-loaded=true]").filter(has_text=f"{slug}/empty")
    empty_view.wait_for()
    hint = empty_view.locator(".jp-WorkbenchExperiment-empty")
    assert hint.is_visible() and "No runs yet" in hint.inner_text()
    assert 'wb.run(experiment="empty"' in hint.inner_text()

    item = page.locator(f"{PANEL} li.jp-WorkbenchPanel-experiment[data-experiment=sweep]")
    item.focus()
    page.keyboard.press("Enter")
    view = page.locator(f"{VIEW}[data-loaded=true]").filter(has_text=f"{slug}/sweep")
    view.wait_for()
    rows = view.locator(".jp-WorkbenchExperiment-row")
    rows.first.wait_for()
    assert rows.count() == 5
    assert "5 runs" in view.locator(".jp-WorkbenchExperiment-count").inner_text()
    # newest first by default: the live run, then the sweep backwards
    assert rows.first.get_attribute("data-status") == "RUNNING"

    def order() -> list[str]:
        return [rows.nth(i).get_attribute("data-run-id") or "" for i in range(rows.count())]

    # sort by the loss: ascending, then descending
    loss = view.locator(".jp-WorkbenchExperiment-head [data-column='metrics.loss']")
    loss.locator("button").click()
    page.wait_for_selector(f"{VIEW} [data-column='metrics.loss'][aria-sort=ascending]")
    assert order()[:4] == ids
    loss.locator("button").click()
    page.wait_for_selector(f"{VIEW} [data-column='metrics.loss'][aria-sort=descending]")
    assert order()[1:] == ids[::-1]  # the live run's loss is the largest of all

    # filter by a param, by a bare name; a wrong name says what is wrong, as does the API
    box = view.locator("input[name=filter]")
    box.fill("lr = 0.01 and loss < 1")
    box.press("Enter")
    page.wait_for_function(
        f"document.querySelectorAll('{VIEW} .jp-WorkbenchExperiment-row').length === 2"
    )
    assert set(order()) == set(ids[2:])
    box.fill("depth = 3")
    box.press("Enter")
    problem = view.locator("[role=alert]", has_text="depth")
    problem.wait_for()
    assert "no param, metric or tag" in problem.inner_text()
    box.fill("metrics.loss <<< 1")
    box.press("Enter")
    api_error = view.locator(".jp-WorkbenchExperiment-header [role=alert]")
    api_error.wait_for(state="visible")
    assert "filter" in api_error.inner_text()
    box.fill("")
    box.press("Enter")
    page.wait_for_function(
        f"document.querySelectorAll('{VIEW} .jp-WorkbenchExperiment-row').length === 5"
    )
    assert api_error.is_hidden()

    # the column chooser hides the seed
    view.locator(".jp-WorkbenchExperiment-chooser summary").click()
    view.locator("input[name=column][value='params.seed']").uncheck()
    view.locator(".jp-WorkbenchExperiment-head [data-column='params.seed']").wait_for(
        state="detached"
    )
    assert view.locator(".jp-WorkbenchExperiment-head [data-column='params.lr']").is_visible()
    view.locator(".jp-WorkbenchExperiment-chooser summary").click()

    # the live run's chart: its points arrive while the thread logs
    view.locator(f".jp-WorkbenchExperiment-row[data-run-id='{live.run.run_id}']").click()
    legend = view.locator(f".jp-WorkbenchExperiment-legendItem[data-run-id='{live.run.run_id}']")
    legend.wait_for()
    chart = view.locator(".jp-WorkbenchExperiment-chart canvas").first
    chart.wait_for()
    start = int(legend.get_attribute("data-points") or 0)
    assert start >= 1
    page.wait_for_function(
        "n => Number(document.querySelector('.jp-WorkbenchExperiment-legendItem')"
        "?.dataset.points) >= n",
        arg=start + 8,
    )
    assert legend.locator(".jp-WorkbenchExperiment-live").is_visible()  # the LIVE badge
    # the table's loss cell of the run follows the stream too
    loss_cell = (
        f"{VIEW} .jp-WorkbenchExperiment-row[data-run-id='{live.run.run_id}']"
        " [data-column='metrics.loss']"
    )
    shown = page.locator(loss_cell).inner_text()
    page.wait_for_function(
        "([sel, before]) => document.querySelector(sel)?.textContent.trim() !== before.trim()",
        arg=[loss_cell, shown],
    )
    builds = view.locator(".jp-WorkbenchExperiment-chart").first.get_attribute("data-builds")
    assert builds == "1"  # live points redraw the same chart
    # the run ends: the chart stops following it, the table shows its new status
    live.end()
    view.locator(
        f".jp-WorkbenchExperiment-legendItem[data-run-id='{live.run.run_id}'][data-status=FINISHED]"
    ).wait_for()
    assert legend.locator(".jp-WorkbenchExperiment-live").count() == 0  # no LIVE badge
    page.wait_for_selector(
        f"{VIEW} .jp-WorkbenchExperiment-row[data-run-id='{live.run.run_id}'][data-status=FINISHED]"
    )
    # two finished runs overlaid; log scale; smoothing
    for run_id in ids[:2]:
        view.locator(f".jp-WorkbenchExperiment-row[data-run-id='{run_id}']").click()
    page.wait_for_function(
        f"document.querySelectorAll('{VIEW} .jp-WorkbenchExperiment-legendItem').length === 3"
    )
    view.locator("input[name=log]").check()
    page.wait_for_selector(f"{VIEW} .jp-WorkbenchExperiment-chart[data-log=true]")
    view.locator("input[name=smoothing]").fill("0.6")
    assert view.locator("output").inner_text() == "0.60"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "lab-experiments.png"))
    DOCS_IMAGE.parent.mkdir(exist_ok=True)
    shutil.copyfile(OUTPUT / "lab-experiments.png", DOCS_IMAGE)

    # group by seed: two groups (one per lr), each the mean of two runs
    view.locator(f".jp-WorkbenchExperiment-row[data-run-id='{live.run.run_id}']").click()
    for run_id in ids[2:]:
        view.locator(f".jp-WorkbenchExperiment-row[data-run-id='{run_id}']").click()
    page.wait_for_function(
        f"document.querySelectorAll('{VIEW} .jp-WorkbenchExperiment-legendItem').length === 4"
    )
    view.locator("select[name=group_by]").select_option("seed")
    view.locator(".jp-WorkbenchExperiment-bandsForm button[type=submit]").click()
    bands = view.locator(".jp-WorkbenchExperiment-bands + ul li")
    page.wait_for_function(
        f"document.querySelectorAll('{VIEW} .jp-WorkbenchExperiment-bands + ul li').length === 2"
    )
    assert [bands.nth(i).get_attribute("data-runs") for i in range(2)] == ["2", "2"]
    assert "lr=0.1" in bands.nth(0).inner_text() or "lr=0.1" in bands.nth(1).inner_text()
    view.locator(".jp-WorkbenchExperiment-bands canvas").first.wait_for()
    page.screenshot(path=str(OUTPUT / "lab-experiments-bands.png"))

    # compare two runs (the palette's "Workbench: Compare Selected Runs" on the selection)
    for run_id in (ids[1], ids[3]):  # ids[0] and ids[2] stay selected
        view.locator(f".jp-WorkbenchExperiment-row[data-run-id='{run_id}']").click()
    page.wait_for_function(
        f"document.querySelectorAll('{VIEW} .jp-WorkbenchExperiment-row.jp-mod-selected')"
        ".length === 2"
    )
    opened = f"document.querySelector('{COMPARE}') !== null"
    run_from_palette(page, "Compare Selected Runs", opened, shortcut=True)
    compare = page.locator(f"{COMPARE}[data-loaded=true]")
    compare.wait_for()
    seed = compare.locator("tr[data-param=seed]")
    assert "jp-mod-differs" not in (seed.get_attribute("class") or "")
    assert seed.locator("td").all_inner_texts() == ["1", "1"]
    lr = compare.locator("tr[data-param=lr]")
    assert "jp-mod-differs" in (lr.get_attribute("class") or "")
    assert lr.locator("td").all_inner_texts() == ["0.1", "0.01"]
    assert "differ" in compare.locator(".jp-WorkbenchCompare-note").inner_text()
    last = compare.locator("tr[data-metric=loss] td")
    assert [float(v or 0) for v in last.evaluate_all("tds => tds.map(t => t.dataset.last)")] == (
        pytest.approx([final_loss(0), final_loss(2)])
    )
    assert compare.locator("svg.jp-WorkbenchCompare-parallel polyline").count() == 2
    page.screenshot(path=str(OUTPUT / "lab-experiments-compare.png"))

    # the experiment's report: a shared document, opened from the experiment's header
    page.click(".lm-DockPanel-tabBar .lm-TabBar-tab:has-text('sweep')")
    view.get_by_role("button", name="Report").click()
    report = page.locator(".jp-WorkbenchDocument .cm-content")
    report.filter(has_text="# Report: sweep").wait_for()
    report.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nlr 0.1 wins.")
    auth = {"Authorization": f"token {lab.token}"}
    listed = requests.get(lab.api(f"projects/{slug}/documents"), params={"kind": "report"},
                          headers=auth, timeout=30).json()["items"]  # fmt: skip
    assert [d["ref"] for d in listed] == ["sweep"]
    deadline = time.monotonic() + 30
    while "lr 0.1 wins." not in (
        text := requests.get(
            lab.api(f"documents/{listed[0]['id']}"), headers=auth, timeout=30
        ).json()["text"]
    ):  # stored on the server, where everyone with the project reads it
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    assert text.startswith("# Report: sweep\n")


MANY = 1200  # more than a page of runs/search (1000)
CURVES, CURVE_POINTS = 10, 2000  # the chart of issue 6's budget: 10 runs x 2k points


def create_runs(client: Client, project: str, experiment: str, count: int) -> str:
    """``count`` runs with a param and a metric each, made concurrently; the experiment's id."""
    from concurrent.futures import ThreadPoolExecutor

    experiment_id = client.experiment_id(project, experiment)
    base = client.mlflow_url(project) + "/api/2.0/mlflow"

    def one(i: int) -> None:
        info = client.request(
            "POST", f"{base}/runs/create",
            json={"experiment_id": experiment_id, "run_name": f"run-{i:05d}", "start_time": i},
        )["run"]["info"]  # fmt: skip
        metrics = [{"key": "score", "value": i, "step": 0}]
        if i >= count - CURVES:  # the newest runs: a long curve each
            metrics += [
                {"key": "curve", "value": (i % 7) + 1 / (s + 1), "step": s}
                for s in range(CURVE_POINTS)
            ]
        client.post(f"runs/{info['run_id']}/batch", {"params": {"i": str(i)}, "metrics": metrics})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))
    return experiment_id


@pytest.mark.slow
def test_a_big_experiment_keeps_only_the_visible_rows_in_the_page(tracking_lab: Lab) -> None:
    lab = tracking_lab
    auth = {"Authorization": f"token {lab.token}"}
    made = requests.post(lab.api("projects"), json={"name": "Big"}, headers=auth, timeout=30)
    assert made.status_code == 201, made.text
    slug = made.json()["slug"]
    news = requests.put(
        f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
        json={"raw": '{"fetchNews": "false"}'}, headers=auth, timeout=30,
    )  # fmt: skip
    assert news.status_code == 204, news.text
    # chart options from the settings registry: how new charts start, points asked per run
    chart_options = {"chartLogScale": True, "chartSmoothing": 0.5, "chartMaxPoints": 4000}
    saved = requests.put(
        f"{lab.url}/lab/api/settings/jupyter-workbench:plugin",
        json={"raw": json.dumps(chart_options)}, headers=auth, timeout=30,
    )  # fmt: skip
    assert saved.status_code == 204, saved.text
    client = Client(lab.url, lab.token, project=slug)
    create_runs(client, slug, "grid", MANY)
    client.close()
    # more experiments and datasets than the sidebar shows at first (a page is 50)
    for kind, count in (("experiments", 50), ("datasets", 51)):
        for n in range(count):
            r = requests.post(lab.api(f"projects/{slug}/{kind}"), json={"name": f"zz-{n:02}"},
                              headers=auth, timeout=60)  # fmt: skip
            assert r.status_code == 201, r.text
    notes = []  # and documents (notes; the sidebar shows the newest first)
    for n in range(51):
        note = {"kind": "notes", "ref": f"zz-{n:02}"}
        r = requests.post(
            lab.api(f"projects/{slug}/documents"), json=note, headers=auth, timeout=60
        )
        assert r.status_code == 201, r.text
        notes.append(r.json()["id"])
    last_note = notes[0]
    errors: list[str] = []
    draws: list[float] = []

    def scenario(chromium: Any) -> None:
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        page.on("console", lambda msg: (text := console_error(msg)) and errors.append(text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{lab.url}/lab?token={lab.token}")
        page.wait_for_selector("#jp-main-dock-panel")
        page.click(f".jp-SideBar [data-id='{PANEL[1:]}']")
        page.locator(f"{PANEL} li.jp-WorkbenchPanel-experiment[data-experiment=grid]").click()
        view = page.locator(f"{VIEW}[data-loaded=true]")
        view.wait_for()
        assert view.locator("input[name=log]").is_checked()
        assert view.locator("input[name=smoothing]").input_value() == "0.5"
        assert f"{MANY} runs" in view.locator(".jp-WorkbenchExperiment-count").inner_text()
        table = view.locator(".jp-WorkbenchExperiment-table")
        assert table.get_attribute("aria-rowcount") == str(MANY + 1)
        rows = view.locator(".jp-WorkbenchExperiment-row")
        assert 10 <= rows.count() <= 40  # only the rows in view (and a few around them)
        # newest first: run-01199 ... ; the end of the table is one scroll away
        assert "run-01199" in rows.first.inner_text()
        table.evaluate("t => { t.scrollTop = t.scrollHeight; }")
        page.wait_for_selector(f"{VIEW} .jp-WorkbenchExperiment-row[aria-rowindex='{MANY + 1}']")
        assert "run-00000" in view.locator(f"[aria-rowindex='{MANY + 1}']").inner_text()
        assert rows.count() <= 40
        # the keyboard: Home goes back to the top
        table.focus()
        page.keyboard.press("Home")
        page.wait_for_selector(
            f"{VIEW} .jp-WorkbenchExperiment-row.jp-mod-cursor[aria-rowindex='2']"
        )
        page.keyboard.press("Space")
        page.wait_for_selector(
            f"{VIEW} .jp-WorkbenchExperiment-row[aria-rowindex='2'][aria-selected=true]"
        )
        # the ten newest runs' curves: 10 x 2000 points on one chart
        for index in range(2, CURVES + 1):
            view.locator(f".jp-WorkbenchExperiment-row[aria-rowindex='{index + 1}']").click()
        view.locator("select[name=metric]").select_option("curve")
        chart = view.locator(".jp-WorkbenchExperiment-chart").first
        page.wait_for_selector(
            f"{VIEW} .jp-WorkbenchExperiment-chart[data-points='{CURVES * CURVE_POINTS}']"
        )
        assert chart.get_attribute("data-lines") == str(CURVES)
        assert chart.get_attribute("data-log") == "true"  # the setting, carried to the chart
        draws.append(float(chart.get_attribute("data-draw-ms") or "nan"))
        # a switch to the dark theme: the chart's axes take its colours (the same chart data)
        light = chart.get_attribute("data-axis-color")
        builds = int(chart.get_attribute("data-builds") or 0)
        page.click("#jp-menu-panel .lm-MenuBar-item:has-text('Settings')")
        page.click(".lm-Menu-item:has-text('Theme')")
        page.click(".lm-Menu-item:has-text('JupyterLab Dark')")
        page.wait_for_function(
            f"document.querySelector('{VIEW} .jp-WorkbenchExperiment-chart')"
            f".dataset.builds > {builds}"
        )
        dark = chart.get_attribute("data-axis-color")
        assert dark != light and "255" in (dark or ""), (light, dark)
        assert chart.get_attribute("data-points") == str(CURVES * CURVE_POINTS)
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "lab-experiments-many.png"))
        # the sidebar's lists: a page each, then "Show more"
        for kind, last in (("experiment", "zz-49"), ("dataset", "zz-50"), ("document", last_note)):
            items = page.locator(f"{PANEL} li.jp-WorkbenchPanel-{kind}")
            assert items.count() == 50
            page.click(f"{PANEL} .jp-WorkbenchPanel-more{kind.title()}s")
            page.locator(f"{PANEL} li.jp-WorkbenchPanel-{kind}[data-{kind}='{last}']").wait_for()
            assert items.count() == 51
            assert page.locator(f"{PANEL} .jp-WorkbenchPanel-more{kind.title()}s").is_hidden()
        # new notes open at once and head the list, which keeps the pages it showed
        page.fill(f"{PANEL} .jp-WorkbenchPanel-newNotes input", "zz-new")
        page.click(f"{PANEL} .jp-WorkbenchPanel-newNotes button")
        page.wait_for_selector(".jp-WorkbenchDocument .cm-content")
        first = f"{PANEL} li.jp-WorkbenchPanel-document:first-child"
        page.wait_for_function(
            f"document.querySelector(\"{first}\").textContent.includes('zz-new')"
        )
        assert page.locator(f"{PANEL} li.jp-WorkbenchPanel-document").count() == 51
        assert page.locator(f"{PANEL} .jp-WorkbenchPanel-moreDocuments").is_visible()

    in_chromium(scenario)
    assert not errors, errors
    # a figure for the record, not a timed assertion (benchmarks/ holds those)
    print(f"chart of {CURVES} runs x {CURVE_POINTS} points drawn in {draws[0]:.1f} ms")
