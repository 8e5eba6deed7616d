"""``%%wb_run``, ``%wb compare``, ``%wb dataset`` and their completion in a real workbench kernel
against a real jupyter-server with the workbench and a real MLflow."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from traitlets.config import Config

from jupyter_workbench.client import Client
from tests.conftest import TOKEN_OF

from .test_magics_kernel import run, workbench_kernel

pytestmark = pytest.mark.slow

CELL = """\
import jupyter_workbench as wb, mlflow
events = wb.datasets.get("events", project="lab")
for step in range(5):
    wb.log({"loss": 1 / (step + 1)}, step=step)
mlflow.log_metric("acc", 0.5)
print("trained on", events)"""


@pytest.fixture
def jp_server_config(jp_server_config: Config, mlflow_config: dict[str, str]) -> Config:
    jp_server_config["Workbench"].update(mlflow_config)
    return jp_server_config


async def outputs(
    kernel: Any, code: str, on_stream: Callable[[str], Awaitable[None]] | None = None
) -> tuple[str, list[str]]:
    """(printed output, errors as 'Name: value') of executing ``code``; ``on_stream`` is
    awaited with each piece printed."""
    msg_id = kernel.execute(code)
    out: list[str] = []
    errors: list[str] = []
    while True:
        msg = await kernel.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
            if on_stream is not None:
                await on_stream(content["text"])
        elif kind == "error":
            errors.append(f"{content['ename']}: {content['evalue']}")
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out), errors


async def completions(kernel: Any, code: str) -> set[str]:
    msg_id = kernel.complete(code, len(code))
    while True:
        reply = await kernel.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return set(reply["content"]["matches"])


def cell_source(client: Client, run_id: str) -> str:
    """The ``cell.py`` artifact of a run, read through the workbench's MLflow proxy."""
    base = client.mlflow_url("other")
    info = client.request("GET", f"{base}/api/2.0/mlflow/runs/get", params={"run_id": run_id})
    where = info["run"]["info"]["artifact_uri"].split(":", 1)[1].lstrip("/")
    return client.send("GET", f"{base}/api/2.0/mlflow-artifacts/artifacts/{where}/cell.py").text


