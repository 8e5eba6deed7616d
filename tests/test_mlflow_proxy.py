"""The stock ``mlflow`` client through the authorizing proxy, against a real MLflow server."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from traitlets.config import Config

from jupyter_workbench.tracking import rules

from .conftest import TOKEN_OF

pytestmark = pytest.mark.slow


@pytest.fixture
def jp_server_config(jp_server_config: Config, mlflow_config: dict[str, str]) -> Config:
    jp_server_config["Workbench"].update(mlflow_config)
    return jp_server_config


@pytest.fixture
def tracking(jp_fetch: Any, jp_http_port: int, jp_base_url: str) -> Callable[..., Any]:
    """``tracking(user, fn, scope=slug)`` runs ``fn(client)`` with a stock MlflowClient acting as
    ``user`` through the proxy, on a thread (the server runs on this test's event loop)."""
    from mlflow.tracking import MlflowClient

    root = f"http://127.0.0.1:{jp_http_port}{jp_base_url}workbench/mlflow"

    async def run(user: str | None, fn: Callable[[Any], Any], scope: str | None = None) -> Any:
        uri = f"{root}/p/{scope}" if scope else root

        def call() -> Any:
            old = os.environ.get("MLFLOW_TRACKING_TOKEN")
            os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN_OF[user] if user else "nope"
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
            try:
                return fn(MlflowClient(tracking_uri=uri, registry_uri=uri))
            finally:
                if old is None:
                    os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
                else:
                    os.environ["MLFLOW_TRACKING_TOKEN"] = old

        return await asyncio.to_thread(call)

    return run


async def refused(tracking: Any, user: str, fn: Callable[[Any], Any], **kw: Any) -> str:
    """The MLflow error code the proxy answers ``fn(client)`` with."""
    return await tracking(user, lambda c: mlflow_error(lambda: fn(c)), **kw)  # type: ignore[no-any-return]


def mlflow_error(fn: Callable[[], Any]) -> str:
    from mlflow.exceptions import MlflowException

    try:
        fn()
    except MlflowException as exc:
        return str(exc.error_code)
    raise AssertionError("no MlflowException")


async def project(api: Any, owner: str = "alice", **members: str) -> str:
    slug = f"p{uuid.uuid4().hex[:8]}"
    assert (await api(owner).post("projects", {"name": slug, "slug": slug})).status == 201
    for user, role in members.items():
        await api(user).get("me")
        r = await api(owner).post(f"projects/{slug}/members", {"user": user, "role": role})
        assert r.status == 201, r
    return slug


async def test_stock_client_logs_and_reads_a_run_in_a_project(
    api: Any, tracking: Any, tmp_path: Path
) -> None:
    slug = await project(api, bob="viewer")
    artifact = tmp_path / "notes.txt"
    artifact.write_text("hello from a run")

    def train(client: Any) -> dict[str, Any]:
        exp_id = client.create_experiment("baseline")
        run = client.create_run(exp_id)
        run_id = run.info.run_id
        client.log_param(run_id, "lr", "0.01")
        for step in range(5):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
        client.log_artifact(run_id, str(artifact))
        client.set_terminated(run_id)
        found = client.search_runs([exp_id])
        history = client.get_metric_history(run_id, "loss")
        local = client.download_artifacts(run_id, "notes.txt", str(tmp_path / "dl"))
        by_name = client.get_experiment_by_name("baseline")
        return {
            "exp": exp_id,
            "run": run_id,
            "found": [r.info.run_id for r in found],
            "history": [m.value for m in history],
            "artifact": Path(local).read_text(),
            "name": by_name.name,
        }

    out = await tracking("alice", train, scope=slug)
    assert out["found"] == [out["run"]]
    assert out["history"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert out["artifact"] == "hello from a run"
    assert out["name"] == f"{slug}/baseline"
    # the workbench knows the experiment belongs to the project
    query = {"project": slug, "action": "experiment.*"}
    events = (await api("alice").get("audit", params=query)).json
    assert [e["object_id"] for e in events["items"]] == ["baseline"]

    # a viewer reads, but cannot write
    run_id = out["run"]
    lr = await tracking("bob", lambda c: c.get_run(run_id).data.params["lr"], scope=slug)
    assert lr == "0.01"
    code = await refused(tracking, "bob", lambda c: c.log_param(run_id, "x", "1"), scope=slug)
    assert code == "PERMISSION_DENIED"
    # a stranger sees nothing, by any route
    carol = "carol"
    await api(carol).get("me")
    missing = "RESOURCE_DOES_NOT_EXIST"
    assert await refused(tracking, carol, lambda c: c.get_run(run_id)) == missing
    assert await refused(tracking, carol, lambda c: c.get_experiment(out["exp"])) == missing
    assert await tracking(carol, lambda c: [e.name for e in c.search_experiments()]) == []
    code = await tracking(carol, lambda c: mlflow_error(lambda: c.search_runs([out["exp"]])))
    assert code == "RESOURCE_DOES_NOT_EXIST"
    # ... while alice's global view lists it by its full name
    names = await tracking("alice", lambda c: [e.name for e in c.search_experiments()])
    assert f"{slug}/baseline" in names


async def test_default_experiment_is_the_projects_own(api, tracking) -> None:
    slug = await project(api)

    def log(client: Any) -> tuple[str, str]:
        run = client.create_run("0")  # what mlflow.start_run() does with nothing set
        client.log_metric(run.info.run_id, "acc", 0.9)
        return run.info.experiment_id, client.get_experiment(run.info.experiment_id).name

    exp_id, name = await tracking("alice", log, scope=slug)
    assert exp_id != "0" and name == f"{slug}/Default"
    assert (await tracking("alice", log, scope=slug))[0] == exp_id  # the same one next time


async def test_global_uri_needs_a_project_in_the_name(api, tracking) -> None:
    slug = await project(api)
    code = await tracking("alice", lambda c: mlflow_error(lambda: c.create_experiment("loose")))
    assert code == "INVALID_PARAMETER_VALUE"
    exp_id = await tracking("alice", lambda c: c.create_experiment(f"{slug}/named"))
    assert await tracking("alice", lambda c: c.get_experiment(exp_id).name) == f"{slug}/named"
    other = await project(api, owner="bob")
    code = await refused(tracking, "alice", lambda c: c.create_experiment(f"{other}/x"))
    assert code == "RESOURCE_DOES_NOT_EXIST"


async def test_a_version_from_a_runs_uri_needs_what_the_uri_names(
    api: Any, tracking: Any, tmp_path: Path
) -> None:
    """``create_model_version(name, "runs:/<run>/<path>")`` through the proxy is refused, with
    nothing made, unless the run holds the path or logged a model of that name (MLflow 3's
    ``log_model``, which such URIs also resolve to); the run must be one the caller may read."""
    from mlflow.exceptions import MlflowException

    slug = await project(api)
    other = await project(api, owner="bob")
    notes = tmp_path / "notes.txt"
    notes.write_text("n")

    def bobs_run(client: Any) -> tuple[str, str, str]:
        run = client.create_run(client.create_experiment("secret"))
        client.log_artifact(run.info.run_id, str(notes), "model")
        logged = client.create_logged_model(
            run.info.experiment_id, name="lm", source_run_id=run.info.run_id
        )
        return str(run.info.run_id), str(run.info.artifact_uri), str(logged.model_id)

    hidden, hidden_uri, hidden_model = await tracking("bob", bobs_run, scope=other)

    def work(client: Any) -> dict[str, Any]:
        run = client.create_run(client.create_experiment("models"))
        run_id = run.info.run_id
        client.log_artifact(run_id, str(notes), "plots")
        client.create_logged_model(run.info.experiment_id, name="lm", source_run_id=run_id)
        name = f"{slug}-m"
        client.create_registered_model(name)
        refusals = []
        for path_run, path in ((run_id, "model"), (run_id, "plots/other.txt"), (hidden, "model")):
            try:
                client.create_model_version(name, f"runs:/{path_run}/{path}", run_id=path_run)
            except MlflowException as exc:
                code = str(exc.error_code)
                refusals.append((code, exc.message.removeprefix(f"{code}: ")))
        # MLflow checks only that a source lies inside the run or logged model named: bob's
        # files must not become a version of alice's model under any spelling
        for source, kw in (
            (f"{hidden_uri}/model", {"run_id": hidden}),
            (f"models:/{hidden_model}", {"model_id": hidden_model}),
            (f"models:/{hidden_model}", {"model_id": "../../experiments/get?experiment_id=0"}),
        ):
            try:
                client.create_model_version(name, source, **kw)
            except MlflowException as exc:
                code = str(exc.error_code)
                refusals.append((code, exc.message.removeprefix(f"{code}: ")))
        made = [
            client.create_model_version(name, f"runs:/{run_id}/{path}", run_id=run_id).version
            for path in ("plots", "plots/notes.txt", "lm")
        ]
        # descriptions are text: a terminal escape sequence or a bell is refused, a line end not
        described = []
        for write in (
            lambda: client.create_model_version(
                name, f"runs:/{run_id}/plots", run_id=run_id, description="clear \x1b[2J"
            ),
            lambda: client.update_model_version(name, "1", description="ding \x07"),
            lambda: client.update_registered_model(name, description="back \x08"),
        ):
            try:
                write()
            except MlflowException as exc:
                described.append(exc.message.removeprefix(f"{exc.error_code}: "))
        client.update_model_version(name, "1", description="two\r\nlines\tand a tab")
        found = client.search_model_versions(f"name='{name}'")
        return {"run": run_id, "refusals": refusals, "made": made, "found": len(found),
                "described": described}  # fmt: skip

    out = await tracking("alice", work, scope=slug)
    run_id = out["run"]
    assert out["refusals"] == [
        ("INVALID_PARAMETER_VALUE",
         f"source: run '{run_id}' has no artifact 'model' (it has: 'plots', "
         "'lm' (a logged model))"),
        ("INVALID_PARAMETER_VALUE",
         f"source: run '{run_id}' has no artifact 'plots/other.txt' (it has: 'plots/notes.txt', "
         "'lm' (a logged model))"),
        ("RESOURCE_DOES_NOT_EXIST", f"source: run '{hidden}' not found"),  # nothing of bob's
        ("RESOURCE_DOES_NOT_EXIST", f"run_id: run '{hidden}' not found"),
        ("RESOURCE_DOES_NOT_EXIST", f"model_id: logged model '{hidden_model}' not found"),
        ("RESOURCE_DOES_NOT_EXIST",
         "model_id: logged model '../../experiments/get?experiment_id=0' not found"),
    ], out["refusals"]  # fmt: skip
    assert [str(v) for v in out["made"]] == ["1", "2", "3"] and out["found"] == 3
    assert out["described"] == ["description: must not contain control characters"] * 3


async def test_a_version_is_made_with_a_warning_where_mlflow_cannot_list_the_runs_artifacts(
    api: Any, tracking: Any, mlflow_server: Any, tmp_path: Path
) -> None:
    """An external MLflow whose artifact store cannot list a run's artifacts (a store it cannot
    open, a host its policy refuses) does not make registration fail: the version is made, and
    the response and the audit event say that the path went unchecked. A path that a listing
    shows missing is still refused, and so is an unsafe one."""
    slug = await project(api)
    notes = tmp_path / "notes.txt"
    notes.write_text("n")

    def runs(client: Any) -> list[str]:
        exp_id = client.create_experiment("external")
        made = [client.create_run(exp_id).info.run_id for _ in range(3)]
        client.log_artifact(made[0], str(notes), "plots")
        return made

    listed, no_library, refused_host = await tracking("alice", runs, scope=slug)
    # their artifacts live where this MLflow cannot list: a store whose library it lacks (it
    # raises), and a host its artifact policy refuses to connect to (it answers 400)
    engine = sqlalchemy.create_engine(mlflow_server.backend_store_uri)
    with engine.begin() as conn:
        for run_id, uri in ((no_library, "gs://no-such-bucket/a"),
                            (refused_host, "ftp://127.0.0.1:9/a")):  # fmt: skip
            conn.execute(sqlalchemy.text("UPDATE runs SET artifact_uri = :u WHERE run_uuid = :r"),
                         {"u": uri, "r": run_id})  # fmt: skip
    engine.dispose()
    alice = api("alice")
    name = f"{slug}-ext"
    for n, run_id in enumerate((no_library, refused_host), start=1):
        r = await alice.post(f"projects/{slug}/models/{name}/versions", {"run_id": run_id})
        assert r.status == 201, r
        assert r.json["version"] == str(n)
        [warning] = r.json["warnings"]
        assert warning.startswith(
            f"artifact_path: 'model' was not checked: MLflow could not list the artifacts of "
            f"run '{run_id}' ("
        ), warning
    # provably missing, or unsafe: refused, nothing made
    r = await alice.post(f"projects/{slug}/models/{name}/versions",
                         {"run_id": listed, "artifact_path": "plots/nope.txt"})  # fmt: skip
    assert r.status == 400 and r.json["message"].startswith(
        f"artifact_path: run '{listed}' has no artifact 'plots/nope.txt'"
    ), r
    r = await alice.post(f"projects/{slug}/models/{name}/versions",
                         {"run_id": listed, "artifact_path": "plots/../../x"})  # fmt: skip
    assert r.status == 400 and r.json["message"].startswith("artifact_path: "), r
    r = await alice.post(f"projects/{slug}/models/{name}/versions",
                         {"run_id": listed, "artifact_path": "plots"})  # fmt: skip
    assert r.status == 201 and "warnings" not in r.json and r.json["version"] == "3", r

    # a stock client through the proxy: made too, the warning in the audit event
    version = await tracking("alice", lambda c: c.create_model_version(
        name, f"runs:/{no_library}/weights", run_id=no_library).version, scope=slug)  # fmt: skip
    assert str(version) == "4"
    query = {"project": slug, "action": "model.version_create", "limit": "10"}
    events = (await alice.get("audit", params=query)).json["items"]
    warned = {e["summary"]["version"]: e["summary"].get("warning", "") for e in events}
    assert warned["3"] == "" and set(warned) == {"1", "2", "3", "4"}, warned
    assert "'model' was not checked" in warned["1"] and "'model' was not checked" in warned["2"]
    assert warned["4"].startswith(f"source: 'weights' was not checked: MLflow could not list the "
                                  f"artifacts of run '{no_library}'"), warned  # fmt: skip


async def test_an_artifact_deleted_while_its_version_is_made_leaves_no_version(
    api: Any, tracking: Any, mlflow_server: Any, jp_serverapp: Any, tmp_path: Path
) -> None:
    """The run's files deleted between registration's check and MLflow making the version (over
    REST, or a stock client's through the proxy): the path is checked again once the version is
    made, so the version (pointing at nothing) is deleted again, audited, and the registration
    answers 409 saying what happened."""
    import httpx

    slug = await project(api)
    notes = tmp_path / "notes.txt"
    notes.write_text("n")

    def logged(client: Any) -> tuple[str, str]:
        run = client.create_run(client.create_experiment("racy"))
        client.log_artifact(run.info.run_id, str(notes), "model")
        return str(run.info.run_id), str(run.info.artifact_uri)

    run_id, artifact_uri = await tracking("alice", logged, scope=slug)
    name = f"{slug}-racy"
    stored = artifact_uri.removeprefix("mlflow-artifacts:")
    upstream = jp_serverapp.web_app.settings["workbench_mlflow"]
    get_json, deleted = upstream.get_json, []

    async def deleting_after_the_check(path: str, params: dict[str, Any]) -> Any:
        answer = await get_json(path, params)
        if path.endswith("artifacts/list") and not deleted:  # someone deletes the files now
            deleted.append(path)
            transport = httpx.AsyncHTTPTransport(uds=str(mlflow_server.socket))
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
                r = await c.delete(f"/api/2.0/mlflow-artifacts/artifacts{stored}/model")
                assert r.status_code == 200, r.text
        return answer

    upstream.get_json = deleting_after_the_check
    try:
        r = await api("alice").post(f"projects/{slug}/models/{name}/versions", {"run_id": run_id})
    finally:
        del upstream.get_json
    assert r.status == 409 and r.json["error"] == "no_artifact", r
    assert r.json["message"] == (
        f"artifact_path: run '{run_id}' has no artifact 'model' (it has no artifacts): it was "
        "deleted while version 1 was made; the version is deleted again"
    ), r
    detail = (await api("alice").get(f"projects/{slug}/models/{name}")).json
    assert detail["versions"] == [], detail
    query = {"project": slug, "action": "model.version_*"}
    events = (await api("alice").get("audit", params=query)).json["items"]
    assert [(e["action"], e["summary"]["version"]) for e in events] == [
        ("model.version_delete", "1"), ("model.version_create", "1")
    ], events  # fmt: skip
    assert events[0]["summary"]["reason"].startswith(f"artifact_path: run '{run_id}' has no")
    # logged again, it registers
    await tracking("alice", lambda c: c.log_artifact(run_id, str(notes), "model"), scope=slug)
    r = await api("alice").post(f"projects/{slug}/models/{name}/versions", {"run_id": run_id})
    assert r.status == 201 and r.json["version"] == "2", r
    # a stock client through the proxy: the same
    upstream.get_json, deleted[:] = deleting_after_the_check, []
    try:
        said = await tracking("alice", lambda c: mlflow_error_text(lambda: c.create_model_version(
            name, f"runs:/{run_id}/model", run_id=run_id)), scope=slug)  # fmt: skip
    finally:
        del upstream.get_json
    assert said == (
        "RESOURCE_ALREADY_EXISTS",
        f"source: run '{run_id}' has no artifact 'model' (it has no artifacts): it was deleted "
        "while version 3 was made; the version is deleted again",
    ), said
    detail = (await api("alice").get(f"projects/{slug}/models/{name}")).json
    assert [v["version"] for v in detail["versions"]] == ["2"], detail
    events = (await api("alice").get("audit", params=query)).json["items"]
    assert [(e["action"], e["summary"]["version"]) for e in events][:2] == [
        ("model.version_delete", "3"), ("model.version_create", "3")
    ], events  # fmt: skip


def mlflow_error_text(fn: Callable[[], Any]) -> tuple[str, str]:
    """The MLflow error code and message ``fn()`` raises."""
    from mlflow.exceptions import MlflowException

    try:
        fn()
    except MlflowException as exc:
        return str(exc.error_code), exc.message.removeprefix(f"{exc.error_code}: ")
    raise AssertionError("no MlflowException")


async def test_registry_aliases_and_promotion_rules(api, tracking) -> None:
    slug = await project(api, carol="editor", bob="viewer")

    def register(client: Any) -> str:
        exp_id = client.create_experiment("models")
        run = client.create_run(exp_id)
        client.log_text(run.info.run_id, "w", "model/weights.txt")  # the versions' files
        client.set_terminated(run.info.run_id)
        name = f"{slug}-churn"
        client.create_registered_model(name)
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        client.set_registered_model_alias(name, "staging", "1")
        return name

    name = await tracking("carol", register, scope=slug)
    promote = lambda c: c.set_registered_model_alias(name, "production", "1")  # noqa: E731
    code = await refused(tracking, "carol", promote, scope=slug)
    assert code == "PERMISSION_DENIED"  # promoting to production is an admin's call
    await tracking(
        "alice", lambda c: c.set_registered_model_alias(name, "production", "1"), scope=slug
    )
    version = await tracking(
        "bob", lambda c: c.get_model_version_by_alias(name, "production").version, scope=slug
    )
    assert str(version) == "1"
    # strangers do not see the model anywhere
    await api("dave").get("me")
    assert await tracking("dave", lambda c: [m.name for m in c.search_registered_models()]) == []
    code = await tracking("dave", lambda c: mlflow_error(lambda: c.get_registered_model(name)))
    assert code == "RESOURCE_DOES_NOT_EXIST"
    assert name in await tracking("bob", lambda c: [m.name for m in c.search_registered_models()])


async def test_what_mlflow_changes_for_good_is_audited(api: Any, tracking: Any) -> None:
    """Registry versions and aliases, deletions and renames made with a stock client leave an
    audit event (who, what, how); metric logging and refused calls leave none."""
    slug = await project(api, carol="editor")

    def work(client: Any) -> tuple[str, str]:
        exp_id = client.create_experiment("models")
        run = client.create_run(exp_id)
        client.log_text(run.info.run_id, "w", "model/weights.txt")  # the versions' files
        client.log_metric(run.info.run_id, "loss", 0.5)
        client.set_terminated(run.info.run_id)
        name = f"{slug}-churn"
        client.create_registered_model(name)
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        client.set_registered_model_alias(name, "staging", "1")
        client.delete_registered_model_alias(name, "staging")
        return run.info.run_id, exp_id

    run_id, exp_id = await tracking("carol", work, scope=slug)
    name = f"{slug}-churn"
    code = await refused(
        tracking, "carol", lambda c: c.set_registered_model_alias(name, "production", "1"),
        scope=slug,
    )  # fmt: skip
    assert code == "PERMISSION_DENIED"

    def tidy(client: Any) -> None:  # the project's admin
        client.set_registered_model_alias(name, "production", "1")
        client.delete_run(run_id)
        client.rename_experiment(exp_id, f"{slug}/old-models")

    await tracking("alice", tidy, scope=slug)
    events = (await api("alice").get("audit", params={"project": slug, "limit": 50})).json
    seen = [
        (e["actor"], e["action"], e["object_type"], e["object_id"], e["summary"])
        for e in reversed(events["items"])
        if e["action"] not in ("project.create", "member.add", "experiment.create")
    ]
    assert seen == [
        ("carol", "model.create", "model", name, {}),
        ("carol", "model.version_create", "model", name, {"version": "1", "run_id": run_id}),
        ("carol", "model.alias_set", "model", name, {"alias": "staging", "version": "1"}),
        ("carol", "model.alias_delete", "model", name, {"alias": "staging"}),
        ("alice", "model.alias_set", "model", name, {"alias": "production", "version": "1"}),
        ("alice", "run.delete", "run", run_id, {"experiment": "models"}),
        ("alice", "experiment.rename", "experiment", "old-models",
         {"name": {"from": "models", "to": "old-models"}}),
    ], seen  # fmt: skip

    # the workbench follows the rename: the new name finds it, the old one does not
    renamed = await tracking("alice", lambda c: c.get_experiment_by_name(f"{slug}/old-models"))
    assert renamed.experiment_id == exp_id
    assert await tracking("alice", lambda c: c.get_experiment_by_name(f"{slug}/models")) is None
    listed = (await api("alice").get(f"projects/{slug}/experiments")).json["items"]
    assert [e["name"] for e in listed] == ["old-models"]
    # a project's tracking URI names it without the prefix; it never leaves its project
    await tracking("alice", lambda c: c.rename_experiment(exp_id, "models-2023"), scope=slug)
    assert await tracking("alice", lambda c: c.get_experiment(exp_id).name) == f"{slug}/models-2023"
    other = await project(api)
    moved = lambda c: c.rename_experiment(exp_id, f"{other}/stolen")  # noqa: E731
    assert await refused(tracking, "alice", moved) == "INVALID_PARAMETER_VALUE"


async def test_a_rename_the_workbench_cannot_record_is_undone_in_mlflow(
    api: Any, tracking: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_workbench.core import experiments
    from jupyter_workbench.core.errors import Conflict

    slug = await project(api)
    exp_id = await tracking("alice", lambda c: c.create_experiment("models"), scope=slug)

    def taken(*_: Any) -> None:  # as if another experiment took the name meanwhile
        raise Conflict("new_name: taken")

    monkeypatch.setattr(experiments, "rename_experiment", taken)
    code = await refused(
        tracking, "alice", lambda c: c.rename_experiment(exp_id, "new"), scope=slug
    )
    assert code == "RESOURCE_ALREADY_EXISTS"
    assert await tracking("alice", lambda c: c.get_experiment(exp_id).name) == f"{slug}/models"


@pytest.mark.parametrize("summaries_from", ["database", "rest", "unreadable database"])
async def test_models_list_a_page_at_a_time_and_every_version_of_a_model(
    api: Any,
    tracking: Any,
    mlflow_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    summaries_from: str,
) -> None:
    """The models list reads MLflow's database when the workbench knows it, else (or when
    that fails) asks MLflow a model at a time: the same answer either way."""
    from jupyter_workbench.app import WorkbenchApp
    from jupyter_workbench.handlers import registry
    from jupyter_workbench.tracking.store import TrackingStore

    if summaries_from == "rest":
        monkeypatch.setattr(WorkbenchApp, "tracking_store", lambda self: None)
    if summaries_from == "unreadable database":

        def unreadable(self: Any, names: list[str]) -> Any:
            raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("no such column"))

        monkeypatch.setattr(TrackingStore, "model_summaries", unreadable)
    asked: list[str] = []
    mlflow_get = registry.RegistryHandler.mlflow_get

    async def counted(self: Any, path: str, **params: Any) -> Any:
        asked.append(path)
        return await mlflow_get(self, path, **params)

    monkeypatch.setattr(registry.RegistryHandler, "mlflow_get", counted)
    slug = await project(api, bob="viewer")

    descriptions = {1: "three versions"}

    def register(client: Any) -> None:
        exp_id = client.create_experiment("models")
        run = client.create_run(exp_id)
        client.log_text(run.info.run_id, "w", "model/weights.txt")  # the versions' files
        for n in (3, 0, 4, 1, 2):
            client.create_registered_model(f"{slug}-m{n}", description=descriptions.get(n, ""))
        for _ in range(3):
            client.create_model_version(f"{slug}-m1", f"runs:/{run.info.run_id}/model",
                                        run_id=run.info.run_id)  # fmt: skip
        client.set_registered_model_alias(f"{slug}-m1", "staging", "2")
        with warnings.catch_warnings():  # stages are deprecated, and still shown
            warnings.simplefilter("ignore", FutureWarning)
            client.transition_model_version_stage(f"{slug}-m1", "1", "Staging")

    await tracking("alice", register, scope=slug)
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        r = await api("bob").get(f"projects/{slug}/models", params=params)
        assert r.status == 200, r
        assert len(r.json["items"]) <= 2
        seen += r.json["items"]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
    assert [m["name"] for m in seen] == [f"{slug}-m{n}" for n in range(5)]
    rest_calls = 0 if summaries_from == "database" else 5
    assert asked.count("registered-models/get") == rest_calls
    m1 = seen[1]  # the latest version of each stage: v1 in Staging, v3 in None
    assert m1["latest_versions"] == ["1", "3"] and m1["aliases"] == {"staging": "2"}
    assert not m1["missing"] and m1["description"] == "three versions"
    assert seen[0] == {"name": f"{slug}-m0", "description": "", "latest_versions": [],
                       "aliases": {}, "missing": False}  # fmt: skip
    # gone from MLflow's database behind the workbench's back (a reset): listed as missing
    engine = sqlalchemy.create_engine(mlflow_server.backend_store_uri)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("DELETE FROM registered_models WHERE name = :n"),
                     {"n": f"{slug}-m4"})  # fmt: skip
    engine.dispose()
    r = await api("bob").get(f"projects/{slug}/models", params={"sort": "-name", "limit": "1"})
    assert r.json["items"] == [{"name": f"{slug}-m4", "description": "", "latest_versions": [],
                                "aliases": {}, "missing": True}]  # fmt: skip
    newest = await api("bob").get(f"projects/{slug}/models", params={"sort": "-created"})
    assert [m["name"] for m in newest.json["items"]][:2] == [f"{slug}-m2", f"{slug}-m1"]
    r = await api("bob").get(f"projects/{slug}/models", params={"cursor": "nonsense"})
    assert r.status == 400 and "cursor" in r.json["message"]
    r = await api("bob").get(f"projects/{slug}/models", params={"sort": "size"})
    assert r.status == 400 and "sort" in r.json["message"]
    # MLflow answers versions a page at a time: the model shows all of them
    monkeypatch.setattr(registry, "VERSIONS_PAGE", 2)
    r = await api("bob").get(f"projects/{slug}/models/{slug}-m1")
    assert [v["version"] for v in r.json["versions"]] == ["1", "2", "3"]


async def test_unauthenticated_and_unmapped_routes(api, jp_fetch) -> None:
    r = await jp_fetch(
        "workbench",
        "mlflow",
        "api",
        "2.0",
        "mlflow",
        "experiments",
        "search",
        headers={"Authorization": ""},
        raise_error=False,
    )
    assert r.code == 401 and b"UNAUTHENTICATED" in r.body
    r = await jp_fetch("workbench", "mlflow", "api", "2.0", "mlflow", "traces", raise_error=False)
    assert r.code == 403 and b"PERMISSION_DENIED" in r.body
    r = await jp_fetch(
        "workbench",
        "mlflow",
        "graphql",
        method="POST",
        body='{"query": "mutation { testMutation }"}',
        raise_error=False,
    )
    assert r.code == 403


async def test_refusals_keep_the_connection_usable(
    api: Any, jp_http_port: int, jp_base_url: str
) -> None:
    """A refusal decided before the body is read (unknown project, no token, unmapped route)
    answers and keeps the keep-alive connection working for the next request."""
    import httpx

    root = f"http://127.0.0.1:{jp_http_port}{jp_base_url}workbench/mlflow"
    get_by_name = "api/2.0/mlflow/experiments/get-by-name"
    asks = [
        ("GET", f"p/no-such/{get_by_name}", {"experiment_name": "x"}, "alice", 404),
        ("POST", "p/no-such/api/2.0/mlflow/runs/create", None, "alice", 404),
        ("GET", f"p/no-such/{get_by_name}", {"experiment_name": "x"}, None, 401),
        ("GET", "api/2.0/mlflow/traces", None, "alice", 403),
        # an artifact upload is refused unread: the answer says the connection ends
        ("PUT", "p/no-such/api/2.0/mlflow-artifacts/artifacts/1/r/notes.txt", None, "alice", 404),
    ]

    def work() -> list[tuple[int, str]]:
        answers = []
        with httpx.Client(base_url=root, timeout=10) as http:
            for _ in range(5):
                for method, path, params, user, _status in asks:
                    headers = {"Authorization": f"Bearer {TOKEN_OF[user]}"} if user else {}
                    body = {"experiment_id": "1"} if method == "POST" else None
                    content = b"x" * 100_000 if method == "PUT" else None
                    http.cookies.clear()  # token callers only
                    r = http.request(
                        method, path, params=params, json=body, content=content, headers=headers
                    )
                    answers.append((r.status_code, r.json()["error_code"]))
                    closing = r.headers.get("Connection") == "close"
                    assert closing == (method == "PUT"), (method, path, r.headers)
        return answers

    answers = await asyncio.to_thread(work)
    assert [status for status, _ in answers] == [a[-1] for a in asks] * 5
    assert answers[0][1] == "RESOURCE_DOES_NOT_EXIST" and answers[2][1] == "UNAUTHENTICATED"


def mlflow_routes() -> list[tuple[str, str]]:
    """Every route the MLflow server answers: its Flask url map and its REST endpoint list."""
    from mlflow.server import app as flask_app
    from mlflow.server import handlers

    found = set()
    for path, _handler, methods in handlers.get_endpoints():
        for method in methods:
            found.add((method, path))
    for rule in flask_app.url_map.iter_rules():
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method, rule.rule))
    return sorted(found)


