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
        if source.startswith("kernels/"):  # (the labextension is only there once built)
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
