"""Spawners of user servers, set up for the workbench's client mode."""

from __future__ import annotations

import html
import importlib.util
import os
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode, default

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


def collaboration_args(server_name: str) -> list[str]:
    """A project server ('project-{slug}') runs with real-time collaboration on
    (jupyter-collaboration): its editors co-edit notebooks under their own hub names."""
    if not server_name.startswith("project-"):
        return []
    if importlib.util.find_spec("jupyter_collaboration") is None:  # pragma: no cover
        return []
    return ["--YDocExtension.disable_rtc=False"]


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

    def get_args(self) -> list[str]:
        args: list[str] = super().get_args()
        args.extend(collaboration_args(self.name))
        if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
            args.append("--allow-root")
        return args
