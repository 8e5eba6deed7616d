"""Adversarial requests to the MLflow proxy: another project's objects stay out of reach, however
a stock MLflow server could be made to read the request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import test_mlflow_proxy as proxy_tests
from .conftest import TOKEN_OF

# the fixtures of the proxy's own tests: a server with MLflow, a stock client per user
jp_server_config = proxy_tests.jp_server_config
tracking = proxy_tests.tracking
project = proxy_tests.project

pytestmark = pytest.mark.slow


async def two_projects(api: Any, tracking: Any, tmp_path: Path) -> dict[str, str]:
    """alice's project A (carol a viewer) with a run, an artifact, a logged model and a
    registered model with a version; bob's project B with a run and a registered model."""
    a = await project(api, carol="viewer")
    b = await project(api, owner="bob")
    notes = tmp_path / "notes.txt"
    notes.write_text("secret of alice")

    def alice(c: Any) -> dict[str, str]:
        exp = c.create_experiment("secret")
        run = c.create_run(exp)
        c.log_artifact(run.info.run_id, str(notes), "model")
        logged = c.create_logged_model(exp, name="lm", source_run_id=run.info.run_id)
        c.create_registered_model(f"{a}-m")
        c.create_model_version(f"{a}-m", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        return {"aexp": exp, "arun": run.info.run_id, "auri": run.info.artifact_uri,
                "alm": logged.model_id, "amodel": f"{a}-m"}  # fmt: skip

    def bob(c: Any) -> dict[str, str]:
        exp = c.create_experiment("mine")
        run = c.create_run(exp)
        c.create_registered_model(f"{b}-m")
        return {"bexp": exp, "brun": run.info.run_id, "bmodel": f"{b}-m"}

    ids = await tracking("alice", alice, scope=a)
    ids.update(await tracking("bob", bob, scope=b))
    return {"a": a, "b": b, **ids}


def client(user: str, port: int, base_url: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}{base_url}workbench/mlflow",
        timeout=30,
        headers={"Authorization": f"Bearer {TOKEN_OF[user]}"},
    )


async def test_fields_are_read_where_mlflow_reads_them(
    api: Any, tracking: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path
) -> None:
    """A field given twice, a GET's body, a POST's query string or a JSON-style field name
    (``runId``, which MLflow also reads) cannot make the proxy check one object while MLflow
    acts on another: bob reaches nothing of alice's."""
    w = await two_projects(api, tracking, tmp_path)
    arun, brun, aexp, bexp = w["arun"], w["brun"], w["aexp"], w["bexp"]
    v = "api/2.0/mlflow"

    def attempts() -> list[tuple[str, int, str]]:
        asks: list[tuple[str, str, str, dict[str, Any]]] = [
            ("twice", "GET", f"{v}/runs/get?run_id={arun}&run_id={brun}", {}),
            ("GET body", "GET", f"{v}/runs/get?run_id={arun}", {"json": {"run_id": brun}}),
            ("twice", "GET", f"{v}/experiments/get?experiment_id={aexp}&experiment_id={bexp}", {}),
            ("twice", "GET", f"{v}/registered-models/get?name={w['amodel']}&name={w['bmodel']}",
             {}),
            ("twice", "GET", f"get-artifact?run_id={arun}&run_id={brun}&path=model/notes.txt", {}),
            ("twice", "GET", f"api/2.0/mlflow-artifacts/artifacts?path={aexp}&path={bexp}", {}),
            ("query", "POST", f"{v}/runs/set-tag?run_id={brun}",
             {"json": {"run_uuid": arun, "key": "k", "value": "bob was here"}}),
            ("runUuid", "POST", f"{v}/runs/set-tag",
             {"json": {"run_id": "", "runUuid": arun, "key": "k", "value": "bob was here"}}),
            ("camel", "POST", f"{v}/runs/search?experiment_ids={bexp}",
             {"json": {"experimentIds": [aexp]}}),
            ("camel", "POST", f"{v}/model-versions/create",
             {"json": {"name": w["bmodel"], "source": f"{w['auri']}/model", "runId": arun}}),
            ("camel", "POST", f"{v}/model-versions/create",
             {"json": {"name": w["bmodel"], "source": f"models:/{w['alm']}",
                       "modelId": w["alm"]}}),
        ]  # fmt: skip
        answers = []
        with client("bob", jp_http_port, jp_base_url) as bob:
            for label, method, path, kw in asks:
                r = bob.request(method, path, **kw)
                answers.append((label, r.status_code, r.text[:200]))
        return answers

    answers = await asyncio.to_thread(attempts)
    assert all(status == 404 for _, status, _ in answers), answers
    assert all('"error_code": "RESOURCE_DOES_NOT_EXIST"' in text for _, _, text in answers)
    tags = await tracking("alice", lambda c: c.get_run(arun).data.tags, scope=w["a"])
    assert "k" not in tags
    versions = await tracking("bob", lambda c: c.search_model_versions(f"name='{w['bmodel']}'"))
    assert versions == []


