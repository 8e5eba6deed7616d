"""``%wb`` in a real kernel started from the shipped "Python 3 (Workbench)" kernel spec (which
loads the extension by itself), talking to a real jupyter-server with the workbench."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from jupyter_workbench.client.magics import VERSIONS_SHOWN

from .conftest import seed, upload

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
REPO = KERNELS.parent


@asynccontextmanager
async def workbench_kernel(server_url: str, api: Any, **env_vars: str) -> AsyncIterator[Any]:
    """bob's kernel (a viewer of ``lab``, owner of ``other``) from the shipped spec;
    ``env_vars`` are set in its environment."""
    tokens = await seed(api)
    specs = KernelSpecManager(kernel_dirs=[str(KERNELS)])
    manager = AsyncKernelManager(kernel_name="workbench-python3", kernel_spec_manager=specs)
    # a fresh user's kernel: no MLFLOW_* of this process (an earlier test's wb.use leaves its
    # MLFLOW_TRACKING_URI, a server gone since, which the kernel rightly kept: mlflow's retries
    # then outlasted the test's wait)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env = {
        **inherited,
        "WORKBENCH_URL": server_url,
        "WORKBENCH_TOKEN": tokens["bob"],
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        **env_vars,
    }
    env.pop("WORKBENCH_PROJECT", None)
    await manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


async def run(client: Any, code: str) -> str:
    """Execute ``code``; its printed output (an error message fails the test)."""
    msg_id = client.execute(code)
    out: list[str] = []
    while True:
        # (a cell importing mlflow, ~3 s alone, went silent past 30 s on a loaded machine)
        msg = await client.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            pytest.fail(f"{code!r} raised: {content['ename']}: {content['evalue']}")
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out)


async def test_wb_magics_in_a_workbench_kernel(server_url: str, api: Any) -> None:
    async with workbench_kernel(server_url, api) as client:
        await _magics(client)


async def _magics(client: Any) -> None:
    assert "%wb project use SLUG" in await run(client, "%wb help")
    assert (
        await run(client, "%wb --help")
        == await run(client, "%wb -h")
        == await run(client, "%wb help")
    )
    listing = (await run(client, "%wb projects")).splitlines()
    assert listing[0].split() == ["slug", "name", "visibility", "your", "role"]
    assert [line.split()[:2] for line in listing[1:]] == [["lab", "Lab"], ["other", "Other"]]
    assert "viewer" in listing[1] and "owner" in listing[2]

    assert await run(client, "%wb datasets") == (
        "wb: error: no current project: call wb.use('slug') (or %wb project use SLUG) "
        "or pass project=\n"
    )
    missing = await run(client, "%wb project use nope")
    assert missing.startswith("wb: error: ") and "nope" in missing and missing.count("\n") == 1
    assert await run(client, "%wb project use lab") == (
        "current project: lab (Lab, your role: viewer)\n"
    )
    assert (await run(client, "%wb projects")).splitlines()[1].startswith("*  lab")
    datasets = (await run(client, "%wb datasets")).splitlines()
    assert datasets[0].split() == ["name", "latest", "tags", "description"]
    assert datasets[1].split() == ["events", "v1"]
    assert await run(client, "%wb runs") == "no runs\n"
    assert await run(client, "%wb runs --experiment baseline") == (  # a name no one made
        "wb: error: project 'lab' has no experiment 'baseline' (experiments: none yet)\n"
    )
    # the same connection from Python in the kernel: the current project is shared
    code = "import jupyter_workbench as wb; print(wb.datasets.get('events').files()[0]['path'])"
    assert await run(client, code) == "data/blob.bin\n"


HELP_OF_RUNS = (
    "%wb runs [--experiment E] [--filter F] [--max N]\n"
    + " " * 42
    + "the current project's runs (MLflow filter syntax)"
)
BAD = [
    ("%wb frobnicate", "wb: error: unknown command 'frobnicate' (try %wb help)"),
    ("%wb project use", "wb: error: usage: %wb project use SLUG"),
    ("%wb project drop lab", "wb: error: usage: %wb project use SLUG"),
    ("%wb projects --all", "wb: error: %wb projects takes no arguments"),
    ("%wb runs --max x", "wb: error: argument --max: invalid int value: 'x'"),
    ("%wb runs --max 0", "wb: error: --max must be at least 1"),
    ("%wb runs --colour red", "wb: error: unrecognized arguments: --colour red"),
    ('%wb project use "lab', "wb: error: No closing quotation"),
    # an empty name listed every run of the project, as if no --experiment were given
    ("%wb runs --experiment ''", "wb: error: --experiment: the name of an experiment, not empty"),
    ("%wb runs --experiment=", "wb: error: --experiment: the name of an experiment, not empty"),
    # one command's help (was: "unrecognized arguments: --help")
    ("%wb runs --help", HELP_OF_RUNS),
    ("%wb runs -h", HELP_OF_RUNS),
]


async def test_bad_arguments_print_one_line_and_completion_knows_slugs(
    server_url: str, api: Any
) -> None:
    async with workbench_kernel(server_url, api) as client:
        for line, message in BAD:
            assert await run(client, line) == message + "\n"
        for code, expected in [
            ("%wb pro", {"projects", "project"}),
            ("%wb project use ", {"lab", "other"}),
            ("%wb project use l", {"lab"}),
        ]:
            msg_id = client.complete(code, len(code))
            while True:
                reply = await client.get_shell_msg(timeout=30)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            assert set(reply["content"]["matches"]) >= expected, (code, reply["content"])


def test_a_run_with_many_metrics_shows_the_first_and_a_count() -> None:
    from jupyter_workbench.client.magics import metrics_cell

    assert metrics_cell({"loss": 0.123456, "acc": float("nan")}) == "acc=nan, loss=0.1235"
    # counts keep their digits (a step or sample count of 123456 showed as 1.235e+05)
    assert metrics_cell({"samples": 123456, "time": 12345.678, "lr": 1e-5, "big": 2e15}) == (
        "big=2e+15, lr=1e-05, samples=123456, time=12345.7"
    )
    assert metrics_cell({"n": 9999, "m": -20000.0}) == "m=-20000, n=9999"
    many = metrics_cell({f"m{i:03d}": i for i in range(500)})
    assert many == ", ".join(f"m{i:03d}={i}" for i in range(8)) + ", ... (+492 more)"


async def test_a_url_that_is_not_one_is_one_line_not_a_traceback(server_url: str, api: Any) -> None:
    """WORKBENCH_URL without its scheme: the client's ValueError was a traceback in every
    magic."""
    async with workbench_kernel(server_url, api, WORKBENCH_URL="localhost:8888") as client:
        said = (
            "wb: error: url: 'localhost:8888' is not a server's address (like "
            "'http://127.0.0.1:8888/' or 'https://hub.example.org/user/alice/')\n"
        )
        assert await run(client, "%wb projects") == said
        assert await run(client, "%wb project use lab") == said
        assert await run(client, "%%wb_run e\nprint('ran')") == said


async def test_tables_keep_a_row_a_line_and_times_in_the_kernels_zone(
    server_url: str, api: Any
) -> None:
    """A multi-line description broke ``%wb datasets``' columns; ``%wb dataset`` showed its
    versions' times in UTC while ``%wb runs`` shows local times."""
    async with workbench_kernel(server_url, api, TZ="Asia/Kolkata") as client:
        made = await api("alice").post(
            "projects/lab/datasets", {"name": "notes", "description": "line one\nline two"}
        )
        assert made.status == 201, made
        await run(client, "%wb project use lab")
        listing = (await run(client, "%wb datasets")).splitlines()
        assert len(listing) == 3 and listing[2].split() == [
            "notes",
            "-",
            "line",
            "one\\nline",
            "two",
        ]
        versions = (await run(client, "%wb dataset events")).splitlines()
        created = datetime.strptime(" ".join(versions[1].split()[6:8]), "%Y-%m-%d %H:%M")
        here = datetime.now(ZoneInfo("Asia/Kolkata")).replace(tzinfo=None)
        assert abs(here - created) < timedelta(minutes=5), (versions, here)