async def test_wb_run_records_the_cell_packages_and_datasets_then_compare(
    server_url: str, api: Any
) -> None:
    async with workbench_kernel(server_url, api) as kernel:
        await run(kernel, "%wb project use other")  # bob owns 'other', reads 'lab'
        printed, errors = await outputs(
            kernel, f"%%wb_run baseline --param lr=0.1 -n first\n{CELL}"
        )
        assert errors == []
        lines = printed.splitlines()
        assert lines[0] == "trained on <DatasetVersion lab/events v1>"
        assert lines[1].startswith("wb: run ") and lines[1].endswith(
            " in other/baseline: FINISHED (read lab/events v1)"  # another project's: named
        )
        first = lines[1].split()[2]

        printed, errors = await outputs(
            kernel,
            f"%%wb_run baseline --param lr=0.5 --param note={'x' * 100}\n"
            "wb.log({'loss': 9.0})\nraise ValueError('boom')",
        )
        assert errors == ["ValueError: boom"]  # the cell's own traceback, as usual
        assert printed.startswith("wb: run ") and printed.rstrip().endswith("FAILED")
        second = printed.split()[2]

        def check() -> None:
            client = Client(server_url, TOKEN_OF["bob"])
            runs = {r["run_id"][:8]: r for r in client.search_runs(["other"])}
            one, two = runs[first], runs[second]
            assert (one["name"], one["status"], one["params"]) == (
                "first",
                "FINISHED",
                {"lr": "0.1"},
            )
            assert one["metrics"] == {"loss": 0.2, "acc": 0.5}
            assert two["status"] == "FAILED"
            lineage = client.get(f"runs/{one['run_id']}/lineage")
            assert [
                (d["project"], d["dataset"], d["version"]) for d in lineage["datasets_read"]
            ] == [("lab", "events", 1)]
            source = cell_source(client, one["run_id"])
            assert source.rstrip("\n") == CELL
            assert lineage["code"]["sha256"] == hashlib.sha256(source.encode()).hexdigest()
            packages = lineage["environment"]["packages"]
            assert {"httpx", "ipykernel", "mlflow"} <= set(packages)
            assert lineage["environment"]["python"].count(".") == 2
            client.close()

        await asyncio.to_thread(check)

        table = (await run(kernel, f"%wb compare {first} {second}")).splitlines()
        assert table[0].split() == [first, second]
        assert table[1].split()[:2] == ["name", "first"]
        assert table[3].split() == ["status", "FINISHED", "FAILED"]
        assert ["lr", "0.1", "0.5"] in [line.split() for line in table]
        assert ["loss", "0.2", "9"] in [line.split() for line in table]
        # a long value is cut: it pushed the columns after it off the screen
        assert ["note", "x" * 39 + "\u2026"] in [line.split() for line in table]
        assert max(len(line) for line in table) < 80, table

        # a cell that awaits at top level is refused before a run starts (it failed half-way
        # with "This event loop is already running", the run FAILED)
        before = await run(kernel, "%wb runs --experiment baseline")
        said = await run(kernel, "%%wb_run baseline\nimport asyncio\nawait asyncio.sleep(0)")
        assert said.startswith("wb: error: %%wb_run cannot run a cell that awaits at top level")
        assert "with wb.run('EXPERIMENT') as run:" in said and said.count("\n") == 1
        assert await run(kernel, "%wb runs --experiment baseline") == before

        # an experiment name with a space, unquoted as completion writes it
        printed, errors = await outputs(kernel, "%%wb_run my sweep -p lr=1\nwb.log({'loss': 1})")
        assert errors == [] and printed.rstrip().endswith(" in other/my sweep: FINISHED")
        listed = (await run(kernel, "%wb runs --experiment my sweep")).splitlines()
        assert len(listed) == 2 and listed[1].split()[2:4] == ["my", "sweep"], listed
        assert "my sweep" in await completions(kernel, "%%wb_run my")
        # spaces around a quoted name are not part of it (the server drops them; the summary
        # said "other/ my sweep ", and %wb runs -e ' my sweep ' found no such experiment)
        printed, errors = await outputs(kernel, "%%wb_run ' my sweep ' -p lr=1\nprint('ran')")
        assert errors == [] and printed.rstrip().endswith(" in other/my sweep: FINISHED")
        spaced = await run(kernel, "%wb runs --experiment ' my sweep '")
        assert len(spaced.splitlines()) == 3, spaced
        # ... and with --experiment=, as %wb runs takes it (was: "unrecognized arguments: sweep")
        printed, errors = await outputs(kernel, "%%wb_run --experiment=my sweep\nprint('ran')")
        assert errors == [] and printed.rstrip().endswith(" in other/my sweep: FINISHED")
        assert await run(kernel, "%wb runs --experiment=my sweep") == await run(
            kernel, "%wb runs --experiment my sweep"
        )
        # a run's name with a space, unquoted too (was: "unrecognized arguments: try")
        for line in ("my sweep --name second try -p lr=2", "my sweep -n=second try -p lr=3"):
            printed, errors = await outputs(kernel, f"%%wb_run {line}\nprint('ran')")
            assert errors == [] and printed.rstrip().endswith(" in other/my sweep: FINISHED")
            newest = (await run(kernel, "%wb runs -e my sweep --max 1")).splitlines()[1]
            assert newest.split()[1:3] == ["second", "try"], line
        # completion goes on past the space: IPython replaces the word typed, "s" by "sweep"
        for typed in ("%%wb_run my s", "%wb runs --experiment my s", "%wb runs -e=my s"):
            assert await completions(kernel, typed) == {"sweep"}, typed
        assert "my sweep" in await completions(kernel, "%wb runs --experiment=my")

        # completion: experiments, run ids, dataset names
        assert "baseline" in await completions(kernel, "%%wb_run ")
        assert "baseline" in await completions(kernel, "%%wb_run ba")
        assert "baseline" in await completions(kernel, "%wb runs --experiment ")
        assert {first, second} <= await completions(kernel, "%wb compare ")
        await run(kernel, "%wb project use lab")
        assert "events" in await completions(kernel, "%wb dataset ev")
        versions = (await run(kernel, "%wb dataset events")).splitlines()
        assert versions[0].split()[:4] == ["version", "tags", "files", "size"]
        assert versions[1].startswith("v1")