def concrete(path: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>", "x", path)


def test_every_mlflow_route_is_mapped_or_refused() -> None:
    """Walk MLflow's own route list: each route either has a rule or the proxy refuses it
    (deny by default), so a route a new MLflow release adds can never slip through."""
    routes = mlflow_routes()
    assert len(routes) > 300
    mapped = [(m, p) for m, p in routes if rules.match(m, concrete(p)) is not None]
    refused = [(m, p) for m, p in routes if rules.match(m, concrete(p)) is None]
    assert len(mapped) + len(refused) == len(routes)
    # the core of tracking, artifacts and the registry is mapped ...
    for needed in [
        ("POST", "/api/2.0/mlflow/runs/log-batch"),
        ("GET", "/api/2.0/mlflow/runs/get"),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/<path:artifact_path>"),
        ("POST", "/api/2.0/mlflow/registered-models/alias"),
    ]:
        assert needed in mapped, needed
    # ... and, for instance, the AI gateway, traces and GraphQL are refused
    for denied in [
        ("GET", "/graphql"),
        ("GET", "/api/2.0/mlflow/traces"),
        ("GET", "/api/3.0/mlflow/gateway/secrets/list"),
    ]:
        assert denied in refused, denied
    # every rule in the table names a route MLflow really has (no stale rules)
    real = {(m, concrete(p)) for m, p in routes}
    for method, route in rules.API_RULES:
        assert (method, concrete(f"/api/2.0/mlflow/{route}")) in real, (method, route)


async def test_refused_routes_are_refused_live(api, jp_fetch) -> None:
    """Send one request to every refused route through the running proxy: all get 403."""
    for method, path in mlflow_routes():
        if rules.match(method, concrete(path)) is not None:
            continue
        parts = [p for p in concrete(path).split("/") if p]
        r = await jp_fetch(
            "workbench",
            "mlflow",
            *parts,
            method=method,
            body=b"{}" if method in ("POST", "PUT", "PATCH") else None,
            allow_nonstandard_methods=True,
            raise_error=False,
        )
        assert r.code == 403, (method, path, r.code, r.body[:200])


async def _run(tracking: Any, user: str, slug: str) -> tuple[str, str]:
    def make(client: Any) -> tuple[str, str]:
        exp_id = client.create_experiment(f"fast-{uuid.uuid4().hex[:6]}")
        return exp_id, client.create_run(exp_id).info.run_id

    return await tracking(user, make, scope=slug)  # type: ignore[no-any-return]


async def test_batch_logging_is_visible_to_stock_clients(api, tracking) -> None:
    slug = await project(api, bob="viewer")
    _exp, run_id = await _run(tracking, "alice", slug)
    points = [
        {"key": "loss", "value": 1.0 / (i + 1), "step": i, "timestamp": 1000 + i}
        for i in range(500)
    ]
    points += [
        {"key": "odd", "value": v, "step": i} for i, v in enumerate(["NaN", "Infinity", 2.5])
    ]
    r = await api("alice").post(
        f"runs/{run_id}/batch", {"metrics": points, "params": {"lr": "0.1"}, "tags": {"t": "x"}}
    )
    assert r.status == 200, r
    assert r.json == {"metrics": 503, "params": 1, "tags": 1}
    history = await tracking("bob", lambda c: c.get_metric_history(run_id, "loss"), scope=slug)
    assert [m.step for m in history] == list(range(500))
    run = await tracking("bob", lambda c: c.get_run(run_id), scope=slug)
    assert run.data.metrics["loss"] == 1.0 / 500 and run.data.params["lr"] == "0.1"
    assert run.data.metrics["odd"] == 2.5  # latest by step, as MLflow keeps it
    odd = await tracking("bob", lambda c: c.get_metric_history(run_id, "odd"), scope=slug)
    assert str(odd[0].value) == "nan" and odd[1].value == 1.7976931348623157e308  # as MLflow
    # writes need an editor; strangers see nothing
    r = await api("bob").post(f"runs/{run_id}/batch", {"metrics": [{"key": "x", "value": 1}]})
    assert r.status == 403
    await api("carol").get("me")
    assert (await api("carol").get(f"runs/{run_id}/metrics/loss/history")).status == 404
    # bad input is a clear 400; params never change
    r = await api("alice").post(
        f"runs/{run_id}/batch", {"metrics": [{"key": "x", "value": "fast"}]}
    )
    assert r.status == 400 and "value" in r.json["message"]
    r = await api("alice").post(f"runs/{run_id}/batch", {"params": {"lr": "0.2"}})
    assert r.status == 409 and r.json["error"] == "param_changed"
    r = await api("alice").post(f"runs/{'0' * 32}/batch", {"metrics": []})
    assert r.status == 404


async def test_history_downsampling_keeps_extremes_and_exports(api, tracking) -> None:
    slug = await project(api)
    _exp, run_id = await _run(tracking, "alice", slug)
    values = [float(i % 10) for i in range(20_000)]
    values[12_345] = 999.0  # a spike
    values[777] = -50.0  # a dip
    points = [{"key": "m", "value": v, "step": i, "timestamp": i} for i, v in enumerate(values)]
    assert (await api("alice").post(f"runs/{run_id}/batch", {"metrics": points})).status == 200
    r = await api("alice").get(f"runs/{run_id}/metrics/m/history", params={"max_points": "100"})
    assert r.status == 200, r
    data = r.json
    assert data["total"] == 20_000 and data["downsampled"] and len(data["values"]) <= 100
    assert max(data["values"]) == 999.0 and min(data["values"]) == -50.0
    assert data["steps"][0] == 0 and data["steps"][-1] == 19_999
    assert data["steps"] == sorted(data["steps"])
    r = await api("alice").get(
        f"runs/{run_id}/metrics/m/history", params={"start_step": "100", "end_step": "199"}
    )
    assert r.json["total"] == 100 and not r.json["downsampled"]
    r = await api("alice").get("runs/export", params={"run_ids": run_id, "keys": "m"})
    assert r.status == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = r.body.decode().splitlines()
    assert lines[0] == "run_id,key,step,timestamp,value" and len(lines) == 20_001
    assert lines[12_346] == f"{run_id},m,12345,12345,999.0"
    r = await api("alice").get("runs/export", params={"run_ids": run_id, "format": "parquet"})
    assert r.headers["Content-Type"] == "application/vnd.apache.parquet"
    import io

    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(r.body))
    assert table.num_rows == 20_000 and table.column("value").to_pylist()[777] == -50.0