async def test_dot_segments_in_a_path_are_refused(
    api: Any, tracking: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path
) -> None:
    """'.' and '..' segments (encoded, or made of %2F) are refused before anything is checked:
    the proxy checks a path's first segment, and the path MLflow is sent loses its dot segments
    on the way, so '<bob's experiment>/../<alice's>/...' reached alice's artifacts."""
    w = await two_projects(api, tracking, tmp_path)
    aexp, arun, bexp = w["aexp"], w["arun"], w["bexp"]
    store = "api/2.0/mlflow-artifacts/artifacts"
    file = f"{aexp}/{arun}/artifacts/model/notes.txt"

    def attempts() -> list[tuple[int, str]]:
        asks = [
            ("GET", f"{store}/{bexp}/%2E%2E/{file}", None),
            ("GET", f"{store}/{bexp}%2F..%2F{file}", None),
            ("GET", f"{store}/{bexp}/x/%2E%2E/%2E%2E/{file}", None),
            ("PUT", f"{store}/{bexp}/%2E%2E/{file}", b"bob was here"),
            ("DELETE", f"{store}/{bexp}/%2E%2E/{file}", None),
            ("DELETE", f"api/2.0/mlflow/logged-models/{w['alm']}/tags/%2E%2E", None),
        ]
        answers = []
        with client("bob", jp_http_port, jp_base_url) as bob:
            for method, path, content in asks:
                r = bob.request(method, path, content=content)
                answers.append((r.status_code, r.json()["error_code"]))
        return answers

    answers = await asyncio.to_thread(attempts)
    assert answers == [(400, "INVALID_PARAMETER_VALUE")] * 6, answers
    text = await tracking(
        "alice", lambda c: Path(c.download_artifacts(arun, "model/notes.txt", str(tmp_path / "d")))
    )
    assert text.read_text() == "secret of alice"


async def test_what_bob_may_not_see_is_refused_like_what_does_not_exist(
    api: Any, tracking: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path
) -> None:
    """Asked for alice's run, experiment, logged model, artifact or model, bob gets the answer
    a made-up one gets, word for word: nothing says it exists, or which project holds it."""
    w = await two_projects(api, tracking, tmp_path)
    v = "api/2.0/mlflow"
    graphql = 'query { mlflowGetRun(input: {runId: "%s"}) { run { info { runUuid } } } }'

    def asks(run: str, exp: str, logged: str, model: str, name: str) -> list[Any]:
        return [
            ("GET", f"{v}/runs/get", {"params": {"run_id": run}}),
            ("GET", f"{v}/experiments/get", {"params": {"experiment_id": exp}}),
            ("GET", f"{v}/experiments/get-by-name", {"params": {"experiment_name": name}}),
            ("GET", f"{v}/logged-models/{logged}", {}),
            ("GET", f"{v}/registered-models/get", {"params": {"name": model}}),
            ("GET", f"api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/model/notes.txt",
             {}),
            ("POST", f"{v}/runs/search", {"json": {"experiment_ids": [exp]}}),
            ("POST", "graphql", {"json": {"query": graphql % run}}),
        ]  # fmt: skip

    def attempts() -> list[list[tuple[int, str]]]:
        hidden = asks(w["arun"], w["aexp"], w["alm"], w["amodel"], f"{w['a']}/secret")
        made_up = asks("0" * 32, "999", "m-" + "0" * 32, f"{w['a']}-n", f"{w['a']}/none")
        replace = [
            (w["arun"], "0" * 32),
            (w["aexp"], "999"),
            (w["alm"], "m-" + "0" * 32),
            (w["amodel"], f"{w['a']}-n"),
            (f"{w['a']}/secret", f"{w['a']}/none"),
        ]
        answers: list[list[tuple[int, str]]] = [[], []]
        with client("bob", jp_http_port, jp_base_url) as bob:
            for index, group in enumerate((hidden, made_up)):
                for method, path, kw in group:
                    r = bob.request(method, path, **kw)
                    text = r.text
                    if index == 0:
                        for real, fake in replace:  # as quoted in a message
                            text = text.replace(f"'{real}'", f"'{fake}'")
                    answers[index].append((r.status_code, text))
        return answers

    hidden, made_up = await asyncio.to_thread(attempts)
    assert hidden == made_up
    assert all(status == 404 for status, _ in hidden), hidden


