"""The "Python 3 (Workbench)" and "Python 3 (Workbench, GPU)" kernel specs ship as shared data
and are what Jupyter lists."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_kernel_spec_is_installed_with_the_package_and_listed(tmp_path: Path) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    shared = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    for name in ("workbench-python3", "workbench-python3-gpu"):
        assert shared[f"kernels/{name}"] == f"share/jupyter/kernels/{name}"
    assert "kernels" in pyproject["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    prefix = tmp_path / "prefix"  # what pip lays out under sys.prefix from the wheel's data
    for source, target in shared.items():
        if source.startswith(("kernels/", "examples")):  # (the labextension: once built)
            shutil.copytree(REPO / source, prefix / target)
    env = {
        **os.environ,
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
    }
    listed = subprocess.run(
        [sys.executable, "-m", "jupyter_client.kernelspecapp", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    specs = json.loads(listed.stdout)["kernelspecs"]
    spec = specs["workbench-python3"]["spec"]
    assert spec["display_name"] == "Python 3 (Workbench)"
    assert spec["language"] == "python"
    assert "--IPKernelApp.extensions=jupyter_workbench" in spec["argv"]
    assert spec["argv"][:3] == ["python", "-m", "ipykernel_launcher"]  # this environment's
    gpu = specs["workbench-python3-gpu"]["spec"]
    assert gpu["display_name"] == "Python 3 (Workbench, GPU)"
    assert "--IPKernelApp.extensions=jupyter_workbench.client.gpu" in gpu["argv"]
    assert gpu["argv"][:3] == ["python", "-m", "ipykernel_launcher"]
    for name in ("workbench-python3", "workbench-python3-gpu"):  # the launcher's icons
        resources = {p.name for p in Path(specs[name]["resource_dir"]).iterdir()}
        assert {"logo-svg.svg", "logo-64x64.png", "logo-32x32.png"} <= resources

    # the example notebooks the lab's launcher offers are found where pip put them
    assert shared["examples"] == "share/jupyter/workbench/examples"
    found = subprocess.run(
        [sys.executable, "-c", "from jupyter_workbench.examples import examples_folder as f, "
         "list_examples as l; print(f()); print([e.name for e in l(f())])"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines()  # fmt: skip
    assert found == [
        str(prefix / "share/jupyter/workbench/examples"),
        str(["quickstart", "datasets", "training"]),
    ]
