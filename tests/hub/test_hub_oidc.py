"""OpenID Connect login on a real JupyterHub, against a real provider on 127.0.0.1.

The hub (configurable-http-proxy, the workbench service) is configured only through the
``OAUTH_OIDC_*`` environment; each test walks the browser's redirect flow: the hub's login
sends the browser to the provider, the user picks their account on the provider's form, the
provider sends the browser back to the hub's callback, the hub sets its login cookie.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from jupyter_workbench import fast_start

from .conftest import REPO, Browser, Hub, auth, free_port, running_hub
from .oidc_provider import Provider, serve_provider

pytestmark = [
    pytest.mark.slow,
    # the provider (oidc-provider-mock) calls an authlib API authlib deprecates
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
]

SERVICE = "/services/workbench/workbench/api/v1"
CONFIG = "jupyterhub_config.py"
USERS = {
    "sub-ada": {"preferred_username": "ada", "email": "ada@lab.test", "groups": ["lab", "vision"]},
    "sub-grace": {"preferred_username": "grace", "email": "grace@lab.test", "groups": ["lab"]},
    "sub-mallory": {"preferred_username": "mallory", "groups": ["visitors"]},
}


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with serve_provider(USERS) as running:
        yield running


@pytest.fixture(scope="module")
def oidc_hub(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub whose only login is the provider: members of 'lab' may log in, grace is admin."""
    oauth = {
        "OAUTH_OIDC_ISSUER": provider.issuer,
        "OAUTH_OIDC_CLIENT_ID": "workbench-hub",
        "OAUTH_OIDC_CLIENT_SECRET": os.urandom(16).hex(),
        "OAUTH_OIDC_GROUPS_CLAIM": "groups",
        "OAUTH_OIDC_ALLOWED_GROUPS": "lab",
        "OAUTH_ADMIN_USERS": "grace",
    }
    with running_hub(tmp_path_factory.mktemp("oidc-hub"), local_accounts=False, **oauth) as hub:
        yield Hub(hub.url, hub.state, hub.process, admin="grace", admin_password="")


def log_in(hub: Hub, provider: Provider, sub: str) -> tuple[Browser, requests.Response]:
    """The browser's round trip: hub -> provider's form (the user picks ``sub``) -> hub.

    Returns the browser and the hub's answer to the provider's redirect back.
    """
    browser = hub.browser()
    http = browser.http
    start = http.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    assert start.status_code == 302, start.text
    authorize = start.headers["Location"]
    assert authorize.startswith(f"{provider.issuer}/oauth2/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["client_id"] == ["workbench-hub"]
    assert query["redirect_uri"] == [f"{hub.url}/hub/oauth_callback"]
    assert set(query["scope"][0].split()) == {"openid", "profile", "email"}
    form = http.get(authorize, timeout=30)
    assert form.status_code == 200
    # the provider's form offers the account; the user clicks it (a submit named 'sub')
    assert re.search(rf'name="sub" value="{re.escape(sub)}"', form.text), form.text[-2000:]
    chosen = http.post(form.url, data={"sub": sub}, allow_redirects=False, timeout=30)
    assert chosen.status_code == 302, chosen.text[-2000:]
    back = chosen.headers["Location"]
    assert back.startswith(f"{hub.url}/hub/oauth_callback?")
    assert parse_qs(urlsplit(back).query)["state"] == query["state"]
    return browser, http.get(back, allow_redirects=False, timeout=60)


def hub_user(hub: Hub, name: str, token: str) -> dict[str, object]:
    r = requests.get(f"{hub.url}/hub/api/users/{name}", headers=auth(token), timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_oidc_login_reaches_the_hub_and_the_workbench(oidc_hub: Hub, provider: Provider) -> None:
    browser, landed = log_in(oidc_hub, provider, "sub-ada")
    assert landed.status_code == 302, landed.text[-2000:]
    assert "jupyterhub-hub-login" in browser.http.cookies
    home = browser.http.get(f"{oidc_hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 200 and "ada" in home.text
    token = browser.token("ada")  # POST /hub/api/users/ada/tokens with the browser's cookie
    me = requests.get(f"{oidc_hub.url}{SERVICE}/me", headers=auth(token), timeout=30)
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "ada"
    assert me.json()["is_admin"] is False
    # the provider's groups claim became hub groups, hence workbench teams
    model = hub_user(oidc_hub, "ada", token)
    assert sorted(model["groups"]) == ["lab", "vision"]  # type: ignore[arg-type]
    assert {"lab", "vision"} <= {t["display_name"] for t in me.json()["teams"]}


def test_no_local_sign_up_or_password_login(oidc_hub: Hub) -> None:
    assert requests.get(f"{oidc_hub.url}/hub/signup", timeout=30).status_code == 404
    page = requests.get(f"{oidc_hub.url}/hub/login", timeout=30)
    assert "Sign in with OpenID Connect" in page.text
    assert 'name="password"' not in page.text


def test_accounts_outside_the_allowed_groups_are_refused(oidc_hub: Hub, provider: Provider) -> None:
    browser, landed = log_in(oidc_hub, provider, "sub-mallory")
    assert landed.status_code == 403
    home = browser.http.get(f"{oidc_hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]


def test_admins_and_groups_follow_the_provider(oidc_hub: Hub, provider: Provider) -> None:
    browser, landed = log_in(oidc_hub, provider, "sub-grace")
    assert landed.status_code == 302, landed.text[-2000:]
    admin_token = browser.token("grace")
    me = requests.get(f"{oidc_hub.url}{SERVICE}/me", headers=auth(admin_token), timeout=30)
    assert me.json()["username"] == "grace" and me.json()["is_admin"] is True
    # the provider moves ada from 'vision' to 'nlp': her next login brings the change along
    provider.set_claims("sub-ada", {**USERS["sub-ada"], "groups": ["lab", "nlp"]})
    try:
        ada, landed = log_in(oidc_hub, provider, "sub-ada")
    finally:
        provider.set_claims("sub-ada", USERS["sub-ada"])
    assert landed.status_code == 302, landed.text[-2000:]
    token = ada.token("ada")
    assert sorted(hub_user(oidc_hub, "ada", admin_token)["groups"]) == ["lab", "nlp"]  # type: ignore[arg-type]
    teams = requests.get(f"{oidc_hub.url}{SERVICE}/me", headers=auth(token), timeout=30).json()
    names = {t["display_name"] for t in teams["teams"]}
    assert "nlp" in names and "vision" not in names


def test_a_hub_with_incomplete_oauth_settings_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH_")}
    env.update(
        WORKBENCH_HUB_DIR=str(tmp_path),
        WORKBENCH_HUB_PORT=str(free_port()),
        OAUTH_GITHUB_ID="gh-id",
        OAUTH_ALLOW_ALL="true",
    )
    done = subprocess.run(
        fast_start.command("jupyterhub", "-f", str(REPO / "hub_config" / CONFIG)),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "OAUTH_GITHUB_SECRET is not set" in done.stdout + done.stderr
