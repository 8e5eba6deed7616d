"""The Python client against a real server process: fast non-blocking logging, order, flush,
back-pressure, clear errors, and no hang when the server dies."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from jupyter_workbench.client import Client, errors
from jupyter_workbench.client import runs as wbclient
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture
def owner(live_server: Any) -> Client:
    root, token, _log, _proc = live_server
    c = Client(root, token)
    c.post("projects", {"name": "Lab", "slug": "lab"})
    yield c
    c.close()


def test_log_is_fast_ordered_and_complete(owner: Client) -> None:
    batches: list[str] = []
    owner.http.event_hooks["request"].append(
        lambda request: batches.append(request.url.path) if request.url.path.endswith("/batch")
        else None
    )  # fmt: skip
    with owner.run("lab", "baseline", params={"lr": 0.01}, name="first") as run:
        for step in range(20_000):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.log({"odd": float("nan")})
        run.flush()
        history = owner.history(run.run_id, "loss", max_points=100_000)
    assert history["total"] == 20_000
    assert history["steps"] == list(range(20_000))
    assert history["values"][-1] == pytest.approx(1 / 20_000)
    # log() queues the point; the sender posts them in batches (its speed: benchmarks/)
    assert 4 <= len(batches) <= 1_000
    run_info = owner.request(
        "GET", owner.mlflow_url("lab") + "/api/2.0/mlflow/runs/get", params={"run_id": run.run_id}
    )["run"]
    assert run_info["info"]["status"] == "FINISHED"
    assert {p["key"]: p["value"] for p in run_info["data"]["params"]} == {"lr": "0.01"}


def test_errors_carry_the_servers_message(owner: Client) -> None:
    with pytest.raises(errors.NotFound) as missing:
        owner.get("projects/nope")
    assert "nope" in missing.value.message
    with pytest.raises(errors.BadRequest) as bad:
        owner.post("projects", {"name": 5})
    assert bad.value.message == "name: must be a string"
    run = owner.run("lab")
    run.log({"x": 1.0})
    run.end()
    with pytest.raises(errors.WorkbenchError):  # a parameter cannot change
        owner.post(f"runs/{run.run_id}/batch", {"params": {"p": "1"}})
        owner.post(f"runs/{run.run_id}/batch", {"params": {"p": "2"}})


def test_back_pressure_bounds_memory(owner: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wbclient, "QUEUE_POINTS", 1000)
    monkeypatch.setattr(wbclient, "BATCH_POINTS", 200)
    with owner.run("lab", "pressure") as run:
        for step in range(5000):
            run.log({"a": step, "b": -step}, step=step)
            assert len(run._points) <= 1000 + 2
    assert owner.history(run.run_id, "b", max_points=100_000)["total"] == 5000


def test_a_killed_server_is_a_clear_error_not_a_hang(owner: Client, live_server: Any) -> None:
    run = owner.run("lab", "doomed")
    run.log({"loss": 1.0}, step=0)
    run.flush()
    _root, _token, _log, proc = live_server
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    run.log({"loss": 0.5}, step=1)  # kept while the sender tries again
    started = time.monotonic()
    with pytest.raises(errors.ConnectionFailed) as failed:
        run.end(timeout=3)
    assert time.monotonic() - started < 15
    assert failed.value.message.startswith("1 points not sent after 3s: ")
    assert "cannot reach the workbench" in failed.value.message


def test_a_killed_server_ends_a_run_quickly_where_mlflow_is_imported(
    owner: Client, live_server: Any
) -> None:
    """With ``mlflow`` imported the run is MLflow's active run too: ending it must not wait
    out MLflow's own retries (minutes) to a server that is gone."""
    import mlflow  # imported, as in a notebook that uses it

    def active() -> str | None:
        current = mlflow.active_run()
        return None if current is None else current.info.run_id

    before = active()  # another test's run may be active in this process
    retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")  # as another test's may be set
    run = owner.run("lab", "doomed-mlflow")
    assert active() == run.run_id
    run.log({"loss": 1.0}, step=0)
    run.flush()
    _root, _token, _log, proc = live_server
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    started = time.monotonic()
    with pytest.raises(errors.ConnectionFailed):
        run.end(timeout=3)
    assert time.monotonic() - started < 30
    assert active() == before  # MLflow's side ended too
    assert os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") == retries  # what was there


def test_a_run_whose_client_was_closed_stops_quietly_with_a_clear_error(
    owner: Client, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client closed while a run still has points to send (the server is away): the
    run's sender thread ends without a traceback on stderr, and the run says why."""
    crashed: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashed.append(args.exc_value))
    run = owner.run("lab", "orphan")
    run.log({"loss": 1.0}, step=0)
    run.flush()
    _root, _token, _log, proc = live_server
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    run.log({"loss": 0.5}, step=1)  # the sender starts trying again
    time.sleep(0.3)
    owner.close()
    sender = run._thread
    sender.join(60)
    assert not sender.is_alive() and crashed == []
    started = time.monotonic()
    with pytest.raises(errors.WorkbenchError) as closed:
        run.end(timeout=3)
    assert closed.value.code == "client_closed", closed.value.message
    # with mlflow imported (by an earlier test), MLflow's own end of the run retried against
    # the killed server for minutes
    assert time.monotonic() - started < 30
    with pytest.raises(errors.WorkbenchError, match="client was closed"):
        owner.get("projects")


def test_a_server_restart_under_a_training_loop_loses_no_point(
    restartable_server: LiveServer,
) -> None:
    server = restartable_server
    client = Client(server.root, server.token)
    client.post("projects", {"name": "Lab", "slug": "lab"})
    run = client.run("lab", "outage")
    run.log({"loss": 1.0}, step=0)
    run.flush()
    server.stop(signal.SIGKILL)  # a crash: connections refused from now on
    for step in range(1, 301):  # the loop goes on, never raising, while nobody answers
        run.log({"loss": 1.0 / (step + 1)}, step=step)
        time.sleep(0.005)
    time.sleep(1.5)  # a few failed tries
    assert "cannot reach the workbench" in run._trouble.message  # type: ignore[union-attr]
    server.start()  # the same port and database
    run.end(timeout=60)
    history = client.history(run.run_id, "loss", max_points=10_000)
    assert history["total"] == 301 and history["steps"] == list(range(301))
    assert run.status == "FINISHED"
    client.close()
