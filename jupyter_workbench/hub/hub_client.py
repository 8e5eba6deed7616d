"""Calls from the workbench service to the JupyterHub REST API, with the service's own token
(``JUPYTERHUB_API_URL`` / ``JUPYTERHUB_API_TOKEN``, set by the hub for its services)."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


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
    url = os.environ["JUPYTERHUB_API_URL"].rstrip("/") + "/" + path.lstrip("/")
    request = HTTPRequest(
        url,
        method=method,
        body=None if body is None and method == "GET" else json.dumps(body or {}),
        headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}",
                 "Content-Type": "application/json"},
        request_timeout=timeout,
    )  # fmt: skip
    try:
        response = await AsyncHTTPClient().fetch(request)
    except HTTPClientError as exc:
        message = f"JupyterHub answered {exc.code}"
        with contextlib.suppress(AttributeError, ValueError, KeyError, TypeError):
            message = str(json.loads(exc.response.body)["message"])  # type: ignore[union-attr]
        raise HubRefused(exc.code, message) from None
    except OSError as exc:
        raise HubUnavailable(f"JupyterHub is not reachable ({exc})") from None
    return json.loads(response.body) if response.body else None


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
