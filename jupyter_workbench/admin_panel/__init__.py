"""The admin panel: one page of the workbench service (``/services/workbench/admin`` on a hub,
``{base_url}workbench/admin`` standalone) in the hub's look, driven by the admin REST API.
Standalone, the page takes the hub's stylesheet from the installed JupyterHub's own files
(``STATIC_PATH``, served under ``{base_url}workbench/admin/static/``)."""

from __future__ import annotations

import html
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyterhub._data import DATA_FILES_PATH
from tornado import web

from ..core.access import is_superuser
from ..handlers.routes import API_PREFIX

HERE = Path(__file__).parent
STATIC_PATH = str(Path(DATA_FILES_PATH) / "static")


@cache
def _asset(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def _nav(label: str, href: str) -> str:
    return f'<li class="nav-item"><a class="nav-link" href="{html.escape(href)}">{label}</a></li>'


def render(*, hub_base: str | None, base_url: str, username: str, xsrf: str, admin: bool) -> str:
    """The page: the hub's stylesheet and navigation bar when on a hub; standalone, the same
    stylesheet and a bar leading back to JupyterLab."""
    page = _asset("admin.html")
    settings = {
        "api": f"{base_url.rstrip('/')}/{API_PREFIX}/",
        "xsrf": xsrf,
        "user": username,
        "admin": admin,
        "hub": hub_base,
    }
    if hub_base is not None:
        static, label, home = f"{hub_base}static/", "JupyterHub", f"{hub_base}home"
        logo, logout = f"{hub_base}logo", f"{hub_base}logout"
        nav = [("Home", home), ("Token", f"{hub_base}token"), ("Admin", f"{hub_base}admin")]
    else:
        base = base_url.rstrip("/")
        static, label, home = f"{base}/workbench/admin/static/", "Jupyter", f"{base}/lab"
        logo, logout = f"{static}images/jupyter.png", f"{base}/logout"
        nav = [("JupyterLab", home)]
    css = f'<link rel="stylesheet" href="{html.escape(static)}css/style.min.css">'
    js = (
        f'<script src="{html.escape(static)}components/bootstrap/dist/js/'
        'bootstrap.bundle.min.js"></script>'
    )
    # "</" cannot end the script element early: the JSON is inert inside it
    config = json.dumps(settings).replace("</", "<\\/")
    return (
        page.replace("{{hub_css}}", css)
        .replace("{{hub_js}}", js)
        .replace("{{nav_label}}", label)
        .replace("{{nav_items}}", "\n      ".join(_nav(*item) for item in nav))
        .replace("{{home}}", html.escape(home))
        .replace("{{logo}}", html.escape(logo))
        .replace("{{logout}}", html.escape(logout))
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
