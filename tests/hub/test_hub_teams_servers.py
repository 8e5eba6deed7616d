"""On a real hub: teams and JupyterHub groups follow each other both ways, and a project's server
is shared with its editors and above, the shares following membership changes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from .conftest import Browser, Hub, auth

pytestmark = pytest.mark.slow

API = "/services/workbench/workbench/api/v1"


def wb(hub: Hub, method: str, path: str, token: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{hub.url}{API}{path}", headers=auth(token), timeout=60,
                            **kw)  # fmt: skip


def hub_api(hub: Hub, method: str, path: str, token: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{hub.url}/hub/api{path}", headers=auth(token), timeout=60,
                            **kw)  # fmt: skip


def eventually(check: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy (the hub poll runs every second)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.3)


def team_members(hub: Hub, token: str, team: str) -> set[str] | None:
    r = wb(hub, "GET", f"/teams/{team}/members", token)
    return {m["username"] for m in r.json()["items"]} if r.ok else None


def group_users(hub: Hub, admin_token: str, group: str) -> set[str] | None:
    r = hub_api(hub, "GET", f"/groups/{group}", admin_token)
    return set(r.json()["users"]) if r.ok else None


def test_a_hub_group_becomes_a_team_and_follows_the_hub_admins_edits(
    hub: Hub, admin: Browser, new_user: Any
) -> None:
    admin_token = admin.token(hub.admin)
    bob, _, _, bob_token = new_user("grp")
    carol, _, _, carol_token = new_user("grp")
    group = f"lab-{bob}"
    r = hub_api(hub, "POST", f"/groups/{group}", admin_token, json={"users": [bob]})
    assert r.status_code == 201, r.text
    eventually(lambda: team_members(hub, carol_token, group) == {bob}, what="team made")
    team = wb(hub, "GET", f"/teams/{group}", carol_token).json()
    assert (team["source"], team["hub_group"]) == ("hub", group)
    hub_api(hub, "POST", f"/groups/{group}/users", admin_token, json={"users": [carol]})
    eventually(lambda: team_members(hub, bob_token, group) == {bob, carol}, what="carol added")
    hub_api(hub, "DELETE", f"/groups/{group}/users", admin_token, json={"users": [bob]})
    eventually(lambda: team_members(hub, bob_token, group) == {carol}, what="bob removed")
    audit = wb(hub, "GET", "/audit", admin_token, params={"actor": "[system]"}).json()["items"]
    assert any(e["action"] == "team.member_remove" and e["object_id"] == group for e in audit)
    hub_api(hub, "DELETE", f"/groups/{group}", admin_token)
    eventually(lambda: team_members(hub, bob_token, group) is None, what="team deleted")


def test_a_workbench_team_is_a_hub_group_with_the_same_members(
    hub: Hub, admin: Browser, new_user: Any
) -> None:
    admin_token = admin.token(hub.admin)
    alice, _, _, alice_token = new_user("wbt")
    bob, _, _, bob_token = new_user("wbt")
    wb(hub, "GET", "/me", bob_token)  # bob is known to the workbench
    team = f"crew-{alice}"
    r = wb(hub, "POST", "/teams", alice_token, json={"name": team})
    assert r.status_code == 201, r.text
    assert group_users(hub, admin_token, team) == {alice}  # in the hub when the API answers
    r = wb(hub, "POST", f"/teams/{team}/members", alice_token, json={"username": bob})
    assert r.status_code == 201, r.text
    assert group_users(hub, admin_token, team) == {alice, bob}
    # the hub's user model knows the group too, and the next polls keep the team as it is
    assert team in hub_api(hub, "GET", f"/users/{bob}", admin_token).json()["groups"]
    time.sleep(2.5)
    assert team_members(hub, bob_token, team) == {alice, bob}
    assert wb(hub, "DELETE", f"/teams/{team}/members/{bob}", alice_token).status_code == 204
    assert group_users(hub, admin_token, team) == {alice}
    time.sleep(1.5)
    assert team_members(hub, alice_token, team) == {alice}
    assert wb(hub, "DELETE", f"/teams/{team}", alice_token).status_code == 204
    assert group_users(hub, admin_token, team) is None


def status_of(hub: Hub, owner: str, server: str, token: str) -> int:
    url = f"{hub.url}/user/{owner}/{server}/api/status"
    return requests.get(url, headers=auth(token), timeout=30, allow_redirects=False).status_code


def test_a_project_server_is_shared_with_editors_and_follows_their_roles(
    hub: Hub, admin: Browser, new_user: Any
) -> None:
    admin_token = admin.token(hub.admin)
    alice, _, _, alice_token = new_user("ps")
    bob, _, _, bob_token = new_user("ps")
    carol, _, carol_browser, carol_token = new_user("ps")
    for token in (bob_token, carol_token):
        wb(hub, "GET", "/me", token)
    slug = wb(hub, "POST", "/projects", alice_token, json={"name": f"Vision {alice}"}).json()[
        "slug"
    ]
    for user, role in ((bob, "editor"), (carol, "viewer")):
        r = wb(
            hub, "POST", f"/projects/{slug}/members", alice_token, json={"user": user, "role": role}
        )
        assert r.status_code == 201, r.text
    # a viewer may not start it; an editor may, and owns it
    assert wb(hub, "POST", f"/projects/{slug}/server", carol_token).status_code == 403
    r = wb(hub, "POST", f"/projects/{slug}/server", bob_token)
    assert r.status_code == 202, r.text
    server = f"project-{slug}"
    assert (r.json()["owner"], r.json()["server_name"], r.json()["shared_with"]) == (
        bob,
        server,
        [alice],
    )
    eventually(lambda: wb(hub, "GET", f"/projects/{slug}/server", alice_token).json()["ready"],
               timeout=90, what="project server ready")  # fmt: skip
    shares = hub_api(hub, "GET", f"/shares/{bob}/{server}", admin_token).json()["items"]
    assert [s["user"]["name"] for s in shares] == [alice]
    # alice reaches bob's project server with her own token; carol (a viewer) does not
    assert status_of(hub, bob, server, alice_token) == 200
    assert status_of(hub, bob, server, carol_token) == 403
    # collaboration is on, under alice's own name
    base = f"{hub.url}/user/{bob}/{server}/api"
    me = requests.get(f"{base}/me", headers=auth(alice_token), timeout=30).json()
    assert me["identity"]["username"] == alice
    requests.put(f"{base}/contents/shared.ipynb", headers=auth(alice_token), timeout=30,
                 json={"type": "notebook"})  # fmt: skip
    session = requests.put(f"{base}/collaboration/session/shared.ipynb", headers=auth(alice_token),
                           json={"format": "json", "type": "notebook"}, timeout=30)  # fmt: skip
    assert session.status_code in (200, 201), session.text
    # carol becomes an editor: granted; a viewer again: revoked (a new token of hers is refused)
    r = wb(hub, "PATCH", f"/projects/{slug}/members/{carol}", alice_token, json={"role": "editor"})
    assert r.status_code == 200, r.text
    shared = {s["user"]["name"] for s in hub_api(hub, "GET", f"/shares/{bob}/{server}",
                                                 admin_token).json()["items"]}  # fmt: skip
    assert shared == {alice, carol}
    assert status_of(hub, bob, server, carol_browser.token(carol)) == 200
    wb(hub, "PATCH", f"/projects/{slug}/members/{carol}", alice_token, json={"role": "viewer"})
    shared = {s["user"]["name"] for s in hub_api(hub, "GET", f"/shares/{bob}/{server}",
                                                 admin_token).json()["items"]}  # fmt: skip
    assert shared == {alice}
    assert status_of(hub, bob, server, carol_browser.token(carol)) == 403
    # usage is accounted to the project; an editor stops it
    servers = wb(hub, "GET", "/admin/servers", admin_token).json()["items"]
    assert [(s["user"], s["project"]) for s in servers if s["server_name"] == server] == [
        (bob, slug)
    ]
    assert wb(hub, "DELETE", f"/projects/{slug}/server", alice_token).status_code == 204
    eventually(lambda: not wb(hub, "GET", f"/projects/{slug}/server", alice_token).json()[
        "running"], timeout=30, what="stopped")  # fmt: skip
    # stopping it again changes nothing: still 204, and no second stop in the audit trail
    assert wb(hub, "DELETE", f"/projects/{slug}/server", bob_token).status_code == 204
    trail = wb(hub, "GET", "/audit", admin_token,
               params={"project": slug, "action": "project_server.*"}).json()["items"]  # fmt: skip
    assert sorted((e["action"], e["actor"]) for e in trail) == [
        ("project_server.start", bob),
        ("project_server.stop", alice),
    ]


def test_a_project_server_start_refused_by_a_quota_records_nothing(
    hub: Hub, admin: Browser, new_user: Any
) -> None:
    admin_token = admin.token(hub.admin)
    alice, _, _, alice_token = new_user("pq")
    slug = wb(hub, "POST", "/projects", alice_token, json={"name": f"Quota {alice}"}).json()["slug"]
    r = wb(hub, "PUT", f"/admin/quotas/user:{alice}", admin_token, json={"max_servers": 0})
    assert r.status_code == 200, r.text
    refused = wb(hub, "POST", f"/projects/{slug}/server", alice_token)
    assert refused.status_code == 403, refused.text
    assert "may run at most 0 server(s)" in refused.json()["message"]
    # no record, no owner, no start in the audit trail: the hub did not start it
    nothing = wb(hub, "GET", f"/projects/{slug}/server", alice_token)
    assert (nothing.status_code, nothing.json()["error"]) == (404, "no_server")
    trail = wb(hub, "GET", "/audit", admin_token,
               params={"project": slug, "action": "project_server.*"}).json()["items"]  # fmt: skip
    assert trail == []


def running_servers(hub: Hub, admin_token: str, user: str) -> set[str]:
    """Names of ``user``'s named servers the hub has running or starting."""
    servers = hub_api(hub, "GET", f"/users/{user}", admin_token).json().get("servers", {})
    return {name for name, s in servers.items() if name and (s["ready"] or s["pending"] == "spawn")}


