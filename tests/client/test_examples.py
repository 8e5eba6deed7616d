"""The example notebooks, executed top to bottom by nbclient in a "Python 3 (Workbench)" kernel
against a real jupyter-server with the workbench and a real MLflow, as a new user would."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets.config import Config

from tests.conftest import TOKEN_OF

from .test_magics_kernel import KERNELS, REPO

pytestmark = pytest.mark.slow

EXAMPLES = REPO / "examples"
WIDGET = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.fixture
def jp_server_config(jp_server_config: Config, mlflow_config: dict[str, str]) -> Config:
    jp_server_config["Workbench"].update(mlflow_config)
    return jp_server_config


async def execute(name: str, server_url: str, user: str, workdir: Path) -> Any:
    """Run ``examples/<name>`` in a fresh workbench kernel; the executed notebook."""
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    specs = KernelSpecManager(kernel_dirs=[str(KERNELS)])
    manager = AsyncKernelManager(
        kernel_name=nb.metadata["kernelspec"]["name"], kernel_spec_manager=specs
    )
    env = {
        **os.environ,
        "WORKBENCH_URL": server_url,
        "WORKBENCH_TOKEN": TOKEN_OF[user],
        "WORKBENCH_CACHE_DIR": str(workdir / "cache"),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    for key in ("WORKBENCH_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID"):
        env.pop(key, None)
    client = NotebookClient(
        nb, km=manager, timeout=180, resources={"metadata": {"path": str(workdir)}}
    )
    try:
        await client.async_execute(env=env)
    finally:  # nbclient stops only the kernels it started itself
        if manager.has_kernel:
            await manager.shutdown_kernel(now=True)
    return nb


def text(cell: Any) -> str:
    """A cell's printed and displayed text (widgets left out)."""
    out = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            out.append(output["text"])
        elif "data" in output and WIDGET not in output["data"]:
            out.append(output["data"].get("text/plain", ""))
    return "".join(out)


def widgets(cell: Any) -> int:
    return sum(WIDGET in output.get("data", {}) for output in cell.get("outputs", []))


