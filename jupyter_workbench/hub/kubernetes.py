"""The hub's ``kubernetes`` target: KubeSpawner with the profiles of ``hub_config/profiles.yaml``.

``configure_kubernetes(c, profiles_file)`` is what ``jupyterhub_config.py`` calls when
``WORKBENCH_HUB_TARGET=kubernetes``. Each profile becomes a KubeSpawner ``profile_list`` entry
(image, CPU/memory, ``nvidia.com/gpu`` limits, node selector, tolerations) under the same slug
the spawn hooks read from ``user_options["profile"]``; each user gets a PersistentVolumeClaim
mounted as their home; the hub database is PostgreSQL from ``WORKBENCH_HUB_DB_URL``.

Environment: ``WORKBENCH_HUB_DB_URL`` (required; never the workbench's own ``DATABASE_URL``),
``WORKBENCH_POD_SERVICE_URL`` (the workbench service as pods reach it,
``http://hub:8000/services/workbench/``), ``WORKBENCH_HUB_CONNECT_IP`` (how pods reach the
hub's API, ``hub``), ``WORKBENCH_K8S_NAMESPACE`` (default: the hub's own namespace),
``WORKBENCH_STORAGE_CAPACITY`` (``10Gi``), ``WORKBENCH_STORAGE_CLASS`` (the cluster default),
``WORKBENCH_HOME_MOUNT`` (``/home/jovyan``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubespawner import KubeSpawner
from traitlets import Unicode

from .profiles import Profile, load_profiles
from .spawner import client_mode_env, collaboration_args

DEFAULT_POD_SERVICE_URL = "http://hub:8000/services/workbench/"
GPU_RESOURCE = "nvidia.com/gpu"


class KubernetesConfigError(ValueError):
    """The kubernetes target is missing a setting; the message names the variable."""


def kubespawner_override(profile: Profile) -> dict[str, Any]:
    """KubeSpawner settings of one profile (its raw ``kubespawner_override`` wins)."""
    override: dict[str, Any] = {}
    if profile.image:
        override["image"] = profile.image
    if profile.cpu is not None:
        override["cpu_limit"] = float(profile.cpu)
        override["cpu_guarantee"] = float(profile.cpu_guarantee or profile.cpu)
    if profile.memory:
        override["mem_limit"] = profile.memory
        override["mem_guarantee"] = profile.memory
    if profile.gpus:
        # extended resources: the request defaults to the limit (Kubernetes requires them equal)
        override["extra_resource_limits"] = {GPU_RESOURCE: str(profile.gpus)}
    if profile.node_selector:
        override["node_selector"] = dict(profile.node_selector)
    if profile.tolerations:
        override["tolerations"] = [dict(t) for t in profile.tolerations]
    override.update(profile.kubespawner_override)
    return override


def profile_list(profiles: list[Profile]) -> list[dict[str, Any]]:
    """KubeSpawner's ``profile_list``: one entry per profile, under the profile's slug."""
    return [
        {
            "slug": p.slug,
            "display_name": p.display_name,
            "description": p.description,
            "default": p.default,
            "kubespawner_override": kubespawner_override(p),
        }
        for p in profiles
    ]


class WorkbenchKubeSpawner(KubeSpawner):
    """KubeSpawner whose pods run the workbench in client mode and never receive the hub's
    database, storage or internal credentials."""

    workbench_service_url = Unicode(
        DEFAULT_POD_SERVICE_URL,
        help="Where user pods reach the workbench service (client mode).",
    ).tag(config=True)

    def get_env(self) -> dict[str, Any]:
        return client_mode_env(super().get_env(), self.workbench_service_url)

    def get_args(self) -> list[str]:
        # project servers co-edit (jupyter-collaboration, which the user image must carry)
        args: list[str] = super().get_args()
        return [*args, *collaboration_args(self.name, check_installed=False)]

    def _expand_env(self, env: dict[str, Any]) -> dict[str, Any]:
        # KubeSpawner expands ``{username}``-style templates in the environment; the user's
        # secrets put there by the spawn hooks are values, not templates (``{`` in a password
        # must neither fail the spawn nor be rewritten), so only the configured ones expand
        base = getattr(self, "_workbench_base_env", None)
        if base is not None:
            env = {k: v for k, v in env.items() if k in base and base[k] == v}
        expanded: dict[str, Any] = super()._expand_env(env)
        return expanded


def hub_db_url(env: Mapping[str, str]) -> str:
    """The hub's own database: required, and never the workbench's (the two schemas would
    collide in one database)."""
    url = env.get("WORKBENCH_HUB_DB_URL", "").strip()
    if not url:
        raise KubernetesConfigError(
            "WORKBENCH_HUB_DB_URL is required for the kubernetes target (the hub's PostgreSQL "
            "database, e.g. postgresql://hub@postgres/jupyterhub)"
        )
    if url == env.get("DATABASE_URL", "").strip():
        raise KubernetesConfigError(
            "WORKBENCH_HUB_DB_URL must name another database than DATABASE_URL (the workbench's "
            "own): JupyterHub's and the workbench's tables must not share one database"
        )
    return url


def configure_kubernetes(
    c: Any, profiles_file: str | Path, env: Mapping[str, str] | None = None
) -> None:
    """Set up ``c`` (JupyterHub's config) for the kubernetes target; see the module docstring."""
    env = os.environ if env is None else env
    c.JupyterHub.db_url = hub_db_url(env)
    # pods reach the hub's API over the cluster network; user pods outlive hub restarts
    c.JupyterHub.hub_ip = "0.0.0.0"
    c.JupyterHub.hub_connect_ip = env.get("WORKBENCH_HUB_CONNECT_IP") or "hub"
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.spawner_class = WorkbenchKubeSpawner

    c.WorkbenchKubeSpawner.workbench_service_url = (
        env.get("WORKBENCH_POD_SERVICE_URL") or DEFAULT_POD_SERVICE_URL
    )
    c.KubeSpawner.profile_list = profile_list(load_profiles(profiles_file))
    # an explicit command, so that arguments (collaboration in project servers) reach it
    c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
    if env.get("WORKBENCH_K8S_NAMESPACE"):
        c.KubeSpawner.namespace = env["WORKBENCH_K8S_NAMESPACE"]

    # persistent storage: one PersistentVolumeClaim per user server, mounted as its home
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.storage_capacity = env.get("WORKBENCH_STORAGE_CAPACITY") or "10Gi"
    if env.get("WORKBENCH_STORAGE_CLASS"):
        c.KubeSpawner.storage_class = env["WORKBENCH_STORAGE_CLASS"]
    c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
    c.KubeSpawner.volume_mounts = [
        {"name": "home", "mountPath": env.get("WORKBENCH_HOME_MOUNT") or "/home/jovyan"}
    ]