async def test_long_histories_are_downsampled_from_rollups_whoever_logged(api, tracking) -> None:
    """80k points through the batch endpoint, 2k more by the stock client through the proxy
    (the MLflow server writes them; the database triggers roll them up): one quick read."""
    from mlflow.entities import Metric

    slug = await project(api)
    _exp, run_id = await _run(tracking, "alice", slug)
    points = [{"key": "m", "value": (i % 7) / 7, "step": i, "timestamp": i} for i in range(80_000)]
    points[33_333]["value"] = -9.0
    assert (await api("alice").post(f"runs/{run_id}/batch", {"metrics": points})).status == 200

    def stock(client: Any) -> None:
        extra = [Metric("m", 0.5, 80_000 + i, 80_000 + i) for i in range(2_000)]
        extra[1_500] = Metric("m", 123.0, 81_500, 81_500)
        for i in range(0, len(extra), 1000):
            client.log_batch(run_id, metrics=extra[i : i + 1000])

    await tracking("alice", stock, scope=slug)
    r = await api("alice").get(f"runs/{run_id}/metrics/m/history", params={"max_points": "200"})
    data = r.json
    assert data["total"] == 82_000 and data["downsampled"] and len(data["values"]) <= 200
    assert max(data["values"]) == 123.0 and min(data["values"]) == -9.0
    assert data["steps"][0] == 0 and data["steps"][-1] == 81_999
    r = await api("alice").get(
        f"runs/{run_id}/metrics/m/history",
        params={"max_points": "100", "start_step": "30000", "end_step": "81500"},
    )
    assert r.json["total"] == 51_501 and r.json["steps"][0] == 30_000
    assert r.json["steps"][-1] == 81_500 and 123.0 in r.json["values"]


