"""Pending sign-ups over a REST API, for the workbench admin panel.

NativeAuthenticator keeps sign-ups in the hub database and offers only HTML pages to approve
them. ``WorkbenchNativeAuthenticator`` adds a small JSON API under the hub prefix:

- ``GET  /hub/api/workbench/signups``: the accounts waiting for approval (``?status=approved``:
  the approved ones);
- ``POST /hub/api/workbench/signups/{name}`` with ``{"action": "approve" | "discard"}``.

Callers need the custom scope ``custom:workbench:signups`` (the workbench service's role has it)
or ``admin:users`` (hub administrators).
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.orm import UserInfo
from tornado import web

SIGNUPS_SCOPE = "custom:workbench:signups"
CUSTOM_SCOPES = {
    SIGNUPS_SCOPE: {"description": "List, approve and discard pending sign-ups (workbench)."}
}


class _SignupsBase(APIHandler):
    def _require_scope(self) -> None:
        if not self.current_user:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        if SIGNUPS_SCOPE not in self.parsed_scopes and "admin:users" not in self.parsed_scopes:
            raise web.HTTPError(403, f"needs the scope {SIGNUPS_SCOPE} or admin:users")


def signup_json(info: Any) -> dict[str, Any]:
    return {"name": info.username, "email": info.email or None, "has_2fa": bool(info.has_2fa)}


class SignupsAPIHandler(_SignupsBase):
    async def get(self) -> None:
        self._require_scope()
        status = self.get_argument("status", "pending")
        if status not in ("pending", "approved"):
            raise web.HTTPError(400, "status: must be 'pending' or 'approved'")
        found = (
            self.db.query(UserInfo)
            .filter(UserInfo.is_authorized.is_(status == "approved"))
            .order_by(UserInfo.id)
            .all()
        )
        self.finish(json.dumps({"items": [signup_json(i) for i in found]}))


class SignupAPIHandler(_SignupsBase):
    async def post(self, name: str) -> None:
        self._require_scope()
        body = self.get_json_body() or {}
        action = body.get("action") if isinstance(body, dict) else None
        if action not in ("approve", "discard"):
            raise web.HTTPError(400, "action: must be 'approve' or 'discard'")
        info = UserInfo.find(self.db, name)
        if info is None:
            raise web.HTTPError(404, f"no sign-up named {name!r}")
        if info.is_authorized:
            raise web.HTTPError(409, f"{name!r} is already approved")
        if action == "approve":
            info.is_authorized = True
            self.db.commit()
        else:  # as NativeAuthenticator's /hub/discard/{name}: forget the sign-up entirely
            self.db.delete(info)
            self.db.commit()
            if self.users.get(name) is not None:
                self.users.delete(name)
        self.log.info("Workbench: sign-up %s: %s by %s", name, action, self.current_user.name)
        self.finish(json.dumps({"name": name, "action": action}))


class WorkbenchNativeAuthenticator(NativeAuthenticator):
    """NativeAuthenticator (local accounts, sign-up approval, lockout) plus the sign-ups API."""

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        handlers: list[tuple[str, Any]] = list(super().get_handlers(app))
        handlers += [
            (r"/api/workbench/signups", SignupsAPIHandler),
            (r"/api/workbench/signups/([^/]+)", SignupAPIHandler),
        ]
        return handlers
