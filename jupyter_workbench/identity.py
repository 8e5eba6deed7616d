"""Who is calling: maps the user that jupyter-server (or JupyterHub) reports to an Identity.

- ``WorkbenchIdentityProvider``: an optional jupyter-server identity provider for standalone use.
  The server's token (or password) stands for one stable owner account instead of a new random
  "Anonymous" user per request, and extra per-user tokens let a small team share one server.
- ``ServerIdentitySource``: turns the handler's ``current_user`` into a core ``Identity``. On a
  JupyterHub single-user server the user carries its hub model (name, groups, admin), which is
  mapped by ``identity_from_hub_model`` -- the hook the hub deployment builds on.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider, User
from traitlets import Dict, Unicode, default

from .core.context import Identity
from .settings import Workbench


class WorkbenchIdentityProvider(IdentityProvider):
    """Token identity for a standalone workbench: one owner, plus optional per-user tokens."""

    owner_username = Unicode(
        help="Username that the server's own token and password stand for. "
        "Default: Workbench.standalone_username (the operating-system user).",
    ).tag(config=True)

    @default("owner_username")
    def _default_owner(self) -> str:
        return str(Workbench(parent=self.parent).standalone_username)

    user_tokens = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="Extra API tokens, each mapped to the username it authenticates "
        "(e.g. {'3f9c...': 'alice'}). Use long random tokens.",
    ).tag(config=True)

    def owner(self) -> User:
        name = self.owner_username
        return User(username=name, name=name, display_name=name, initials=name[:1].upper())

    def generate_anonymous_user(self, handler: Any) -> User:
        # The single server token identifies the server's owner, always the same account.
        return self.owner()

    async def get_user_token(self, handler: Any) -> User | None:
        token = self.get_token(handler)
        if token and token in self.user_tokens:
            name = self.user_tokens[token]
            return User(username=name, name=name, display_name=name, initials=name[:1].upper())
        return await super().get_user_token(handler)

    def is_token_authenticated(self, handler: Any) -> bool:
        token = self.get_token(handler)
        return bool(token and token in self.user_tokens) or super().is_token_authenticated(handler)


def identity_from_hub_model(model: dict[str, Any], admin_users: set[str] | None = None) -> Identity:
    """Map a JupyterHub user model (``/hub/api/user``) to an Identity with groups."""
    name = str(model["name"])
    return Identity(
        username=name,
        display_name=str(model.get("display_name") or name),
        is_admin=bool(model.get("admin")) or name in (admin_users or set()),
        groups=tuple(sorted(str(g) for g in model.get("groups") or ())),
    )


class ServerIdentitySource:
    """Maps jupyter-server's ``current_user`` to the workbench Identity."""

    def __init__(self, settings: Workbench) -> None:
        self.settings = settings

    def identity(self, user: User, identity_provider: IdentityProvider) -> Identity:
        settings = self.settings
        hub_user = getattr(user, "hub_user", None)
        if isinstance(hub_user, dict) and "name" in hub_user:
            return identity_from_hub_model(hub_user, set(settings.admin_users))
        if type(identity_provider) in (IdentityProvider, PasswordIdentityProvider):
            # Stock single-token server: every caller holding the token is its owner (the
            # stock provider invents a random anonymous user per request otherwise).
            name = settings.standalone_username
            return Identity(username=name, display_name=name, is_admin=True)
        owner = isinstance(identity_provider, WorkbenchIdentityProvider) and (
            user.username == identity_provider.owner_username
        )
        return Identity(
            username=user.username,
            display_name=user.display_name or user.name or user.username,
            avatar_url=user.avatar_url,
            color=user.color,
            is_admin=owner or user.username in settings.admin_users,
        )
