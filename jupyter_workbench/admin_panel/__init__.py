"""The admin panel: one page of the workbench service (``/services/workbench/admin`` on a hub,
``{base_url}workbench/admin`` standalone) in the hub's look, driven by the admin REST API."""

from __future__ import annotations

import html
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ..core.access import is_superuser
from ..handlers.routes import API_PREFIX

HERE = Path(__file__).parent


@cache
def _asset(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def render(*, hub_base: str | None, base_url: str, username: str, xsrf: str, admin: bool) -> str:
    """The page: the hub's stylesheet and navigation bar when on a hub, the app otherwise."""
    page = _asset("admin.html")
    settings = {
        "api": f"{base_url.rstrip('/')}/{API_PREFIX}/",
        "xsrf": xsrf,
        "user": username,
        "admin": admin,
        "hub": hub_base,
    }
    if hub_base is not None:
        css = f'<link rel="stylesheet" href="{html.escape(hub_base)}static/css/style.min.css">'
        js = (
            f'<script src="{html.escape(hub_base)}static/components/bootstrap/dist/js/'
            'bootstrap.bundle.min.js"></script>'
        )
    else:
        css, js = "", ""
    # "</" cannot end the script element early: the JSON is inert inside it
    config = json.dumps(settings).replace("</", "<\\/")
    return (
        page.replace("{{hub_css}}", css)
        .replace("{{hub_js}}", js)
        .replace("{{hub_base}}", html.escape(hub_base or base_url))
        .replace("{{username}}", html.escape(username))
        .replace("{{own_css}}", _asset("admin.css"))
        .replace("{{config}}", config)
        .replace("{{app_js}}", _asset("admin.js"))
    )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class AdminPageHandler(ExtensionHandlerMixin, JupyterHandler):
    """GET the admin panel (administrators; others get a page saying so, with status 403)."""

    @web.authenticated
    async def get(self) -> None:
        app: Any = self.extensionapp
        identity = app.identity_source.identity(self.current_user, self.identity_provider)
        service = self.settings["workbench_service"]
        admin = await service.acall(identity, lambda s, ctx: is_superuser(ctx.user), write=False)
        hub_base = os.environ.get("JUPYTERHUB_BASE_URL")
        hub = None if hub_base is None else hub_base.rstrip("/") + "/hub/"
        body = render(
            hub_base=hub,
            base_url=self.base_url,
            username=identity.username,
            xsrf=_text(self.xsrf_token),
            admin=admin,
        )
        self.set_header("Cache-Control", "no-store")
        if not admin:
            self.set_status(403)
        self.finish(body)


class ServiceRootHandler(ExtensionHandlerMixin, JupyterHandler):
    """The service's root (the hub's Services menu links here): on to the admin panel."""

    def get(self) -> None:
        self.redirect(self.base_url.rstrip("/") + "/admin")
