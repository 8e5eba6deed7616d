"""The notebook widgets (``wb.widgets``) against a real jupyter-server with the workbench and a
real MLflow: in this process (their kernel side: state, filtering, sorting, selection feeding a
comparison, following a run), then in a real workbench kernel, reading the comm messages it
sends as a frontend does."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ipywidgets.widgets.widget import _instances as open_comms
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from traitlets.config import Config

import jupyter_workbench as wb
from jupyter_workbench.client import Client, default
from jupyter_workbench.widgets.base import fmt
from jupyter_workbench.widgets.datasets import ROWS
from jupyter_workbench.widgets.live import thin

from .conftest import seed
from .test_magics_kernel import KERNELS, REPO

pytestmark = pytest.mark.slow
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.fixture
def jp_server_config(jp_server_config: Config, mlflow_config: dict[str, str]) -> Config:
    jp_server_config["Workbench"].update(mlflow_config)
    return jp_server_config


@pytest.fixture(autouse=True)
def _fresh_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setattr(default, "_default", None)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    yield
    monkeypatch.setattr(default, "_default", None)


class Double(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def predict(self, context: Any, model_input: list[float], params: Any = None) -> list[float]:
        return [2 * x for x in model_input]


def prepare(server_url: str, token: str, tmp_path: Path) -> dict[str, Any]:
    """In ``lab``: three finished runs of ``sweep`` (lr, optimizer; loss, acc), one run of
    ``other``, dataset ``flights`` v1 -> v2 (a row and a file added), a model v1 (``scorer-...``:
    model names are unique in the session's MLflow) trained by a run that read flights v2, with
    a card."""
    client = wb.connect(server_url, token, project="lab")
    runs = {}
    for lr, opt in ((0.1, "sgd"), (0.01, "adam"), (0.001, "adam")):
        with wb.run(experiment="sweep", params={"lr": lr, "optimizer": opt}) as run:
            for step in range(20):
                run.log({"loss": lr * 10 / (step + 1), "acc": 1 - lr - 0.5 / (step + 1)}, step=step)
        runs[lr] = run.run_id
    with wb.run(experiment="other", params={"lr": 5}) as run:
        run.log({"loss": 9.0})
    folder = tmp_path / "flights"
    folder.mkdir()
    (folder / "flights.csv").write_text("origin,dest\nOSL,BGO\n")
    wb.datasets.commit("flights", folder, message="first", progress=False)
    (folder / "flights.csv").write_text("origin,dest\nOSL,BGO\nBGO,TRD\n")
    (folder / "README.md").write_text("routes\n")
    wb.datasets.commit("flights", folder, message="a route", progress=False)
    with wb.run(experiment="train") as run:
        wb.datasets.get("flights", version="v2")
        run.log_model(Double())
    model = f"scorer-{uuid.uuid4().hex[:8]}"
    wb.models.register(run, model)
    card = {"markdown": "# Scorer\n\nDoubles *everything*.", "fields": {"intended_use": "demos"}}
    client.request("PUT", client.api_url(f"projects/lab/models/{model}/card"), json=card)
    return {"runs": runs, "train": run.run_id, "model": model, "card": card}


async def test_widgets_kernel_side(server_url: str, api: Any, tmp_path: Path) -> None:
    tokens = await seed(api)

    def work() -> None:
        made = prepare(server_url, tokens["alice"], tmp_path)
        runs = made["runs"]

        table = wb.widgets.RunsTable("sweep")
        assert json.dumps(table.get_state())  # the state a frontend receives serialises
        assert table.params == ["lr", "optimizer"] and table.metrics == ["acc", "loss"]
        assert set(table.visible) == set(runs.values())  # the "other" experiment is left out
        table.sort_by, table.descending = "metrics.loss", False
        assert table.visible == [runs[0.001], runs[0.01], runs[0.1]]
        table.descending = True
        assert table.visible == [runs[0.1], runs[0.01], runs[0.001]]
        table.filter = "optimizer=adam lr<0.005"
        assert table.visible == [runs[0.001]]
        table.filter = "lr>="
        assert "needs a value" in table.error and table.visible == [runs[0.001]]
        table.filter = "optimizer == adam and lr < 0.005"  # spaced, '==': the same filter
        assert table.visible == [runs[0.001]] and table.error == ""
        table.filter = "lr<<0.005"  # was a comparison with the text '<0.005': no run, no word
        assert "one operator" in table.error and table.visible == [runs[0.001]]
        table.filter = ""
        assert len(table.visible) == 3 and table.error == ""

        compare = table.compare()
        assert compare.comparison == {} and "select some" in compare._repr_html_()
        table.selected = [runs[0.1], runs[0.001], "not-a-run"]
        assert table.selected == [runs[0.1], runs[0.001]]  # unknown ids dropped
        assert compare.run_ids == [runs[0.1], runs[0.001]]
        differ = compare.comparison["params"]["differ"]
        assert differ["lr"] == {runs[0.1]: "0.1", runs[0.001]: "0.001"}
        assert compare.metric == "acc" and set(compare.histories) == {runs[0.1], runs[0.001]}
        compare.metric = "loss"
        assert compare.histories[runs[0.1]]["values"][0] == pytest.approx(1.0)
        assert len(compare.histories[runs[0.1]]["steps"]) == 20
        axes = {a["name"]: a["values"] for a in compare.axes}
        assert set(axes) == {"lr", "optimizer", "acc", "loss"}
        assert axes["loss"][runs[0.001]] == pytest.approx(0.01 / 20)
        html = compare._repr_html_()
        assert "params that differ" in html and "<svg" in html and "0.001" in html
        table.selected = [runs[0.01]]  # the comparison follows the table
        assert (
            compare.run_ids == [runs[0.01]] and "lr" not in compare.comparison["params"]["differ"]
        )
        assert json.dumps(compare.get_state())
        bundle, _meta = table._repr_mimebundle_()
        assert WIDGET_VIEW in bundle and "<table>" in bundle["text/html"]
        assert bundle["text/html"].count("<tr>") == 4  # header + 3 runs

        browser = wb.widgets.DatasetBrowser("flights")
        assert [v["version"] for v in browser.versions] == [2, 1]
        assert browser.version == 2 and {f["path"] for f in browser.files} == {
            "flights.csv",
            "README.md",
        }
        assert browser.diff["summary"]["added"] == 1 and browser.diff["tables"][0]["rows"] == {
            "old": 1,
            "new": 2,
            "added": 1,
            "removed": 0,
        }
        assert [entry["consumer"] for entry in browser.lineage] == [f"run:{made['train']}"]
        browser.version = 1
        assert [f["path"] for f in browser.files] == ["flights.csv"] and browser.lineage == []
        assert browser.show_diff("v2", 1)["summary"]["removed"] == 1
        with pytest.raises(wb.errors.NotFound, match="v9"):
            browser.show_diff(1, "v9")  # answered {}: "no change" to a Python caller
        assert "v9" in browser.error and browser.diff == {}
        assert browser.show_diff(2, 1)["summary"]["removed"] == 1 and browser.error == ""
        browser.diff_to = 9
        assert "9" in browser.error  # the server's message, in the view
        assert "<table>" in browser._repr_html_() and json.dumps(browser.get_state())
        assert "has no version &#x27;v9&#x27;" in browser._repr_html_()  # as the view says
        wb.datasets.tag("flights", "gold", 1)
        assert browser.refresh().info["tags"] == {"latest": "v2", "gold": "v1"}
        assert "<td>v1</td><td>gold</td>" in browser._repr_html_() and browser.version == 2
        with wb.run(experiment="train") as reader:  # a new reader of v2: ↻ left it out
            wb.datasets.get("flights", version="v2")
        browser.reload()
        assert {e["consumer"] for e in browser.lineage} == {
            f"run:{made['train']}",
            f"run:{reader.run_id}",
        }
        wb.datasets.untag("flights", "gold")
        assert browser.refresh(1).info["tags"] == {"latest": "v2"} and browser.version == 1
        pinned = wb.widgets.DatasetBrowser(wb.datasets.get("flights", version="v1"))
        assert pinned.version == 1 and pinned.diff == {}

        model = made["model"]
        card = wb.widgets.ModelCard(model)
        assert card.version == "1" and card.model == model
        assert card.card["fields"] == {"intended_use": "demos"}
        assert card.lineage["datasets_read"][0]["dataset"] == "flights"
        html = card._repr_html_()
        assert "<h1>Scorer</h1>" in html and "<em>everything</em>" in html
        assert "lab/flights v2" in html and "intended use" in html
        assert card._repr_markdown_().startswith(f"## {model}")
        sneaky = {"markdown": "<img src=x onerror=alert(1)> *ok*", "fields": {"limitations": "<b>"}}
        put = partial(
            card.client.request, "PUT", card.client.api_url(f"projects/lab/models/{model}/card")
        )
        put(json=sneaky)
        card.reload()  # in a frontend that renders the markdown, the <img> ran
        assert "&lt;img src=x onerror=alert(1)&gt; *ok*" in card._repr_markdown_()
        assert "**limitations**: &lt;b&gt;" in card._repr_markdown_()
        html = card._repr_html_()
        assert (
            "<p>&lt;img src=x onerror=alert(1)&gt; <em>ok</em></p>" in html and "<img" not in html
        )
        put(json=made["card"])
        card.reload()
        wb.models.set_alias(f"{model}/1", "staging")
        aliased = wb.widgets.ModelCard(f"{model}@staging")
        assert aliased.aliases == {"staging": "1"} and aliased.versions[0]["aliases"] == ["staging"]
        open_widgets = set(open_comms)
        with pytest.raises(wb.errors.NotFound, match="no alias 'gold'"):
            wb.widgets.ModelCard(f"{model}@gold")
        with pytest.raises(wb.errors.NotFound):
            wb.widgets.ModelCard("nothing")
        with pytest.raises(wb.errors.NotFound, match=r"no version 9 \(versions: 1\)"):
            wb.widgets.ModelCard(f"{model}/9")  # was an empty card of "v9"
        assert set(open_comms) == open_widgets  # the refused cards are closed
        gone = wb.widgets.ModelCard(model)
        gone.version = "9"  # as a view could: ↻ then raised in the comm callback, unseen
        gone.reload()
        assert "no version 9" in gone.error and "no version 9" in gone._repr_html_()
        assert json.dumps(card.get_state())

        with pytest.raises(ValueError, match="no active run"):
            wb.widgets.LiveMetrics()
        with wb.run(experiment="scratch") as run:
            assert wb.widgets.LiveMetrics(follow=False).run_id == run.run_id  # the active run

    await asyncio.to_thread(work)


def test_long_series_are_thinned_keeping_spikes_and_the_last_point() -> None:
    points = [(step, 1 / (step + 1)) for step in range(10_000)]
    points[4321] = (4321, 50.0)  # a spike
    kept = thin(points, 200)
    assert len(kept) <= 200 and kept[0] == (0, 1.0) and kept[-1] == points[-1]
    assert (4321, 50.0) in kept and [s for s, _ in kept] == sorted(s for s, _ in kept)


def test_a_widget_whose_constructor_fails_closes_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import sys

    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(TypeError, match="project"):
        wb.widgets.CompareRuns([], client=Client("http://127.0.0.1:9", "x"), project="lab")
    gc.collect()
    assert [u.exc_value for u in unraisable] == []


def test_a_widget_without_a_workbench_leaves_no_comm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in ("WORKBENCH_URL", "WORKBENCH_TOKEN", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))  # no server to discover
    before = set(open_comms)
    for make in (
        lambda: wb.widgets.RunsTable("sweep"),
        lambda: wb.widgets.DatasetBrowser("events"),
        lambda: wb.widgets.ModelCard("churn"),
        lambda: wb.widgets.CompareRuns(["0" * 32]),
        lambda: wb.widgets.LiveMetrics("0" * 32),
    ):
        with pytest.raises(wb.errors.NotConfigured):
            make()
    assert set(open_comms) == before  # each left its comm (and layout) open for no view


def test_html_fallbacks_print_values_as_the_magics_do() -> None:
    # MLflow's JSON carries non-finite metrics as strings; the tables show what %wb runs shows
    assert [fmt(v) for v in ("NaN", "Infinity", "-Infinity")] == ["nan", "inf", "-inf"]
    assert [fmt(v) for v in (1.7976931348623157e308, -1.7976931348623157e308)] == ["inf", "-inf"]
    assert [fmt(v) for v in (0.123456, 12, None, True, "adam")] == [
        "0.1235", "12", "", "True", "adam",
    ]  # fmt: skip


@pytest.mark.parametrize("websocket", [True, False], ids=["websocket", "polling"])
async def test_live_metrics_follows_a_run_logged_elsewhere(
    server_url: str, api: Any, tmp_path: Path, websocket: bool
) -> None:
    tokens = await seed(api)

    def work() -> None:
        trainer = Client(server_url, tokens["alice"])  # another connection: "another process"
        run = trainer.run("lab", "live", params={"lr": 0.1})
        run.log({"loss": 1.0}, step=0)
        run.flush()
        # a viewer watches, in a project of their own: the run was "not found" there
        wb.connect(server_url, tokens["bob"], project="other")
        chart = wb.widgets.LiveMetrics(run.run_id, smoothing=0.5, websocket=websocket)
        assert chart.project == "lab"
        assert chart.mode == ("websocket" if websocket else "polling") and chart.following
        assert chart.status == "RUNNING" and chart.metrics == ["loss"]
        assert chart.series["loss"] == {"steps": [0], "values": [1.0]}

        def train() -> None:
            for step in range(1, 40):
                run.log({"loss": 1 / (step + 1), "acc": step / 40}, step=step)
                time.sleep(0.01)
            run.flush()

        thread = threading.Thread(target=train)
        thread.start()
        chart.wait(points=79, timeout=30)  # while the run trains
        thread.join()
        assert chart.status == "RUNNING" and chart.metrics == ["loss", "acc"]
        run.end()
        chart.wait(timeout=30)  # follows until the run ends
        assert chart.status == "FINISHED" and chart.mode == "stopped" and not chart.following
        assert chart.series["loss"]["steps"] == list(range(40))
        assert chart.series["acc"]["values"][-1] == pytest.approx(39 / 40)
        assert json.dumps(chart.get_state())
        html = chart._repr_html_()
        assert "FINISHED" in html and html.count("<polyline") == 2

    await asyncio.to_thread(work)


# -- in a real workbench kernel: what a frontend receives over the comm ----------------------
@asynccontextmanager
async def kernel(server_url: str, token: str, workdir: Path) -> AsyncIterator[Any]:
    """A kernel from the shipped "Python 3 (Workbench)" spec, connected as ``token``."""
    specs = KernelSpecManager(kernel_dirs=[str(KERNELS)])
    manager = AsyncKernelManager(kernel_name="workbench-python3", kernel_spec_manager=specs)
    env = {
        **os.environ,
        "WORKBENCH_URL": server_url,
        "WORKBENCH_TOKEN": token,
        "WORKBENCH_PROJECT": "lab",
        "WORKBENCH_CACHE_DIR": str(workdir / "kernel-cache"),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    await manager.start_kernel(env=env, cwd=str(workdir))
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


class Frontend:
    """Executes code and keeps every iopub message, as a frontend would: widget models are
    built from ``comm_open`` and updated by ``comm_msg`` whatever cell (or thread) sent them."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.models: dict[str, dict[str, Any]] = {}
        self.updates: dict[str, int] = {}

    async def run(self, code: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Execute ``code``; the display data and streams of that cell."""
        msg_id = self.client.execute(code)
        outputs: list[dict[str, Any]] = []
        while True:
            msg = await self.client.get_iopub_msg(timeout=timeout)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "comm_open":
                self.models[content["comm_id"]] = dict(content["data"]["state"])
            elif kind == "comm_msg" and content["data"].get("method") == "update":
                self.models[content["comm_id"]].update(content["data"]["state"])
                self.updates[content["comm_id"]] = self.updates.get(content["comm_id"], 0) + 1
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if kind == "error":
                pytest.fail(f"{code!r} raised {content['ename']}: {content['evalue']}")
            if kind in ("display_data", "execute_result", "stream"):
                outputs.append(content)
            if kind == "status" and content["execution_state"] == "idle":
                return outputs

    def shown(self, outputs: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
        """The state of the one widget ``outputs`` display, and its HTML fallback."""
        (data,) = [o["data"] for o in outputs if WIDGET_VIEW in o.get("data", {})]
        return self.models[data[WIDGET_VIEW]["model_id"]], data["text/html"]


async def test_widgets_in_a_workbench_kernel(server_url: str, api: Any, tmp_path: Path) -> None:
    tokens = await seed(api)
    made = await asyncio.to_thread(prepare, server_url, tokens["alice"], tmp_path)
    runs = made["runs"]
    trainer = Client(server_url, tokens["alice"])
    live = await asyncio.to_thread(trainer.run, "lab", "live")
    async with kernel(server_url, tokens["alice"], tmp_path) as client:
        ui = Frontend(client)
        await ui.run("import jupyter_workbench as wb")
        shown = await ui.run("table = wb.widgets.RunsTable('sweep'); table")
        state, html = ui.shown(shown)
        assert state["_model_module"] == "anywidget" and "export default" in state["_esm"]
        assert set(state["visible"]) == set(runs.values()) and html.count("<tr>") == 4
        await ui.run("table.sort_by = 'metrics.loss'; table.descending = False")
        await ui.run("table.filter = 'optimizer=adam'; table.selected = table.visible")
        assert state["visible"] == state["selected"] == [runs[0.001], runs[0.01]]
        shown = await ui.run("compare = table.compare(); compare")
        compared, html = ui.shown(shown)
        assert compared["run_ids"] == [runs[0.001], runs[0.01]] and "params that differ" in html
        assert {a["name"] for a in compared["axes"]} == {"lr", "acc", "loss"}
        await ui.run(f"table.selected = ['{runs[0.1]}', '{runs[0.001]}']")
        assert compared["run_ids"] == [runs[0.1], runs[0.001]]  # the selection drives it
        assert set(compared["histories"]) == {runs[0.1], runs[0.001]}
        assert "optimizer" in compared["comparison"]["params"]["differ"]

        browser, html = ui.shown(await ui.run("wb.widgets.DatasetBrowser('flights')"))
        assert browser["version"] == 2 and browser["diff"]["summary"]["modified"] == 1
        assert "files of v2" in html
        card, html = ui.shown(await ui.run(f"wb.widgets.ModelCard('{made['model']}')"))
        assert card["card"]["markdown"].startswith("# Scorer") and "<h1>Scorer</h1>" in html
        assert card["lineage"]["datasets_read"][0]["dataset"] == "flights"

        # LiveMetrics follows a run another process logs to, while the chart is displayed
        chart, _html = ui.shown(
            await ui.run(f"chart = wb.widgets.LiveMetrics('{live.run_id}'); chart")
        )
        assert (
            chart["status"] == "RUNNING" and chart["points"] == 0 and chart["mode"] == "websocket"
        )

        def train() -> None:
            for step in range(30):
                live.log({"loss": 1 / (step + 1)}, step=step)
                live.flush()
                time.sleep(0.02)
            live.end()

        await asyncio.to_thread(train)
        out = await ui.run("chart.wait(timeout=30); print(chart.status, chart.points)")
        assert out[-1]["text"].split() == ["FINISHED", "30"]
        assert chart["series"]["loss"]["steps"] == list(range(30)) and chart["status"] == "FINISHED"
        comm = next(i for i, m in ui.models.items() if m is chart)
        assert ui.updates[comm] >= 3  # the points came in several updates, as they were logged


async def test_live_metrics_draws_inf_nan_and_negative_steps(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)

    def work() -> None:
        trainer = Client(server_url, tokens["alice"])
        run = trainer.run("lab", "odd")
        run.log({"loss": 1.0}, step=-5)
        run.log({"loss": float("nan"), "grad": float("inf")}, step=1)
        run.flush()
        wb.connect(server_url, tokens["alice"], project="lab")
        chart = wb.widgets.LiveMetrics(run.run_id)
        polled = wb.widgets.LiveMetrics(run.run_id, websocket=False)
        assert chart.mode == "websocket" and polled.mode == "polling"
        # MLflow keeps an infinity as the largest float: it was drawn at 1.8e308, every
        # other point of the chart flattened at the bottom
        assert chart.series["grad"] == {"steps": [1], "values": [None]}
        assert chart.series["loss"] == {"steps": [-5, 1], "values": [1.0, None]}
        # an inf logged while a chart listens: the socket's message failed, and with it the
        # batch that logged the point (a 500: the trainer's run failed)
        run.log({"grad": float("-inf"), "loss": 0.5}, step=2)
        run.log({"below": 3.0}, step=-3)  # a new metric, at negative steps only
        run.flush()
        chart.wait(points=6, timeout=30)
        polled.wait(points=6, timeout=30)  # polling: "below" was listed but never loaded
        for seen in (chart, polled):
            assert seen.series["grad"] == {"steps": [1, 2], "values": [None, None]}
            assert seen.series["below"] == {"steps": [-3], "values": [3.0]}
            assert seen.series["loss"]["values"] == [1.0, None, 0.5]
        polled.close()  # closed while the run trains: its thread stops polling, at once
        assert not polled.following and polled.mode == "stopped" and polled.comm is None
        one = wb.widgets.LiveMetrics(run.run_id, "loss", follow=False)
        assert one.metrics == ["loss"] and list(one.series) == ["loss"]  # was l, o, s, s
        one.close()
        run.end()
        chart.wait(timeout=30)
        started = time.monotonic()  # waited out its timeout for points that could not come
        assert chart.wait(points=10**6, timeout=30).points == 6
        assert time.monotonic() - started < 5
        html = chart._repr_html_()
        assert html.count("<polyline") == 3 and ">inf</text>" not in html  # the y axis: 0.5 .. 3

    await asyncio.to_thread(work)


async def test_runs_table_and_comparison_of_odd_runs(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)

    def work() -> None:
        wb.connect(server_url, tokens["alice"], project="lab")
        ids = {}
        for name, params, metrics in (
            ("diverged", {"lr": "auto"}, {"loss": float("nan"), "acc": 0.2}),
            ("twin", {"lr": "0.5"}, {"loss": 0.3, "acc": float("inf")}),
            ("twin", {"lr": "0.05", "extra": "1"}, {"loss": 0.1, "acc": 0.9}),
            ("empty run", {}, {}),
        ):
            with wb.run(experiment="odd", name=name, params=params) as run:
                if metrics:
                    run.log(metrics, step=0)
                    run.log({"acc": 0.5}, step=1)
            ids[run.run_id] = name.split()[0] if name != "twin" else f"twin-{params['lr']}"
        table = wb.widgets.RunsTable("odd", sort_by="metrics.loss")

        def shown() -> list[str]:
            return [ids[i] for i in table.visible]

        # the diverged run (loss NaN, MLflow's "NaN") topped the descending sort
        assert shown() == ["twin-0.5", "twin-0.05", "diverged", "empty"]
        table.descending = False
        assert shown() == ["twin-0.05", "twin-0.5", "diverged", "empty"]
        table.sort_by, table.descending = "lr", True  # numbers first, then text, either way
        assert shown() == ["twin-0.5", "twin-0.05", "diverged", "empty"]

        by_name = {v: k for k, v in ids.items()}
        table.selected = [by_name["diverged"], by_name["twin-0.5"], by_name["twin-0.05"]]
        compare = table.compare(metric="acc")
        # an infinity was a point at 1.8e308 (every other curve flat at the bottom)
        assert compare.histories[by_name["twin-0.5"]]["values"] == [None, 0.5]
        assert {a["name"]: a["values"] for a in compare.axes}["acc"][by_name["twin-0.5"]] == 0.5
        html = compare._repr_html_()
        # two runs of one name were one column heading twice, and one curve of the two
        assert html.count("<polyline") == 3
        assert f"twin ({by_name['twin-0.5'][:8]})" in html
        assert "<td>extra</td><td>—</td><td>—</td><td>1</td>" in html  # not a blank: no param

        alone = wb.widgets.CompareRuns(by_name["diverged"])  # was 32 one-letter run ids
        assert alone.run_ids == [by_name["diverged"]] and alone.error == ""
        typo = wb.widgets.CompareRuns(by_name["diverged"], metric="los")  # acc, unsaid
        assert typo.metric == "acc" and typo.histories
        assert typo.error == "metric 'los': no run here logged it (metrics: acc, loss)"
        table.search = "params.lr = 'auto'"
        table.refresh()  # the selected runs no longer loaded leave the selection
        assert table.selected == [by_name["diverged"]] == compare.run_ids

        table.search = ""
        table.refresh()
        table.filter = "los<0.2"  # a typo was "no run matches the filter"
        assert table.visible == [] and table.error == (
            "filter: no run has 'los' (params: extra, lr; metrics: acc, loss)"
        )
        table.filter = "extra=1"  # a param some runs have
        assert table.error == "" and shown() == ["twin-0.05"]
        table.filter = "status=finished"  # as typed; the view shows FINISHED: no run matched
        assert len(table.visible) == 4 and table.error == ""
        for quoted in ("name='empty run'", 'name = "empty run"', '"empty run"'):
            table.filter = quoted  # was name='empty and the word run': no run
            assert table.error == "" and shown() == ["empty"], quoted
        # more runs than max_results: the table said "2 of 2 runs", the rest never mentioned
        newest = wb.widgets.RunsTable("odd", max_results=2)
        assert newest.more and len(newest.runs) == 2 and not table.more
        assert "2 of the newest 2 runs (more not loaded: max_results)" in newest._repr_html_()
        assert wb.widgets.RunsTable("odd", max_results=4).more is False
        with pytest.raises(ValueError, match="max_results"):
            wb.widgets.RunsTable("odd", max_results=0)  # one more than 0 is 1: no error

        everywhere = wb.widgets.RunsTable()  # every experiment: which one each run is of
        html = everywhere._repr_html_()
        assert "<th>name</th><th>experiment</th><th>status</th>" in html
        assert html.count("<td>odd</td>") == 4
        assert "<th>experiment</th>" not in table._repr_html_()

        missing = wb.widgets.RunsTable("nope")
        assert "has no experiment 'nope'" in missing.error
        assert "has no experiment &#x27;nope&#x27;" in missing._repr_html_()  # was a bare table

    await asyncio.to_thread(work)


async def test_live_metrics_says_when_it_cannot_follow(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)

    def work() -> None:
        owner = Client(server_url, tokens["alice"])
        run = owner.run("lab", "live")
        run.log({"loss": 1.0})
        run.flush()
        viewer = Client(server_url, tokens["bob"], project="lab")
        chart = wb.widgets.LiveMetrics(run.run_id, client=viewer, websocket=False)
        members = owner.api_url("projects/lab/members")

        def until(done: Any) -> None:
            deadline = time.monotonic() + 20
            while not done() and time.monotonic() < deadline:
                time.sleep(0.1)

        owner.request("DELETE", f"{members}/bob")  # bob can no longer read the run
        until(lambda: chart.error)  # the chart stood still, "live (polling)", nothing said
        assert chart.error.startswith("following the run: ") and chart.following
        owner.request("POST", members, json={"user": "bob", "role": "viewer"})
        run.log({"loss": 0.5})
        run.flush()
        until(lambda: not chart.error)
        assert chart.wait(points=2, timeout=20).error == ""  # said no more once it worked
        assert chart.series["loss"]["values"] == [1.0, 0.5]
        run.end()
        chart.wait(timeout=30)

    await asyncio.to_thread(work)


async def test_a_widget_that_fails_leaves_no_comm_nor_thread(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)

    def work() -> None:
        trainer = Client(server_url, tokens["alice"])
        run = trainer.run("lab", "odd")
        run.log({"loss": 1.0})
        run.flush()
        before, threads = set(open_comms), set(threading.enumerate())
        with pytest.raises(wb.errors.NotFound):
            wb.widgets.LiveMetrics("0" * 32, client=trainer, project="lab")
        # refused by the server after the chart began following the run: the thread went on
        # following it, for a chart nobody had
        with pytest.raises(wb.errors.BadRequest, match="max_points"):
            wb.widgets.LiveMetrics(run.run_id, client=trainer, project="lab", max_points=10**6)
        nowhere = Client(server_url, tokens["alice"])  # no current project
        with pytest.raises(wb.errors.NotConfigured):
            wb.widgets.RunsTable("odd", client=nowhere)
        with pytest.raises(wb.errors.NotConfigured):
            wb.widgets.DatasetBrowser("events", client=nowhere)
        assert set(open_comms) == before
        assert not [t.name for t in set(threading.enumerate()) - threads if "follow" in t.name]
        run.end()

    await asyncio.to_thread(work)


async def test_dataset_browser_says_what_changed_in_tables(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        folder = tmp_path / "typed"
        folder.mkdir()
        (folder / "a.csv").write_text("x,y\n1,2\n")
        pq.write_table(pa.table({"n": [1, 2]}), folder / "t.parquet")
        client.datasets.commit("typed", folder, progress=False)
        (folder / "a.csv").write_text("x,z\n1,2\n3,4\n")  # y -> z, rows
        pq.write_table(pa.table({"n": ["1", "2"]}), folder / "t.parquet")  # n retyped
        (folder / "b.parquet").write_bytes(b"not parquet at all")
        client.datasets.commit("typed", folder, progress=False)
        browser = wb.widgets.DatasetBrowser("typed", client=client)
        tables = {t["path"]: t for t in browser.diff["tables"]}
        assert tables["t.parquet"]["schema"]["changed"][0]["column"] == "n"
        html = browser._repr_html_()  # the fallback listed the files alone
        assert "<td>a.csv (csv)</td><td>1 → 2 (+1, -0)</td><td>z</td><td>y</td><td></td>" in html
        retyped = "<td></td><td></td><td>n int64 → string</td>"
        assert f"<td>t.parquet (parquet)</td><td>2 → 2 (+2, -2)</td>{retyped}" in html
        assert "<td>b.parquet (parquet)</td><td>not compared: Parquet magic bytes" in html

    await asyncio.to_thread(work)


async def test_dataset_browser_fallback_of_many_files(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        folder = tmp_path / "many"
        folder.mkdir()
        (folder / "first.txt").write_text("first")
        client.datasets.commit("many", folder, progress=False)
        for i in range(ROWS + 5):
            (folder / f"f{i:04d}.txt").write_text(str(i))
        client.datasets.commit("many", folder, progress=False)
        browser = wb.widgets.DatasetBrowser("many", client=client)
        assert len(browser.files) == ROWS + 6 and len(browser.diff["added"]) == ROWS + 5
        html = browser._repr_html_()  # every file, twice: a notebook kept them all
        assert f"files of v2 (the first {ROWS} of {ROWS + 6}; the widget shows them all)" in html
        assert f"v1 → v2 (the first {ROWS} of {ROWS + 5}; " in html
        assert html.count("<tr>") == 3 + (1 + ROWS) * 2  # versions, then files and diff

    await asyncio.to_thread(work)