async def test_a_version_source_must_be_readable_whatever_its_form(
    api: Any, tracking: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path
) -> None:
    """A version of bob's model cannot point at alice's: not by ``models:/<her model>/1`` or
    ``@alias`` (MLflow copies that version's files and run), nor by a storage URI that lies
    outside the run or logged model the request gives (MLflow takes ``s3://...`` on trust, and
    reads it with the server's credentials); a model bob may not see is refused in the words
    of one that does not exist."""
    from mlflow.exceptions import MlflowException

    w = await two_projects(api, tracking, tmp_path)
    amodel, bmodel, brun = w["amodel"], w["bmodel"], w["brun"]

    def attempts(c: Any) -> list[tuple[str, str]]:
        asks: list[tuple[str, dict[str, str]]] = [
            (f"models:/{amodel}/1", {}),
            (f"models:/{amodel}@champion", {}),
            (f"models:/{amodel}/latest", {}),
            (f"models:/{bmodel}x/1", {}),  # no such model: the same words
            ("s3://workbench-artifacts/1/x/artifacts/model", {}),
            ("s3://workbench-artifacts/1/x/artifacts/model", {"run_id": brun}),
            (f"{w['auri']}/model", {"run_id": brun}),
        ]
        answers = []
        for source, kw in asks:
            try:
                c.create_model_version(bmodel, source, **kw)
                answers.append(("made", source))
            except MlflowException as exc:
                answers.append((str(exc.error_code), exc.message.split(": ", 1)[1]))
        mine = c.create_model_version(bmodel, f"{c.get_run(brun).info.artifact_uri}/m", run_id=brun)
        again = c.create_model_version(bmodel, f"models:/{bmodel}/{mine.version}")
        return [*answers, ("made", str(again.version))]

    answers = await tracking("bob", attempts, scope=w["b"])
    outside = (
        "source: must be a runs:/ or models:/ URI, or lie inside the artifacts of the run "
        "(run_id) or logged model (model_id) given"
    )
    assert answers == [
        ("RESOURCE_DOES_NOT_EXIST", f"source: registered model '{amodel}' not found"),
        ("RESOURCE_DOES_NOT_EXIST", f"source: registered model '{amodel}' not found"),
        ("RESOURCE_DOES_NOT_EXIST", f"source: registered model '{amodel}' not found"),
        ("RESOURCE_DOES_NOT_EXIST", f"source: registered model '{bmodel}x' not found"),
        ("INVALID_PARAMETER_VALUE", outside),
        ("INVALID_PARAMETER_VALUE", outside),
        ("INVALID_PARAMETER_VALUE", outside),
        ("made", "2"),
    ], answers


async def test_links_to_another_projects_run_or_model_are_refused(
    api: Any, tracking: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path
) -> None:
    """bob cannot link alice's logged model to his run (as its input or output) or claim her
    run as his logged model's source: what a write links to must be readable, like what it
    writes to; his own links still work."""
    w = await two_projects(api, tracking, tmp_path)
    v = "api/2.0/mlflow"
    brun, alm = w["brun"], w["alm"]

    def attempts() -> list[tuple[int, str]]:
        with client("bob", jp_http_port, jp_base_url) as bob:
            mine = bob.post(
                f"{v}/logged-models",
                json={"experiment_id": w["bexp"], "name": "own", "source_run_id": brun},
            )
            assert mine.status_code == 200, mine.text
            own = mine.json()["model"]["info"]["model_id"]
            asks = [
                ("runs/outputs", {"run_id": brun, "models": [{"model_id": alm, "step": 0}]}),
                ("runs/log-inputs", {"run_id": brun, "models": [{"model_id": own},
                                                               {"model_id": alm}]}),
                ("logged-models", {"experiment_id": w["bexp"], "name": "x",
                                   "source_run_id": w["arun"]}),
                ("runs/outputs", {"run_id": brun, "models": [{"model_id": own, "step": 0}]}),
            ]  # fmt: skip
            answers = []
            for route, body in asks:
                r = bob.post(f"{v}/{route}", json=body)
                answers.append((r.status_code, r.json().get("message", "")))
        return answers

    answers = await asyncio.to_thread(attempts)
    assert answers == [
        (404, f"models.0.model_id: logged model '{alm}' not found"),
        (404, f"models.1.model_id: logged model '{alm}' not found"),
        (404, f"source_run_id: run '{w['arun']}' not found"),
        (200, ""),
    ], answers