async def test_live_updates_over_websocket(api, tracking, jp_ws_fetch) -> None:
    import json

    slug = await project(api)
    _exp, run_id = await _run(tracking, "alice", slug)
    socket = await jp_ws_fetch("workbench", "api", "v1", "runs", run_id, "live")
    r = await api("alice").post(
        f"runs/{run_id}/batch", {"metrics": [{"key": "acc", "value": 0.5, "step": 3}]}
    )
    assert r.status == 200
    message = json.loads(await asyncio.wait_for(socket.read_message(), 10))
    assert message["run_id"] == run_id
    assert message["metrics"][0]["key"] == "acc" and message["metrics"][0]["step"] == 3

    # the stock client through the proxy streams too: log_metric, log_batch, the end of the run
    def stock(client: Any) -> None:
        from mlflow.entities import Metric

        client.log_metric(run_id, "loss", 0.25, step=7)
        client.log_batch(run_id, metrics=[Metric("loss", 0.125, 0, 8), Metric("acc", 0.9, 0, 8)])
        client.set_terminated(run_id)

    await tracking("alice", stock, scope=slug)
    got = [json.loads(await asyncio.wait_for(socket.read_message(), 10)) for _ in range(3)]
    assert [(m["key"], m["value"], m["step"]) for m in got[0]["metrics"]] == [("loss", 0.25, 7)]
    assert [m["key"] for m in got[1]["metrics"]] == ["loss", "acc"]
    assert got[2]["status"] == "FINISHED" and "metrics" not in got[2]
    socket.close()


