"""A project's registered models: versions with lineage, aliases, promotions, model cards."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..concurrency import gather_at_most
from ..core import datasets as ds
from ..core import experiments as ex
from ..core import registry as reg
from ..core.access import require_project
from ..core.context import Ctx
from ..core.errors import BadRequest, Conflict, NotFound
from ..db.models import DatasetLineage
from ..tracking.artifacts import check_run_artifact
from ..tracking.filters import name_is
from ..tracking.upstream import MlflowUnavailable
from . import schemas as S
from .base import Param, endpoint, page_json
from .runs import TrackingHandler
from .schemas import paging

log = logging.getLogger(__name__)

PROMOTION = S.obj(
    {
        "id": {"type": "integer"},
        "model": {"type": "string"},
        "version": {"type": "string"},
        "alias": {"type": "string"},
        "note": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "approved", "rejected", "withdrawn"]},
        "requested_by": {"type": ["string", "null"]},
        "decided_by": {"type": ["string", "null"]},
        "decision_note": {"type": "string"},
        "created_at": S.TIME,
        "decided_at": S.OPT_TIME,
    },
    ("id", "model", "version", "alias", "status"),
)
CARD = S.obj(
    {
        "model": {"type": "string"},
        "revision": {"type": "integer"},
        "markdown": {"type": "string"},
        "fields": {"type": "object"},
        "author": {"type": ["string", "null"]},
        "updated_at": {"type": ["string", "null"]},
        "etag": {"type": ["string", "null"]},
        "lineage": {"type": "object"},
    },
    ("model", "revision", "markdown", "fields"),
)
CARD_REVISION = S.obj(
    {
        "revision": {"type": "integer"},
        "markdown": {"type": "string"},
        "fields": {"type": "object"},
        "author": {"type": ["string", "null"]},
        "created_at": S.TIME,
    },
    ("revision", "markdown", "fields", "author", "created_at"),
)
NOTE = S.obj({"note": {"type": "string", "maxLength": 5000}})
MODEL_SUMMARY = S.obj(
    {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "latest_versions": {"type": "array", "items": {"type": "string"}},
        "aliases": {"type": "object", "additionalProperties": {"type": "string"}},
        "missing": {"type": "boolean"},
    },
    ("name", "latest_versions", "aliases", "missing"),
)
# MLflow lookups a models page makes at once without MLflow's database (one per model)
MLFLOW_LOOKUPS = 8
NOT_IN_MLFLOW: dict[str, Any] = {"description": "", "latest_versions": [], "aliases": {}}
# model versions asked of MLflow at a time
VERSIONS_PAGE = 1000


class RegistryHandler(TrackingHandler):
    async def mlflow_get(self, path: str, **params: Any) -> Any:
        status, data = await self.upstream.get_json(f"/api/2.0/mlflow/{path}", params)
        if status == 404:
            raise NotFound(str((data or {}).get("message", "not found in MLflow")))
        if status != 200:
            raise Conflict(str((data or {}).get("message", "MLflow refused")), code="mlflow_error")
        return data

    async def mlflow_post(self, path: str, body: dict[str, Any]) -> Any:
        status, data = await self.upstream.post_json(f"/api/2.0/mlflow/{path}", body)
        if status != 200:
            message = str((data or {}).get("message", "MLflow refused"))
            if status == 404:
                raise NotFound(message)
            raise BadRequest(message, code="mlflow_error")
        return data

    async def create_model(self, slug: str, name: str) -> bool:
        """Create the MLflow model ``name`` of project ``slug``; False when a registration at
        the same moment made it first (for this project: it is used; the loser's version is
        not refused with MLflow's 'already exists')."""
        tags = [{"key": ex.PROJECT_TAG, "value": slug}]
        path = "/api/2.0/mlflow/registered-models/create"
        status, data = await self.upstream.post_json(path, {"name": name, "tags": tags})
        if status == 200:
            return True
        if (data or {}).get("error_code") != "RESOURCE_ALREADY_EXISTS":
            message = str((data or {}).get("message", "MLflow refused"))
            raise BadRequest(message, code="mlflow_error")
        made = (await self.mlflow_get("registered-models/get", name=name)).get("registered_model")
        owner = {t.get("key"): t.get("value") for t in (made or {}).get("tags") or []}
        if owner.get(ex.PROJECT_TAG) != slug:
            raise Conflict(f"name: a registered model '{name}' belongs to another project")
        return False

    async def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of the model, oldest first. MLflow answers a page at a time (offsets),
        here in version order, so a version registered meanwhile only adds to the end."""
        found: dict[str, dict[str, Any]] = {}
        params: dict[str, Any] = {
            "filter": name_is(name),  # other names a LIKE matches are dropped below
            "max_results": VERSIONS_PAGE,
            "order_by": "version_number ASC",
        }
        while True:
            data = await self.mlflow_get("model-versions/search", **params)
            for version in data.get("model_versions", []):
                if version.get("name") == name:
                    found[str(version["version"])] = version
            token = data.get("next_page_token")
            if not token or token == params.get("page_token"):
                return sorted(found.values(), key=lambda v: int(v["version"]))
            params["page_token"] = token

    async def lineage(self, versions: list[dict[str, Any]]) -> dict[str, Any]:
        """For each version: its run and the dataset versions that run read or wrote."""
        runs = {str(v["version"]): v.get("run_id") for v in versions if v.get("run_id")}

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for version, run_id in runs.items():
                rows = s.scalars(
                    select(DatasetLineage).where(DatasetLineage.consumer == f"run:{run_id}")
                )
                out[version] = {"run_id": run_id, "datasets": [ds.lineage_json(s, r) for r in rows]}
            return out

        return await self.call(work, write=False)


class ModelsHandler(RegistryHandler):
    @endpoint(
        action="experiments.read",
        summary="A page of the project's registered models: name, latest versions, aliases "
        "(missing: recorded here but gone from MLflow)",
        response=S.page_of(MODEL_SUMMARY),
        query=S.paging(reg.MODEL_SORTS),
        errors=(503,),
    )
    async def get(self, slug: str) -> None:

        def work(s: Session, ctx: Ctx) -> tuple[list[str], str | None]:
            page = reg.list_models(s, ctx, slug, **self.page_args())
            return [m.name for m in page.items], page.next_cursor

        names, next_cursor = await self.call(work)
        found = await self.summaries(names)
        # a name MLflow lacks was recorded here and is gone from MLflow (its database reset)
        items = [
            {"name": name, **found.get(name, NOT_IN_MLFLOW), "missing": name not in found}
            for name in names
        ]
        self.reply({"items": items, "next_cursor": next_cursor})

    async def summaries(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Description, latest versions and aliases of each model MLflow has: from MLflow's
        database in three queries when the workbench knows it, else (and for names that
        database lacks: a registry kept elsewhere) one REST call a model, a few at once."""
        found: dict[str, dict[str, Any]] = {}
        try:
            store = await self.store()
            found = await self.blocking(lambda: store.model_summaries(names))
        except MlflowUnavailable:  # the workbench does not know MLflow's database
            pass
        except SQLAlchemyError as exc:  # not the schema of this MLflow version, say
            log.warning("Registered models read over REST: MLflow's database: %s", exc)

        async def summary(name: str) -> dict[str, Any] | None:
            try:
                data = await self.mlflow_get("registered-models/get", name=name)
            except NotFound:
                return None
            model = data.get("registered_model", {})
            latest = sorted((v["version"] for v in model.get("latest_versions", [])), key=int)
            return {
                "description": model.get("description", ""),
                "latest_versions": latest,
                "aliases": {a["alias"]: a["version"] for a in model.get("aliases", [])},
            }

        rest = [name for name in names if name not in found]
        answers = await gather_at_most(MLFLOW_LOOKUPS, summary, rest)
        found.update({name: a for name, a in zip(rest, answers, strict=True) if a is not None})
        return found


class ModelHandler(RegistryHandler):
    @endpoint(
        action="experiments.read",
        summary="A registered model: versions with their run and datasets, aliases, card, requests",
        response={"type": "object", "required": ["name", "versions", "aliases"]},
        errors=(503,),
    )
    async def get(self, slug: str, name: str) -> None:
        await self.call(lambda s, ctx: reg.get_model(s, ctx, slug, name))
        model = (await self.mlflow_get("registered-models/get", name=name))["registered_model"]
        versions = await self.versions(name)
        lineage = await self.lineage(versions)
        run_ids = sorted({str(v["run_id"]) for v in versions if v.get("run_id")})
        run_experiment = dict(
            zip(
                run_ids,
                await gather_at_most(MLFLOW_LOOKUPS, self.upstream.experiment_of_run, run_ids),
                strict=True,
            )
        )

        def extra(s: Session, ctx: Ctx) -> dict[str, Any]:
            experiments = ex.readable_experiments_json(s, ctx, set(run_experiment.values()))
            card, revision = reg.get_card(s, ctx, slug, name)
            pending = reg.list_promotions(
                s, ctx, slug, name, status="pending", limit=ctx.policy.max_page_size
            ).items
            return {
                "card": reg.card_json(s, name, card, revision),
                "pending_promotions": [reg.promotion_json(s, p) for p in pending],
                "experiments": experiments,
            }

        more = await self.call(extra, write=False)
        experiments = more.pop("experiments")
        self.reply(
            {
                "name": name,
                "description": model.get("description", ""),
                "aliases": {a["alias"]: a["version"] for a in model.get("aliases", [])},
                "versions": [
                    {
                        "version": v["version"],
                        "run_id": v.get("run_id"),
                        "source": v.get("source"),
                        "status": v.get("status"),
                        "created": v.get("creation_timestamp"),
                        "datasets": lineage.get(str(v["version"]), {}).get("datasets", []),
                        # the run's experiment, where the caller may read it
                        "experiment": experiments.get(run_experiment.get(str(v.get("run_id")))),
                    }
                    for v in versions
                ],
                **more,
            }
        )


class ModelVersionsHandler(RegistryHandler):
    @endpoint(
        action="experiments.write",
        summary="Register a run's model as a new version (creates the model on first use); "
        "the run must hold artifact_path (a file or folder, or a model it logged); where MLflow "
        "cannot list the run's artifacts, the path is not checked and 'warnings' says so",
        status=201,
        body=S.obj(
            {
                "run_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "artifact_path": {"type": "string", "maxLength": 500},
                "description": {"type": "string", "maxLength": 5000},
            },
            ("run_id",),
        ),
        response=S.obj(
            {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "run_id": {"type": "string"},
                "source": {"type": "string"},
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
            ("name", "version"),
        ),
        errors=(409, 503),
        example={"run_id": "{run_id}", "artifact_path": "model"},
    )
    async def post(self, slug: str, name: str) -> None:
        run_id = self.body["run_id"]
        store = await self.check_run(run_id, "experiments.read")
        experiment_id, _s, _l = await self.blocking(lambda: store.run_state(run_id))

        def check(s: Session, ctx: Ctx) -> bool:
            project, _ = require_project(s, ctx, slug, "experiments.write")
            ex.check_model_name(name)
            owner = ex.experiment_owner(s, experiment_id)
            if owner is None or owner[1].id != project.id:
                raise BadRequest(f"run_id: run '{run_id}' is not in project '{slug}'")
            existing = ex.model_owner(s, name)
            if existing is not None and existing.id != project.id:
                raise Conflict(f"name: a registered model '{name}' belongs to another project")
            return existing is None

        description = ex.check_description(self.body.get("description"))
        is_new = await self.call(check, write=False)
        artifact_path = self.body.get("artifact_path", "model")
        # a version pointing at nothing is refused before the model or the version is made
        # (one MLflow cannot list the run's artifacts for is made, with a warning)
        warning = await check_run_artifact(
            self.upstream, run_id, artifact_path, field="artifact_path"
        )
        if warning is not None:
            log.warning("registering %s of run %s in %s: %s", name, run_id, slug, warning)
        if is_new and await self.create_model(slug, name):

            def record(s: Session, ctx: Ctx) -> None:
                project, _ = require_project(s, ctx, slug, "experiments.write")
                ex.record_model(s, ctx, project, name)

            await self.call(record, write=True)
        source = f"runs:/{run_id}/{artifact_path}"
        data = await self.mlflow_post(
            "model-versions/create",
            {
                "name": name,
                "source": source,
                "run_id": run_id,
                "description": description,
            },
        )
        version = data["model_version"]
        if warning is None:
            warning = await self.check_again(slug, name, version["version"], run_id, artifact_path)

        def audited(s: Session, ctx: Ctx) -> None:
            project, _ = require_project(s, ctx, slug, "experiments.write")
            ex.record_model_version(
                s, ctx, project, name, version["version"], run_id, warning=warning
            )

        await self.call(audited, write=True)
        made = {"name": name, "version": version["version"], "run_id": run_id, "source": source}
        self.reply({**made, "warnings": [warning]} if warning else made, status=201)

    async def check_again(
        self, slug: str, name: str, version: str, run_id: str, artifact_path: str
    ) -> str | None:
        """The run's ``artifact_path`` checked again once the version is made: deleted in
        between, the version (pointing at nothing) is deleted again, audited, and the request
        refused (409); a warning where the artifacts can no longer be listed. What is deleted
        after this check is beyond the registration (MLflow keeps no hold on a run's files)."""
        try:
            return await check_run_artifact(
                self.upstream, run_id, artifact_path, field="artifact_path"
            )
        except BadRequest as exc:
            if exc.code != "no_artifact":
                raise
            gone = exc.message
        status, data = await self.upstream.delete_json(
            "/api/2.0/mlflow/model-versions/delete", {"name": name, "version": version}
        )
        undone = status == 200
        if not undone:  # the version stays, pointing at nothing: say so in the log and audit
            log.warning("version %s of %s could not be deleted again: %s", version, name, data)

        def audited(s: Session, ctx: Ctx) -> None:
            project, _ = require_project(s, ctx, slug, "experiments.write")
            ex.record_model_version(s, ctx, project, name, version, run_id)
            if undone:
                ex.record_version_undone(s, ctx, project, name, version, gone)

        await self.call(audited, write=True)
        raise Conflict(
            f"{gone}: it was deleted while version {version} was made"
            + ("; the version is deleted again" if undone else "; the version stays"),
            code="no_artifact",
        )


class PromotionsHandler(RegistryHandler):
    @endpoint(
        action="experiments.read",
        summary="A page of the model's promotion requests, newest first",
        response=S.page_of(PROMOTION),
        query=(
            Param(
                "status",
                {"type": "string", "enum": ["pending", "approved", "rejected", "withdrawn"]},
                "Only requests in this state.",
            ),
            *paging(reg.PROMOTION_SORTS),
        ),
    )
    async def get(self, slug: str, name: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = reg.list_promotions(
                s, ctx, slug, name, status=q.get("status"), **self.page_args()
            )
            return page_json(page, lambda r: reg.promotion_json(s, r))

        self.reply(await self.call(work))

    @endpoint(
        action="experiments.write",
        summary="Ask for a version to get a protected alias (e.g. production); an admin decides",
        status=201,
        body=S.obj(
            {
                "version": {
                    "type": ["string", "integer"],
                    "pattern": "^[0-9]{1,9}$",
                    "minimum": 1,
                    "maximum": 999_999_999,
                    "description": "The version number, as MLflow's string or as a number",
                },
                "alias": {"type": "string", "enum": list(reg.PROTECTED_ALIASES)},
                "note": {"type": "string", "maxLength": 5000},
            },
            ("version",),
        ),
        response=PROMOTION,
        errors=(409, 503),
        example={"version": "1", "alias": "production", "note": "beats v0 on holdout"},
    )
    async def post(self, slug: str, name: str) -> None:
        b = self.body
        version = str(b["version"])
        await self.call(lambda s, ctx: reg.get_model(s, ctx, slug, name), write=False)
        await self.mlflow_get("model-versions/get", name=name, version=version)

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            row = reg.request_promotion(
                s,
                ctx,
                slug,
                name,
                version=version,
                alias=b.get("alias", "production"),
                note=b.get("note", ""),
            )
            return reg.promotion_json(s, row)

        self.reply(await self.call(work), status=201)


class PromotionDecisionHandler(RegistryHandler):
    approve = True

    async def decide(self, slug: str, name: str, request_id: str) -> None:
        number = self.path_int(request_id, "promotion request")

        def load(s: Session, ctx: Ctx) -> tuple[str, str]:
            _p, row = reg.pending_request(s, ctx, slug, name, number, deciding=True)
            return row.version, row.alias

        version, alias = await self.call(load, write=False)
        if self.approve:
            await self.mlflow_post(
                "registered-models/alias", {"name": name, "alias": alias, "version": version}
            )
        note = self.body.get("note", "")

        def record(s: Session, ctx: Ctx) -> dict[str, Any]:
            return reg.promotion_json(
                s, reg.decide(s, ctx, slug, name, number, approve=self.approve, note=note)
            )

        self.reply(await self.call(record))


class PromotionApproveHandler(PromotionDecisionHandler):
    approve = True

    @endpoint(
        action="models.promote",
        summary="Approve: move the alias to the version (an admin other than the requester)",
        body=NOTE,
        response=PROMOTION,
        errors=(409, 503),
        example={"note": "ship it"},
    )
    async def post(self, slug: str, name: str, request_id: str) -> None:
        await self.decide(slug, name, request_id)


class PromotionRejectHandler(PromotionDecisionHandler):
    approve = False

    @endpoint(
        action="models.promote",
        summary="Reject a promotion request",
        body=NOTE,
        response=PROMOTION,
        errors=(409,),
        example={"note": "needs more eval"},
    )
    async def post(self, slug: str, name: str, request_id: str) -> None:
        await self.decide(slug, name, request_id)


class PromotionHandler(RegistryHandler):
    @endpoint(
        action="experiments.write",
        summary="Withdraw your pending request",
        response=PROMOTION,
        errors=(409,),
    )
    async def delete(self, slug: str, name: str, request_id: str) -> None:
        number = self.path_int(request_id, "promotion request")
        self.reply(
            await self.call(
                lambda s, ctx: reg.promotion_json(s, reg.withdraw(s, ctx, slug, name, number))
            )
        )


class CardHandler(RegistryHandler):
    @endpoint(
        action="experiments.read",
        summary="The model card: markdown, fields, and the datasets each version was trained on",
        response=CARD,
        errors=(503,),
    )
    async def get(self, slug: str, name: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            card, revision = reg.get_card(s, ctx, slug, name)
            return reg.card_json(s, name, card, revision)

        data = await self.call(work)
        data["lineage"] = await self.lineage(await self.versions(name))
        if data.get("etag"):
            self.set_header("ETag", data["etag"])
        self.reply(data)

    @endpoint(
        action="experiments.write",
        summary="Save a new revision of the card (If-Match with the card's ETag)",
        body=S.obj(
            {
                "markdown": {"type": "string", "maxLength": 200_000},
                "fields": {
                    "type": "object",
                    "properties": {k: {} for k in reg.CARD_FIELDS},
                    "additionalProperties": False,
                },
            },
            ("markdown",),
        ),
        response=CARD,
        errors=(409, 412),
        example={
            "markdown": "# Churn model\nPredicts churn.",
            "fields": {"intended_use": "triage"},
        },
    )
    async def put(self, slug: str, name: str) -> None:
        b = self.body

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            card, revision = reg.save_card(
                s,
                ctx,
                slug,
                name,
                markdown=b["markdown"],
                fields=b.get("fields", {}),
                if_match=self.if_match,
            )
            return reg.card_json(s, name, card, revision)

        data = await self.call(work)
        self.reply(data, etag=data["etag"])


class CardHistoryHandler(RegistryHandler):
    @endpoint(
        action="experiments.read",
        summary="A page of the model card's revisions, newest first",
        response=S.page_of(CARD_REVISION),
        query=paging(reg.CARD_REVISION_SORTS),
    )
    async def get(self, slug: str, name: str) -> None:

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = reg.card_history(s, ctx, slug, name, **self.page_args())  # fmt: skip
            return page_json(page, lambda r: reg.revision_json(s, r))

        self.reply(await self.call(work))
