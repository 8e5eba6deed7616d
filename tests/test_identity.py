"""Who the caller is: standalone token users, per-user tokens and JupyterHub users with groups."""

from __future__ import annotations

from types import SimpleNamespace

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets.config import Config

from jupyter_workbench.core.teams import list_teams
from jupyter_workbench.identity import (
    ServerIdentitySource,
    WorkbenchIdentityProvider,
    identity_from_hub_model,
)
from jupyter_workbench.settings import Workbench


def test_hub_model_maps_name_groups_and_admin() -> None:
    identity = identity_from_hub_model(
        {"name": "ada@example.org", "admin": False, "groups": ["ml-team", "Data Eng"]}, {"bob"}
    )
    assert identity.username == "ada@example.org"
    assert identity.groups == ("Data Eng", "ml-team")
    assert identity.is_admin is False
    assert identity_from_hub_model({"name": "bob", "groups": []}, {"bob"}).is_admin is True
    assert identity_from_hub_model({"name": "root", "admin": True}).is_admin is True


def test_server_source_recognises_a_hub_user() -> None:
    source = ServerIdentitySource(Workbench())
    user = User(username="ada")
    user.hub_user = {"name": "ada", "admin": True, "groups": ["ml"]}  # type: ignore[attr-defined]
    identity = source.identity(user, WorkbenchIdentityProvider())
    assert identity.groups == ("ml",) and identity.is_admin


def test_stock_token_server_maps_every_caller_to_the_owner() -> None:
    source = ServerIdentitySource(
        Workbench(config=Config({"Workbench": {"standalone_username": "me"}}))
    )
    anonymous = User(username="3f1c2b9a", name="Anonymous Io")
    identity = source.identity(anonymous, IdentityProvider())
    assert identity.username == "me" and identity.is_admin


def test_per_user_tokens_are_distinct_non_admin_users() -> None:
    settings = Workbench(config=Config({"Workbench": {"admin_users": {"carol"}}}))
    provider = WorkbenchIdentityProvider(owner_username="owner")
    source = ServerIdentitySource(settings)
    alice = source.identity(User(username="alice"), provider)
    assert alice.username == "alice" and not alice.is_admin
    assert source.identity(User(username="carol"), provider).is_admin
    assert source.identity(provider.owner(), provider).is_admin


async def test_user_tokens_authenticate_as_their_user() -> None:
    provider = WorkbenchIdentityProvider(token="server-token", user_tokens={"t-alice": "alice"})
    handler = SimpleNamespace(
        request=SimpleNamespace(headers={"Authorization": "token t-alice"}),
        get_argument=lambda *_a, **_k: None,
        token="server-token",
    )
    user = await provider.get_user_token(handler)
    assert user is not None and user.username == "alice"
    assert provider.is_token_authenticated(handler)


def test_hub_groups_become_teams_and_follow_changes(call) -> None:
    from jupyter_workbench.core.context import Identity

    ada = Identity(username="ada", groups=("ML Team", "data"))
    teams = call(ada, lambda s, ctx: sorted(t.name for t in list_teams(s, ctx, mine=True).items))
    assert teams == ["data", "ml-team"]
    moved = Identity(username="ada", groups=("data",))
    teams = call(moved, lambda s, ctx: sorted(t.name for t in list_teams(s, ctx, mine=True).items))
    assert teams == ["data"]
    source = call("bob", lambda s, ctx: {t.name: t.source for t in list_teams(s, ctx).items})
    assert source == {"data": "hub", "ml-team": "hub"}