async def test_an_orphan_experiment_with_the_same_name_is_never_adopted(
    api: Any, tracking: Any, mlflow_server: Any
) -> None:
    """A purged project's MLflow experiment keeps its name; a new project reusing the slug gets a
    fresh experiment, and the old runs stay invisible."""
    import httpx

    slug = f"p{uuid.uuid4().hex[:8]}"
    transport = httpx.HTTPTransport(uds=str(mlflow_server.socket))
    with httpx.Client(transport=transport, base_url="http://localhost") as mlflow:
        old = mlflow.post("/api/2.0/mlflow/experiments/create", json={"name": f"{slug}/e"}).json()
        mlflow.post("/api/2.0/mlflow/runs/create", json={"experiment_id": old["experiment_id"]})
    assert (await api("alice").post("projects", {"name": slug, "slug": slug})).status == 201

    def use(client: Any) -> tuple[str, int]:
        import mlflow as mlflow_module

        client_exp = client.get_experiment_by_name("e")
        assert client_exp is None  # the orphan is not ours
        exp_id = client.create_experiment("e")
        runs = client.search_runs([exp_id])
        assert mlflow_module is not None
        return exp_id, len(runs)

    exp_id, runs = await tracking("alice", use, scope=slug)
    assert exp_id != old["experiment_id"] and runs == 0
    name = await tracking(
        "alice", lambda c: c.get_experiment_by_name("e").experiment_id, scope=slug
    )
    assert name == exp_id


