"""The example notebooks, on every Jupyter server running the extension (standalone or a hub
user server): list them, and copy one into the caller's own folder through the server's
contents manager (so it lands wherever that manager keeps files). Errors are jupyter_server's
own JSON: ``{"message": ..., "reason": ...}``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async
from tornado import web

from ..core import json_input
from ..core.errors import WorkbenchError
from ..examples import list_examples, load_example


class ExamplesBase(APIHandler):
    auth_resource = "contents"

    def initialize(self, folder: Path | None = None) -> None:
        self.folder = folder


class ExamplesHandler(ExamplesBase):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The examples offered: ``items`` of ``name``, ``title``, ``description``."""
        self.finish({"items": [e.json() for e in list_examples(self.folder)]})


class ExampleCopyHandler(ExamplesBase):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        """Copy example ``name`` into the folder ``path`` of the body (default: the root)
        under a name not taken yet (``quickstart.ipynb``, ``quickstart-1.ipynb``, ...)."""
        found = load_example(self.folder, name)
        if found is None:
            raise web.HTTPError(404, f"no example named {name!r}")
        example, notebook = found
        try:
            body = json_input.parse(self.request.body or b"{}")
        except WorkbenchError as exc:
            raise web.HTTPError(400, exc.message.replace("%", "%%")) from None
        folder = body.get("path", "") if isinstance(body, dict) else None
        if not isinstance(folder, str):
            raise web.HTTPError(400, "path: must be a folder's path (text)")
        folder = folder.strip("/")
        cm = self.contents_manager
        if not await ensure_async(cm.dir_exists(folder)):
            raise web.HTTPError(404, f"path: no folder {folder!r}")
        model = {"type": "notebook", "format": "json", "content": notebook}
        # picking a free name and saving there is one step: two quick clicks get two files
        async with self.settings.setdefault("workbench_examples_lock", asyncio.Lock()):
            filename = await ensure_async(
                cm.increment_filename(f"{example.name}.ipynb", folder, insert="-")
            )
            path = f"{folder}/{filename}" if folder else filename
            saved = await ensure_async(cm.save(model, path))
        self.set_status(201)
        self.finish({"path": saved["path"], "name": example.name, "title": example.title})
