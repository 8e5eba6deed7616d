"""On a real hub: quotas refuse spawns with a clear message, usage is accounted, and a user's
secrets reach their server's environment but never the logs."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import Browser, Hub, auth, start_server, stop_server

pytestmark = pytest.mark.slow

API = "/services/workbench/workbench/api/v1"


def server_environment(name: str) -> dict[str, str]:
    """The environment of ``name``'s running server process (read from /proc)."""
    marker = f"JUPYTERHUB_SERVICE_PREFIX=/user/{name}/".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in raw.split(b"\0"):
            pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
            return {k.decode(): v.decode() for k, v in pairs}
    raise AssertionError(f"no server process for {name}")


def test_the_spawn_page_offers_the_profiles(hub: Hub, new_user: Any) -> None:
    name, _, browser, _ = new_user("pick")
    page = browser.http.get(f"{hub.url}/hub/spawn/{name}", timeout=30).text
    assert 'name="profile" value="gpu-1"' in page and "1 GPU" in page


def test_secrets_reach_the_server_environment_but_not_the_logs(hub: Hub, new_user: Any) -> None:
    name, _, _, token = new_user("sec")
    value = "sk-" + os.urandom(12).hex()
    r = requests.put(f"{hub.url}{API}/me/secrets/OPENAI_API_KEY", headers=auth(token),
                     json={"value": value}, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    listed = requests.get(f"{hub.url}{API}/me/secrets", headers=auth(token), timeout=30)
    assert [s["name"] for s in listed.json()["items"]] == ["OPENAI_API_KEY"]
    assert value not in listed.text
    start_server(hub, name, token)
    env = server_environment(name)
    assert env["OPENAI_API_KEY"] == value
    assert env["WORKBENCH_MODE"] == "client" and env["WORKBENCH_PROFILE"] == "cpu"
    assert "DATABASE_URL" not in env and "WORKBENCH_HUB_INTERNAL_TOKEN" not in env
    # deleted secrets are gone at the next start
    assert requests.delete(f"{hub.url}{API}/me/secrets/OPENAI_API_KEY", headers=auth(token),
                           timeout=30).status_code == 204  # fmt: skip
    stop_server(hub, name, token)
    start_server(hub, name, token)
    assert "OPENAI_API_KEY" not in server_environment(name)
    logs = "\n".join(p.read_text(errors="replace") for p in hub.state.rglob("*.log"))
    assert value not in logs
    with hub.state.joinpath("workbench", "workbench.db").open("rb") as db:
        assert value.encode() not in db.read()


def test_an_admin_sets_a_gpu_quota_that_the_next_spawn_respects(
    hub: Hub, admin: Browser, new_user: Any
) -> None:
    name, _, _, token = new_user("gpu")
    admin_token = admin.token(hub.admin)
    requests.get(f"{hub.url}{API}/me", headers=auth(token), timeout=30)  # known to the workbench
    r = requests.put(f"{hub.url}{API}/admin/quotas/user:{name}", headers=auth(admin_token),
                     json={"max_gpus": 0}, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    # a user may not set quotas
    mine = requests.put(f"{hub.url}{API}/admin/quotas/user:{name}", headers=auth(token),
                        json={"max_gpus": 8}, timeout=30)  # fmt: skip
    assert mine.status_code == 403
    refused = requests.post(f"{hub.url}/hub/api/users/{name}/server", headers=auth(token),
                            json={"profile": "gpu-1"}, timeout=60)  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert "may use at most 0 GPU(s) at a time" in refused.json()["message"]
    # the refusal leaves no server behind; a CPU server is fine
    start_server(hub, name, token, profile="cpu")
    # an unknown profile is named
    stop_server(hub, name, token)
    bad = requests.post(f"{hub.url}/hub/api/users/{name}/server", headers=auth(token),
                        json={"profile": "gpu-99"}, timeout=60)  # fmt: skip
    assert bad.status_code == 400 and "no profile 'gpu-99'" in bad.json()["message"]
    # a profile that is not a string is refused, not silently the default CPU one
    odd = requests.post(f"{hub.url}/hub/api/users/{name}/server", headers=auth(token),
                        json={"profile": ["gpu-1"]}, timeout=60)  # fmt: skip
    assert odd.status_code == 400 and "a string" in odd.json()["message"], odd.text
    # raising the quota lets the GPU profile start; the admin sees it running and accounted
    requests.put(f"{hub.url}{API}/admin/quotas/user:{name}", headers=auth(admin_token),
                 json={"max_gpus": 1}, timeout=30)  # fmt: skip
    start_server(hub, name, token, profile="gpu-1")
    running = requests.get(f"{hub.url}{API}/admin/servers", headers=auth(admin_token), timeout=30)
    mine_running = [s for s in running.json()["items"] if s["user"] == name]
    assert [(s["profile"], s["gpus"]) for s in mine_running] == [("gpu-1", 1)]
    me = requests.get(f"{hub.url}{API}/me/usage", headers=auth(token), timeout=30).json()
    assert me["quota"]["gpus_in_use"] == 1 and me["quota"]["limits"]["max_gpus"] == 1
    stop_server(hub, name, token)
    report = requests.get(f"{hub.url}{API}/admin/usage", params={"group_by": "profile"},
                          headers=auth(admin_token), timeout=30).json()  # fmt: skip
    assert {"cpu", "gpu-1"} <= {row["key"] for row in report["items"]}
    csv = requests.get(f"{hub.url}{API}/admin/usage", params={"format": "csv"},
                       headers=auth(admin_token), timeout=30)  # fmt: skip
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("user,server_hours,gpu_hours,runs")
    assert any(line.startswith(f"{name},") for line in csv.text.splitlines())


def test_usage_is_reconciled_with_the_servers_the_hub_runs(
    hub: Hub, admin: Browser, new_user: Any
) -> None:
    """A stop the workbench never heard of (its hook missed it) is found by reconciliation."""
    # the service reconciles by itself 10 s after it starts: let that pass, so that it is the
    # reconciliations asked for here that find what this test leaves
    time.sleep(max(0.0, hub.ready_at + 12 - time.monotonic()))
    name, _, _, token = new_user("ghost")
    start_server(hub, name, token)
    internal = (hub.state / "hub-internal-token").read_text().strip()
    # a server the hub never ran, as if its stop had been lost
    r = requests.post(f"{hub.url}{API}/hub/spawn", headers={"X-Workbench-Hub-Token": internal},
                      json={"user": {"name": name}, "server_name": "lost", "profile": "gpu-1",
                            "gpus": 1}, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    admin_token = admin.token(hub.admin)
    servers = requests.get(f"{hub.url}{API}/admin/servers", headers=auth(admin_token), timeout=30)
    mine = {s["server_name"] for s in servers.json()["items"] if s["user"] == name}
    assert mine == {"", "lost"}
    refused = requests.post(f"{hub.url}{API}/admin/usage/reconcile", headers=auth(token),
                            timeout=30)  # fmt: skip
    assert refused.status_code == 403
    done = requests.post(f"{hub.url}{API}/admin/usage/reconcile", headers=auth(admin_token),
                         timeout=60)  # fmt: skip
    assert done.status_code == 200, done.text
    assert [(s["user"], s["server_name"]) for s in done.json()["items"]] == [(name, "lost")]
    servers = requests.get(f"{hub.url}{API}/admin/servers", headers=auth(admin_token), timeout=30)
    assert {s["server_name"] for s in servers.json()["items"] if s["user"] == name} == {""}
    stop_server(hub, name, token)

    # a stop the service did not hear (as in a hub shutdown, which stops the service first):
    # the run ends when the hub stopped the server, not when reconciliation runs
    db = sqlite3.connect(hub.state / "workbench" / "workbench.db")
    try:
        # the hub's post-stop hook may report the stop after the server is gone from its API
        still_open = "SELECT COUNT(*) FROM server_usage WHERE username = ? AND stopped_at IS NULL"
        deadline = time.monotonic() + 30
        while db.execute(still_open, (name,)).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.2)
        where = "username = ? AND server_name = '' AND stopped_at IS NOT NULL"
        run_id, heard = db.execute(
            f"SELECT id, stopped_at FROM server_usage WHERE {where} ORDER BY id DESC LIMIT 1",
            (name,),
        ).fetchone()
        with db:
            db.execute("UPDATE server_usage SET stopped_at = NULL WHERE id = ?", (run_id,))
        time.sleep(3)
        done = requests.post(f"{hub.url}{API}/admin/usage/reconcile",
                             headers=auth(admin_token), timeout=60)  # fmt: skip
        assert [(s["user"], s["server_name"]) for s in done.json()["items"]] == [(name, "")]
        (ended,) = db.execute(
            "SELECT stopped_at FROM server_usage WHERE id = ?", (run_id,)
        ).fetchone()
    finally:
        db.close()
    gap = abs((parse_time(ended) - parse_time(heard)).total_seconds())
    assert gap < 1.5, (heard, ended)  # the hub's stop time, not 3 s later


def parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)
