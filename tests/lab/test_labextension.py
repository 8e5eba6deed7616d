"""The prebuilt JupyterLab extension is installed with the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import lab_env


def test_labextension_list_shows_the_workbench_enabled(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jupyterlab.labextensions", "list"],
        capture_output=True, text=True, env=lab_env(tmp_path), timeout=120,
    )  # fmt: skip
    listing = result.stdout + result.stderr
    assert result.returncode == 0, listing
    lines = [line for line in listing.splitlines() if "jupyter-workbench" in line]
    assert lines, f"jupyter-workbench is not installed (run `make labextension`):\n{listing}"
    assert "enabled" in lines[0] and "OK" in lines[0], listing
