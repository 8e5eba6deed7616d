"""The kubernetes target: for each profile of profiles.yaml, the real KubeSpawner builds a pod
(and a PVC) that the Kubernetes schema accepts, with the profile's GPUs, node selector,
tolerations and image, the user's home on their claim, and none of the hub's credentials.

No cluster: KubeSpawner reads a kubeconfig naming an unreachable API server on 127.0.0.1;
building manifests never calls it."""

from __future__ import annotations

import asyncio
import runpy
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config
from kubernetes_validate.utils import latest_version
from tornado import web
from traitlets.config import Config

from jupyter_workbench.hub.hooks import WorkbenchHooks
from jupyter_workbench.hub.kubernetes import (
    DEFAULT_POD_SERVICE_URL,
    KubernetesConfigError,
    WorkbenchKubeSpawner,
    configure_kubernetes,
)
from jupyter_workbench.hub.profiles import Profile, load_profiles

REPO = Path(__file__).resolve().parents[2]
PROFILES_FILE = REPO / "hub_config" / "profiles.yaml"
PROFILES = load_profiles(PROFILES_FILE)
HUB_DB = "postgresql://hub@127.0.0.1/jupyterhub"
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: workbench}}]
current-context: none
"""


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    # read when KubeSpawner first loads its client configuration (once per process)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield


def hub_config(**env: str) -> Config:
    c = Config()
    configure_kubernetes(c, PROFILES_FILE, env={"WORKBENCH_HUB_DB_URL": HUB_DB, **env})
    return c


def make_spawner(c: Config, name: str = "alice") -> WorkbenchKubeSpawner:
    user = SimpleNamespace(name=name, id=7, url=f"/user/{name}/", escaped_name=name, groups=[])
    hub = SimpleNamespace(
        api_url="http://hub:8081/hub/api", base_url="/hub/", public_host="", url="/hub/"
    )
    return WorkbenchKubeSpawner(config=c, user=user, hub=hub, api_token="server-token")


def serialize(obj: Any) -> dict[str, Any]:
    return dict(ApiClient().sanitize_for_serialization(obj))


def validate(manifest: dict[str, Any]) -> None:
    """Raises kubernetes_validate's ValidationError naming the first wrong field."""
    kubernetes_validate.validate(manifest, latest_version(), strict=True)


async def spawn_manifests(
    c: Config,
    user_options: dict[str, Any],
    secrets: dict[str, str] | None = None,
    server_name: str = "",
) -> tuple[WorkbenchKubeSpawner, dict[str, Any], dict[str, Any]]:
    """What a start of ``user_options`` sends to Kubernetes: the spawn hooks' profile choice and
    injected secrets (as WorkbenchHooks.pre_spawn sets them), then KubeSpawner's profile."""
    spawner = make_spawner(c)
    if server_name:  # a named server (Spawner.name reads the hub's record of it)
        spawner.orm_spawner = SimpleNamespace(name=server_name, server=None)
    spawner.user_options = user_options
    profile = hooks_profile(PROFILES, user_options)
    base = dict(spawner.environment)
    spawner._workbench_base_env = base
    spawner.environment = {**base, **(secrets or {}), "WORKBENCH_PROFILE": profile.slug}
    await spawner.load_user_options()
    pod = serialize(await spawner.get_pod_manifest())
    pvc = serialize(spawner.get_pvc_manifest())
    return spawner, pod, pvc


def container_env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}


def hooks_profile(profiles: list[Profile], user_options: dict[str, Any]) -> Profile:
    hooks = WorkbenchHooks.__new__(WorkbenchHooks)
    hooks.profiles = profiles
    return hooks.profile_of(SimpleNamespace(user_options=user_options))