HELP_OF_WB_RUN = "\n".join(
    [
        "%%wb_run EXPERIMENT [--param K=V ...] [--name NAME]",
        " " * 42 + "run the cell as a tracked run: its source, the",
        " " * 42 + "kernel's packages and the datasets it reads are",
        " " * 42 + "recorded (wb.log({...}) / mlflow.log_metric log to it)",
    ]
)
BAD = [
    (
        "%%wb_run\nprint('ran')",
        "wb: error: usage: %%wb_run EXPERIMENT [--param K=V ...] [--name NAME]",
    ),
    ("%%wb_run e --param lr\nprint('ran')", "wb: error: --param 'lr': write it as KEY=VALUE"),
    ("%%wb_run e --colour red\nprint('ran')", "wb: error: unrecognized arguments: --colour red"),
    (
        "%%wb_run e\nprint('ran')",
        "wb: error: no current project: call wb.use('slug') (or %wb project use SLUG) "
        "or pass project=",
    ),
    (
        "%wb compare abc",
        "wb: error: usage: %wb compare RUN RUN... (two runs or more, ids or id prefixes)",
    ),
    ("%wb dataset", "wb: error: usage: %wb dataset NAME"),
    # an empty name: not "missing 'name'", "no API route ..." nor a traceback
    ("%%wb_run ''\nprint('ran')", "wb: error: EXPERIMENT: the name of an experiment, not empty"),
    ("%wb dataset ''", "wb: error: usage: %wb dataset NAME"),
    ("%wb project use ' '", "wb: error: usage: %wb project use SLUG"),
    # the help, not "unrecognized arguments: -h" (nor a run of the cell)
    ("%%wb_run -h\nprint('ran')", HELP_OF_WB_RUN),
    ("%%wb_run --help\nprint('ran')", HELP_OF_WB_RUN),
    # a repeated --param kept the last value silently
    ("%%wb_run e -p lr=1 -p lr=2\nprint('ran')", "wb: error: --param 'lr' given twice"),
    (
        "%%wb_run e --experiment f\nprint('ran')",
        "wb: error: name the experiment once: %%wb_run EXPERIMENT or --experiment EXPERIMENT",
    ),
]


async def test_bad_arguments_print_one_line_and_run_nothing(server_url: str, api: Any) -> None:
    async with workbench_kernel(server_url, api) as kernel:
        for code, message in BAD:
            assert await run(kernel, code) == message + "\n", code
        await run(kernel, "%wb project use lab")  # bob only reads 'lab'
        denied = await run(kernel, "%%wb_run e\nprint('ran')")
        assert denied.startswith("wb: error: ") and "ran" not in denied.splitlines()
        assert denied.count("\n") == 1
        # a param name MLflow refuses: one line, not the client's ValueError as a traceback
        refused = await run(kernel, "%%wb_run e --param 'bad key!=1'\nprint('ran')")
        assert refused == (
            "wb: error: params: name 'bad key!': may only contain letters, digits, spaces and "
            "the characters _ - . : /\n"
        )
        missing = await run(kernel, "%wb compare 00000000 ffffffff")
        assert missing == "wb: error: no run '00000000' in project lab (see %wb runs)\n"
        not_hex = await run(kernel, "%wb compare zzzz yyyy")
        assert not_hex == "wb: error: 'zzzz' is not a run id or the start of one (hex digits)\n"
        nope = await run(kernel, "%wb dataset nope")
        assert nope.startswith("wb: error: ") and "nope" in nope
        _out, errors = await outputs(kernel, "import jupyter_workbench as wb; wb.log({'x': 1})")
        assert errors and errors[0].startswith("NotConfigured: no active run")