def test_two_editors_starting_a_project_server_at_once_end_with_one_server(
    hub: Hub, admin: Browser, new_user: Any
) -> None:
    admin_token = admin.token(hub.admin)
    alice, _, _, alice_token = new_user("race")
    bob, _, _, bob_token = new_user("race")
    wb(hub, "GET", "/me", bob_token)
    slug = wb(hub, "POST", "/projects", alice_token, json={"name": f"Race {alice}"}).json()["slug"]
    r = wb(hub, "POST", f"/projects/{slug}/members", alice_token, json={"user": bob,
                                                                     "role": "editor"})  # fmt: skip
    assert r.status_code == 201, r.text
    # both ask at the same moment: each plans its own `project-{slug}` while the hub starts it
    barrier = threading.Barrier(2)
    answers: dict[str, requests.Response] = {}

    def start(user: str, token: str) -> None:
        barrier.wait()
        answers[user] = wb(hub, "POST", f"/projects/{slug}/server", token)

    threads = [threading.Thread(target=start, args=a) for a in ((alice, alice_token),
                                                              (bob, bob_token))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert {u: a.status_code for u, a in answers.items()} == {alice: 202, bob: 202}, answers
    # both answers name the one server, owned by whoever was recorded first, shared with the other
    owners = {(a.json()["owner"], a.json()["server_name"]) for a in answers.values()}
    assert len(owners) == 1, owners
    ((owner, server),) = owners
    assert server == f"project-{slug}" and owner in (alice, bob)
    other = bob if owner == alice else alice
    assert [a.json()["shared_with"] for a in answers.values()] == [[other], [other]]
    # the hub runs the owner's server and none of the other's (a loser's start is stopped)
    eventually(lambda: running_servers(hub, admin_token, other) == set(), timeout=60,
               what="the other editor's server stopped")  # fmt: skip
    assert running_servers(hub, admin_token, owner) == {server}
    tokens = {alice: alice_token, bob: bob_token}
    record = wb(hub, "GET", f"/projects/{slug}/server", tokens[other]).json()
    assert (record["owner"], record["server_name"], record["running"]) == (owner, server, True)
    wb(hub, "DELETE", f"/projects/{slug}/server", alice_token)