async def test_an_experiments_artifact_location_is_the_workbenchs_choice(
    api: Any, tracking: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path
) -> None:
    """bob cannot point a new experiment's artifacts into alice's experiment or at the
    server's own disk; leaving the location out works as before."""
    w = await two_projects(api, tracking, tmp_path)
    v = f"p/{w['b']}/api/2.0/mlflow"

    def attempts() -> list[tuple[int, str]]:
        answers = []
        with client("bob", jp_http_port, jp_base_url) as bob:
            for where in (f"mlflow-artifacts:/{w['aexp']}", "file:///etc", ""):
                body = {"name": f"exp-{len(answers)}"}
                if where:
                    body["artifact_location"] = where
                r = bob.post(f"{v}/experiments/create", json=body)
                answers.append((r.status_code, r.json().get("error_code", "")))
        return answers

    answers = await asyncio.to_thread(attempts)
    assert answers == [(400, "INVALID_PARAMETER_VALUE")] * 2 + [(200, "")], answers


RUNS_OF = "query { mlflowSearchRuns(input: {experimentIds: [%s]}) { runs { info { runId } } } }"


async def test_graphql_experiment_zero_in_a_project_scope_is_the_projects_default(
    api: Any, tracking: Any, mlflow_server: Any, jp_http_port: int, jp_base_url: str
) -> None:
    """Through a project's tracking URI, GraphQL's experiment '0' is the project's Default, as
    over REST (the UI's runs table): MLflow's global Default, which no project owns, and its runs
    stay out of reach, in a literal or in a variable."""
    slug = await project(api)

    def in_default(c: Any) -> str:
        return str(c.create_run("0").info.run_id)

    mine = await tracking("alice", in_default, scope=slug)
    # a run in MLflow's own Default experiment, made behind the workbench's back
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(mlflow_server.socket)),
                      base_url="http://localhost") as raw:  # fmt: skip
        r = raw.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0"})
        global_run = r.json()["run"]["info"]["run_id"]
    v = f"p/{slug}"

    def search() -> list[list[str]]:
        with client("alice", jp_http_port, jp_base_url) as alice:
            found = [[r["info"]["run_id"] for r in alice.post(
                f"{v}/api/2.0/mlflow/runs/search", json={"experiment_ids": ["0"]}
            ).json()["runs"]]]  # fmt: skip
            by_variable = (
                "query($ids: [String]) { mlflowSearchRuns(input: {experimentIds: $ids}) "
                "{ runs { info { runId } } } }"
            )
            for body in ({"query": RUNS_OF % '"0"'}, {"query": RUNS_OF % '"0", "0"'},
                         {"query": by_variable, "variables": {"ids": ["0"]}}):  # fmt: skip
                r = alice.post(f"{v}/graphql", json=body)
                assert r.status_code == 200 and not r.json().get("errors"), r.text
                runs = r.json()["data"]["mlflowSearchRuns"]["runs"] or []
                found.append([run["info"]["runId"] for run in runs])
        return found

    found = await asyncio.to_thread(search)
    assert found == [[mine]] * 4, (found, global_run)


async def test_graphql_shows_a_runs_model_versions_only_of_readable_models(
    api: Any, tracking: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path
) -> None:
    """A run's ``modelVersions`` lists every model's versions made from it: carol (a viewer of
    alice's project, an editor of bob's) registers alice's run in bob's model; alice, who may
    not see bob's project, still sees only her own model's version of the run."""
    w = await two_projects(api, tracking, tmp_path)
    r = await api("bob").post(f"projects/{w['b']}/members", {"user": "carol", "role": "editor"})
    assert r.status == 201, r
    arun, bmodel = w["arun"], w["bmodel"]
    made = await tracking("carol", lambda c: c.create_model_version(
        bmodel, f"runs:/{arun}/model", run_id=arun).version, scope=w["b"])  # fmt: skip
    assert str(made) == "1"
    queries = [
        'query { mlflowGetRun(input: {runId: "%s"}) { run { modelVersions { name version } } } }',
        'query { mlflowGetRun(input: {runId: "%s"}) { run { mv: modelVersions { version } } } }',
        'query { mlflowGetRun(input: {runId: "%s"}) { run { ... on MlflowRunExtension { '
        "modelVersions { source } } } } }",
    ]

    def ask(user: str) -> list[Any]:
        with client(user, jp_http_port, jp_base_url) as c:
            answers = []
            for query in queries:
                r = c.post("graphql", json={"query": query % arun})
                assert r.status_code == 200 and not r.json().get("errors"), r.text
                run = r.json()["data"]["mlflowGetRun"]["run"]
                versions = run.get("modelVersions", run.get("mv"))
                answers.append(sorted(v["name"] for v in versions))
            r = c.post("graphql", json={"query": queries[0].replace("{ name", "{ name: source")
                                        % arun})  # fmt: skip
            answers.append((r.status_code, r.json()["message"]))
            return answers

    alice, carol = await asyncio.gather(asyncio.to_thread(ask, "alice"),
                                        asyncio.to_thread(ask, "carol"))  # fmt: skip
    refused = (403, "GraphQL: modelVersions' name may not be aliased to")
    assert alice == [[w["amodel"]]] * 3 + [refused], alice
    assert carol == [sorted([w["amodel"], bmodel])] * 3 + [refused], carol


