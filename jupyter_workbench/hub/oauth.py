"""OAuth login for the hub: GitHub, Google or any OpenID Connect provider, chosen by environment.

``configure_oauth(c, os.environ)`` in ``hub_config/jupyterhub_config.py`` sets up
OAuthenticator when the environment names a provider and returns the provider's name; it
returns None when no ``OAUTH_*`` variable is set, and the hub keeps its local accounts.

Providers (one at a time; when variables of several are set, ``OAUTH_PROVIDER`` must say which):

- ``github``: ``OAUTH_GITHUB_ID``, ``OAUTH_GITHUB_SECRET``; ``OAUTH_GITHUB_ALLOWED_ORGS``
  (``org`` or ``org:team``, comma-separated), ``OAUTH_GITHUB_URL`` (GitHub Enterprise).
- ``google``: ``OAUTH_GOOGLE_ID``, ``OAUTH_GOOGLE_SECRET``; ``OAUTH_GOOGLE_HOSTED_DOMAINS``
  (only accounts of these Google Workspace domains may log in).
- ``oidc`` (any OpenID Connect provider: Keycloak, Dex, Authentik, Entra ID ...):
  ``OAUTH_OIDC_CLIENT_ID``, ``OAUTH_OIDC_CLIENT_SECRET`` and ``OAUTH_OIDC_ISSUER`` (its
  ``/.well-known/openid-configuration`` is read when the hub starts) or the endpoints
  ``OAUTH_OIDC_AUTHORIZE_URL``, ``OAUTH_OIDC_TOKEN_URL``, ``OAUTH_OIDC_USERDATA_URL``;
  ``OAUTH_OIDC_USERNAME_CLAIM`` (``preferred_username``), ``OAUTH_OIDC_SCOPES``
  (``openid profile email``), ``OAUTH_OIDC_LOGIN_SERVICE`` (the login button's name),
  ``OAUTH_OIDC_GROUPS_CLAIM`` (the claim whose groups become the user's hub groups, hence
  workbench teams), ``OAUTH_OIDC_ALLOWED_GROUPS``, ``OAUTH_OIDC_ADMIN_GROUPS``.

For every provider: ``OAUTH_CALLBACK_URL`` (default ``http://{WORKBENCH_HUB_IP}:
{WORKBENCH_HUB_PORT}/hub/oauth_callback``; guessed from each request when the hub listens on
all addresses), ``OAUTH_ADMIN_USERS`` (``WORKBENCH_HUB_ADMIN`` is an admin too when it is set),
and who may log in — at least one of ``OAUTH_ALLOW_ALL=true`` (everyone the provider
authenticates), ``OAUTH_ALLOWED_USERS``, ``OAUTH_ALLOW_EXISTING_USERS=true`` (users an admin
added on /hub/admin) or a provider's own rule (GitHub organizations, OIDC groups).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

PROVIDERS = ("github", "google", "oidc")
PREFIXES = {"github": "OAUTH_GITHUB_", "google": "OAUTH_GOOGLE_", "oidc": "OAUTH_OIDC_"}
AUTHENTICATORS = {
    "github": "oauthenticator.github.GitHubOAuthenticator",
    "google": "oauthenticator.google.GoogleOAuthenticator",
    "oidc": "oauthenticator.generic.GenericOAuthenticator",
}
# settings of every provider; set without a provider they are a mistake worth naming
COMMON = (
    "OAUTH_CALLBACK_URL",
    "OAUTH_ADMIN_USERS",
    "OAUTH_ALLOWED_USERS",
    "OAUTH_ALLOW_ALL",
    "OAUTH_ALLOW_EXISTING_USERS",
)
DISCOVERY_TIMEOUT = 5.0


class OAuthConfigError(ValueError):
    """The environment's OAuth settings are incomplete or contradictory (the message says how)."""


def oauth_provider(env: Mapping[str, str]) -> str | None:
    """The provider the environment configures ('github', 'google', 'oidc'), None for none."""
    chosen = env.get("OAUTH_PROVIDER", "").strip().lower()
    if chosen:
        if chosen not in PROVIDERS:
            raise OAuthConfigError(
                f"OAUTH_PROVIDER={chosen!r} is not one of {', '.join(PROVIDERS)}"
            )
        return chosen
    found = {
        provider: sorted(k for k, v in env.items() if k.startswith(prefix) and v.strip())
        for provider, prefix in PREFIXES.items()
    }
    configured = [provider for provider, keys in found.items() if keys]
    if len(configured) > 1:
        named = "; ".join(f"{p}: {', '.join(found[p])}" for p in configured)
        raise OAuthConfigError(
            f"OAuth settings of more than one provider are set ({named}): the hub logs in "
            f"through one; set OAUTH_PROVIDER to one of {', '.join(configured)}"
        )
    if not configured:
        stray = [k for k in COMMON if env.get(k, "").strip()]
        if stray:
            raise OAuthConfigError(
                f"{', '.join(stray)} set but no OAuth provider is configured: set "
                "OAUTH_GITHUB_ID/OAUTH_GITHUB_SECRET, OAUTH_GOOGLE_ID/OAUTH_GOOGLE_SECRET or "
                "OAUTH_OIDC_CLIENT_ID/OAUTH_OIDC_CLIENT_SECRET with OAUTH_OIDC_ISSUER"
            )
        return None
    return configured[0]