async def test_a_run_that_cannot_be_recorded_is_not_left_active(server_url: str, api: Any) -> None:
    """When recording the cell failed, the run was never ended: it stayed the kernel's active
    run (``wb.log`` and MLflow calls went on to it) and MLFLOW_RUN_ID pointed at it."""
    async with workbench_kernel(server_url, api) as kernel:
        await run(kernel, "%wb project use other")
        # the cell closes the default connection (``with wb.connection() as c:``)
        said = await run(
            kernel, "%%wb_run e\nimport jupyter_workbench as wb\nwith wb.connection(): pass"
        )
        assert said.startswith("wb: error: run ") and "could not be recorded: " in said
        assert said.count("\n") == 1
        code = "import os; print(wb.active_run(), os.environ.get('MLFLOW_RUN_ID'))"
        assert await run(kernel, code) == "None None\n"
        # and the magics say how to connect again (was: "make a new one", of what?)
        said = await run(kernel, "%wb projects")
        assert said.startswith("wb: error: this workbench client was closed") and said.endswith(
            "(wb.connect() for the default connection of wb.* and %wb)\n"
        )
        await run(kernel, "wb.connect()")
        assert (await run(kernel, "%wb projects")).splitlines()[0].split()[0] == "slug"


async def test_a_cell_that_imports_mlflow_itself_logs_to_its_run(server_url: str, api: Any) -> None:
    """MLflow first imported in the cell: its first ``start_run(nested=True)`` took the cell's
    run as its own and ended it, and the next ``log_metric`` made a stray run in ``Default``,
    left RUNNING. Now the child is a child, and the cell's run gets the rest."""
    async with workbench_kernel(server_url, api) as kernel:
        await run(kernel, "%wb project use other")
        printed, errors = await outputs(
            kernel,
            "%%wb_run e\n"
            "import mlflow, jupyter_workbench as wb\n"
            "with mlflow.start_run(nested=True) as child:\n"
            "    mlflow.log_metric('child', 1)\n"
            "mlflow.log_metric('after', 2)\n"
            "print('same run:', child.info.run_id == wb.active_run().run_id)",
        )
        assert errors == [] and "same run: False\n" in printed, printed
        listing = [line.split() for line in (await run(kernel, "%wb runs")).splitlines()[1:]]
        assert sorted((r[2], r[3], r[-1]) for r in listing) == [
            ("e", "FINISHED", "after=2"),
            ("e", "FINISHED", "child=1"),
        ], listing