async def test_completion_does_not_wait_on_a_server_that_hangs(server_url: str, api: Any) -> None:
    """A server that takes connections and never answers: TAB froze the kernel for a minute
    and a half (30 s reads, tried three times); completion now gives up after a few seconds."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # accepted by the kernel's TCP stack, never answered
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        async with workbench_kernel(server_url, api, WORKBENCH_URL=url) as client:
            code = "%wb project use "
            started = time.monotonic()
            msg_id = client.complete(code, len(code))
            while True:
                reply = await client.get_shell_msg(timeout=20)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            assert time.monotonic() - started < 10
            assert reply["content"]["status"] == "ok"


async def test_a_dataset_with_many_versions_shows_the_newest(server_url: str, api: Any) -> None:
    """``%wb dataset`` fetched and printed every version (thousands for a dataset committed
    by a schedule); it shows the newest ``VERSIONS_SHOWN`` and says there are more."""
    async with workbench_kernel(server_url, api) as client:
        for i in range(VERSIONS_SHOWN):  # v2 ... v21 after the seed's v1
            await upload(api("alice"), "lab", "events", {"n.txt": f"{i}\n".encode()})
        await run(client, "%wb project use lab")
        listing = (await run(client, "%wb dataset events")).splitlines()
        assert [line.split()[0] for line in listing[1:-1]] == [
            f"v{n}" for n in range(VERSIONS_SHOWN + 1, 1, -1)
        ]
        assert listing[-1] == (
            f"(the newest {VERSIONS_SHOWN}; all of them: wb.datasets.versions('events'))"
        )
        await upload(api("alice"), "lab", "few", {"a.txt": b"a"})
        assert len((await run(client, "%wb dataset few")).splitlines()) == 2  # no such line


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("not-a-token", "{url} refused the token (WORKBENCH_TOKEN or JUPYTERHUB_API_TOKEN"),
        ("", "no token for {url}: set WORKBENCH_TOKEN, or call wb.connect(url, token) ("),
    ],
)
async def test_a_refused_or_missing_token_is_named(
    server_url: str, api: Any, token: str, error: str
) -> None:
    """A wrong token said "sign in first: send 'Authorization: token <your token>'", as if
    none had been sent; now the error says the token was refused, or that none was given."""
    async with workbench_kernel(
        server_url, api, WORKBENCH_TOKEN=token, JUPYTERHUB_API_TOKEN=""
    ) as client:
        said = await run(client, "%wb projects")
        assert said.startswith("wb: error: " + error.format(url=server_url)), said
        assert said.count("\n") == 1
