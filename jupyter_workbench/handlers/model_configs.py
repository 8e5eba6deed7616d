"""Model configs of a project: revisions and diffs."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..core import model_configs as mc
from ..core.context import Ctx
from . import schemas as S
from .base import MAX_INT, Param, WorkbenchHandler, endpoint, page_json

EXAMPLE_PARAMETERS = {"lr": 0.001, "layers": [64, 64], "optimizer": "adam"}


class ModelConfigsHandler(WorkbenchHandler):
    @endpoint(
        action="model_configs.read",
        summary="List model configs",
        response=S.page_of(S.MODEL_CONFIG),
        query=(
            Param("q", {"type": "string", "maxLength": 200}, "Text in the name."),
            *S.paging(mc.CONFIG_SORTS),
        ),
    )
    async def get(self, slug: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = mc.list_configs(
                s,
                ctx,
                slug,
                q=q.get("q"),
                **self.page_args(),
            )
            return page_json(page, mc.config_summary_json)

        self.reply(await self.call(work))

    @endpoint(
        action="model_configs.write",
        summary="Create a model config (revision 1)",
        status=201,
        body=S.MODEL_CONFIG_CREATE,
        response=S.MODEL_CONFIG,
        example={
            "name": "{fresh}",
            "parameters": EXAMPLE_PARAMETERS,
            "schema": {"type": "object", "properties": {"lr": {"type": "number", "maximum": 1}}},
        },
        errors=(409,),
    )
    async def post(self, slug: str) -> None:
        b = self.body

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            config, revision = mc.create(
                s,
                ctx,
                slug,
                name=b["name"],
                parameters=b["parameters"],
                schema=b.get("schema"),
                description=b.get("description", ""),
                message=b.get("message", ""),
            )
            return mc.config_json(s, config, revision)

        data = await self.call(work)
        self.reply(data, status=201, etag=data["etag"])


class ModelConfigHandler(WorkbenchHandler):
    @endpoint(
        action="model_configs.read",
        summary="Get a model config at its latest revision",
        response=S.MODEL_CONFIG,
    )
    async def get(self, slug: str, name: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return mc.config_json(s, *mc.get(s, ctx, slug, name))

        data = await self.call(work)
        self.reply(data, etag=data["etag"])

    @endpoint(
        action="model_configs.write",
        summary="Update (new parameters or schema make a new revision)",
        body=S.MODEL_CONFIG_UPDATE,
        response=S.MODEL_CONFIG,
        example={"parameters": {"lr": 0.01, "layers": [128]}, "message": "bigger"},
        errors=(409, 412),
    )
    async def patch(self, slug: str, name: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return mc.config_json(
                s, *mc.update(s, ctx, slug, name, self.body, if_match=self.if_match)
            )

        data = await self.call(work)
        self.reply(data, etag=data["etag"])

    @endpoint(
        action="model_configs.delete",
        summary="Delete a model config and its revisions",
        status=204,
        errors=(412,),
    )
    async def delete(self, slug: str, name: str) -> None:
        await self.call(lambda s, ctx: mc.delete(s, ctx, slug, name, if_match=self.if_match))
        self.reply(None, status=204)


class RevisionsHandler(WorkbenchHandler):
    @endpoint(
        action="model_configs.read",
        summary="List revisions",
        response=S.page_of(S.REVISION),
        query=S.paging(mc.REVISION_SORTS),
    )
    async def get(self, slug: str, name: str) -> None:

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = mc.list_revisions(s, ctx, slug, name, **self.page_args())
            return page_json(page, lambda r: mc.revision_json(s, r))

        self.reply(await self.call(work))


class RevisionHandler(WorkbenchHandler):
    @endpoint(action="model_configs.read", summary="Get one revision", response=S.REVISION)
    async def get(self, slug: str, name: str, number: str) -> None:
        n = self.path_int(number, "revision")
        self.reply(
            await self.call(
                lambda s, ctx: mc.revision_json(s, mc.get_revision(s, ctx, slug, name, n))
            )
        )


class DiffHandler(WorkbenchHandler):
    @endpoint(
        action="model_configs.read",
        summary="Diff two revisions",
        response=S.DIFF,
        query=(
            Param(
                "from",
                {"type": "integer", "minimum": 1, "maximum": MAX_INT},
                "Older revision number.",
                required=True,
                example="1",
            ),
            Param(
                "to",
                {"type": "integer", "minimum": 1, "maximum": MAX_INT},
                "Newer revision number (default: latest).",
            ),
        ),
    )
    async def get(self, slug: str, name: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            to = q.get("to") or mc.get(s, ctx, slug, name)[0].current_revision
            return mc.diff(s, ctx, slug, name, q["from"], to)

        self.reply(await self.call(work))
