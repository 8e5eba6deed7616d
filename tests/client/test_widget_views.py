"""The widgets' views (their ES modules) in Debian's Chromium, fed the state their kernel side
computed against a real server: a stand-in for the widget manager relays what a view saves to
the Python widget and the Python widget's new state back, as the comm does in JupyterLab."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from traitlets.config import Config

import jupyter_workbench as wb
from jupyter_workbench.client import Client

from ..lab.conftest import OUTPUT, in_chromium
from .conftest import seed
from .test_widgets import _fresh_default, prepare  # noqa: F401 (an autouse fixture)

pytestmark = pytest.mark.slow

PAGE = """<!doctype html><html><head><meta charset="utf-8"></head>
<body style="font-family: sans-serif; margin: 8px; width: 900px"></body></html>"""

# A model with anywidget's API (get, set, on, save_changes): every view gets one
HOST = """
window.views = {};
window.mount = async ([name, esm, css, state]) => {
  const handlers = {};
  const model = {
    state, saved: [], pending: {}, sent: [],
    get(key) { return this.state[key]; },
    set(key, value) {
      this.state[key] = value; this.pending[key] = value;
      for (const f of handlers[`change:${key}`] || []) f();
    },
    on(event, f) { (handlers[event] ||= []).push(f); },
    off() {},
    send(message) { this.sent.push(message); },
    save_changes() { this.saved.push(this.pending); this.pending = {}; },
    push(changes) {  // the kernel's update: set without marking anything to save
      for (const [key, value] of Object.entries(changes)) {
        this.state[key] = value;
        for (const f of handlers[`change:${key}`] || []) f();
      }
    },
  };
  const style = document.createElement("style");
  style.textContent = css;
  document.head.append(style);
  const el = document.createElement("div");
  el.id = name;
  document.body.append(el);
  const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
  const module = await import(url);
  module.default.render({ model, el });
  window.views[name] = model;
};
"""


@pytest.fixture
def jp_server_config(jp_server_config: Config, mlflow_config: dict[str, str]) -> Config:
    jp_server_config["Workbench"].update(mlflow_config)
    return jp_server_config


class Relay:
    """The widget manager's part: mounts a Python widget's view in the page and carries what
    the view saves to the kernel side, and the kernel side's changes back."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.widgets: dict[str, Any] = {}

    def mount(self, name: str, widget: Any) -> None:
        state = json.loads(json.dumps(widget.get_state()))
        self.widgets[name] = widget
        self.page.evaluate("mount", [name, state["_esm"], state["_css"], state])

    def sync(self, name: str) -> None:
        """Apply what the view saved to the kernel side; push the resulting state back."""
        widget = self.widgets[name]
        saved = self.page.evaluate(f"views['{name}'].saved.splice(0)")
        for changes in saved:
            widget.set_state(changes)
        for message in self.page.evaluate(f"views['{name}'].sent.splice(0)"):
            widget._on_view_message(widget, message, [])
        self.refresh(name)

    def refresh(self, name: str) -> None:
        state = json.loads(json.dumps(self.widgets[name].get_state()))
        del state["_esm"], state["_css"]
        self.page.evaluate(f"(s) => views['{name}'].push(s)", state)


