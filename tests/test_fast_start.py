"""``python -m jupyter_workbench.fast_start MODULE ARGS...``: ``python -m MODULE ARGS...``, without
jsonschema's slow optional import of rfc3987-syntax (seconds at every server start)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from jupyter_workbench import fast_start

PROBE = """
import sys
import jsonschema  # what jupyter-server and JupyterHub import, through jupyter-events
print(__name__, sys.argv[1:], sys.modules.get("rfc3987_syntax") is None)
"""


def test_runs_the_module_as_main_with_its_arguments_and_without_the_slow_import(
    tmp_path: Path,
) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    done = subprocess.run(
        fast_start.command("probe", "--flag", "value"),
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "__main__ ['--flag', 'value'] True"
    # the same module started the ordinary way imports it (when it is installed)
    plain = subprocess.run(
        [sys.executable, "-m", "probe"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert plain.returncode == 0, plain.stderr
    installed = importlib.util.find_spec("rfc3987_syntax") is not None
    assert plain.stdout.strip() == f"__main__ [] {not installed}"


def test_starts_jupyter_server(tmp_path: Path) -> None:
    done = subprocess.run(
        fast_start.command("jupyter_server", "--version"),
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()[0].isdigit(), done.stdout


def test_without_a_module_it_says_how_to_use_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_workbench.fast_start"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "usage: python -m jupyter_workbench.fast_start MODULE" in done.stderr
