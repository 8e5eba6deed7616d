"""GPU-aware idle culling: the hub-managed service ``workbench-culler``.

jupyterhub-idle-culler stops servers idle for longer than one timeout. GPUs are the scarce,
expensive part of the hub, so this culler gives each server the timeout of its profile: servers
of a profile with GPUs (``gpus`` in profiles.yaml) are stopped after ``gpu_timeout`` seconds
without activity, the others after ``cpu_timeout``. The profile is the one the spawn chose
(``user_options["profile"]``, else the default profile), as the quota check and usage
accounting see it. The loop, the hub API calls and the paging are jupyterhub-idle-culler's own;
only the decision per server is ours (its ``cull_arbiter_hook``).

Run by the hub (``culler_service``), or by hand with the hub's API URL and a token in
``JUPYTERHUB_API_URL``/``JUPYTERHUB_API_TOKEN``: ``python -m jupyter_workbench.hub.culler``.

Environment (defaults of the settings): ``WORKBENCH_CULL_GPU_TIMEOUT`` (1800 s),
``WORKBENCH_CULL_CPU_TIMEOUT`` (3600 s), ``WORKBENCH_CULL_EVERY`` (half the shorter timeout),
``WORKBENCH_PROFILES`` (``hub_config/profiles.yaml``). A timeout of 0 never culls that kind.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from jupyterhub_idle_culler import IdleCuller
from traitlets import Int, Unicode, default

from .profiles import Profile, ProfileError, find_profile, load_profiles

SERVICE_NAME = "workbench-culler"
# least privilege: see the users with their servers and activity, stop servers (never delete
# users, never touch admin settings)
SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
DEFAULT_PROFILES = Path(__file__).resolve().parents[2] / "hub_config" / "profiles.yaml"
DEFAULT_GPU_TIMEOUT = 1800
DEFAULT_CPU_TIMEOUT = 3600


def _env_int(name: str, fallback: int, env: Mapping[str, str] | None = None) -> int:
    value = (os.environ if env is None else env).get(name, "").strip()
    if not value:
        return fallback
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: must be a whole number of seconds (got {value!r})") from None


class WorkbenchCuller(IdleCuller):
    """jupyterhub-idle-culler with one idle timeout for GPU servers and one for the others."""

    name = SERVICE_NAME
    description = __doc__

    gpu_timeout = Int(
        help="Seconds without activity after which a server with GPUs is stopped (0: never). "
        "Default: $WORKBENCH_CULL_GPU_TIMEOUT, else 1800.",
    ).tag(config=True)

    cpu_timeout = Int(
        help="Seconds without activity after which a server without GPUs is stopped "
        "(0: never). Default: $WORKBENCH_CULL_CPU_TIMEOUT, else 3600.",
    ).tag(config=True)

    profiles_file = Unicode(
        help="profiles.yaml: which profiles have GPUs. Default: $WORKBENCH_PROFILES, else "
        "hub_config/profiles.yaml.",
    ).tag(config=True)

    aliases = {
        **IdleCuller.aliases,
        "gpu-timeout": "WorkbenchCuller.gpu_timeout",
        "cpu-timeout": "WorkbenchCuller.cpu_timeout",
        "profiles": "WorkbenchCuller.profiles_file",
    }

    @default("gpu_timeout")
    def _default_gpu_timeout(self) -> int:
        return _env_int("WORKBENCH_CULL_GPU_TIMEOUT", DEFAULT_GPU_TIMEOUT)

    @default("cpu_timeout")
    def _default_cpu_timeout(self) -> int:
        return _env_int("WORKBENCH_CULL_CPU_TIMEOUT", DEFAULT_CPU_TIMEOUT)

    @default("profiles_file")
    def _default_profiles_file(self) -> str:
        return os.environ.get("WORKBENCH_PROFILES") or str(DEFAULT_PROFILES)

    @default("timeout")
    def _default_timeout(self) -> int:
        # what jupyterhub-idle-culler passes along as ``inactive_limit``; ours decide per server
        return min((t for t in (self.gpu_timeout, self.cpu_timeout) if t > 0), default=0)

    @default("cull_every")
    def _default_cull_every(self) -> int:
        return _env_int("WORKBENCH_CULL_EVERY", max(1, self.timeout // 2) if self.timeout else 600)

    @default("config_file")
    def _default_config_file(self) -> str:
        return ""  # no idle_culler_config.py picked up from the working folder

    @default("cull_arbiter_hook")
    def _default_cull_arbiter_hook(self) -> Any:
        return self.should_cull

    def _profiles(self) -> list[Profile]:
        cached: tuple[str, list[Profile]] | None = getattr(self, "_profiles_cache", None)
        if cached is None or cached[0] != self.profiles_file:
            cached = (self.profiles_file, load_profiles(self.profiles_file))
            self._profiles_cache = cached
        return cached[1]

    def timeout_for(self, server: Mapping[str, Any]) -> int:
        """The idle timeout of a server (its profile's GPUs decide); 0: never culled."""
        slug = (server.get("user_options") or {}).get("profile")
        try:
            profile = find_profile(self._profiles(), slug)
        except ProfileError:
            # a profile gone from profiles.yaml since the spawn: assume the scarce kind
            self.log.warning("Unknown profile %r of %s: culled as a GPU server", slug,
                             server.get("full_name") or server.get("name"))  # fmt: skip
            return self.gpu_timeout
        return self.gpu_timeout if profile.gpus else self.cpu_timeout

    def should_cull(
        self, *, inactive: timedelta, inactive_limit: int, server: Mapping[str, Any], **_: Any
    ) -> bool:
        """jupyterhub-idle-culler's ``cull_arbiter``: idle longer than the server's timeout."""
        limit = self.timeout_for(server)
        return limit > 0 and inactive.total_seconds() >= limit

    def start(self) -> None:
        self._profiles()  # a wrong profiles.yaml stops the service at once, with its message
        self.log.info(
            "Culling servers idle for %ss (GPU) / %ss (CPU), checking every %ss",
            self.gpu_timeout, self.cpu_timeout, self.cull_every,
        )  # fmt: skip
        super().start()


def culler_service(
    profiles_file: str | Path, env: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The hub-managed service running the culler, and its role (least privilege):
    ``c.JupyterHub.services.append(service)``, ``c.JupyterHub.load_roles.append(role)``.
    Timeouts come from ``WORKBENCH_CULL_GPU_TIMEOUT``/``_CPU_TIMEOUT``/``_EVERY`` in ``env``."""
    gpu = _env_int("WORKBENCH_CULL_GPU_TIMEOUT", DEFAULT_GPU_TIMEOUT, env)
    cpu = _env_int("WORKBENCH_CULL_CPU_TIMEOUT", DEFAULT_CPU_TIMEOUT, env)
    command = [sys.executable, "-m", "jupyter_workbench.hub.culler", f"--gpu-timeout={gpu}",
               f"--cpu-timeout={cpu}", f"--profiles={profiles_file}"]  # fmt: skip
    every = _env_int("WORKBENCH_CULL_EVERY", 0, env)
    if every > 0:
        command.append(f"--cull-every={every}")
    service = {"name": SERVICE_NAME, "command": command}
    role = {"name": SERVICE_NAME, "services": [SERVICE_NAME], "scopes": list(SCOPES)}
    return service, role


def main() -> None:
    WorkbenchCuller.launch_instance()


if __name__ == "__main__":
    main()
