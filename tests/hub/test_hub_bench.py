"""benchmarks/hub_bench.py still runs: a bare hub and the workbench's, one spawn each, a few
users on the API, no errors. Its timings are printed, never asserted (the full ``--quick`` run
takes minutes on 2 busy cores; this smallest run about 40 s)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow


def test_hub_bench_smoke() -> None:
    args = ["--hubs", "bare,workbench+check", "--spawns", "1", "--warmup", "0", "--users", "4",
            "--form-users", "1"]  # fmt: skip
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "hub_bench.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "errors: 0 (goal 0)" in run.stdout
    assert "spawn-to-ready" in run.stdout and "workbench+check: workbench API" in run.stdout
