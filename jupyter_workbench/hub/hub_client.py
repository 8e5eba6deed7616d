"""Async calls from the workbench service's handlers to the JupyterHub REST API, with the
service's own token (``JUPYTERHUB_API_URL`` / ``JUPYTERHUB_API_TOKEN``, set by the hub for its
services). The HTTP itself is :class:`.hub_api.HubAPI`'s, run off the event loop."""

from __future__ import annotations

import asyncio
import os
from contextlib import closing
from typing import Any

from .hub_api import HubAPI, HubAPIError


class HubUnavailable(Exception):
    """Not running as a hub service, or the hub did not answer."""


class HubRefused(Exception):
    """The hub answered with an error status; ``message`` is the hub's own."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def on_hub() -> bool:
    return bool(os.environ.get("JUPYTERHUB_API_URL") and os.environ.get("JUPYTERHUB_API_TOKEN"))


async def hub_request(method: str, path: str, body: Any = None, *, timeout: float = 20) -> Any:
    """``method`` ``{JUPYTERHUB_API_URL}/{path}`` as the service; the decoded JSON answer."""
    if not on_hub():
        raise HubUnavailable("the workbench is not running as a JupyterHub service")

    def call() -> Any:
        api = HubAPI(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"],
                     timeout=timeout)  # fmt: skip
        with closing(api):
            response = api.request(method, path, json=body)
            return response.json() if response.content else None

    try:
        return await asyncio.get_running_loop().run_in_executor(None, call)
    except HubAPIError as exc:
        if exc.status == 503 and "not reachable" in exc.message:
            raise HubUnavailable(exc.message) from None
        raise HubRefused(exc.status, exc.message) from None


async def running_servers(page_size: int = 200) -> set[tuple[str, str]]:
    """(username, server name) of every server the hub has running or starting (needs the
    service's ``list:users`` and ``read:servers`` scopes); the default server's name is ''."""
    found: set[tuple[str, str]] = set()
    offset = 0
    while True:
        users = await hub_request("GET", f"users?state=active&limit={page_size}&offset={offset}")
        items = users.get("items", []) if isinstance(users, dict) else users
        for user in items or []:
            for name in user.get("servers") or {}:
                found.add((str(user["name"]), str(name)))
        if len(items or []) < page_size:
            return found
        offset += page_size