async def test_a_cell_ending_in_a_semicolon_shows_no_value(server_url: str, api: Any) -> None:
    """``model.fit(X, y);`` in a %%wb_run cell showed the value anyway (IPython looks for the
    ';' in the %%wb_run cell, not in the cell the magic runs)."""

    async def values(code: str) -> list[str]:
        msg_id = kernel.execute(code)
        shown = []
        while True:
            msg = await kernel.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_result":
                shown.append(msg["content"]["data"]["text/plain"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return shown

    async with workbench_kernel(server_url, api) as kernel:
        await run(kernel, "%wb project use other")
        assert await values("%%wb_run e\nx = 5\nx;") == []
        assert await values("%%wb_run e\nx = 6\nx  # shown") == ["6"]
        assert await values("%%wb_run e\nprint('printed');") == []
        assert (await outputs(kernel, "%%wb_run e\nprint('printed');"))[0].startswith("printed\n")


async def interrupted(kernel: Any, code: str) -> list[str]:
    """Run ``code``, interrupting the kernel once it printed 'logged'; the errors' names."""

    async def interrupt_once_logged(text: str) -> None:
        if "logged" in text:
            await asyncio.sleep(0.3)  # sending 200,000 points takes seconds
            await kernel.parent.interrupt_kernel()

    _printed, errors = await outputs(kernel, code, interrupt_once_logged)
    return [error.split(":", 1)[0] for error in errors]


async def test_an_interrupt_while_the_run_ends_still_ends_it(server_url: str, api: Any) -> None:
    """Interrupted after the cell or ``with`` block, while the run was being recorded or its
    points sent (a user stopping what looks like a hung cell): the run stayed RUNNING and the
    kernel's active run. It is ended KILLED, and the interrupt shows."""
    log = "for i in range(200_000):\n    wb.log({'loss': i}, step=i)\nprint('logged')"
    active = "import os; print(wb.active_run(), os.environ.get('MLFLOW_RUN_ID'))"
    async with workbench_kernel(server_url, api) as kernel:
        await run(kernel, "%wb project use other")
        code = f"%%wb_run e\nimport jupyter_workbench as wb\n{log}"
        assert await interrupted(kernel, code) == ["KeyboardInterrupt"]
        assert await run(kernel, active) == "None None\n"
        listing = (await run(kernel, "%wb runs")).splitlines()
        assert len(listing) == 2 and listing[1].split()[3] == "KILLED", listing

        code = "with wb.run('e') as block:\n" + "".join(f"    {line}\n" for line in log.split("\n"))
        assert await interrupted(kernel, code) == ["KeyboardInterrupt"]
        assert await run(kernel, active) == "None None\n"
        assert await run(kernel, "print(block.status)") == "KILLED\n"


async def test_a_deleted_experiment_is_named_with_what_to_do(server_url: str, api: Any) -> None:
    """An experiment deleted in MLflow said "The experiment 3 must be in the 'active' state.
    Current state is deleted." (an id the user never saw); now its name and what to do."""
    async with workbench_kernel(server_url, api) as kernel:
        await run(kernel, "%wb project use other")
        await outputs(kernel, "%%wb_run gone\nprint('ran')")
        code = (
            "import mlflow\nclient = mlflow.MlflowClient()\n"
            "gone = client.get_experiment_by_name('gone').experiment_id\n"
            "client.delete_experiment(gone)"
        )
        await run(kernel, code)
        said = await run(kernel, "%%wb_run gone\nprint('ran')")
        gone = (await run(kernel, "print(gone)")).strip()
        assert said == (
            "wb: error: experiment 'gone' of project 'other' was deleted: restore it (in "
            f"MLflow's UI, or MlflowClient().restore_experiment('{gone}')), or name another\n"
        )
        await run(kernel, f"client.restore_experiment('{gone}')")  # as it says
        printed, errors = await outputs(kernel, "%%wb_run gone\nprint('ran')")
        assert errors == [] and printed.rstrip().endswith(" in other/gone: FINISHED"), printed


def test_options_before_the_experiment_and_tab_on_the_bare_magic() -> None:
    """``--name`` takes several words, so ``%%wb_run --name run1 sweep`` has no experiment
    left: said so, not the bare usage line. TAB right after ``%%wb_run`` answers nothing (it
    raised IndexError, shown on every TAB)."""
    from types import SimpleNamespace

    from jupyter_workbench.client.cell_run import complete_wb_run, parse_line
    from jupyter_workbench.client.magics import UsageError

    with pytest.raises(UsageError, match="--name took 'run1 sweep' and left no EXPERIMENT"):
        parse_line("--name run1 sweep")
    opts = parse_line("sweep --name run1")
    assert (opts.experiment, opts.name) == ("sweep", "run1")
    assert complete_wb_run(None, SimpleNamespace(line="%%wb_run")) == []
