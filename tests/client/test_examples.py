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