async def test_graphql_shows_a_runs_model_inputs_and_outputs_only_of_the_scope(
    api: Any, tracking: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path
) -> None:
    """A run's ``modelInputs``/``modelOutputs`` name logged models of any experiment linked to
    it: alice, who may write both projects, links her run in A to a logged model of B. Asked in
    A's scope, the run's lists hold only A's logged model, whatever the query selects of them;
    asked outside a scope, the logged models the caller may read (carol, a viewer of A only:
    A's)."""
    from mlflow.entities import LoggedModelInput, LoggedModelOutput

    w = await two_projects(api, tracking, tmp_path)
    r = await api("bob").post(f"projects/{w['b']}/members", {"user": "alice", "role": "editor"})
    assert r.status == 201, r
    blm = await tracking("bob", lambda c: c.create_logged_model(
        w["bexp"], name="blm").model_id, scope=w["b"])  # fmt: skip
    arun, alm = w["arun"], w["alm"]

    def link(c: Any) -> None:
        c.log_inputs(arun, models=[LoggedModelInput(alm), LoggedModelInput(blm)])
        c.log_outputs(arun, [LoggedModelOutput(alm, 1), LoggedModelOutput(blm, 2)])

    await tracking("alice", link, scope=w["a"])
    get = 'query { mlflowGetRun(input: {runId: "%s"}) { run { %s } } }'
    selections = [
        "inputs { modelInputs { modelId } } outputs { modelOutputs { modelId step } }",
        "inputs { modelInputs { __typename } } outputs { modelOutputs { step } }",
        "inputs { i: modelInputs { modelId } } outputs { o: modelOutputs { step } }",
    ]

    def ask(user: str, where: str) -> list[Any]:
        with client(user, jp_http_port, jp_base_url) as c:
            answers: list[Any] = []
            for selection in selections:
                r = c.post(f"{where}graphql", json={"query": get % (arun, selection)})
                assert r.status_code == 200 and not r.json().get("errors"), r.text
                run = r.json()["data"]["mlflowGetRun"]["run"]
                ins = run["inputs"].get("modelInputs", run["inputs"].get("i"))
                outs = run["outputs"].get("modelOutputs", run["outputs"].get("o"))
                answers.append((sorted(m["modelId"] for m in ins),
                                sorted((m["modelId"], m["step"]) for m in outs)))  # fmt: skip
            aliased = get % (arun, "inputs { modelInputs { modelId: __typename } }")
            r = c.post(f"{where}graphql", json={"query": aliased})
            answers.append((r.status_code, r.json()["message"]))
            return answers

    scoped, anywhere, carol = await asyncio.gather(
        asyncio.to_thread(ask, "alice", f"p/{w['a']}/"),
        asyncio.to_thread(ask, "alice", ""),
        asyncio.to_thread(ask, "carol", ""),
    )
    refused = (403, "GraphQL: modelInputs' modelId may not be aliased to")
    only_a = ([alm], [(alm, "1")])
    assert scoped == [only_a] * 3 + [refused], scoped
    both = (sorted([alm, blm]), sorted([(alm, "1"), (blm, "2")]))
    assert anywhere == [both] * 3 + [refused], anywhere
    assert carol == [only_a] * 3 + [refused], carol


async def test_graphql_filtering_looks_logged_models_up_a_few_at_a_time() -> None:
    """A page of runs naming hundreds of logged models asks MLflow about them 8 at a time, not
    all at once; one MLflow cannot answer is left out (unreadable), not a failed answer."""
    from jupyter_workbench.handlers.mlflow_proxy import experiments_of_logged_models

    running, most = 0, 0

    async def of(model_id: str) -> str | None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001)
        running -= 1
        if model_id == "m-13":
            raise httpx.ConnectError("connection reset")
        return f"e-{model_id}"

    ids = [f"m-{i}" for i in range(200)]
    found = await experiments_of_logged_models(of, ids)
    assert most == 8
    assert found[13] is None and found[:3] == ["e-m-0", "e-m-1", "e-m-2"] and len(found) == 200
