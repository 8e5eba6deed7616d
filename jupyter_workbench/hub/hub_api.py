"""A small client of JupyterHub's REST API, as the workbench service uses it.

Groups (teams), named servers (project servers) and shares. Synchronous (httpx): it runs on
the service's worker threads, after a unit of work commits. The service's token comes from the
hub (``JUPYTERHUB_API_TOKEN``); its role ``workbench-service`` holds the scopes used here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

PAGINATED = "application/jupyterhub-pagination+json"


class HubAPIError(Exception):
    """The hub answered with an error (``status``), or could not be reached (status 503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _q(name: str) -> str:
    return quote(name, safe="")


class HubAPI:
    """``HubAPI(url, token)``: ``url`` is the hub's API root, e.g. http://127.0.0.1:8081/hub/api."""

    def __init__(self, url: str, token: str, *, timeout: float = 60) -> None:
        self.client = httpx.Client(
            base_url=url.rstrip("/") + "/",
            headers={"Authorization": f"token {token}"},
            timeout=httpx.Timeout(timeout, connect=10),
        )

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path.lstrip("/"), **kw)
        except httpx.HTTPError as exc:
            raise HubAPIError(503, f"JupyterHub is not reachable ({exc})") from None
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message") or response.text)
            except ValueError:
                message = response.text
            raise HubAPIError(response.status_code, message[:500])
        return response

    # -- groups -----------------------------------------------------------------------
    def _every(self, path: str) -> Iterator[dict[str, Any]]:
        """The items of a paginated list (all pages)."""
        offset = 0
        while True:
            r = self.request("GET", path, params={"offset": offset, "limit": 200},
                             headers={"Accept": PAGINATED})  # fmt: skip
            data = r.json()
            yield from data["items"] if isinstance(data, dict) else data
            following = data.get("_pagination", {}).get("next") if isinstance(data, dict) else None
            if not following:
                return
            offset = int(following["offset"])

    def groups(self) -> dict[str, list[str]]:
        """Every group with its members' names."""
        return {
            str(group["name"]): [str(u) for u in group.get("users") or []]
            for group in self._every("groups")
        }

    # -- users ----------------------------------------------------------------------------
    def users(self) -> dict[str, bool]:
        """Every user the hub has, with whether the hub made them an admin (the
        ``list:users`` and ``read:users`` scopes)."""
        return {str(user["name"]): bool(user.get("admin")) for user in self._every("users")}

    def approved_signups(self) -> set[str]:
        """Accounts approved on the hub's sign-up list, logged in yet or not (none when the
        hub logs users in through OAuth: it has no such list)."""
        try:
            r = self.request("GET", "workbench/signups", params={"status": "approved"})
        except HubAPIError as exc:
            if exc.status == 404:
                return set()
            raise
        return {str(item["name"]) for item in r.json().get("items", [])}

    def create_group(self, name: str, users: list[str]) -> bool:
        """Create a group; False if it exists already (its members are then added)."""
        try:
            self.request("POST", f"groups/{_q(name)}", json={"users": users})
            return True
        except HubAPIError as exc:
            if exc.status != 409:
                raise
        if users:
            self.add_group_users(name, users)
        return False

    def delete_group(self, name: str) -> None:
        try:
            self.request("DELETE", f"groups/{_q(name)}")
        except HubAPIError as exc:
            if exc.status != 404:
                raise

    def add_group_users(self, name: str, users: list[str]) -> None:
        self.request("POST", f"groups/{_q(name)}/users", json={"users": users})

    def remove_group_users(self, name: str, users: list[str]) -> None:
        self.request("DELETE", f"groups/{_q(name)}/users", json={"users": users})

    # -- servers ----------------------------------------------------------------------
    def server(self, user: str, name: str) -> dict[str, Any] | None:
        """The server model of ``user``'s ``name`` (None: not running)."""
        data = self.request("GET", f"users/{_q(user)}").json()
        server = (data.get("servers") or {}).get(name)
        return dict(server) if server else None

    def start_server(self, user: str, name: str, options: dict[str, Any] | None = None) -> int:
        """Start ``user``'s named server; 201 (started), 202 (starting) or 200 (running)."""
        try:
            r = self.request("POST", f"users/{_q(user)}/servers/{_q(name)}", json=options or {})
        except HubAPIError as exc:
            if exc.status == 400 and ("already running" in exc.message or "pending" in exc.message):
                return 200
            raise
        return r.status_code

    def stop_server(self, user: str, name: str) -> None:
        try:
            self.request("DELETE", f"users/{_q(user)}/servers/{_q(name)}")
        except HubAPIError as exc:
            if exc.status != 404:
                raise

    # -- shares -----------------------------------------------------------------------
    def shared_users(self, owner: str, name: str) -> set[str] | None:
        """Users (not groups) ``owner``'s ``name`` is shared with; None: no such server."""
        users: set[str] = set()
        offset = 0
        while True:
            try:
                r = self.request("GET", f"shares/{_q(owner)}/{_q(name)}",
                                 params={"offset": offset, "limit": 200},
                                 headers={"Accept": PAGINATED})  # fmt: skip
            except HubAPIError as exc:
                if exc.status == 404:
                    return None
                raise
            data = r.json()
            for share in data.get("items", []):
                if share.get("user"):
                    users.add(str(share["user"]["name"]))
            following = data.get("_pagination", {}).get("next")
            if not following:
                return users
            offset = int(following["offset"])

    def share(self, owner: str, name: str, user: str) -> None:
        """Give ``user`` access to ``owner``'s server ``name``."""
        self.request("POST", f"shares/{_q(owner)}/{_q(name)}", json={"user": user})

    def revoke(self, owner: str, name: str, user: str) -> None:
        """Take ``user``'s access to ``owner``'s server ``name`` away."""
        self.request("PATCH", f"shares/{_q(owner)}/{_q(name)}", json={"user": user})
