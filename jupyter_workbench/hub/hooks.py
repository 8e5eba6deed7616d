"""JupyterHub spawn hooks that ask the workbench service before a server starts.

``pre_spawn``: resolve the chosen profile, ask the service (quota check + usage run + the
user's secrets), refuse with the service's message (shown on the spawn page and in the REST
answer) or put the secrets into the server's environment. ``post_stop``: report the stop, which
ends the usage run. Works with any spawner (local processes, KubeSpawner).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .profiles import Profile, ProfileError, find_profile, load_profiles


class WorkbenchHooks:
    """``c.Spawner.pre_spawn_hook = hooks.pre_spawn``; ``post_stop_hook = hooks.post_stop``."""

    def __init__(self, service_url: str, token: str, profiles_file: str | Path) -> None:
        self.api = service_url.rstrip("/") + "/workbench/api/v1/hub"
        self.token = token
        self.profiles: list[Profile] = load_profiles(profiles_file)

    def profile_of(self, spawner: Any) -> Profile:
        options = spawner.user_options or {}
        slug = options.get("profile")
        try:
            return find_profile(self.profiles, slug)
        except ProfileError as exc:
            raise web.HTTPError(400, str(exc)) from None

    def _user(self, spawner: Any) -> dict[str, Any]:
        user = spawner.user
        groups = [g.name for g in getattr(user, "groups", []) or []]
        return {"name": user.name, "admin": bool(user.admin), "groups": groups}

    async def _post(self, path: str, body: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        request = HTTPRequest(
            f"{self.api}/{path}",
            method="POST",
            body=json.dumps(body),
            headers={"X-Workbench-Hub-Token": self.token, "Content-Type": "application/json"},
            request_timeout=timeout,
        )
        response = await AsyncHTTPClient().fetch(request)
        return dict(json.loads(response.body or b"{}"))

    async def pre_spawn(self, spawner: Any) -> None:
        profile = self.profile_of(spawner)
        body = {"user": self._user(spawner), "server_name": spawner.name or "",
                "profile": profile.slug, "gpus": profile.gpus}  # fmt: skip
        try:
            reply = await self._post("spawn", body)
        except HTTPClientError as exc:
            message = _message(exc) or f"the workbench refused to start the server ({exc.code})"
            raise web.HTTPError(exc.code if exc.code in (400, 403, 409) else 503, message) from None
        except OSError as exc:
            raise web.HTTPError(503, f"the workbench service is not reachable ({exc})") from None
        # the user's secrets, fresh at every start (a deleted secret disappears)
        base = getattr(spawner, "_workbench_base_env", None)
        if base is None:
            base = dict(spawner.environment)
            spawner._workbench_base_env = base
        spawner.environment = {**base, **reply.get("environment", {}),
                               "WORKBENCH_PROFILE": profile.slug}  # fmt: skip
        spawner.log.info(
            "Workbench: %s starts profile %s (%d GPU(s)), %d secret(s) in its environment",
            spawner._log_name, profile.slug, profile.gpus, len(reply.get("environment", {})),
        )  # fmt: skip

    async def post_stop(self, spawner: Any) -> None:
        body = {"user": self._user(spawner), "server_name": spawner.name or ""}
        try:
            await self._post("stop", body)
        except Exception as exc:  # a stop must never fail because of accounting
            spawner.log.warning("Workbench: could not report the stop of %s: %s",
                                spawner._log_name, exc)  # fmt: skip


def _message(exc: HTTPClientError) -> str | None:
    try:
        body = exc.response.body if exc.response is not None else b""
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return None
