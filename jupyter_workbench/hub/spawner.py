"""Spawners of user servers, set up for the workbench's client mode."""

from __future__ import annotations

import asyncio
import html
import importlib.util
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Float, Unicode, default

from .profiles import Profile, default_profile, load_profiles

HUB_ONLY = (
    "DATABASE_URL", "S3_ACCESS_KEY", "S3_SECRET_KEY", "AUTH_SECRET_KEY",
    "AUTH_SECRET_KEY_PREVIOUS", "WORKBENCH_HUB_INTERNAL_TOKEN",
)  # fmt: skip


def client_mode_env(env: dict[str, Any], service_url: str) -> dict[str, Any]:
    """A user server's environment: the workbench in client mode, reaching ``service_url``,
    without the hub's database and storage credentials (a user's own secret of the same name,
    with its own value, stays). Shared by every spawner of the workbench."""
    env = dict(env)
    env["WORKBENCH_MODE"] = "client"
    if service_url:
        env["WORKBENCH_SERVICE_URL"] = service_url
    for name in HUB_ONLY:
        if name in os.environ and env.get(name) == os.environ[name]:
            env.pop(name)
    return env


def profile_form(profiles: list[Profile]) -> str:
    """The spawn page's choice of profile (radio buttons, the default checked)."""
    chosen = default_profile(profiles).slug
    rows = []
    for p in profiles:
        checked = " checked" if p.slug == chosen else ""
        gpus = f"{p.gpus} GPU{'s' if p.gpus != 1 else ''}" if p.gpus else "no GPU"
        rows.append(
            '<label class="list-group-item" style="display:block">'
            f'<input type="radio" name="profile" value="{html.escape(p.slug)}"{checked}> '
            f"<strong>{html.escape(p.display_name)}</strong> "
            f'<span class="label label-default">{gpus}</span><br>'
            f"<small>{html.escape(p.description)}</small></label>"
        )
    return '<div class="list-group" id="workbench-profiles">' + "".join(rows) + "</div>"


def collaboration_args(server_name: str, *, check_installed: bool = True) -> list[str]:
    """A project server ('project-{slug}') runs with real-time collaboration on
    (jupyter-collaboration): its editors co-edit notebooks under their own hub names.
    ``check_installed``: only if this Python has it (local servers; a pod's image decides)."""
    if not server_name.startswith("project-"):
        return []
    if check_installed and importlib.util.find_spec("jupyter_collaboration") is None:
        return []  # pragma: no cover
    return ["--YDocExtension.disable_rtc=False"]


async def wait_until_answering(
    url: str, interval: float, timeout: float, exited: Callable[[], Awaitable[bool]]
) -> bool:
    """Ask ``url`` every ``interval`` seconds until it answers below 500 (what JupyterHub's own
    check accepts); give up after ``timeout`` seconds or once ``exited()`` says the server's
    process is gone. True when it answered."""
    client = AsyncHTTPClient(force_instance=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                await client.fetch(
                    url,
                    follow_redirects=False,
                    connect_timeout=interval * 10,
                    request_timeout=max(deadline - time.monotonic(), 0.1),
                )
                return True
            except HTTPClientError as e:
                if e.code < 500:
                    return True
            except OSError:  # not listening yet
                pass
            if await exited():
                return False
            await asyncio.sleep(interval)
        return False
    finally:
        client.close()


class LocalWorkbenchSpawner(SimpleLocalProcessSpawner):
    """Local processes without system accounts (``make run``): each user's server runs as the
    hub's own OS user, in its own folder, with the workbench in client mode. It offers the
    profiles of profiles.yaml (GPUs count for quotas and accounting; locally none are attached)."""

    workbench_service_url = Unicode(
        "", help="Where user servers reach the workbench service (client mode)."
    ).tag(config=True)

    profiles_file = Unicode(
        "", help="profiles.yaml offered on the spawn page (empty: no choice of profile)."
    ).tag(config=True)

    ready_check_interval = Float(
        0.1,
        help="""Seconds between the checks, made by ``start()`` itself, that the new server
        answers; ``start()`` returns once it does, so the hub's own first check succeeds.
        JupyterHub's checks back off exponentially (random waits of up to 0.2, 0.4, 0.8, 1.6,
        3.2, then 5 s), so they notice a server that took a few seconds to start about a second
        late. 0: leave it to the hub (as with internal SSL, which this check does not speak).""",
    ).tag(config=True)

    @default("options_form")
    def _default_options_form(self) -> Any:
        if not self.profiles_file:
            return ""
        profiles = load_profiles(self.profiles_file)
        return profile_form(profiles) if len(profiles) > 1 else ""

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return self._simple_options_from_form

    def get_env(self) -> dict[str, Any]:
        return client_mode_env(super().get_env(), self.workbench_service_url)

    async def start(self) -> Any:
        ip, port = await super().start()
        if self.ready_check_interval > 0 and not self.internal_ssl:

            async def exited() -> bool:
                return await self.poll() is not None

            url = f"http://{ip}:{port}{self.server.base_url}api"
            await wait_until_answering(url, self.ready_check_interval, self.http_timeout, exited)
        return ip, port

    def get_args(self) -> list[str]:
        args: list[str] = super().get_args()
        args.extend(collaboration_args(self.name))
        if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
            args.append("--allow-root")
        return args