async def test_compare_aggregate_and_search_across_projects(api: Any, tracking: Any) -> None:
    slug = await project(api, bob="viewer")
    other = await project(api)

    def runs(client: Any) -> list[str]:
        exp_id = client.create_experiment("sweep")
        ids = []
        for lr in ("0.1", "0.01"):
            for seed in ("1", "2", "3"):
                run = client.create_run(exp_id)
                client.log_param(run.info.run_id, "lr", lr)
                client.log_param(run.info.run_id, "seed", seed)
                ids.append(run.info.run_id)
        return ids

    ids = await tracking("alice", runs, scope=slug)
    for i, run_id in enumerate(ids):
        points = [{"key": "loss", "value": (i % 3) + step, "step": step} for step in range(10)]
        assert (await api("alice").post(f"runs/{run_id}/batch", {"metrics": points})).status == 200
    r = await api("bob").post("runs/compare", {"run_ids": ids[:2]})
    assert r.status == 200, r
    assert r.json["params"]["differ"] == {"seed": {ids[0]: "1", ids[1]: "2"}}
    assert r.json["params"]["same"] == {"lr": "0.1"}
    assert r.json["metrics"]["loss"][ids[1]] == {
        "min": 1.0,
        "max": 10.0,
        "points": 10,
        "last": 10.0,
        "last_step": 9,
    }
    r = await api("bob").post(
        "runs/aggregate", {"run_ids": ids, "metric": "loss", "group_by": "seed"}
    )
    assert r.status == 200, r
    groups = {g["params"]["lr"]: g for g in r.json["groups"]}
    assert sorted(groups) == ["0.01", "0.1"] and len(groups["0.1"]["runs"]) == 3
    assert (
        groups["0.1"]["mean"][0] == 1.0
        and groups["0.1"]["min"][0] == 0.0
        and groups["0.1"]["max"][0] == 2.0
    )
    assert groups["0.1"]["std"][0] == pytest.approx((2 / 3) ** 0.5)
    # search: alice sees both projects' runs, bob only slug's, carol nothing
    other_ids = await tracking("alice", runs, scope=other)
    found = (
        await api("alice").post("runs/search", {"filter": "params.lr = '0.1'", "max_results": 100})
    ).json
    assert {r["run_id"] for r in found["runs"]} >= set(ids[:3] + other_ids[:3])
    found = (await api("bob").post("runs/search", {"filter": "params.lr = '0.1'"})).json
    assert {r["run_id"] for r in found["runs"]} == set(ids[:3])
    assert {r["experiment"] for r in found["runs"]} == {f"{slug}/sweep"}
    # one experiment's runs (the lab's experiment view): alice's other project's sweep left out
    listed = (await api("alice").get(f"projects/{slug}/experiments")).json["items"]
    sweep = next(e["mlflow_experiment_id"] for e in listed if e["name"] == "sweep")
    body = {"experiment_ids": [sweep], "max_results": 100}
    found = (await api("alice").post("runs/search", body)).json
    assert {r["run_id"] for r in found["runs"]} == set(ids)
    r = await api("alice").post("runs/search", {"experiment_ids": ["x1"]})
    assert r.status == 400 and "experiment_ids" in r.json["message"]
    await api("carol").get("me")
    assert (await api("carol").post("runs/search", {})).json["runs"] == []
    assert (await api("carol").post("runs/compare", {"run_ids": ids[:1]})).status == 404
    r = await api("alice").post("runs/search", {"filter": "metrics.loss <<< 1"})
    assert r.status == 400 and "filter" in r.json["message"]


async def test_promotion_by_request_and_approval_and_model_cards(api: Any, tracking: Any) -> None:
    slug = await project(api, carol="editor", dave="admin", bob="viewer")

    def trained(client: Any) -> str:
        exp_id = client.create_experiment("train")
        run = client.create_run(exp_id)
        client.log_text(run.info.run_id, "w", "model/weights.txt")  # the versions' files
        client.set_terminated(run.info.run_id)
        return run.info.run_id

    run_id = await tracking("carol", trained, scope=slug)
    # the run read a dataset version: the card shows it
    folder_files = {"data.csv": b"a,b\n1,2\n"}
    declared, chunks = [], {}
    from jupyter_workbench.dataset_jobs import frame_chunks
    from jupyter_workbench.storage import chunk_bytes

    for path, data in folder_files.items():
        pieces: list[list[Any]] = []
        digest = chunk_bytes(
            data,
            on_chunk=lambda c, p=pieces: (
                p.append([c.digest, c.length]),
                chunks.update({c.digest: bytes(c.data)}),
            ),
        )
        declared.append(
            {"path": path, "size": digest.size, "digest": digest.digest, "chunks": pieces}
        )
    r = await api("carol").post(f"projects/{slug}/datasets/train-set/uploads", {"files": declared})
    upload = r.json["id"]
    await api("carol").post(
        f"projects/{slug}/datasets/train-set/uploads/{upload}/chunks",
        raw=frame_chunks(list(chunks.items())),
    )
    assert (
        await api("carol").post(f"projects/{slug}/datasets/train-set/uploads/{upload}/commit", {})
    ).status == 201
    r = await api("carol").post(
        f"projects/{slug}/datasets/train-set/versions/v1/lineage", {"consumer": f"run:{run_id}"}
    )
    assert r.status == 201

    r = await api("carol").post(f"projects/{slug}/models/churn-{slug}/versions", {"run_id": run_id})
    assert r.status == 201, r
    model = f"churn-{slug}"
    made = {"project": slug, "action": "model.version_create"}
    [event] = (await api("alice").get("audit", params=made)).json["items"]
    assert (event["actor"], event["object_id"]) == ("carol", model)
    assert event["summary"] == {"version": "1", "run_id": run_id}
    r = await api("carol").post(
        f"projects/{slug}/models/{model}/promotions", {"version": "1", "note": "good"}
    )
    assert r.status == 201 and r.json["status"] == "pending"
    request_id = r.json["id"]
    assert (
        await api("carol").post(
            f"projects/{slug}/models/{model}/promotions/{request_id}/approve", {}
        )
    ).status == 403
    assert (
        await api("bob").post(f"projects/{slug}/models/{model}/promotions", {"version": "1"})
    ).status == 403
    r = await api("dave").post(
        f"projects/{slug}/models/{model}/promotions/{request_id}/approve", {"note": "ok"}
    )
    assert r.status == 200 and r.json["status"] == "approved" and r.json["decided_by"] == "dave"
    detail = (await api("bob").get(f"projects/{slug}/models/{model}")).json
    assert detail["aliases"] == {"production": "1"}
    assert detail["versions"][0]["datasets"][0]["dataset"] == "train-set"
    # the version's run links to its experiment (the model view opens it there)
    experiment = detail["versions"][0]["experiment"]
    assert (experiment["project"], experiment["name"]) == (slug, "train")
    # the stock client sees the alias too
    version = await tracking(
        "bob", lambda c: c.get_model_version_by_alias(model, "production").version, scope=slug
    )
    assert str(version) == "1"
    for bad, says in ((1.5, "version: "), ("v1", "version: "), (0, "version: ")):
        r = await api("dave").post(f"projects/{slug}/models/{model}/promotions", {"version": bad})
        assert r.status == 400 and r.json["message"].startswith(says), (bad, r.json)
    # an admin cannot approve their own request (the version given as a number)
    r = await api("dave").post(
        f"projects/{slug}/models/{model}/promotions", {"version": 1, "alias": "champion"}
    )
    assert r.status == 201 and r.json["version"] == "1"
    own = r.json["id"]
    r = await api("dave").post(f"projects/{slug}/models/{model}/promotions/{own}/approve", {})
    assert r.status == 403 and "another admin" in r.json["message"]
    events = (
        await api("alice").get("audit", params={"project": slug, "action": "model.promotion*"})
    ).json
    assert [e["action"] for e in events["items"]] == [
        "model.promotion_request",
        "model.promotion_approved",
        "model.promotion_request",
    ]

    # cards: revisions with If-Match, history, lineage
    r = await api("carol").request(
        "PUT",
        f"projects/{slug}/models/{model}/card",
        {"markdown": "# Churn", "fields": {"intended_use": "triage"}},
    )
    assert r.status == 200 and r.json["revision"] == 1
    etag = r.json["etag"]
    r = await api("carol").request(
        "PUT",
        f"projects/{slug}/models/{model}/card",
        {"markdown": "# Churn v2"},
        headers={"If-Match": etag},
    )
    assert r.json["revision"] == 2
    r = await api("carol").request(
        "PUT",
        f"projects/{slug}/models/{model}/card",
        {"markdown": "stale"},
        headers={"If-Match": etag},
    )
    assert r.status == 412
    card = (await api("bob").get(f"projects/{slug}/models/{model}/card")).json
    assert card["markdown"] == "# Churn v2" and card["lineage"]["1"]["datasets"][0]["version"] == 1
    history = (await api("bob").get(f"projects/{slug}/models/{model}/card/history")).json["items"]
    assert [(h["revision"], h["author"]) for h in history] == [(2, "carol"), (1, "carol")]
    assert history[1]["markdown"] == "# Churn"
    assert history[1]["fields"] == {"intended_use": "triage"}
    # both lists a page at a time, newest first (oldest first on request)
    path = f"projects/{slug}/models/{model}"
    r = await api("bob").get(f"{path}/card/history", params={"limit": 1})
    assert [h["revision"] for h in r.json["items"]] == [2] and r.json["next_cursor"]
    r = await api("bob").get(f"{path}/card/history",
                             params={"limit": 1, "cursor": r.json["next_cursor"]})  # fmt: skip
    assert [h["revision"] for h in r.json["items"]] == [1] and r.json["next_cursor"] is None
    r = await api("bob").get(f"{path}/card/history", params={"sort": "revision"})
    assert [h["revision"] for h in r.json["items"]] == [1, 2]
    r = await api("bob").get(f"{path}/promotions", params={"limit": 1})
    assert [p["id"] for p in r.json["items"]] == [own]
    r = await api("bob").get(f"{path}/promotions",
                             params={"limit": 5, "cursor": r.json["next_cursor"]})  # fmt: skip
    assert [p["id"] for p in r.json["items"]] == [request_id] and r.json["next_cursor"] is None
    r = await api("bob").get(f"{path}/promotions", params={"status": "pending"})
    assert [p["id"] for p in r.json["items"]] == [own]
    r = await api("bob").get(f"{path}/promotions", params={"limit": 0})
    assert r.status == 400 and "limit" in r.json["message"]
    assert (await api("bob").get(f"{path}-none/card/history")).status == 404
    r = await api("carol").request(
        "PUT",
        f"projects/{slug}/models/{model}/card",
        {"markdown": "x", "fields": {"colour": "red"}},
    )
    assert r.status == 400


