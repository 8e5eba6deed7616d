"""``run.log_model`` + ``wb.models.register`` + ``wb.models.load("name@alias" | "name/3")``
against a real jupyter-server with the workbench and a real MLflow."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pytest
from traitlets.config import Config

import jupyter_workbench as wb
from jupyter_workbench.client import default, errors

from .conftest import seed

pytestmark = pytest.mark.slow


class Scale(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A model that multiplies its input: each version with its own factor."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict(self, context: Any, model_input: list[float], params: Any = None) -> list[float]:
        return [x * self.factor for x in model_input]


@pytest.fixture
def jp_server_config(jp_server_config: Config, mlflow_config: dict[str, str]) -> Config:
    jp_server_config["Workbench"].update(mlflow_config)
    return jp_server_config


@pytest.fixture(autouse=True)
def _fresh_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setattr(default, "_default", None)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    yield
    monkeypatch.setattr(default, "_default", None)


async def test_register_versions_aliases_and_load(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)
    plain = tmp_path / "weights"
    plain.mkdir()
    (plain / "w.bin").write_bytes(b"\x00\x01")
    (plain / "config.json").write_text('{"layers": 2}')

    def work() -> str:
        wb.connect(server_url, tokens["alice"], project="lab")
        registered = []
        for factor in (2.0, 3.0):
            with wb.run(experiment="models", params={"factor": factor}) as run:
                uri = run.log_model(Scale(factor))
                assert uri == f"runs:/{run.run_id}/model"
            registered.append(wb.models.register(run, "scaler"))
        assert [(m.name, m.version) for m in registered] == [("scaler", "1"), ("scaler", "2")]
        with wb.run(experiment="models") as run:
            run.log_model(plain, name="weights")
        folder_model = wb.models.register(run, "raw-weights", artifact_path="weights")

        assert wb.models.load("scaler").predict([1.0]) == [3.0]  # the newest version
        assert wb.models.load("scaler/1").predict([1.0]) == [2.0]
        wb.models.set_alias("scaler/1", "production")  # alice owns the project
        production = wb.models.get("scaler@production")
        assert (production.version, production.aliases) == ("1", ("production",))
        assert wb.models.load("scaler@production").predict([5.0]) == [10.0]
        local = wb.models.load("raw-weights/1")  # not an MLflow model: its files
        assert isinstance(local, Path) and str(folder_model) == "raw-weights/1"
        assert (local / "w.bin").read_bytes() == b"\x00\x01"
        assert (local / "config.json").read_text() == '{"layers": 2}'
        assert sorted(os.listdir(local)) == ["config.json", "w.bin"]  # its files, nothing else
        # a scikit-learn model is saved with MLflow's sklearn flavor by itself
        from sklearn.linear_model import LinearRegression

        line = LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0])
        with wb.run(experiment="models") as run:
            run.log_model(line, name="sk")
        wb.models.register(run, "linear", artifact_path="sk")
        assert [round(float(v), 6) for v in wb.models.load("linear").predict([[2.0]])] == [5.0]
        assert [m["name"] for m in wb.models.list()] == ["linear", "raw-weights", "scaler"]
        # registered by MLflow 3's own log_model: the version's source is a logged model
        # (models:/m-...), its files kept apart from the run's
        with wb.run(experiment="models") as logged:
            mlflow.pyfunc.log_model(
                name="m",
                python_model=Scale(4.0),
                artifacts={"weights": str(plain)},
                registered_model_name="stock",
                pip_requirements=["mlflow"],  # not inferred: quicker
            )
        assert wb.models.get("stock").source.startswith("models:/m-")
        assert wb.models.load("stock").predict([1.0]) == [4.0]
        assert (wb.models.download("stock/1") / "artifacts" / "weights" / "w.bin").exists()
        again = wb.models.register(logged, "stock", artifact_path="m")  # runs:/<run>/m
        assert again.source == f"runs:/{logged.run_id}/m"
        assert wb.models.load("stock/2").predict([1.0]) == [4.0]

        with pytest.raises(errors.NotFound, match=r"no alias 'staging' \(aliases: production\)"):
            wb.models.load("scaler@staging")
        with pytest.raises(errors.NotFound, match="no version 9"):
            wb.models.get("scaler/9")
        with pytest.raises(errors.NotFound):
            wb.models.get("nope")
        with pytest.raises(ValueError, match="use 'name', 'name/3'"):
            wb.models.get("scaler@@x")
        # arguments of the wrong kind are named before any request
        with pytest.raises(ValueError, match=r"^name: must not be empty"):
            wb.models.register(run, "")
        with pytest.raises(TypeError, match=r"^run: expected a Run or a run id, got int"):
            wb.models.register(5, "linear")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^artifact_path: expected a string"):
            wb.models.register(run, "linear", artifact_path=None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"^artifact_file: '' names no file"):
            run.log_text("hi", "")
        with (
            pytest.raises(TypeError, match="cannot tell how to save"),
            wb.run(experiment="models") as failing,
        ):
            failing.log_model(object())
        return registered[0].run_id

    run_id = await asyncio.to_thread(work)

    # a viewer loads, but may not register or promote
    def viewer() -> None:
        wb.connect(server_url, tokens["bob"], project="lab")
        assert wb.models.load("scaler@production").predict([1.0]) == [2.0]
        with pytest.raises(errors.PermissionDenied):
            wb.models.register(run_id, "scaler")
        with pytest.raises(errors.PermissionDenied):
            wb.models.set_alias("scaler/2", "production")

    await asyncio.to_thread(viewer)


async def test_a_folder_the_run_does_not_hold_registers_nothing(
    server_url: str, api: Any, tmp_path: Path, mlflow_server: Any
) -> None:
    """``register`` with an artifact path the run never logged is refused, naming the run, the
    path and what the run holds; neither the model nor a version (nor an audit event) is made."""
    import httpx

    tokens = await seed(api)
    for folder in ("weights", "plots"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{folder}.bin").write_bytes(b"\x00\x01")

    def work() -> str:
        wb.connect(server_url, tokens["alice"], project="lab")
        with wb.run(experiment="models") as run:
            run.log_artifact(tmp_path / "weights", "weights")
            run.log_artifact(tmp_path / "plots", "plots")
        prefix = f"artifact_path: run '{run.run_id}' has no artifact"
        with pytest.raises(errors.BadRequest) as refused:
            wb.models.register(run, "ghost")  # artifact_path="model", never logged
        assert refused.value.message == f"{prefix} 'model' (it has: 'plots', 'weights')"
        with pytest.raises(errors.BadRequest) as refused:
            wb.models.register(run.run_id, "ghost", artifact_path="weights/nope")
        assert refused.value.message == f"{prefix} 'weights/nope' (it has: 'weights/weights.bin')"
        with pytest.raises(errors.BadRequest) as refused:
            wb.models.register(run, "ghost", artifact_path="a/b")  # no 'a' either: the top
        assert refused.value.message == f"{prefix} 'a/b' (it has: 'plots', 'weights')"
        # a model that exists gets no version pointing at nothing either
        assert str(wb.models.register(run, "kept", artifact_path="weights")) == "kept/1"
        assert str(wb.models.register(run, "kept", artifact_path="plots/plots.bin")) == "kept/2"
        with pytest.raises(errors.BadRequest, match=r"has no artifact 'model' \(it has"):
            wb.models.register(run, "kept")
        assert [m["name"] for m in wb.models.list()] == ["kept"]
        assert str(wb.models.get("kept")) == "kept/2"
        with pytest.raises(errors.NotFound):
            wb.models.get("ghost")
        return run.run_id

    run_id = await asyncio.to_thread(work)
    # MLflow never heard of 'ghost', and the audit log holds only what was made
    transport = httpx.AsyncHTTPTransport(uds=str(mlflow_server.socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as mlflow:
        r = await mlflow.get("/api/2.0/mlflow/registered-models/get", params={"name": "ghost"})
        assert r.status_code == 404, r.text
    events = await api("alice").get("audit", params={"project": "lab", "action": "model.*"})
    made = [(e["action"], e["object_id"], e["summary"]) for e in reversed(events.json["items"])]
    assert made == [
        ("model.create", "kept", {}),
        ("model.version_create", "kept", {"version": "1", "run_id": run_id}),
        ("model.version_create", "kept", {"version": "2", "run_id": run_id}),
    ], made


async def test_a_registration_the_server_could_not_check_warns(
    server_url: str, api: Any, mlflow_server: Any
) -> None:
    """A run whose files live where MLflow cannot list them: the version is made, and the
    client says, as a Python warning, that its path went unchecked."""
    import sqlalchemy

    tokens = await seed(api)

    def start() -> str:
        wb.connect(server_url, tokens["alice"], project="lab")
        with wb.run(experiment="external") as run:
            pass
        return run.run_id

    run_id = await asyncio.to_thread(start)
    engine = sqlalchemy.create_engine(mlflow_server.backend_store_uri)
    with engine.begin() as conn:  # a store whose library the MLflow server lacks
        conn.execute(sqlalchemy.text("UPDATE runs SET artifact_uri = :u WHERE run_uuid = :r"),
                     {"u": "gs://no-such-bucket/a", "r": run_id})  # fmt: skip
    engine.dispose()

    def register() -> str:
        with pytest.warns(UserWarning, match=r"^external-model/1: artifact_path: 'model' was not "
                          r"checked: MLflow could not list the artifacts"):  # fmt: skip
            return str(wb.models.register(run_id, "external-model"))

    assert await asyncio.to_thread(register) == "external-model/1"


async def test_versions_registered_at_once_a_name_no_reference_reaches_and_no_pyfunc_flavour(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    """Four registrations of a new model at once: three were refused with MLflow's
    'Registered Model (name=race) already exists.' (each had seen no model and created it); a
    name with '@' was registered though no reference could reach it ('a@b' reads as alias
    'b'); ``load`` of a model without MLflow's python_function flavour raised MLflow's
    'Model does not have the "python_function" flavor', naming neither the model nor a way on.
    'race@latest' (MLflow's reserved alias for the newest) and 'race/04' were NotFound."""
    import threading

    tokens = await seed(api)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "MLmodel").write_text("artifact_path: odd\nflavors:\n  spark:\n    x: 1\n")

    def work() -> None:
        wb.connect(server_url, tokens["alice"], project="lab")
        with wb.run(experiment="models") as run:
            run.log_model(odd, name="odd")
        made: list[str] = []

        def register() -> None:
            try:
                made.append(wb.models.register(run, "race", artifact_path="odd").version)
            except errors.WorkbenchError as exc:
                made.append(exc.message)

        threads = [threading.Thread(target=register) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(made) == ["1", "2", "3", "4"], made
        assert [m["name"] for m in wb.models.list()] == ["race"]
        for bad in ("a@b", " race"):
            with pytest.raises(ValueError, match=r"^name: .* cannot be named by a reference"):
                wb.models.register(run, bad, artifact_path="odd")
        with pytest.raises(ValueError, match=r"^model race/2: MLflow cannot load it as a "
                           r"python_function model \(its flavours: spark\)"):  # fmt: skip
            wb.models.load("race/2")
        assert (wb.models.download("race/2") / "MLmodel").exists()
        # MLflow's reserved 'latest' alias is the newest version; 'race/04' is version 4
        # (both were NotFound: "no alias 'latest'", "no version 04")
        assert str(wb.models.get("race@latest")) == str(wb.models.get("race/04")) == "race/4"
        with pytest.raises(ValueError, match=r"^alias: must not be empty"):
            wb.models.set_alias("race/1", " ")  # was MLflow's "Missing value for ... 'alias'"

    await asyncio.to_thread(work)


async def test_a_cached_model_written_to_or_cut_short_is_fetched_again(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    """``load``'s folder is the cache itself: a file of it edited (``config.json`` tweaked in
    place) or deleted stayed so for every later ``load`` of that version. Its files are
    read-only now, and a copy found changed is downloaded again."""
    tokens = await seed(api)
    plain = tmp_path / "weights"
    (plain / "sub").mkdir(parents=True)
    (plain / "config.json").write_text('{"layers": 2}')
    (plain / "sub" / "w.bin").write_bytes(b"\x00\x01")

    def work() -> None:
        wb.connect(server_url, tokens["alice"], project="lab")
        with wb.run(experiment="models") as run:
            run.log_model(plain, name="weights")
        wb.models.register(run, "raw", artifact_path="weights")
        local = wb.models.load("raw")
        config = local / "config.json"
        assert not config.stat().st_mode & 0o222  # read-only
        config.chmod(0o644)
        config.write_text('{"layers": 9}')  # same size: an edit in place
        assert wb.models.load("raw/1") == local
        assert config.read_text() == '{"layers": 2}'
        (local / "sub" / "w.bin").unlink()
        assert (wb.models.download("raw") / "sub" / "w.bin").read_bytes() == b"\x00\x01"
        assert sorted(p.name for p in local.parent.iterdir()) == [local.name, f"{local.name}.json"]
        asked: list[str] = []  # a copy found whole is used as it is
        default.client().http.event_hooks["request"].append(lambda r: asked.append(r.url.path))
        assert wb.models.load("raw/1") == local
        assert not any("artifacts" in a for a in asked), asked

    await asyncio.to_thread(work)


async def test_a_model_another_project_made_meanwhile_is_not_registered_into(
    server_url: str, api: Any, mlflow_server: Any
) -> None:
    """The other side of registrations at once: when the model MLflow already holds (made by a
    registration that won the race) is another project's, the version is refused, not added
    to that project's model."""
    import httpx

    from jupyter_workbench.core.experiments import PROJECT_TAG

    tokens = await seed(api)
    transport = httpx.AsyncHTTPTransport(uds=str(mlflow_server.socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as mlflow:
        body = {"name": "taken", "tags": [{"key": PROJECT_TAG, "value": "other"}]}
        made = await mlflow.post("/api/2.0/mlflow/registered-models/create", json=body)
        assert made.status_code == 200, made.text

    def work() -> None:
        wb.connect(server_url, tokens["alice"], project="lab")
        with wb.run(experiment="models") as run:
            run.log_model(Scale(2.0))
        with pytest.raises(errors.Conflict, match="'taken' belongs to another project"):
            wb.models.register(run, "taken")

    await asyncio.to_thread(work)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as mlflow:
        found = await mlflow.get(
            "/api/2.0/mlflow/model-versions/search", params={"filter": "name='taken'"}
        )
        assert found.json().get("model_versions", []) == [], found.text
