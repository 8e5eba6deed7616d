"""End to end on a real JupyterHub: log in, get a server, use the workbench through it.

The hub (with configurable-http-proxy, NativeAuthenticator and the workbench service) is the
session's ``hub`` fixture; each test signs up its own users, an admin approves them.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests

from .conftest import Browser, Hub, auth, start_server

pytestmark = pytest.mark.slow

SERVICE = "/services/workbench/workbench/api/v1"


def wait_for_server(hub: Hub, name: str, token: str) -> dict[str, Any]:
    return start_server(hub, name, token)


def test_sign_up_needs_an_admin_and_wrong_passwords_are_refused(hub: Hub, admin: Browser) -> None:
    name = "pending" + os.urandom(3).hex()
    browser = hub.browser()
    page = browser.sign_up(name, "Pa55-word-xyz1")
    assert "sent to the admin" in page
    assert "/hub/login" in browser.log_in(name, "Pa55-word-xyz1").url  # not approved yet
    assert admin.api("GET", f"/hub/authorize/{name}").ok
    assert "/hub/login" in browser.log_in(name, "wrong-password").url
    r = browser.log_in(name, "Pa55-word-xyz1")
    assert f"/user/{name}/" in r.url or "/hub/spawn" in r.url or "/hub/home" in r.url


def test_a_user_gets_a_server_and_the_workbench_through_it(hub: Hub, new_user: Any) -> None:
    name, _, browser, token = new_user("alice")
    server = wait_for_server(hub, name, token)
    assert server["url"] == f"/user/{name}/"
    # the lab opens in the browser session (the hub's OAuth dance included)
    lab = browser.http.get(f"{hub.url}/user/{name}/lab", timeout=60)
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    # the workbench API: directly at the service, and through the user's own server
    me = requests.get(f"{hub.url}{SERVICE}/me", headers=auth(token), timeout=30)
    assert me.status_code == 200, me.text
    assert me.json()["username"] == name
    via = requests.get(
        f"{hub.url}/user/{name}/workbench/api/v1/me", headers=auth(token), timeout=30
    )
    assert via.status_code == 200, via.text
    assert via.json()["username"] == name
    # a browser on the lab page uses its cookie (no token) and gets the same answer
    xsrf = browser.http.cookies.get("_xsrf", path=f"/user/{name}/") or ""
    cookie = browser.http.get(
        f"{hub.url}/user/{name}/workbench/api/v1/me", headers={"X-XSRFToken": xsrf}, timeout=30
    )
    assert cookie.status_code == 200, cookie.text
    assert cookie.json()["username"] == name


def test_private_projects_stay_private_between_users(hub: Hub, new_user: Any) -> None:
    alice, _, _, a_token = new_user("alice")
    _, _, _, b_token = new_user("bob")
    wait_for_server(hub, alice, a_token)
    slug = "secret-" + os.urandom(3).hex()
    created = requests.post(
        f"{hub.url}/user/{alice}/workbench/api/v1/projects",
        headers=auth(a_token),
        json={"name": slug, "slug": slug},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert created.json()["owner"] == alice
    seen = requests.get(f"{hub.url}{SERVICE}/projects/{slug}", headers=auth(b_token), timeout=30)
    assert seen.status_code == 404
    listed = requests.get(f"{hub.url}{SERVICE}/projects", headers=auth(b_token), timeout=30)
    assert slug not in [p["slug"] for p in listed.json()["items"]]
    # bob's token does not open alice's server at all
    other = requests.get(
        f"{hub.url}/user/{alice}/workbench/api/v1/me",
        headers=auth(b_token),
        timeout=30,
        allow_redirects=False,
    )
    assert other.status_code in (401, 403, 404)
    # no token, no workbench
    anon = requests.get(f"{hub.url}{SERVICE}/me", timeout=30, allow_redirects=False)
    assert anon.status_code in (302, 401, 403)


def test_the_service_serves_the_workbench_and_nothing_else(hub: Hub, new_user: Any) -> None:
    _, _, _, token = new_user("eve")
    for path in (
        "/services/workbench/api/kernels",
        "/services/workbench/api/contents",
        "/services/workbench/api/terminals",
    ):
        r = requests.get(hub.url + path, headers=auth(token), timeout=30)
        assert r.status_code in (403, 404), (path, r.status_code)
    # user servers never learn the database or storage credentials
    assert requests.get(f"{hub.url}{SERVICE}/me", headers=auth(token), timeout=30).ok


def test_hub_admins_are_workbench_admins(hub: Hub, admin: Browser) -> None:
    token = admin.token(hub.admin)
    me = requests.get(f"{hub.url}{SERVICE}/me", headers=auth(token), timeout=30).json()
    assert me["is_admin"] is True
    users = requests.get(f"{hub.url}{SERVICE}/users", headers=auth(token), timeout=30)
    assert users.status_code == 200, users.text


def test_hub_groups_become_teams(hub: Hub, admin: Browser, new_user: Any) -> None:
    name, _, _, token = new_user("carol")
    group = "vision-" + os.urandom(3).hex()
    assert admin.api("POST", f"/hub/api/groups/{group}").status_code == 201
    r = admin.api("POST", f"/hub/api/groups/{group}/users", json={"users": [name]})
    assert r.ok, r.text
    me = requests.get(f"{hub.url}{SERVICE}/me", headers=auth(token), timeout=30).json()
    assert group in [t["display_name"] for t in me["teams"]]


def test_stock_mlflow_client_logs_through_the_users_server(hub: Hub, new_user: Any) -> None:
    from mlflow.tracking import MlflowClient

    name, _, _, token = new_user("dave")
    wait_for_server(hub, name, token)
    slug = "tracked-" + os.urandom(3).hex()
    base = f"{hub.url}/user/{name}/workbench"
    created = requests.post(
        f"{base}/api/v1/projects",
        headers=auth(token),
        json={"name": slug, "slug": slug},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    old = {
        k: os.environ.get(k) for k in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    }
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    try:
        uri = f"{base}/mlflow/p/{slug}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        exp = client.create_experiment("hub-baseline")
        run = client.create_run(exp).info.run_id
        for step in range(3):
            client.log_metric(run, "loss", 1.0 / (step + 1), step=step)
        client.set_terminated(run)
        history = [m.value for m in client.get_metric_history(run, "loss")]
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert history == [1.0, 0.5, 1 / 3]
    # the run is visible in the workbench's own API
    runs = requests.post(
        f"{hub.url}{SERVICE}/runs/search",
        headers=auth(token),
        json={"projects": [slug]},
        timeout=30,
    )
    assert runs.status_code == 200, runs.text
    assert [(r["run_id"], r["experiment"]) for r in runs.json()["runs"]] == [
        (run, f"{slug}/hub-baseline")
    ]


def test_users_share_their_own_servers(hub: Hub, new_user: Any) -> None:
    """Sharing is on: a user shares their server with another by name, the other reaches it
    with their own token; the owner revokes the share."""
    owner, _, _, owner_token = new_user("own")
    guest, _, guest_browser, guest_token = new_user("guest")
    start_server(hub, owner, owner_token)
    status = f"{hub.url}/user/{owner}/api/status"
    assert requests.get(status, headers=auth(guest_token), timeout=30).status_code == 403
    r = requests.post(f"{hub.url}/hub/api/shares/{owner}/", headers=auth(owner_token),
                      json={"user": guest}, timeout=30)  # fmt: skip
    assert r.status_code in (200, 201), r.text
    # a user server caches what a token may do for a while: a fresh token sees the share now
    fresh = guest_browser.token(guest)
    assert requests.get(status, headers=auth(fresh), timeout=30).status_code == 200
    r = requests.patch(f"{hub.url}/hub/api/shares/{owner}/", headers=auth(owner_token),
                       json={"user": guest}, timeout=30)  # fmt: skip
    assert r.status_code in (200, 204), r.text
    shares = requests.get(f"{hub.url}/hub/api/shares/{owner}/", headers=auth(owner_token),
                          timeout=30).json()["items"]  # fmt: skip
    assert shares == []