async def test_experiments_list_a_page_at_a_time(api: Any) -> None:
    slug = await project(api, bob="viewer")
    names = ["b-two", "A-one", "c_3", "Beta", "100%", "Ölmodell"]
    for name in names:
        assert (
            await api("alice").post(f"projects/{slug}/experiments", {"name": name})
        ).status == 201

    async def every(**params: str) -> list[str]:
        seen, cursor = [], None
        while True:
            query = {"limit": "2", **params, **({"cursor": cursor} if cursor else {})}
            r = await api("bob").get(f"projects/{slug}/experiments", params=query)
            assert r.status == 200 and len(r.json["items"]) <= 2, r
            seen += [e["name"] for e in r.json["items"]]
            if not (cursor := r.json["next_cursor"]):
                return seen

    assert await every() == sorted(names, key=str.lower)  # in any case: b-two, Beta, c_3
    assert await every(sort="-created") == names[::-1]
    assert await every(q="B") == ["b-two", "Beta"]  # any case
    assert await every(q="%") == ["100%"] and await every(q="_") == ["c_3"]  # literally
    # beyond ASCII, in any case too
    assert await every(q="ölm") == ["Ölmodell"] and await every(q="ÖL") == ["Ölmodell"]
    assert await every(name="Ölmodell") == ["Ölmodell"] and await every(name="beta") == []
    r = await api("bob").get(f"projects/{slug}/experiments", params={"sort": "size"})
    assert r.status == 400 and "sort" in r.json["message"]


async def test_run_lineage_round_trip_and_experiments_api(api: Any, tracking: Any) -> None:
    slug = await project(api, bob="viewer")
    r = await api("alice").post(f"projects/{slug}/experiments", {"name": "fine-tune"})
    assert r.status == 201, r
    exp_id = r.json["mlflow_experiment_id"]
    assert (
        await api("alice").post(f"projects/{slug}/experiments", {"name": "fine-tune"})
    ).status == 409
    listed = (await api("bob").get(f"projects/{slug}/experiments")).json["items"]
    assert [e["name"] for e in listed] == ["fine-tune"]
    run_id = await tracking("alice", lambda c: c.create_run(exp_id).info.run_id, scope=slug)
    # a dataset the run reads, and a model config it uses
    from jupyter_workbench.dataset_jobs import frame_chunks
    from jupyter_workbench.storage import chunk_bytes

    pieces: list[list[Any]] = []
    store: dict[str, bytes] = {}
    digest = chunk_bytes(
        b"x,y\n1,2\n",
        on_chunk=lambda c: (
            pieces.append([c.digest, c.length]),
            store.update({c.digest: bytes(c.data)}),
        ),
    )
    files = [{"path": "d.csv", "size": digest.size, "digest": digest.digest, "chunks": pieces}]
    upload = (
        await api("alice").post(f"projects/{slug}/datasets/raw/uploads", {"files": files})
    ).json
    await api("alice").post(
        f"projects/{slug}/datasets/raw/uploads/{upload['id']}/chunks",
        raw=frame_chunks(list(store.items())),
    )
    await api("alice").post(f"projects/{slug}/datasets/raw/uploads/{upload['id']}/commit", {})
    await api("alice").post(
        f"projects/{slug}/model-configs", {"name": "base", "parameters": {"lr": 1}}
    )
    body = {
        "datasets_read": [{"project": slug, "dataset": "raw", "version": "v1"}],
        "model_config": {"name": "base", "revision": 1},
        "code": {"path": "train.ipynb", "git_commit": "abc123", "sha256": "ab" * 32},
        "environment": {"python": "3.11.7", "packages": {"torch": "2.13.0"}},
        "notes": "first try",
    }
    r = await api("alice").post(f"runs/{run_id}/lineage", body)
    assert r.status == 200, r
    lineage = (await api("bob").get(f"runs/{run_id}/lineage")).json
    assert [(d["dataset"], d["version"]) for d in lineage["datasets_read"]] == [("raw", 1)]
    assert lineage["model_config"] == "base@1"
    assert lineage["code"] == {"path": "train.ipynb", "git_commit": "abc123", "sha256": "ab" * 32}
    assert lineage["environment"]["packages"] == {"torch": "2.13.0"}
    assert lineage["notes"] == "first try"
    # a long package list (more than an MLflow tag holds) comes back whole, and a shorter one
    # posted later replaces it
    many = {f"package-number-{i}": f"{i}.0.{i}" for i in range(800)}
    for packages in (many, {"numpy": "2.1.0"}):
        r = await api("alice").post(
            f"runs/{run_id}/lineage", {"environment": {"packages": packages}}
        )
        assert r.status == 200, r
        lineage = (await api("bob").get(f"runs/{run_id}/lineage")).json
        assert lineage["environment"]["packages"] == packages
    # and the other way: which runs used v1
    used = (await api("bob").get(f"projects/{slug}/datasets/raw/versions/v1/lineage")).json["items"]
    assert [u["consumer"] for u in used] == [f"run:{run_id}"]
    bad = dict(body, model_config={"name": "base", "revision": 9})
    assert (await api("alice").post(f"runs/{run_id}/lineage", bad)).status == 404
    assert (await api("bob").post(f"runs/{run_id}/lineage", {"notes": "x"})).status == 403
    # notes are text: Windows line ends are fine, a terminal escape sequence is not
    r = await api("alice").post(f"runs/{run_id}/lineage", {"notes": "two\r\nlines"})
    assert r.status == 200 and r.json["notes"] == "two\nlines", r
    r = await api("alice").post(f"runs/{run_id}/lineage", {"notes": "red \x1b[31m alert"})
    assert r.status == 400 and r.json["message"] == "notes: must not contain control characters"
    assert (await api("bob").get(f"runs/{run_id}/lineage")).json["notes"] == "two\nlines"


