"""``with wb.run(...) as run`` against a real jupyter-server with the workbench and a real MLflow:
batched non-blocking logging, FINISHED/FAILED, artifacts, plain ``mlflow`` calls in the same run,
and the datasets a run reads recorded as its lineage."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

import jupyter_workbench as wb
from jupyter_workbench import client as wb_client
from jupyter_workbench.client import Client, default, errors

from .conftest import seed

pytestmark = pytest.mark.slow


@pytest.fixture
def jp_server_config(jp_server_config: Config, mlflow_config: dict[str, str]) -> Config:
    jp_server_config["Workbench"].update(mlflow_config)
    return jp_server_config


@pytest.fixture(autouse=True)
def _fresh_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setattr(default, "_default", None)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    yield
    monkeypatch.setattr(default, "_default", None)


def mlflow_run(client: Client, run_id: str) -> dict[str, Any]:
    """The run as MLflow stores it (through the workbench's proxy)."""
    url = client.mlflow_url("lab") + "/api/2.0/mlflow/runs/get"
    data = client.request("GET", url, params={"run_id": run_id})["run"]
    return {
        "status": data["info"]["status"],
        "params": {p["key"]: p["value"] for p in data["data"].get("params", [])},
        "metrics": {m["key"]: m["value"] for m in data["data"].get("metrics", [])},
        "tags": {t["key"]: t["value"] for t in data["data"].get("tags", [])},
    }


def artifacts(client: Client, run_id: str, path: str = "") -> list[str]:
    url = client.mlflow_url("lab") + "/api/2.0/mlflow/artifacts/list"
    params = {"run_id": run_id, **({"path": path} if path else {})}
    files = client.request("GET", url, params=params).get("files", [])
    out = []
    for f in files:
        out.extend(artifacts(client, run_id, f["path"]) if f["is_dir"] else [f["path"]])
    return sorted(out)


async def test_a_run_logs_in_batches_records_lineage_and_takes_plain_mlflow_calls(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)
    (tmp_path / "notes.txt").write_text("a note")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "loss.svg").write_text("<svg/>")

    def work() -> None:
        client = wb.connect(server_url, tokens["alice"], project="lab")
        batches: list[int] = []
        client.http.event_hooks["request"].append(
            lambda r: batches.append(1) if r.url.path.endswith("/batch") else None
        )
        with wb.run(experiment="baseline", params={"lr": 0.01}, name="first") as run:
            assert wb.Client is Client and run.status == "RUNNING"
            for step in range(3000):
                run.log({"loss": 1 / (step + 1), "acc": step / 3000}, step=step)
            events = wb.datasets.get("events", version="v1")  # recorded as read by the run
            wb.datasets.get("events")  # the same version again: recorded once
            import mlflow

            mlflow.log_metric("f1", 0.75)  # plain MLflow: the same run
            mlflow.log_param("seed", "7")
            assert mlflow.active_run().info.run_id == run.run_id
            run.log_artifact(tmp_path / "notes.txt")
            run.log_artifact(tmp_path / "plots", "figures")
            run.log_text("print('hi')\n", "code/cell.py")
            made = wb.datasets.commit("features", tmp_path / "plots", progress=False)
        assert run.status == "FINISHED" and events.version == 1
        # 6000 points travelled in a few requests, not one each (the params: one more)
        assert 2 <= len(batches) < 40
        stored = mlflow_run(client, run.run_id)
        assert stored["status"] == "FINISHED"
        assert stored["params"] == {"lr": "0.01", "seed": "7"}
        assert stored["metrics"]["f1"] == 0.75 and stored["metrics"]["loss"] == 1 / 3000
        history = client.history(run.run_id, "loss", max_points=10_000)
        assert history["total"] == 3000 and history["steps"][:3] == [0, 1, 2]
        assert artifacts(client, run.run_id) == [
            "code/cell.py",
            "figures/loss.svg",
            "notes.txt",
        ]
        lineage = run.lineage()
        assert [(d["dataset"], d["version"]) for d in lineage["datasets_read"]] == [("events", 1)]
        assert [(d["dataset"], d["version"]) for d in lineage["datasets_written"]] == [
            ("features", made.version)
        ]
        # after the block: no active run, MLflow's fluent API and environment are back
        assert mlflow.active_run() is None
        assert "MLFLOW_RUN_ID" not in os.environ
        # a dataset read outside any run is recorded nowhere
        wb.datasets.get("events")
        with wb.run(experiment="baseline") as second:
            second.log({"loss": 1.0})
        assert second.lineage()["datasets_read"] == []
        runs = client.search_runs(["lab"], filter="params.lr = '0.01'")
        assert [r["run_id"] for r in runs] == [run.run_id]
        client.close()

    await asyncio.to_thread(work)


