"""Which login the hub gets from its environment (no hub: the authenticators are built from
the configuration exactly as JupyterHub builds them)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config, PyFileConfigLoader
from traitlets.utils.importstring import import_item

from jupyter_workbench.hub.oauth import OAuthConfigError, configure_oauth

from .conftest import REPO, free_port
from .oidc_provider import serve_provider

GITHUB = {"OAUTH_GITHUB_ID": "gh-id", "OAUTH_GITHUB_SECRET": "gh-secret"}
GOOGLE = {"OAUTH_GOOGLE_ID": "g-id", "OAUTH_GOOGLE_SECRET": "g-secret"}
OIDC = {"OAUTH_OIDC_CLIENT_ID": "wb", "OAUTH_OIDC_CLIENT_SECRET": "s3cret"}
ENDPOINTS = {
    "OAUTH_OIDC_AUTHORIZE_URL": "https://id.lab.test/authorize",
    "OAUTH_OIDC_TOKEN_URL": "https://id.lab.test/token",
    "OAUTH_OIDC_USERDATA_URL": "https://id.lab.test/userinfo",
}
ALLOW_ALL = {"OAUTH_ALLOW_ALL": "true"}


def authenticator(env: dict[str, str]) -> Any:
    """The authenticator JupyterHub would build from this environment (None: local accounts)."""
    c = Config()
    if configure_oauth(c, env) is None:
        return None
    return import_item(c.JupyterHub.authenticator_class)(config=c)


def test_no_oauth_variables_keep_the_local_accounts() -> None:
    c = Config()
    assert configure_oauth(c, {"PATH": "/usr/bin", "WORKBENCH_HUB_ADMIN": "root"}) is None
    assert c == Config()


def test_github_variables_choose_github() -> None:
    env = {**GITHUB, "OAUTH_GITHUB_ALLOWED_ORGS": "jupyter-lab, acme:ml-team"}
    auth = authenticator({**env, "OAUTH_ADMIN_USERS": "octocat", "WORKBENCH_HUB_PORT": "9000"})
    assert type(auth).__name__ == "GitHubOAuthenticator"
    assert (auth.client_id, auth.client_secret) == ("gh-id", "gh-secret")
    assert auth.allowed_organizations == {"jupyter-lab", "acme:ml-team"}
    assert "read:org" in auth.scope  # private org memberships count
    assert auth.admin_users == {"octocat"}
    assert auth.allow_all is False
    assert auth.oauth_callback_url == "http://127.0.0.1:9000/hub/oauth_callback"
    assert auth.login_url("/hub/") == "/hub/oauth_login"
    assert auth.authorize_url == "https://github.com/login/oauth/authorize"


def test_github_enterprise_url() -> None:
    auth = authenticator({**GITHUB, **ALLOW_ALL, "OAUTH_GITHUB_URL": "https://git.lab.test/"})
    assert auth.authorize_url == "https://git.lab.test/login/oauth/authorize"


def test_google_variables_choose_google() -> None:
    env = {
        **GOOGLE,
        **ALLOW_ALL,
        "OAUTH_GOOGLE_HOSTED_DOMAINS": "Lab.test",
        "OAUTH_CALLBACK_URL": "https://hub.lab.test/hub/oauth_callback",
        "WORKBENCH_HUB_ADMIN": "boss@lab.test",
    }
    auth = authenticator(env)
    assert type(auth).__name__ == "GoogleOAuthenticator"
    assert (auth.client_id, auth.client_secret) == ("g-id", "g-secret")
    assert auth.hosted_domain == ["lab.test"]
    assert auth.allow_all is True
    assert auth.admin_users == {"boss@lab.test"}  # WORKBENCH_HUB_ADMIN stays admin
    assert auth.oauth_callback_url == "https://hub.lab.test/hub/oauth_callback"


def test_the_local_default_admin_name_is_not_an_oauth_admin() -> None:
    # 'admin' is the local accounts' default; on GitHub it is somebody else's account
    assert authenticator({**GITHUB, **ALLOW_ALL}).admin_users == set()


def test_a_hub_on_every_address_leaves_the_callback_to_each_request() -> None:
    auth = authenticator({**GITHUB, **ALLOW_ALL, "WORKBENCH_HUB_IP": "0.0.0.0"})
    assert auth.oauth_callback_url == ""


def test_oidc_reads_the_providers_discovery_document() -> None:
    with serve_provider() as provider:
        env = {
            **OIDC,
            "OAUTH_OIDC_ISSUER": provider.issuer + "/",
            "OAUTH_OIDC_GROUPS_CLAIM": "https://lab.test/groups",
            "OAUTH_OIDC_ALLOWED_GROUPS": "lab",
            "OAUTH_OIDC_ADMIN_GROUPS": "lab-admins",
            "OAUTH_OIDC_USERNAME_CLAIM": "email",
            "OAUTH_OIDC_SCOPES": "openid,email groups",
            "OAUTH_OIDC_LOGIN_SERVICE": "Lab SSO",
        }
        auth = authenticator(env)
    assert type(auth).__name__ == "GenericOAuthenticator"
    assert auth.authorize_url == f"{provider.issuer}/oauth2/authorize"
    assert auth.token_url == f"{provider.issuer}/oauth2/token"
    assert auth.userdata_url == f"{provider.issuer}/userinfo"
    assert (auth.client_id, auth.client_secret) == ("wb", "s3cret")
    assert auth.username_claim == "email"
    assert auth.scope == ["openid", "email", "groups"]
    assert auth.login_service == "Lab SSO"
    assert auth.manage_groups is True
    assert auth.allowed_groups == {"lab"} and auth.admin_groups == {"lab-admins"}
    state = {"oauth_user": {"https://lab.test/groups": ["lab", "vision"]}}
    assert asyncio.run(auth.get_user_groups(state)) == {"lab", "vision"}
    assert asyncio.run(auth.get_user_groups({"oauth_user": {}})) == set()


def test_oidc_defaults_and_explicit_endpoints_need_no_discovery() -> None:
    auth = authenticator({**OIDC, **ENDPOINTS, **ALLOW_ALL})
    assert auth.userdata_url == "https://id.lab.test/userinfo"
    assert auth.username_claim == "preferred_username"
    assert auth.scope == ["openid", "profile", "email"]
    assert auth.login_service == "OpenID Connect"
    assert auth.manage_groups is False  # no groups claim: hub groups stay the hub's own


def test_oauth_provider_chooses_among_several() -> None:
    env = {**GITHUB, **GOOGLE, **ALLOW_ALL, "OAUTH_PROVIDER": "google"}
    assert type(authenticator(env)).__name__ == "GoogleOAuthenticator"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OAUTH_GITHUB_ID": "x", **ALLOW_ALL}, "OAUTH_GITHUB_SECRET is not set"),
        ({"OAUTH_GOOGLE_SECRET": "x", **ALLOW_ALL}, "OAUTH_GOOGLE_ID is not set"),
        ({"OAUTH_OIDC_CLIENT_SECRET": "x", **ALLOW_ALL}, "OAUTH_OIDC_CLIENT_ID is not set"),
        ({**OIDC, **ALLOW_ALL}, "OAUTH_OIDC_ISSUER"),
        (
            {**OIDC, **ALLOW_ALL, "OAUTH_OIDC_AUTHORIZE_URL": "https://id.lab.test/a"},
            "OAUTH_OIDC_TOKEN_URL, OAUTH_OIDC_USERDATA_URL missing",
        ),
        ({**GITHUB, **GOOGLE, **ALLOW_ALL}, "set OAUTH_PROVIDER to one of github, google"),
        ({**GITHUB, "OAUTH_PROVIDER": "gitlab"}, "OAUTH_PROVIDER='gitlab' is not one of"),
        ({**GITHUB}, "github login lets no one in: set who may log in with OAUTH_ALLOW_ALL"),
        ({**OIDC, **ENDPOINTS}, "OAUTH_OIDC_ALLOWED_GROUPS"),
        ({**GITHUB, "OAUTH_ALLOW_ALL": "maybe"}, "OAUTH_ALLOW_ALL='maybe' is not a boolean"),
        ({"OAUTH_ALLOWED_USERS": "ada"}, "OAUTH_ALLOWED_USERS set but no OAuth provider"),
    ],
)
def test_incomplete_settings_name_what_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(OAuthConfigError, match=message.replace("(", r"\(")):
        configure_oauth(Config(), env)


def test_an_unreachable_issuer_is_named() -> None:
    issuer = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(OAuthConfigError) as e:
        configure_oauth(Config(), {**OIDC, **ALLOW_ALL, "OAUTH_OIDC_ISSUER": issuer})
    assert f"{issuer}/.well-known/openid-configuration" in str(e.value)
    assert "OAUTH_OIDC_AUTHORIZE_URL" in str(e.value)


def load_hub_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> Any:
    for key in [*GITHUB, *GOOGLE, *OIDC, "OAUTH_ALLOW_ALL", "OAUTH_PROVIDER"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WORKBENCH_HUB_DIR", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(REPO / "hub_config")).load_config()


def test_the_hub_config_logs_in_through_oauth_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local = load_hub_config(monkeypatch, tmp_path, {})
    assert local.JupyterHub.authenticator_class == (
        "jupyter_workbench.hub.signups.WorkbenchNativeAuthenticator"
    )
    github = load_hub_config(monkeypatch, tmp_path, {**GITHUB, **ALLOW_ALL})
    assert github.JupyterHub.authenticator_class == "oauthenticator.github.GitHubOAuthenticator"
    assert "NativeAuthenticator" not in github