def configure_oauth(c: Any, env: Mapping[str, str]) -> str | None:
    """Make the hub log in through the OAuth provider ``env`` configures; return its name.

    Returns None (and leaves ``c`` alone) when no provider is configured. Raises
    OAuthConfigError naming the variable to fix when the settings are incomplete.
    """
    provider = oauth_provider(env)
    if provider is None:
        return None
    settings = PROVIDER_SETTINGS[provider](env)
    settings.update(access_settings(env, provider, settings))
    callback = callback_url(env, c)
    if callback:
        settings["oauth_callback_url"] = callback
    authenticator = AUTHENTICATORS[provider]
    c.JupyterHub.authenticator_class = authenticator
    section = c[authenticator.rsplit(".", 1)[1]]
    for name, value in settings.items():
        setattr(section, name, value)
    return provider


def github_settings(env: Mapping[str, str]) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "client_id": required(env, "OAUTH_GITHUB_ID", "github"),
        "client_secret": required(env, "OAUTH_GITHUB_SECRET", "github"),
    }
    orgs = as_set(env, "OAUTH_GITHUB_ALLOWED_ORGS")
    if orgs:
        settings["allowed_organizations"] = orgs
        settings["scope"] = ["read:org"]  # private memberships count too
    if env.get("OAUTH_GITHUB_URL", "").strip():
        settings["github_url"] = env["OAUTH_GITHUB_URL"].strip().rstrip("/")
    return settings


def google_settings(env: Mapping[str, str]) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "client_id": required(env, "OAUTH_GOOGLE_ID", "google"),
        "client_secret": required(env, "OAUTH_GOOGLE_SECRET", "google"),
    }
    domains = sorted(d.lower() for d in as_set(env, "OAUTH_GOOGLE_HOSTED_DOMAINS"))
    if domains:
        settings["hosted_domain"] = domains
    return settings


def oidc_settings(env: Mapping[str, str]) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "client_id": required(env, "OAUTH_OIDC_CLIENT_ID", "oidc"),
        "client_secret": required(env, "OAUTH_OIDC_CLIENT_SECRET", "oidc"),
        "login_service": env.get("OAUTH_OIDC_LOGIN_SERVICE", "").strip() or "OpenID Connect",
        "username_claim": env.get("OAUTH_OIDC_USERNAME_CLAIM", "").strip() or "preferred_username",
        "scope": as_list(env, "OAUTH_OIDC_SCOPES") or ["openid", "profile", "email"],
    }
    settings.update(oidc_endpoints(env))
    allowed, admins = (
        as_set(env, "OAUTH_OIDC_ALLOWED_GROUPS"),
        as_set(env, "OAUTH_OIDC_ADMIN_GROUPS"),
    )
    claim = env.get("OAUTH_OIDC_GROUPS_CLAIM", "").strip() or (
        "groups" if allowed or admins else ""
    )
    if claim:
        # the provider owns the membership of these users: each login replaces their hub groups
        settings["manage_groups"] = True
        settings["auth_state_groups_key"] = ClaimGroups(claim)
        if allowed:
            settings["allowed_groups"] = allowed
        if admins:
            settings["admin_groups"] = admins
    return settings


PROVIDER_SETTINGS = {"github": github_settings, "google": google_settings, "oidc": oidc_settings}
ENDPOINTS = {
    "authorize_url": ("OAUTH_OIDC_AUTHORIZE_URL", "authorization_endpoint"),
    "token_url": ("OAUTH_OIDC_TOKEN_URL", "token_endpoint"),
    "userdata_url": ("OAUTH_OIDC_USERDATA_URL", "userinfo_endpoint"),
}


def oidc_endpoints(env: Mapping[str, str]) -> dict[str, str]:
    """The provider's endpoints: explicit variables first, else its discovery document."""
    explicit = {trait: env.get(var, "").strip() for trait, (var, _) in ENDPOINTS.items()}
    if all(explicit.values()):
        return explicit
    issuer = env.get("OAUTH_OIDC_ISSUER", "").strip().rstrip("/")
    if not issuer:
        missing = [ENDPOINTS[t][0] for t, url in explicit.items() if not url]
        raise OAuthConfigError(
            "OpenID Connect login needs OAUTH_OIDC_ISSUER (its discovery document gives the "
            f"endpoints) or the endpoints themselves: {', '.join(missing)} missing"
        )
    document = discover(issuer, float(env.get("OAUTH_OIDC_DISCOVERY_TIMEOUT") or DISCOVERY_TIMEOUT))
    found = {}
    for trait, (var, key) in ENDPOINTS.items():
        url = explicit[trait] or str(document.get(key) or "")
        if not url:
            raise OAuthConfigError(
                f"{issuer}'s OpenID configuration has no {key}: set {var} explicitly"
            )
        found[trait] = url
    return found