async def test_plain_mlflow_outside_a_run_follows_the_current_project(
    server_url: str, api: Any
) -> None:
    tokens = await seed(api)
    # as in a workbench kernel: the unscoped tracking URI of this workbench
    os.environ["MLFLOW_TRACKING_URI"] = f"{server_url}/workbench/mlflow"
    os.environ["MLFLOW_TRACKING_TOKEN"] = tokens["alice"]

    def work() -> None:
        import mlflow

        client = wb.connect(server_url, tokens["alice"])
        wb.use("lab")
        assert os.environ["MLFLOW_TRACKING_URI"] == f"{server_url}/workbench/mlflow/p/lab"
        mlflow.set_experiment("plain")  # the project's experiment "plain"
        with mlflow.start_run() as plain:
            mlflow.log_metric("loss", 0.5)
        assert [e["name"] for e in client.experiments("lab") if e["name"] == "plain"] == ["plain"]
        found = client.search_runs(["lab"], experiment="plain")
        assert [(r["run_id"], r["metrics"]) for r in found] == [(plain.info.run_id, {"loss": 0.5})]
        # a workbench run is MLflow's active run, in its own experiment: a sweep's nested runs
        # are its children, and the calls after them still go to it (no stray run)
        with wb.run(experiment="sweep") as parent:
            assert mlflow.active_run().info.run_id == parent.run_id
            for lr in ("0.1", "0.2"):
                with mlflow.start_run(nested=True):
                    mlflow.log_param("lr", lr)
            mlflow.log_metric("best", 0.2)
        swept = client.search_runs(["lab"], experiment="sweep")
        assert sorted(str(r["params"]) for r in swept) == ["{'lr': '0.1'}", "{'lr': '0.2'}", "{}"]
        children = f"tags.mlflow.parentRunId = '{parent.run_id}'"
        assert len(client.search_runs(["lab"], experiment="sweep", filter=children)) == 2
        assert mlflow_run(client, parent.run_id)["metrics"] == {"best": 0.2}
        assert len(client.search_runs(["lab"])) == 4 and mlflow.active_run() is None
        with mlflow.start_run() as again:  # set_experiment's choice is back
            assert again.info.experiment_id == plain.info.experiment_id
        # a tracking URI pointing elsewhere is the user's choice: left alone
        os.environ["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9/elsewhere"
        wb.use("lab")
        assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:9/elsewhere"
        client.close()
        # connected as someone else, plain mlflow calls are theirs too (bob only views lab)
        os.environ["MLFLOW_TRACKING_URI"] = f"{server_url}/workbench/mlflow"
        bob = wb.connect(server_url, tokens["bob"], project="lab")
        assert os.environ["MLFLOW_TRACKING_TOKEN"] == tokens["bob"]
        with pytest.raises(mlflow.exceptions.MlflowException, match="PERMISSION_DENIED"):
            mlflow.set_experiment("bobs")
        bob.close()

    await asyncio.to_thread(work)


async def test_an_exception_in_the_block_fails_the_run_and_is_raised(
    server_url: str, api: Any
) -> None:
    tokens = await seed(api)

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        with pytest.raises(ZeroDivisionError), client.run("lab", "baseline") as run:
            run.log({"loss": 0.5}, step=0)
            run.log({"loss": 0.4})  # step 1 by itself
            _ = 1 / 0
        stored = mlflow_run(client, run.run_id)
        assert stored["status"] == "FAILED" and stored["metrics"] == {"loss": 0.4}
        assert client.history(run.run_id, "loss")["steps"] == [0, 1]
        with pytest.raises(errors.BadRequest, match="has ended"):
            run.log({"loss": 0.1})
        # a viewer cannot start runs: the server's message, as an exception
        bob = Client(server_url, tokens["bob"], project="lab")
        with pytest.raises(errors.PermissionDenied):
            bob.run("lab", "baseline")
        with (
            pytest.raises(FileNotFoundError, match="does not exist"),
            client.run("lab", "baseline") as other,
        ):
            other.log_artifact("/nonexistent/file.txt")
        assert mlflow_run(client, other.run_id)["status"] == "FAILED"
        # a point the server refuses: the error is raised when the run ends, and it FAILED
        with pytest.raises(errors.BadRequest), client.run("lab", "baseline") as refused:
            refused.log({"k" * 300: 1.0})
        assert mlflow_run(client, refused.run_id)["status"] == "FAILED"
        assert refused.status == "FAILED"
        client.close()
        bob.close()

    await asyncio.to_thread(work)


async def test_wrong_points_raise_at_the_log_call_and_the_run_goes_on(
    server_url: str, api: Any
) -> None:
    tokens = await seed(api)

    def work() -> None:
        import numpy as np

        client = Client(server_url, tokens["alice"], project="lab")
        with client.run("lab", "baseline") as run:
            wrong: list[tuple[Any, Any, type[Exception], str]] = [
                ({"acc": 0.9, "loss": "text"}, 0, TypeError, "metric 'loss' must be a number"),
                ({"loss": None}, 0, TypeError, "metric 'loss' must be a number, got NoneType"),
                ({"loss": "0.5"}, 0, TypeError, "'loss' must be a number, got str '0.5'"),
                ({"loss": b"1"}, 0, TypeError, "'loss' must be a number, got bytes"),
                ({"loss": 10**400}, 0, ValueError, "metric 'loss' is too large"),
                ({1: 0.5}, 0, TypeError, "metric name must be a string, got int"),
                ({"": 0.5}, 0, ValueError, "metric name must not be empty"),
                ({"loss": 1, "acc@1": 0.5}, 0, ValueError, "metric name 'acc@1': may only"),
                ({"a//b": 0.5}, 0, ValueError, "'a//b': must not read as another name"),
                (0.5, 0, TypeError, "expected a dict of metric name -> number, got float"),
                ({"loss": 0.5}, "3", TypeError, "step must be a whole number, got str"),
                ({"loss": 0.5}, 1.5, TypeError, "step must be a whole number, got float"),
                ({"loss": 0.5}, 2**63, ValueError, "step 9223372036854775808 is out of range"),
            ]
            for metrics, step, kind, said in wrong:
                with pytest.raises(kind, match=said):
                    run.log(metrics, step=step)
            # nothing of a refused call was queued ('acc', 'loss' above), and the run goes on
            run.log({"loss": 0.5}, step=np.int64(-1))
            run.log({"loss": np.float32(0.25)}, step=2.0)
            run.log({"loss": 0.125})  # step 3
            for method in (run.log_params, run.set_tags):  # was an AttributeError
                with pytest.raises(TypeError, match="expected a dict of name -> value, got str"):
                    method("lr=0.1")  # type: ignore[arg-type]
            # a status MLflow does not know left the run RUNNING on the server for good
            with pytest.raises(ValueError, match="end: status must be one of FINISHED, FAILED"):
                run.end("DONE")
            assert run.status == "RUNNING"
        stored = mlflow_run(client, run.run_id)
        assert stored["status"] == "FINISHED" and set(stored["metrics"]) == {"loss"}, stored
        assert client.history(run.run_id, "loss")["steps"] == [-1, 2, 3]
        made = len(client.search_runs(["lab"]))
        with pytest.raises(ValueError, match="params: name 'acc@1': may only contain"):
            client.run("lab", "baseline", params={"acc@1": 0.1})
        assert len(client.search_runs(["lab"])) == made  # refused before a run was made
        with client.run("lab", "baseline") as killed:
            killed.end("killed")  # any case
        assert killed.status == "KILLED" == mlflow_run(client, killed.run_id)["status"]
        with client.run("lab", "baseline") as named:  # MLflow's names may hold a "/"
            named.log({"train/loss": 0.5}, step=4)
            named.log({"train/loss": 0.25}, step=2**40)  # a 64-bit step (tokens seen)
        assert client.history(named.run_id, "train/loss")["steps"] == [4, 2**40]
        later = client.history(named.run_id, "train/loss", start_step=2**35)
        assert later["steps"] == [2**40]
        client.close()

    await asyncio.to_thread(work)


async def test_params_that_are_not_a_dict_or_are_refused_leave_no_run_running(
    server_url: str, api: Any
) -> None:
    tokens = await seed(api)

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        # nor is one made for an empty experiment (was the server's "missing 'name'") or a name
        # that is not a string (was MLflow's "Invalid value 5 for parameter 'run_name'")
        with pytest.raises(ValueError, match="experiment: must not be empty"):
            client.run("lab", "")
        with pytest.raises(TypeError, match="experiment: expected a string, got int"):
            client.run("lab", 5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="name: expected a string, got int"):
            client.run("lab", "ghosts", name=5)  # type: ignore[arg-type]
        # params that are not a dict: no run is made (it was left RUNNING, unheld)
        for given in ("lr=0.1", [("lr", 0.1)]):
            with pytest.raises(TypeError, match="params: expected a dict of name -> value"):
                client.run("lab", "ghosts", params=given)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="tags: expected a dict"):
            client.run("lab", "ghosts", tags="x")  # type: ignore[arg-type]
        with pytest.raises(errors.NotFound, match="no experiment 'ghosts'"):
            client.search_runs(["lab"], experiment="ghosts")  # nothing was made at all
        # params the server refuses: the run it made ends FAILED, and nothing stays active
        with pytest.raises(errors.BadRequest, match=r"params\.lr: must be at most"):
            client.run("lab", "ghosts", params={"lr": "v" * 9000})
        assert wb.active_run() is None
        assert [r["status"] for r in client.search_runs(["lab"], experiment="ghosts")] == ["FAILED"]
        client.close()

    await asyncio.to_thread(work)