async def test_quickstart_runs_top_to_bottom_twice(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    await api("carol").get("me")  # a brand-new user
    nb = await execute("quickstart.ipynb", server_url, "carol", tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert text(code[0]) == "<Project 'quickstart' (owner)>"
    assert text(code[1]) == "<DatasetVersion quickstart/points v1>"
    assert widgets(code[1]) == 2  # the progress bars: hashing, uploading
    assert text(code[2]).splitlines()[1].split()[:2] == ["points", "v1"]
    runs = text(code[4]).splitlines()
    assert len(runs) == 3 and all("FINISHED" in line for line in runs[1:])
    compare = [line.split() for line in text(code[5]).splitlines()]
    assert ["lr", "0.01", "0.3"] in compare
    assert text(code[6]).startswith("wb: run ") and "FINISHED (read points v1)" in text(code[6])
    assert text(code[7]) == "[0.5, 3.5]"
    # a second time, as a user who runs it again: it reuses the project
    shutil.rmtree(tmp_path / "quickstart-data")
    again = await execute("quickstart.ipynb", server_url, "carol", tmp_path)
    again_code = [c for c in again.cells if c.cell_type == "code"]
    assert text(again_code[0]) == "<Project 'quickstart' (owner)>"
    assert text(again_code[7]) == "[0.5, 3.5]"
    # another user on the same workbench gets a quickstart of their own
    await api("erin").get("me")
    erin = tmp_path / "erin"
    erin.mkdir()
    theirs = await execute("quickstart.ipynb", server_url, "erin", erin)
    theirs_code = [c for c in theirs.cells if c.cell_type == "code"]
    assert text(theirs_code[0]) == "<Project 'quickstart-2' (owner)>"
    assert text(theirs_code[1]) == "<DatasetVersion quickstart-2/points v1>"
    assert text(theirs_code[7]) == "[0.5, 3.5]"


def widget_states(nb: Any) -> dict[str, dict[str, Any]]:
    """The widget models the executed notebook kept (built from the kernel's comm messages)."""
    stored = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return {model_id: model["state"] for model_id, model in stored.items()}


def shown(nb: Any, cell: Any) -> tuple[dict[str, Any], str]:
    """The state of the one widget a cell displays, and the HTML shown where widgets are not."""
    (data,) = [o["data"] for o in cell.get("outputs", []) if WIDGET in o.get("data", {})]
    return widget_states(nb)[data[WIDGET]["model_id"]], data["text/html"]


async def test_training_example_trains_with_a_live_chart(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    await api("dave").get("me")  # a brand-new user
    nb = await execute("training.ipynb", server_url, "dave", tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert text(code[0]) == "<Project 'training' (owner)>"
    assert text(code[1]) == "<DatasetVersion training/moons v1>"
    chart, html = shown(nb, code[2])
    accuracy = float(text(code[3]).split()[2])
    assert text(code[3]).endswith("after 750 steps\n") and accuracy > 0.95
    assert text(code[4]) == "FINISHED {'train_loss': 750, 'val_loss': 30, 'val_acc': 30}\n"
    # the chart's model, as the kernel's comm messages left it: every point, the run ended
    assert chart["_anywidget_id"] == "jupyter_workbench.widgets.live.LiveMetrics"
    assert chart["status"] == "FINISHED" and chart["metrics"] == [
        "train_loss",
        "val_loss",
        "val_acc",
    ]
    assert chart["series"]["train_loss"]["steps"] == list(range(750))
    assert chart["series"]["val_acc"]["values"][-1] == pytest.approx(accuracy, abs=1e-3)
    assert chart["smoothing"] == 0.6 and "(RUNNING)" in html  # the snapshot beside it
    table, html = shown(nb, code[5])
    assert len(table["runs"]) == 1 and table["sort_by"] == "metrics.val_acc"
    assert "moons-mlp" in html
    compare, html = shown(nb, code[6])
    assert compare["metric"] == "val_loss" and compare["run_ids"] == table["selected"]
    assert text(code[7]) == "(1, 1)"  # the run read moons v1


async def test_datasets_example_walks_through_versioning(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    await api("erin").get("me")
    nb = await execute("datasets.ipynb", server_url, "erin", tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert text(code[0]) == "<Project 'datasets-tour' (owner)>"
    assert text(code[1]) == "<DatasetVersion datasets-tour/cities v1>"
    assert text(code[2]).splitlines() == [
        "left out: ['.ipynb_checkpoints/', '.wbignore', 'import.log']",  # no litter in v2
        "<DatasetVersion datasets-tour/cities v2>",
    ]
    versions = [line.split()[:2] for line in text(code[3]).splitlines()]
    assert versions[1:] == [["v2", "latest"], ["v1", "2"]]
    diff = text(code[4]).splitlines()
    assert diff[:3] == [
        "added ['countries.parquet']",
        "removed ['notes/README.md']",
        "modified ['cities.csv']",
    ]
    assert diff[3].startswith("cities.csv columns added: ['area_km2'] rows: {'old': 4, 'new': 6")
    tags = text(code[5]).splitlines()
    assert tags[0] == "<DatasetVersion datasets-tour/cities v1>"
    assert tags[1] == "<DatasetVersion datasets-tour/cities v2>"
    assert tags[-1] == "[('v2', ['latest', 'reviewed']), ('v1', [])]"
    lineage = text(code[6]).splitlines()
    assert (
        lineage[0] == "read:    [('cities', 2)]" and lineage[1] == "wrote:   [('city-density', 1)]"
    )
    assert lineage[2].startswith("used by: [('run:") and lineage[2].endswith("'read')]")
    browser, html = shown(nb, code[7])
    assert [v["name"] for v in browser["versions"]] == ["v2", "v1"]
    assert (browser["diff_from"], browser["diff_to"]) == (1, 2) and browser["version"] == 2
    assert browser["diff"]["summary"] == {
        "added": 1,
        "removed": 1,
        "modified": 1,
        "bytes_added": browser["diff"]["summary"]["bytes_added"],
        "bytes_removed": browser["diff"]["summary"]["bytes_removed"],
    }
    assert [entry["direction"] for entry in browser["lineage"]] == ["read"]
    assert "countries.parquet" in html and "v1 → v2" in html
