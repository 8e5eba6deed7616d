"""GPU-aware idle culling: on a real hub, an idle GPU server is stopped while an idle CPU
server, with a longer timeout, keeps running; the timeouts follow the profile of each server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_workbench.hub.culler import SCOPES, WorkbenchCuller, culler_service

from .conftest import Browser, Hub, auth, running_hub

REPO = Path(__file__).resolve().parents[2]
PROFILES = str(REPO / "hub_config" / "profiles.yaml")
API = "/services/workbench/workbench/api/v1"


def culler(**settings: Any) -> WorkbenchCuller:
    return WorkbenchCuller(profiles_file=PROFILES, **settings)


def server(profile: str | None) -> dict[str, Any]:
    return {"name": "", "user_options": {"profile": profile} if profile else {}}


def idle(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def test_each_server_gets_the_timeout_of_its_profile() -> None:
    c = culler(gpu_timeout=1800, cpu_timeout=3600)
    decide = c.cull_arbiter_hook
    assert decide(inactive=idle(1800), inactive_limit=c.timeout, server=server("gpu-1"))
    assert decide(inactive=idle(1800), inactive_limit=c.timeout, server=server("gpu-4"))
    assert not decide(inactive=idle(1799), inactive_limit=c.timeout, server=server("gpu-1"))
    assert not decide(inactive=idle(1800), inactive_limit=c.timeout, server=server("cpu"))
    assert decide(inactive=idle(3600), inactive_limit=c.timeout, server=server("cpu"))
    # no choice made: the default profile (cpu)
    assert not decide(inactive=idle(1800), inactive_limit=c.timeout, server=server(None))
    # a profile since removed from profiles.yaml counts as the scarce kind
    assert decide(inactive=idle(1800), inactive_limit=c.timeout, server=server("gone"))
    # 0: never culled
    never = culler(gpu_timeout=0, cpu_timeout=3600)
    assert not never.should_cull(inactive=idle(10**6), inactive_limit=0, server=server("gpu-1"))
    assert (c.timeout, c.cull_every) == (1800, 900)


def test_settings_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_CULL_GPU_TIMEOUT", "600")
    monkeypatch.setenv("WORKBENCH_CULL_CPU_TIMEOUT", "7200")
    monkeypatch.setenv("WORKBENCH_CULL_EVERY", "30")
    c = culler()
    assert (c.gpu_timeout, c.cpu_timeout, c.cull_every) == (600, 7200, 30)
    monkeypatch.setenv("WORKBENCH_CULL_GPU_TIMEOUT", "half an hour")
    with pytest.raises(ValueError, match="WORKBENCH_CULL_GPU_TIMEOUT: must be a whole number"):
        culler_service(PROFILES)


def test_the_service_has_least_privilege() -> None:
    service, role = culler_service(PROFILES, env={"WORKBENCH_CULL_GPU_TIMEOUT": "5"})
    assert service["name"] == role["name"] == "workbench-culler"
    assert role["services"] == ["workbench-culler"]
    assert set(role["scopes"]) == set(SCOPES) == {
        "list:users", "read:users:activity", "read:servers", "delete:servers",
    }  # fmt: skip
    assert "--gpu-timeout=5" in service["command"]
    assert "--cpu-timeout=3600" in service["command"]


@pytest.fixture(scope="module")
def culling_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub of its own whose culler stops GPU servers after 3 idle seconds, CPU ones after 60."""
    env = {"WORKBENCH_CULL_GPU_TIMEOUT": "3", "WORKBENCH_CULL_CPU_TIMEOUT": "60",
           "WORKBENCH_CULL_EVERY": "1"}  # fmt: skip
    for attempt in range(3):  # on a busy machine the hub may give up waiting for the service
        with ExitStack() as stack:
            try:
                hub = stack.enter_context(running_hub(tmp_path_factory.mktemp("culling"), **env))
            except RuntimeError:
                if attempt == 2:
                    raise
                continue
            yield hub
            return


def approved_user(hub: Hub, admin: Browser, name: str) -> str:
    """Sign ``name`` up, approve them, log in; their API token."""
    password = "Pa55-word-culler"
    browser = hub.browser()
    browser.sign_up(name, password)
    assert admin.api("GET", f"/hub/authorize/{name}").ok
    assert browser.log_in(name, password).ok
    return browser.token(name)


def server_model(hub: Hub, name: str, token: str) -> dict[str, Any]:
    user = requests.get(f"{hub.url}/hub/api/users/{name}", headers=auth(token), timeout=30)
    return dict((user.json().get("servers") or {}).get("", {}))


@pytest.mark.slow
def test_an_idle_gpu_server_is_culled_before_an_idle_cpu_server(culling_hub: Hub) -> None:
    hub = culling_hub
    admin = hub.browser()
    assert admin.log_in(hub.admin, hub.admin_password).ok
    cpu_user, gpu_user = "cpuworker", "gpuworker"
    cpu_token = approved_user(hub, admin, cpu_user)
    gpu_token = approved_user(hub, admin, gpu_user)

    for name, token, profile in ((cpu_user, cpu_token, "cpu"), (gpu_user, gpu_token, "gpu-1")):
        r = requests.post(f"{hub.url}/hub/api/users/{name}/server", headers=auth(token),
                          json={"profile": profile}, timeout=60)  # fmt: skip
        assert r.status_code in (201, 202), r.text
    # both servers become ready; then the GPU one, idle for 3 s, is stopped by the culler
    cpu_ready = gpu_ready = gpu_culled = False
    deadline = time.monotonic() + 90
    while not (cpu_ready and gpu_culled):
        cpu_ready = cpu_ready or bool(server_model(hub, cpu_user, cpu_token).get("ready"))
        gpu = server_model(hub, gpu_user, gpu_token)
        gpu_ready = gpu_ready or bool(gpu.get("ready"))
        gpu_culled = gpu_ready and not gpu
        assert time.monotonic() < deadline, f"ready CPU: {cpu_ready}, GPU server: {gpu}"
        time.sleep(0.2)

    # the CPU server, idle for less than its timeout, still runs
    assert server_model(hub, cpu_user, cpu_token).get("ready")
    log = (hub.state / "hub.log").read_text(errors="replace")
    assert f"Culling server {gpu_user}" in log
    assert f"Culling server {cpu_user}" not in log
    # the stop went through the spawn hooks: the GPU is no longer counted as in use
    me = requests.get(f"{hub.url}{API}/me/usage", headers=auth(gpu_token), timeout=30).json()
    assert me["quota"]["gpus_in_use"] == 0