async def test_the_web_uis_graphql_is_checked_field_by_field(
    api: Any, tracking: Any, jp_fetch: Any
) -> None:
    import json

    slug = await project(api)

    def make(client: Any) -> str:
        exp_id = client.create_experiment("ui")
        run = client.create_run(exp_id)
        client.log_param(run.info.run_id, "lr", "0.5")
        return run.info.run_id

    run_id = await tracking("alice", make, scope=slug)
    query = (
        "query GetRun($data: MlflowGetRunInput!) { mlflowGetRun(input: $data) "
        "{ run { info { runUuid } data { params { key value } } } } }"
    )

    async def ask(user: str, body: dict[str, Any]) -> Any:
        return await jp_fetch(
            "workbench",
            "mlflow",
            "graphql",
            method="POST",
            body=json.dumps(body),
            headers={
                "Authorization": f"token {TOKEN_OF[user]}",
                "Content-Type": "application/json",
            },
            raise_error=False,
        )

    r = await ask("alice", {"query": query, "variables": {"data": {"runId": run_id}}})
    assert r.code == 200, r.body
    data = json.loads(r.body)["data"]["mlflowGetRun"]["run"]
    assert data["info"]["runUuid"] == run_id and data["data"]["params"] == [
        {"key": "lr", "value": "0.5"}
    ]
    await api("carol").get("me")
    r = await ask("carol", {"query": query, "variables": {"data": {"runId": run_id}}})
    assert r.code == 404
    r = await ask(
        "alice", {"query": "{ mlflowSearchModelVersions(input: {}) { modelVersions { name } } }"}
    )
    assert r.code == 403
    r = await ask("alice", {"query": "{ __schema { types { name } } }"})
    assert r.code == 403


async def test_a_model_named_with_quotes_shows_its_own_versions(api: Any, tracking: Any) -> None:
    """MLflow filters have no escapes: a name holding quotes is still found, and a name that
    only looks alike (where the quote would be) is not mixed in."""
    slug = await project(api)
    single, double, both = f"{slug}'s model", f'{slug} "best"', f"{slug} 'a' \"b\""
    lookalike = both.replace("'", "x")  # matches the LIKE MLflow is asked for `both`

    def register(client: Any) -> None:
        run = client.create_run(client.create_experiment("quoted"))
        client.log_text(run.info.run_id, "w", "model/weights.txt")  # the versions' files
        for name, count in ((single, 1), (double, 2), (both, 3), (lookalike, 1)):
            client.create_registered_model(name)
            for _ in range(count):
                client.create_model_version(name, f"runs:/{run.info.run_id}/model",
                                            run_id=run.info.run_id)  # fmt: skip

    await tracking("alice", register, scope=slug)
    for name, count in ((single, 1), (double, 2), (both, 3), (lookalike, 1)):
        r = await api("alice").get(f"projects/{slug}/models/{name}")  # quoted by the test client
        assert r.status == 200, r
        assert [v["version"] for v in r.json["versions"]] == [str(n + 1) for n in range(count)]


async def test_malformed_requests_are_a_clear_400_before_mlflow_changes(
    api: Any, tracking: Any, jp_http_port: int, jp_base_url: str
) -> None:
    """What MLflow would fail on half-way (or we could not record) is refused first, in
    MLflow's error format through the proxy and ours over REST; nothing is created."""
    import httpx

    slug = await project(api)
    _exp, run_id = await _run(tracking, "alice", slug)
    alice = api("alice")
    # the batch endpoint: numbers MLflow's BIGINT and the JSON standard hold, nothing else
    for raw, needle in [
        (b'{"metrics": [{"key": "x", "value": 1, "step": 9223372036854775808}]}',
         "metrics.0.step: must be at most 9223372036854775807"),
        (b'{"metrics": [{"key": "x", "value": 1, "timestamp": -9223372036854775809}]}',
         "metrics.0.timestamp: must be at least"),
        (b'{"metrics": [{"key": "x", "value": 1e400}]}', "1e400 is too large"),
        (b'{"metrics": [{"key": "x", "value": 1' + b"0" * 400 + b"}]}", "is too large"),
        (b'{"metrics": [{"key": "x", "value": NaN}]}', "NaN is not a JSON number"),
        (b'{"metrics": [{"key": "x\\ud800", "value": 1}]}', "metrics.0.key: must not contain"),
        (b'{"params": {"' + b"k" * 300 + b'": "1"}}', "params key 'kkk"),
        (b'{"tags": {"": "1"}}', "tags key '': must not be empty"),
        # names MLflow's own API refuses (its log_metric would raise on the same run)
        (b'{"metrics": [{"key": "ok", "value": 1}, {"key": "acc@1", "value": 1}]}',
         "metrics key 'acc@1': may only contain letters, digits, spaces and"),
        (b'{"params": {"a//b": "1"}}', "params key 'a//b': must not read as another name"),
        (b'{"tags": {"../t": "1"}}', "tags key '../t': must not be '.' nor start with"),
    ]:  # fmt: skip
        r = await alice.post(f"runs/{run_id}/batch", raw=raw)
        assert r.status == 400 and needle in r.json["message"], (raw[:60], r)
    assert (await alice.get(f"runs/{run_id}/metrics/ok/history")).json["total"] == 0
    # registering under a name MLflow or our table refuses creates nothing anywhere
    for name in ("a:b", "x" * 300, "..", "tab\there"):
        r = await alice.post(f"projects/{slug}/models/{name}/versions", {"run_id": run_id})
        assert r.status == 400 and r.json["message"].startswith("name: "), (name, r)
    r = await alice.post(f"projects/{slug}/models/m/versions",
                         {"run_id": run_id, "description": "clear \x1b[2J"})  # fmt: skip
    assert r.status == 400, r
    assert r.json["message"] == "description: must not contain control characters"

    root = f"http://127.0.0.1:{jp_http_port}{jp_base_url}workbench/mlflow/p/{slug}/api/2.0/mlflow"

    def through_proxy() -> list[tuple[int, str, str]]:
        asks: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "experiments/search", {"params": {"max_results": "-1"}}),
            ("GET", "experiments/search", {"params": {"max_results": "many"}}),
            ("POST", "experiments/search", {"json": {"max_results": 2.5}}),
            ("GET", "registered-models/search", {"params": {"page_token": "wbW10="}}),  # "[]"
            ("GET", "registered-models/search", {"params": {"page_token": "wb" + "e30" * 3}}),
            ("GET", "experiments/search", {"content": None, "params": None,
                                           "url_extra": "?filter=name%3D%27%FF%27"}),
            ("POST", "experiments/create", {"json": {"name": "e", "tags": "lots"}}),
            ("POST", "experiments/create", {"json": {"name": "e", "tags": [{"value": 1}]}}),
            ("POST", "experiments/create", {"json": {"name": ["e"]}}),
            ("POST", "registered-models/create", {"json": {"name": "a:b"}}),
            ("POST", "registered-models/create", {"json": {"name": "m" * 300}}),
            ("POST", "registered-models/create", {"content": b'{"name": "m\\ud800"}'}),
            ("POST", "registered-models/create", {"content": b"[" * 100 + b"]" * 100}),
            ("POST", "registered-models/create", {"content": b'{"name": "m", "x": NaN}'}),
            ("POST", "registered-models/create", {"json": {"name": "m", "description": "\x1b"}}),
        ]  # fmt: skip
        answers = []
        with httpx.Client(
            timeout=30, headers={"Authorization": f"Bearer {TOKEN_OF['alice']}"}
        ) as h:
            for method, path, kw in asks:
                url = f"{root}/{path}{kw.pop('url_extra', '')}"
                r = h.request(method, url, **{k: v for k, v in kw.items() if v is not None})
                answers.append((r.status_code, r.json()["error_code"], r.json()["message"]))
            models = h.get(f"{root}/registered-models/search").json()
            experiments = h.get(f"{root}/experiments/search").json()
        assert models.get("registered_models", []) == []
        names = [e["name"] for e in experiments["experiments"]]
        assert not [n for n in names if n == "e" or n.endswith("/e")], names
        return answers

    answers = await asyncio.to_thread(through_proxy)
    assert all(status == 400 for status, _, _ in answers), answers
    assert all(code == "INVALID_PARAMETER_VALUE" for _, code, _ in answers), answers
    messages = [message for _, _, message in answers]
    assert messages[0].startswith("max_results: must be a whole number from 1 to 50000")
    assert messages[3] == messages[4] == "page_token: not a token this proxy issued"
    assert messages[5] == "the query string must be UTF-8 text"
    assert messages[6].startswith("tags: must be a list") and messages[7] == messages[6]
    assert messages[8] == "name: must be a string"
    assert messages[9] == "name: 'a:b' must not contain '/' or ':'"
    assert messages[10] == "name: is 300 characters long, at most 255 allowed"
    assert messages[11].startswith("name: must not contain a lone UTF-16 surrogate")
    assert messages[12].startswith("request body: nested deeper than 64 levels")
    assert messages[13] == "request body: not valid JSON (NaN is not a JSON number)"
    assert messages[14] == "description: must not contain control characters"