def discover(issuer: str, timeout: float) -> dict[str, Any]:
    """The provider's ``/.well-known/openid-configuration`` (read once, when the hub starts)."""
    url = f"{issuer}/.well-known/openid-configuration"
    hint = (
        "check OAUTH_OIDC_ISSUER, or set OAUTH_OIDC_AUTHORIZE_URL, OAUTH_OIDC_TOKEN_URL and "
        "OAUTH_OIDC_USERDATA_URL"
    )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise OAuthConfigError(
            f"cannot read the OpenID configuration at {url} ({e}): {hint}"
        ) from e
    if not isinstance(document, dict):
        raise OAuthConfigError(f"{url} is not an OpenID configuration (no JSON object): {hint}")
    return document


class ClaimGroups:
    """Reads a user's groups from one claim of their userinfo (any claim name, dots included)."""

    def __init__(self, claim: str) -> None:
        self.claim = claim

    def __call__(self, auth_state: dict[str, Any]) -> list[str]:
        value = (auth_state.get("oauth_user") or {}).get(self.claim) or []
        return [value] if isinstance(value, str) else [str(group) for group in value]

    def __repr__(self) -> str:
        return f"ClaimGroups({self.claim!r})"


def access_settings(
    env: Mapping[str, str], provider: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Who is admin and who may log in; refuses a configuration that lets no one in."""
    admins = as_set(env, "OAUTH_ADMIN_USERS")
    if env.get("WORKBENCH_HUB_ADMIN", "").strip():
        # only when set: the local default 'admin' may well be a stranger's account name here
        admins.add(env["WORKBENCH_HUB_ADMIN"].strip())
    access: dict[str, Any] = {"admin_users": admins}
    allowed = as_set(env, "OAUTH_ALLOWED_USERS")
    if allowed:
        access["allowed_users"] = allowed
    access["allow_all"] = flag(env, "OAUTH_ALLOW_ALL")
    access["allow_existing_users"] = flag(env, "OAUTH_ALLOW_EXISTING_USERS")
    own_rule = {"github": "allowed_organizations", "google": "", "oidc": "allowed_groups"}[provider]
    if not (allowed or access["allow_all"] or access["allow_existing_users"]) and not (
        own_rule and settings.get(own_rule)
    ):
        rules = "OAUTH_ALLOW_ALL=true, OAUTH_ALLOWED_USERS, OAUTH_ALLOW_EXISTING_USERS=true"
        rules += {
            "github": " or OAUTH_GITHUB_ALLOWED_ORGS",
            "google": " (with OAUTH_GOOGLE_HOSTED_DOMAINS to keep other domains out)",
            "oidc": " or OAUTH_OIDC_ALLOWED_GROUPS",
        }[provider]
        raise OAuthConfigError(f"{provider} login lets no one in: set who may log in with {rules}")
    return access


def callback_url(env: Mapping[str, str], c: Any) -> str:
    """Where the provider sends users back: OAUTH_CALLBACK_URL, else the hub's own address."""
    explicit = env.get("OAUTH_CALLBACK_URL", "").strip()
    if explicit:
        return explicit
    ip = env.get("WORKBENCH_HUB_IP", "127.0.0.1").strip()
    if ip in ("", "0.0.0.0", "::"):
        return ""  # listening everywhere: OAuthenticator uses each request's own host
    host = f"[{ip}]" if ":" in ip else ip
    port = env.get("WORKBENCH_HUB_PORT", "8000").strip()
    base = str(c.JupyterHub.base_url).strip("/") if "base_url" in c.JupyterHub else ""
    path = "/".join(part for part in (base, "hub", "oauth_callback") if part)
    return f"http://{host}:{port}/{path}"


def required(env: Mapping[str, str], name: str, provider: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise OAuthConfigError(f"{provider} login is configured but {name} is not set")
    return value


def as_list(env: Mapping[str, str], name: str) -> list[str]:
    """A comma- or space-separated list variable, in order, without repeats."""
    return list(dict.fromkeys(env.get(name, "").replace(",", " ").split()))


def as_set(env: Mapping[str, str], name: str) -> set[str]:
    return set(as_list(env, name))


def flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise OAuthConfigError(f"{name}={env[name]!r} is not a boolean: use true or false")
