"""The caller's secrets: names and dates out, values in only (they reach their servers' env)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..core import user_secrets
from ..core.context import Ctx
from . import hub_schemas as H
from .base import WorkbenchHandler, endpoint


class SecretsHandler(WorkbenchHandler):
    @endpoint(action="secrets.own", summary="Your secrets (names only; values never leave)",
              response=H.SECRETS)  # fmt: skip
    async def get(self) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return {"items": [user_secrets.secret_json(x) for x in user_secrets.list_mine(s, ctx)]}

        self.reply(await self.call(work))


class SecretHandler(WorkbenchHandler):
    @endpoint(
        action="secrets.own",
        summary="Set a secret: your servers get it as an environment variable at their next start",
        body=H.SECRET_PUT,
        response=H.SECRET,
        example={"value": "sk-example"},
    )
    async def put(self, secret: str) -> None:
        keys = self.service.keyring()
        value = self.body["value"]

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return user_secrets.secret_json(user_secrets.put(s, ctx, keys, secret, value)[0])

        self.reply(await self.call(work))

    @endpoint(action="secrets.own", summary="Delete a secret", status=204)
    async def delete(self, secret: str) -> None:
        await self.call(lambda s, ctx: user_secrets.delete(s, ctx, secret))
        self.reply(None, status=204)