SCRIPT = """
import sys, jupyter_workbench as wb
run = wb.run(experiment="script", params={"mode": sys.argv[1]})
for step in range(500):
    run.log({"loss": 1 / (step + 1)}, step=step)
print(run.run_id, flush=True)
if sys.argv[1] == "crash":
    raise RuntimeError("the script crashed")
if sys.argv[1] == "interrupt":  # Ctrl-C: was FAILED
    raise KeyboardInterrupt
"""  # no `with`, no run.end(): what a quick laptop script does


async def test_a_script_that_never_ends_its_run(server_url: str, api: Any, tmp_path: Path) -> None:
    """The run ends at exit with every point: FINISHED, or FAILED when the script crashed."""
    import subprocess
    import sys

    tokens = await seed(api)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "WORKBENCH_URL": server_url,
        "WORKBENCH_TOKEN": tokens["alice"],
        "WORKBENCH_PROJECT": "lab",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]
        ),
    }

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        for mode, status, code in (
            ("interrupt", "KILLED", -2),  # (Python ends itself by SIGINT)
            ("ok", "FINISHED", 0),
            ("crash", "FAILED", 1),
        ):
            done = subprocess.run(
                [sys.executable, str(script), mode],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == code, done.stderr
            run_id = done.stdout.strip()
            assert mlflow_run(client, run_id)["status"] == status
            assert client.history(run_id, "loss", max_points=1000)["total"] == 500
        assert "the script crashed" in done.stderr  # the traceback is still printed
        client.close()

    await asyncio.to_thread(work)


async def test_an_interrupt_kills_the_run_and_sys_exit_0_finishes_it(
    server_url: str, api: Any
) -> None:
    """Both were FAILED: Ctrl-C in the block is KILLED (as a %%wb_run cell's), sys.exit(0) is a
    success, and the exception still goes on."""
    import sys

    tokens = await seed(api)

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        with pytest.raises(KeyboardInterrupt), client.run("lab", "stops") as stopped:
            stopped.log({"loss": 0.5})
            raise KeyboardInterrupt
        with pytest.raises(SystemExit), client.run("lab", "stops") as done:
            sys.exit(0)
        with pytest.raises(SystemExit), client.run("lab", "stops") as bad:
            sys.exit("usage: train.py DATA")
        got = {r.run_id: mlflow_run(client, r.run_id)["status"] for r in (stopped, done, bad)}
        assert got == {stopped.run_id: "KILLED", done.run_id: "FINISHED", bad.run_id: "FAILED"}
        assert (stopped.status, done.status, bad.status) == ("KILLED", "FINISHED", "FAILED")
        assert mlflow_run(client, stopped.run_id)["metrics"] == {"loss": 0.5}
        client.close()

    await asyncio.to_thread(work)


async def test_a_run_started_inside_another_is_its_child(
    server_url: str, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wb.run inside another (or inside mlflow.start_run) was a top-level run of its own,
    unrelated in MLflow; it is now the enclosing run's child, as MLflow's nested runs are."""
    tokens = await seed(api)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"{server_url}/workbench/mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tokens["alice"])

    def work() -> None:
        import mlflow

        client = wb.connect(server_url, tokens["alice"])
        wb.use("lab")
        with wb.run("sweep") as outer:
            for lr in (0.1, 0.2):
                with wb.run("sweep", params={"lr": lr}) as inner:
                    wb.log({"loss": lr})
                assert wb.active_run() is outer
                assert mlflow.active_run().info.run_id == outer.run_id
            wb.log({"best": 0.1})
        mlflow.set_experiment("plain")
        with mlflow.start_run() as plain, wb.run("sweep") as under_plain:
            pass
        parent = "mlflow.parentRunId"
        found = {r["run_id"]: r for r in client.search_runs(["lab"], experiment="sweep")}
        children = client.search_runs(["lab"], filter=f"tags.{parent} = '{outer.run_id}'")
        assert sorted(str(r["params"]) for r in children) == ["{'lr': '0.1'}", "{'lr': '0.2'}"]
        assert inner.run_id in found and found[outer.run_id]["metrics"] == {"best": 0.1}
        assert parent not in mlflow_run(client, outer.run_id)["tags"]
        assert mlflow_run(client, under_plain.run_id)["tags"][parent] == plain.info.run_id
        assert mlflow.active_run() is None
        client.close()

    await asyncio.to_thread(work)


LATE_IMPORT = """
import jupyter_workbench as wb
with wb.run(experiment="late") as run:
    import mlflow  # first imported inside the run

    with mlflow.start_run(nested=True) as child:
        mlflow.log_metric("a", 1.0)
    mlflow.log_metric("b", 2.0)
    print(run.run_id, child.info.run_id, flush=True)
"""


async def test_mlflow_first_imported_inside_a_run_logs_to_it(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    """MLflow imported after the run started took it from MLFLOW_RUN_ID: its start_run block
    ended the run (FINISHED while still open), and the next mlflow call made a stray run."""
    import subprocess
    import sys

    tokens = await seed(api)
    script = tmp_path / "late.py"
    script.write_text(LATE_IMPORT)
    env = {
        **os.environ,
        "WORKBENCH_URL": server_url,
        "WORKBENCH_TOKEN": tokens["alice"],
        "WORKBENCH_PROJECT": "lab",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]
        ),
    }

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        run_id, child_id = done.stdout.split()[-2:]
        assert child_id != run_id
        assert mlflow_run(client, run_id)["metrics"] == {"b": 2.0}
        assert mlflow_run(client, child_id)["tags"]["mlflow.parentRunId"] == run_id
        found = {r["run_id"]: r["status"] for r in client.search_runs(["lab"])}
        assert found == {run_id: "FINISHED", child_id: "FINISHED"}  # no stray run
        client.close()

    await asyncio.to_thread(work)


async def test_search_runs_pages_past_what_one_request_answers(
    server_url: str, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = await seed(api)

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        made = []
        for i in range(5):
            with client.run("lab", "sweep", params={"i": i}) as run:
                made.append(run.run_id)
        whole = [r["run_id"] for r in client.search_runs(["lab"], experiment="sweep")]
        assert sorted(whole) == sorted(made)
        searches: list[int] = []
        client.http.event_hooks["request"].append(
            lambda request: searches.append(1) if request.url.path.endswith("runs/search") else None
        )
        monkeypatch.setattr(wb_client, "SEARCH_PAGE", 2)
        paged = client.search_runs(["lab"], experiment="sweep", max_results=100)
        assert [r["run_id"] for r in paged] == whole and len(searches) == 3  # 2 + 2 + 1
        searches.clear()
        first = client.search_runs(["lab"], experiment="sweep", max_results=3)
        assert [r["run_id"] for r in first] == whole[:3] and len(searches) == 2
        with pytest.raises(errors.BadRequest, match="max_results: must be a whole number"):
            client.search_runs(["lab"], max_results=0)
        client.close()

    await asyncio.to_thread(work)


class Relay:
    """A TCP relay to the MLflow server's socket that hangs up on the first ``drop`` uploads
    (PUT requests) after reading their start, the way a server closing a connection does."""

    def __init__(self, socket_path: str, drop: int) -> None:
        self.socket_path, self.drop, self.dropped = socket_path, drop, 0
        self.connections: set[asyncio.Task[Any]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        self.server.close()
        tasks = list(self.connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(task := asyncio.current_task())  # type: ignore[arg-type]
        task.add_done_callback(self.connections.discard)  # type: ignore[union-attr]
        up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)

        async def requests() -> None:  # a request starts a read: the last answer was read
            try:
                while data := await reader.read(65536):
                    if data.startswith(b"PUT ") and self.dropped < self.drop:
                        self.dropped += 1
                        break
                    up_writer.write(data)
                    await up_writer.drain()
            except ConnectionError:
                pass
            writer.close()
            up_writer.close()

        async def answers() -> None:
            try:
                while data := await up_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            writer.close()

        await asyncio.gather(requests(), answers())


async def test_an_upload_mlflow_drops_is_a_502_and_the_client_puts_it_again(
    server_url: str, api: Any, jp_serverapp: Any, mlflow_server: Any, tmp_path: Path
) -> None:
    """MLflow hanging up on an artifact upload: the proxy answers 502 with what happened (it
    neither hangs reading the rest of the body nor says only "error"), and ``run.log_artifact``
    sends the file again."""
    import httpx

    from jupyter_workbench.tracking.upstream import Upstream

    tokens = await seed(api)
    settings = jp_serverapp.web_app.settings
    real = settings["workbench_mlflow"]
    relay = Relay(str(mlflow_server.socket), drop=3)
    settings["workbench_mlflow"] = relayed = Upstream(await relay.start())
    (tmp_path / "notes.txt").write_text("a note")

    def work() -> None:
        client = wb.connect(server_url, tokens["alice"], project="lab")
        with wb.run(experiment="dropped") as run:
            where = run.artifact_uri().split("mlflow-artifacts:/", 1)[1]
            url = f"{client.mlflow_url('lab')}/api/2.0/mlflow-artifacts/artifacts/{where}/big.bin"
            auth = {"Authorization": f"Bearer {tokens['alice']}"}
            # 8 MiB: more than the proxy's queue holds once MLflow is gone
            answer = httpx.put(url, content=b"x" * (8 << 20), headers=auth, timeout=60)
            assert answer.status_code == 502, answer.text
            body = answer.json()
            assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
            assert "the MLflow server failed to answer" in body["message"], body
            # the client puts the file again: two more drops, then it is stored
            assert run.log_artifact(tmp_path / "notes.txt") == f"runs:/{run.run_id}/notes.txt"
            assert relay.dropped == 3
            assert artifacts(client, run.run_id) == ["notes.txt"]
        client.close()

    try:
        await asyncio.to_thread(work)
    finally:
        settings["workbench_mlflow"] = real
        await relayed.close()
        await relay.stop()


async def test_an_upload_the_client_abandons_lets_go_of_its_stream_to_mlflow(
    server_url: str, api: Any, jp_serverapp: Any, mlflow_server: Any
) -> None:
    """A client that goes away midway through an artifact upload: the proxy's stream to MLflow
    (a pooled connection, waiting for the rest of the body) is given up, not kept forever."""
    from urllib.parse import urlsplit

    from jupyter_workbench.tracking.upstream import Upstream

    tokens = await seed(api)

    def begin() -> str:
        client = wb.connect(server_url, tokens["alice"], project="lab")
        run = client.run("lab", "abandoned")
        where = run.artifact_uri().split("mlflow-artifacts:/", 1)[1]
        run.end()
        client.close()
        return where

    where = await asyncio.to_thread(begin)
    settings = jp_serverapp.web_app.settings
    real = settings["workbench_mlflow"]
    relay = Relay(str(mlflow_server.socket), drop=0)
    settings["workbench_mlflow"] = relayed = Upstream(await relay.start())
    url = urlsplit(server_url)
    path = f"{url.path}/workbench/mlflow/p/lab/api/2.0/mlflow-artifacts/artifacts/{where}/big.bin"
    try:
        _, writer = await asyncio.open_connection(url.hostname, url.port)
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {tokens['alice']}\r\nContent-Length: {10 << 20}\r\n\r\n"
        )
        writer.write(head.encode() + b"x" * (1 << 20))
        await writer.drain()
        for _ in range(500):  # the proxy streams it on to MLflow
            if relay.connections:
                break
            await asyncio.sleep(0.02)
        assert relay.connections, "the upload never reached MLflow"
        writer.close()  # 9 MiB short
        for _ in range(500):
            if not relay.connections:
                break
            await asyncio.sleep(0.02)
        assert not relay.connections, "the stream to MLflow was kept after the client left"
    finally:
        settings["workbench_mlflow"] = real
        await relayed.close()
        await relay.stop()


async def test_artifacts_named_with_url_characters_keep_their_names(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    """The client quotes an artifact's path; the proxy hears it decoded and must quote it again
    for MLflow: 'a?b.txt' is not 'a' and a query."""
    tokens = await seed(api)
    names = ["a?b.txt", "f g.txt", "h&i=j.txt"]  # (MLflow refuses '#', decodes '%41' itself)
    (tmp_path / "out").mkdir()
    for name in names:
        (tmp_path / "out" / name).write_text(f"this is {name}")

    def work() -> list[str]:
        client = wb.connect(server_url, tokens["alice"], project="lab")
        (tmp_path / "empty" / "sub").mkdir(parents=True)
        with wb.run(experiment="odd names") as run:
            run.log_artifact(tmp_path / "out")
            # was a quiet success answering 'runs:/<id>' (the run's root), nothing stored
            for empty in (lambda: run.log_artifact(tmp_path / "empty", "plots"),
                          lambda: run.log_model(tmp_path / "empty")):  # fmt: skip
                with pytest.raises(ValueError, match="empty holds no files: nothing to log"):
                    empty()
        stored = artifacts(client, run.run_id)
        client.close()
        return stored

    assert await asyncio.to_thread(work) == sorted(names)
