"""``%wb runs`` in a workbench kernel against a server with a real MLflow behind it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from traitlets.config import Config

from jupyter_workbench.client import Client
from tests.conftest import TOKEN_OF

from .test_magics_kernel import run, workbench_kernel

pytestmark = pytest.mark.slow


@pytest.fixture
def jp_server_config(jp_server_config: Config, mlflow_config: dict[str, str]) -> Config:
    jp_server_config["Workbench"].update(mlflow_config)
    return jp_server_config


async def test_wb_runs_lists_filters_and_reports_bad_filters(server_url: str, api: Any) -> None:
    async with workbench_kernel(server_url, api) as kernel:

        def log_runs() -> None:
            alice = Client(server_url, TOKEN_OF["alice"])
            for name, experiment, loss in [
                ("first", "baseline", 0.9),
                ("second", "baseline", 0.2),
                ("wide", "bigger", 0.1),
                ("diverged", "bigger", float("nan")),
            ]:
                with alice.run("lab", experiment, params={"lr": 0.1}, name=name) as tracked:
                    tracked.log({"loss": loss}, step=0)
                    if name == "diverged":
                        tracked.log({"grad": float("inf")}, step=0)
            alice.close()

        await asyncio.to_thread(log_runs)
        await run(kernel, "%wb project use lab")
        listing = (await run(kernel, "%wb runs")).splitlines()
        assert listing[0].split() == ["run", "name", "experiment", "status", "started", "metrics"]
        assert [line.split()[1:4] for line in listing[1:]] == [
            ["diverged", "bigger", "FINISHED"],
            ["wide", "bigger", "FINISHED"],
            ["second", "baseline", "FINISHED"],
            ["first", "baseline", "FINISHED"],
        ]
        assert listing[1].endswith("loss=nan")  # a diverged run's NaN, shown as such
        assert "grad=inf" in listing[1]  # (MLflow stores an infinity as the largest float)
        assert listing[2].endswith("loss=0.1")
        diverged, wide = listing[1].split()[0], listing[2].split()[0]
        compared = (await run(kernel, f"%wb compare {diverged} {wide}")).splitlines()
        assert [line.split() for line in compared if line.split()[0] in ("grad", "loss")] == [
            ["grad", "inf"],
            ["loss", "nan", "0.1"],
        ]
        # the experiment's own newest runs, though newer runs of another fill --max
        only = (await run(kernel, "%wb runs --experiment baseline --max 2")).splitlines()
        assert [line.split()[1] for line in only[1:]] == ["second", "first"]
        # a list cut at --max says so (it looked whole); one that is whole does not
        cut = (await run(kernel, "%wb runs --max 3")).splitlines()
        assert [line.split()[1] for line in cut[1:4]] == ["diverged", "wide", "second"]
        assert cut[4:] == ["(the newest 3; there are more: --max N)"]
        assert len((await run(kernel, "%wb runs --max 4")).splitlines()) == 5
        unknown = await run(kernel, "%wb runs --experiment basline")
        assert unknown == (
            "wb: error: project 'lab' has no experiment 'basline' (experiments: baseline, bigger)\n"
        )
        good = (await run(kernel, '%wb runs --filter "metrics.loss < 0.5" --max 1')).splitlines()
        assert [line.split()[1] for line in good[1:2]] == ["wide"]
        assert good[2:] == ["(the newest 1; there are more: --max N)"]  # "second": 0.2
        # unquoted, or after '=': was "unrecognized arguments: < 0.5"
        for line in ("--filter metrics.loss < 0.5 --max 1", "--filter=metrics.loss < 0.5 --max 1"):
            assert (await run(kernel, f"%wb runs {line}")).splitlines() == good, line
        bad = await run(kernel, '%wb runs --filter "metrics.loss <<< x"')
        assert bad.startswith("wb: error: filter: ") and bad.count("\n") == 1