async def test_widget_views_render_and_drive_the_kernel_side(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)

    def build() -> dict[str, Any]:
        made = prepare(server_url, tokens["alice"], tmp_path)
        trainer = Client(server_url, tokens["alice"])
        with trainer.run("lab", "sweep", params={"lr": 0.05, "optimizer": "sgd"}) as run:
            for step in range(60):
                run.log({"loss": 1 / (step + 1) + (step % 7) * 0.01, "acc": step / 60}, step=step)
        with trainer.run("lab", "odd") as odd:
            odd.log({"x": float("inf"), "y": float("nan")}, step=0)
        with trainer.run("lab", "huge") as huge:  # steps 1000 apart, past 2**62
            for i in range(3):
                huge.log({"loss": 1.0 + i}, step=2**62 + 1000 * i)
        folder = tmp_path / "typed"
        folder.mkdir()
        pq.write_table(pa.table({"n": [1, 2]}), folder / "t.parquet")
        trainer.datasets.commit("typed", folder, project="lab", progress=False)
        pq.write_table(pa.table({"n": ["1", "2"]}), folder / "t.parquet")  # n retyped
        (folder / "b.parquet").write_bytes(b"not parquet at all")
        trainer.datasets.commit("typed", folder, project="lab", progress=False)
        table = wb.widgets.RunsTable("sweep")
        return {
            "typed": wb.widgets.DatasetBrowser("typed"),
            "odd": wb.widgets.RunsTable("odd"),
            "huge": wb.widgets.LiveMetrics(huge.run_id),
            "everywhere": wb.widgets.RunsTable(),
            "odd_compare": wb.widgets.CompareRuns([odd.run_id, run.run_id]),
            "waiting": wb.widgets.LiveMetrics(run.run_id, keys=["loss", "never"], follow=False),
            **made,
            "table": table,
            "compare": table.compare(),
            "chart": wb.widgets.LiveMetrics(run.run_id, smoothing=0.5),
            "browser": wb.widgets.DatasetBrowser("flights"),
            "card": wb.widgets.ModelCard(made["model"]),
        }

    w = await asyncio.to_thread(build)
    errors: list[str] = []
    OUTPUT.mkdir(exist_ok=True)

    def scenario(chromium: Any) -> None:
        page = chromium.new_page(viewport={"width": 960, "height": 900})
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.set_content(PAGE)
        page.add_script_tag(content=HOST)
        relay = Relay(page)

        # LiveMetrics: one panel per metric, raw and smoothed lines, the smoothing slider
        relay.mount("chart", w["chart"])
        chart = page.locator("#chart")
        assert chart.locator(".wb-panel").count() == 2
        assert chart.locator(".wb-panel path").count() == 4  # raw + smoothed per metric
        assert "FINISHED" in chart.inner_text() and "120 points" in chart.inner_text()
        chart.locator("input[aria-label=smoothing]").fill("0")
        relay.sync("chart")
        assert w["chart"].smoothing == 0.0 and chart.locator(".wb-panel path").count() == 2
        chart.screenshot(path=str(OUTPUT / "widget-live-metrics.png"))

        # RunsTable: sort by a header, filter, select rows ...
        relay.mount("table", w["table"])
        table = page.locator("#table")
        assert table.locator("tbody tr").count() == 4
        table.locator("th", has_text="loss").click()
        relay.sync("table")
        assert (w["table"].sort_by, w["table"].descending) == ("metrics.loss", False)
        first = table.locator("tbody tr").first.get_attribute("data-run")
        assert first == w["runs"][0.001]  # the lowest loss first
        table.locator("input[type=search]").fill("optimizer=adam")
        page.wait_for_timeout(400)  # the view waits for typing to pause
        relay.sync("table")
        assert table.locator("tbody tr").count() == 2
        for row in table.locator("tbody tr input[type=checkbox]").all():
            row.check()
            relay.sync("table")
        assert w["table"].selected == [w["runs"][0.001], w["runs"][0.01]]
        assert "2 selected" in table.inner_text()
        with Client(server_url, tokens["alice"]).run("lab", "sweep", params={"optimizer": "adam"}):
            pass
        table.locator("button[aria-label=reload]").click()  # ↻: the kernel side loads again
        relay.sync("table")
        assert len(w["table"].runs) == 5 and table.locator("tbody tr").count() == 3
        assert "of the newest" not in table.inner_text()
        w["table"].max_results = 4  # the oldest run is left out: the count says so
        table.locator("button[aria-label=reload]").click()
        relay.sync("table")
        assert "3 of the newest 4 runs" in table.inner_text()
        w["table"].max_results = 200
        table.locator("button[aria-label=reload]").click()
        relay.sync("table")
        assert "3 of 5 runs" in table.inner_text()
        table.screenshot(path=str(OUTPUT / "widget-runs-table.png"))

        # ... which CompareRuns follows: param diff, overlay, parallel coordinates
        relay.mount("compare", w["compare"])
        compare = page.locator("#compare")
        assert compare.locator("table").first.inner_text().count("adam") == 0  # same in both
        params = compare.locator("table").first.inner_text()
        assert "lr" in params and all(r["name"] in params for r in w["table"].selected_runs)
        assert compare.locator(".wb-pcoords path").count() == 2
        compare.locator("select[aria-label=metric]").select_option("loss")
        relay.sync("compare")
        assert w["compare"].metric == "loss" and compare.locator("svg.wb-chart path").count() >= 2
        compare.screenshot(path=str(OUTPUT / "widget-compare-runs.png"))

        # DatasetBrowser: versions with tags, files of a version, the diff tab
        relay.mount("browser", w["browser"])
        browser = page.locator("#browser")
        assert browser.locator("tbody tr").count() == 2 and "latest" in browser.inner_text()
        browser.locator("a", has_text="v1").click()
        relay.sync("browser")
        assert w["browser"].version == 1 and "README.md" not in browser.inner_text()
        assert "flights.csv" in browser.inner_text()
        browser.locator("button", has_text="diff").click()
        assert "added" in browser.inner_text() and "README.md" in browser.inner_text()
        assert "rows 1 → 2" in browser.inner_text()
        browser.screenshot(path=str(OUTPUT / "widget-dataset-browser.png"))
        # a retyped column read "columns changed: [object Object]"; a table not compared
        # "rows ? → ? (+0, -0)", as if nothing had changed
        relay.mount("typed", w["typed"])
        typed = page.locator("#typed")
        typed.locator("button", has_text="diff").click()
        text = typed.inner_text()
        assert "columns retyped: n int64 → string" in text and "[object Object]" not in text
        assert "could not be compared: Parquet magic bytes" in text and "?" not in text

        # ModelCard: the card's markdown rendered, versions, lineage
        relay.mount("card", w["card"])
        card = page.locator("#card")
        assert card.locator(".wb-markdown h3").inner_text() == "Scorer"
        assert card.locator(".wb-markdown em").inner_text() == "everything"
        assert "lab/flights v2" in card.inner_text() and "intended use" in card.inner_text()
        assert "null" not in card.inner_text() + compare.inner_text()
        card.screenshot(path=str(OUTPUT / "widget-model-card.png"))

        # non-finite values read as the kernel side's fallback writes them (an infinity, the
        # largest float in MLflow's store, read 1.80e+308; a NaN last value was a blank)
        relay.mount("everywhere", w["everywhere"])  # which experiment each run is of
        everywhere = page.locator("#everywhere")
        assert everywhere.locator("th").nth(3).inner_text() == "experiment"
        assert everywhere.locator("tbody tr").first.locator("td").nth(3).inner_text() == "huge"
        relay.mount("odd", w["odd"])
        assert "experiment" not in page.locator("#odd thead").inner_text()
        odd = page.locator("#odd").locator("tbody tr").first.inner_text().split()
        assert odd[-2:] == ["inf", "nan"]
        relay.mount("odd_compare", w["odd_compare"])
        metrics = page.locator("#odd_compare table").nth(1).inner_text()
        assert "inf" in metrics and "nan" in metrics and "e+308" not in metrics
        # x ticks 500 apart at 4.6e18 (floats 1024 apart there): t += 500 never moved, and
        # the page hung drawing the chart
        relay.mount("huge", w["huge"])
        assert "3 points" in page.locator("#huge").inner_text()
        relay.mount("waiting", w["waiting"])  # a metric asked for, never logged
        waiting = page.locator("#waiting").inner_text()
        assert "undefined" not in waiting and waiting.endswith("never\nno points yet")

    await asyncio.to_thread(in_chromium, scenario)
    assert not errors, errors
