"""Spawners of user servers, set up for the workbench's client mode."""

from __future__ import annotations

import os
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode


class LocalWorkbenchSpawner(SimpleLocalProcessSpawner):
    """Local processes without system accounts (``make run``): each user's server runs as the
    hub's own OS user, in its own folder, with the workbench in client mode."""

    workbench_service_url = Unicode(
        "", help="Where user servers reach the workbench service (client mode)."
    ).tag(config=True)

    def get_env(self) -> dict[str, Any]:
        env: dict[str, Any] = super().get_env()
        env["WORKBENCH_MODE"] = "client"
        if self.workbench_service_url:
            env["WORKBENCH_SERVICE_URL"] = self.workbench_service_url
        # database and storage credentials never reach a user server
        for secret in ("DATABASE_URL", "S3_ACCESS_KEY", "S3_SECRET_KEY", "AUTH_SECRET_KEY"):
            env.pop(secret, None)
        return env

    def get_args(self) -> list[str]:
        args: list[str] = super().get_args()
        if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
            args.append("--allow-root")
        return args
