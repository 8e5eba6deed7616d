"""The access rules: the minimum role of every project action, visibility, archived projects."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jupyter_workbench.core import access, projects
from jupyter_workbench.core.access import (
    BLOCKED_WHEN_ARCHIVED,
    PROJECT_RULES,
    Role,
    can_grant,
    require_project,
)
from jupyter_workbench.core.errors import BadRequest, Conflict, Forbidden, NotFound
from jupyter_workbench.db.models import Project
from tests.conftest import ident


def outcomes(call, user, slug, **kw):
    """{action: 'ok' | 'NotFound' | 'Forbidden' | 'Conflict'} for every project action."""

    def fn(s, ctx):
        result = {}
        for action in PROJECT_RULES:
            try:
                require_project(s, ctx, slug, action, **kw)
                result[action] = "ok"
            except (NotFound, Forbidden, Conflict) as exc:
                result[action] = type(exc).__name__
        return result

    return call(user, fn, write=False)


def expected(role: Role, *, archived: bool = False) -> dict[str, str]:
    if role == Role.NONE:
        return dict.fromkeys(PROJECT_RULES, "NotFound")
    result = {}
    for action, needed in PROJECT_RULES.items():
        if role < needed:
            result[action] = "Forbidden"
        elif archived and action in BLOCKED_WHEN_ARCHIVED:
            result[action] = "Conflict"
        else:
            result[action] = "ok"
    return result


@pytest.fixture
def private(make_project, make_team, add_member):
    make_team("ml", maintainer="tina", members=("tom",))
    slug = make_project("olga", "Private")
    add_member(slug, "vic", "viewer", by="olga")
    add_member(slug, "eddie", "editor", by="olga")
    add_member(slug, "ada", "admin", by="olga")
    add_member(slug, team="ml", role="editor", by="olga")
    return slug


CALLERS = {
    "stranger": Role.NONE,
    "vic": Role.VIEWER,
    "eddie": Role.EDITOR,
    "tom": Role.EDITOR,  # through team 'ml'
    "ada": Role.ADMIN,
    "olga": Role.OWNER,
}


def test_every_action_needs_its_minimum_role(private, call):
    for user, role in CALLERS.items():
        assert outcomes(call, user, private) == expected(role), user
    assert outcomes(call, ident("root", is_admin=True), private) == expected(Role.OWNER)


def test_archived_projects_refuse_writes_but_keep_their_rules(private, call):
    call("olga", lambda s, ctx: projects.set_archived(s, ctx, private, True))
    for user, role in CALLERS.items():
        assert outcomes(call, user, private) == expected(role, archived=True), user


def test_deleted_projects_are_found_only_by_their_owner_for_restore(private, call):
    call("olga", lambda s, ctx: projects.soft_delete(s, ctx, private))
    for user in CALLERS:
        assert outcomes(call, user, private) == expected(Role.NONE), user

    def restore_check(s, ctx):
        return require_project(s, ctx, private, "project.restore", include_deleted=True)[1]

    assert call("olga", restore_check) == Role.OWNER
    with pytest.raises(NotFound):
        call("ada", restore_check)


def test_public_and_team_visibility_grant_implicit_viewers(make_project, make_team, call):
    make_team("ml", maintainer="tina", members=("tom",))
    public = make_project("olga", "Public", visibility="public")
    team = make_project("tina", "Team", visibility="team", team="ml")
    assert outcomes(call, "stranger", public) == expected(Role.VIEWER)
    assert outcomes(call, "tom", team) == expected(Role.VIEWER)
    assert outcomes(call, "stranger", team) == expected(Role.NONE)


def test_unknown_project_is_not_found(call):
    with pytest.raises(NotFound, match=r"project 'nope' not found"):
        call("alice", lambda s, ctx: require_project(s, ctx, "nope", "project.read"))


def test_forbidden_message_names_action_and_roles(private, call):
    with pytest.raises(Forbidden) as err:
        call("vic", lambda s, ctx: require_project(s, ctx, private, "model_configs.write"))
    assert err.value.message == (
        "model_configs.write needs the editor role on project 'private'; yours is viewer"
    )
    assert err.value.status == 403


def test_roles_for_projects_agrees_with_project_role(private, make_project, make_team, call):
    public = make_project("olga", "Public", visibility="public")
    team = make_project("tina", "Team", visibility="team", team="ml")
    other = make_project("olga", "Other")

    def both(s, ctx):
        rows = [p for p, _ in projects.list_projects(s, ctx, scope="all").items]
        rows += [s.scalar(select(Project).where(Project.slug == other))]
        batch = access.roles_for_projects(s, ctx.user, rows)
        return {p.slug: (batch[p.id], access.project_role(s, ctx.user, p)) for p in rows}

    for user in [*CALLERS, ident("root", is_admin=True)]:
        for slug, (batch, single) in call(user, both).items():
            assert batch == single, (user, slug)
    assert call("tom", both)[team][0] == Role.VIEWER
    assert call("tom", both)[public][0] == Role.VIEWER
    assert call("tom", both)[private][0] == Role.EDITOR


# -- pure rules (no database) -----------------------------------------------------------------
def test_roles_are_ordered():
    assert Role.NONE < Role.VIEWER < Role.EDITOR < Role.ADMIN < Role.OWNER
    assert Role.ADMIN.label == "admin"


def test_role_parse():
    assert Role.parse("editor") is Role.EDITOR
    assert Role.parse("owner", allow_owner=True) is Role.OWNER
    for bad in ("owner", "Editor", "", None, 2):
        with pytest.raises(BadRequest, match=r"^role: must be one of viewer, editor, admin") as err:
            Role.parse(bad)
        assert err.value.code == "invalid_field"
    with pytest.raises(BadRequest, match=r"^new_role: "):
        Role.parse("x", "new_role")


@pytest.mark.parametrize(
    "granter, role, outcome",
    [
        (Role.OWNER, Role.ADMIN, None),
        (Role.ADMIN, Role.ADMIN, None),
        (Role.ADMIN, Role.VIEWER, None),
        (Role.EDITOR, Role.ADMIN, Forbidden),
        (Role.VIEWER, Role.EDITOR, Forbidden),
        (Role.OWNER, Role.OWNER, BadRequest),
        (Role.ADMIN, Role.OWNER, BadRequest),
    ],
)
def test_can_grant(granter, role, outcome):
    if outcome is None:
        can_grant(granter, role)
    else:
        with pytest.raises(outcome):
            can_grant(granter, role)


def test_rule_tables_are_consistent():
    assert BLOCKED_WHEN_ARCHIVED.issubset(PROJECT_RULES)
    assert access.ALL_ACTIONS.issuperset(PROJECT_RULES)
    assert all(isinstance(role, Role) and role >= Role.VIEWER for role in PROJECT_RULES.values())
    assert PROJECT_RULES["project.read"] == Role.VIEWER
    assert PROJECT_RULES["project.delete"] == Role.OWNER