@pytest.mark.parametrize("profile", PROFILES, ids=[p.slug for p in PROFILES])
def test_each_profile_builds_a_valid_pod_and_claim(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the hub's credentials are in its environment, and even passed on by mistake
    monkeypatch.setenv("DATABASE_URL", "postgresql://workbench:hub-secret@127.0.0.1/workbench")
    monkeypatch.setenv("S3_SECRET_KEY", "hub-s3-secret")
    monkeypatch.setenv("WORKBENCH_HUB_INTERNAL_TOKEN", "hub-internal")
    c = hub_config()
    c.KubeSpawner.env_keep = ["DATABASE_URL", "S3_SECRET_KEY", "WORKBENCH_HUB_INTERNAL_TOKEN"]
    _, pod, pvc = asyncio.run(spawn_manifests(c, {"profile": profile.slug}))
    validate(pod)
    validate(pvc)

    container = pod["spec"]["containers"][0]
    limits = container["resources"]["limits"]
    if profile.gpus:
        assert limits["nvidia.com/gpu"] == str(profile.gpus)
    else:
        assert "nvidia.com/gpu" not in limits
    assert container["image"] == profile.image
    assert float(limits["cpu"]) == profile.cpu
    assert (pod["spec"].get("nodeSelector") or {}) == profile.node_selector
    assert pod["spec"].get("tolerations", []) == profile.tolerations

    # the user's home is their own claim
    claim = pvc["metadata"]["name"]
    assert claim == "claim-alice"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert {"name": "home", "persistentVolumeClaim": {"claimName": claim}} in pod["spec"]["volumes"]
    assert {"name": "home", "mountPath": "/home/jovyan"} in container["volumeMounts"]

    env = container_env(pod)
    assert env["WORKBENCH_MODE"] == "client"
    assert env["WORKBENCH_SERVICE_URL"] == DEFAULT_POD_SERVICE_URL
    assert env["WORKBENCH_PROFILE"] == profile.slug
    for name in ("DATABASE_URL", "S3_SECRET_KEY", "WORKBENCH_HUB_INTERNAL_TOKEN"):
        assert name not in env
    assert "hub-secret" not in str(pod)


def test_hooks_and_kubespawner_agree_on_the_profile() -> None:
    c = hub_config()
    for options in ({}, {"profile": "gpu-4"}):
        _, pod, _ = asyncio.run(spawn_manifests(c, options))
        chosen = hooks_profile(PROFILES, options)
        assert container_env(pod)["JUPYTER_IMAGE"] == chosen.image
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert int(limits.get("nvidia.com/gpu", 0)) == chosen.gpus
    # the spawn page's choice lands in user_options["profile"], the slug the hooks read
    spawner = asyncio.run(_spawner(c))
    form = str(spawner.options_form)
    for p in PROFILES:
        assert f'value="{p.slug}"' in form
    assert spawner.options_from_form({"profile": ["gpu-1"]}) == {"profile": "gpu-1"}
    # a REST spawn's JSON is not flattened: a list is refused (400), not the default CPU profile
    with pytest.raises(web.HTTPError) as refused:
        hooks_profile(PROFILES, {"profile": ["gpu-1"]})
    assert refused.value.status_code == 400 and "a string" in str(refused.value.log_message)


async def _spawner(c: Config) -> WorkbenchKubeSpawner:
    return make_spawner(c)  # KubeSpawner wants a running event loop


def test_secrets_reach_the_pod_verbatim() -> None:
    """A user's secret is a value, not a KubeSpawner template: braces neither fail the spawn
    nor get rewritten; the configured environment still expands."""
    c = hub_config()
    c.KubeSpawner.environment = {"WHO": "{username}"}
    secret = "pa{ss}{0}{username}"
    _, pod, _ = asyncio.run(spawn_manifests(c, {"profile": "cpu"}, {"OPENAI_API_KEY": secret}))
    validate(pod)
    env = container_env(pod)
    assert env["OPENAI_API_KEY"] == secret
    assert env["WHO"] == "alice"


def test_settings_from_the_environment() -> None:
    c = hub_config(
        WORKBENCH_POD_SERVICE_URL="http://workbench.lab.svc:8000/services/workbench/",
        WORKBENCH_STORAGE_CAPACITY="50Gi",
        WORKBENCH_STORAGE_CLASS="fast-ssd",
        WORKBENCH_K8S_NAMESPACE="lab",
        WORKBENCH_HUB_CONNECT_IP="hub.lab.svc",
    )
    assert c.JupyterHub.db_url == HUB_DB
    assert c.JupyterHub.hub_connect_ip == "hub.lab.svc"
    spawner, pod, pvc = asyncio.run(spawn_manifests(c, {}))
    validate(pvc)
    assert spawner.namespace == "lab"
    assert pvc["spec"]["storageClassName"] == "fast-ssd"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert container_env(pod)["WORKBENCH_SERVICE_URL"].startswith("http://workbench.lab.svc")


def test_the_hub_database_is_required_and_separate() -> None:
    with pytest.raises(KubernetesConfigError, match="WORKBENCH_HUB_DB_URL is required"):
        configure_kubernetes(Config(), PROFILES_FILE, env={})
    with pytest.raises(KubernetesConfigError, match="must name another database"):
        configure_kubernetes(
            Config(), PROFILES_FILE, env={"WORKBENCH_HUB_DB_URL": HUB_DB, "DATABASE_URL": HUB_DB}
        )


def run_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Config:
    monkeypatch.setenv("WORKBENCH_HUB_DIR", str(tmp_path / "hub"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    c = Config()
    runpy.run_path(str(REPO / "hub_config" / "jupyterhub_config.py"), {"get_config": lambda: c})
    return c


def test_the_hub_config_selects_the_kubernetes_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    c = run_config(
        monkeypatch, tmp_path, WORKBENCH_HUB_TARGET="kubernetes", WORKBENCH_HUB_DB_URL=HUB_DB
    )
    assert c.JupyterHub.spawner_class is WorkbenchKubeSpawner
    assert c.JupyterHub.db_url == HUB_DB
    assert [p["slug"] for p in c.KubeSpawner.profile_list] == [p.slug for p in PROFILES]
    with pytest.raises(ValueError, match="WORKBENCH_HUB_TARGET: must be 'local' or 'kubernetes'"):
        run_config(monkeypatch, tmp_path, WORKBENCH_HUB_TARGET="k8s")


def test_project_servers_run_with_collaboration() -> None:
    c = hub_config()
    _, pod, _ = asyncio.run(spawn_manifests(c, {"profile": "cpu"}, server_name="project-vision"))
    validate(pod)
    assert "--YDocExtension.disable_rtc=False" in pod["spec"]["containers"][0]["args"]
    _, own, _ = asyncio.run(spawn_manifests(c, {"profile": "cpu"}))
    assert "--YDocExtension.disable_rtc=False" not in (
        own["spec"]["containers"][0].get("args") or []
    )
