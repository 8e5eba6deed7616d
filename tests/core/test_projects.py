"""Projects: slugs, visibility, updates, archive, trash (soft delete, restore, purge), transfer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from jupyter_workbench.core import model_configs, projects, teams, users
from jupyter_workbench.core.access import Role
from jupyter_workbench.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
)
from jupyter_workbench.core.validation import check_slug
from jupyter_workbench.db.models import Project, ProjectMember, utcnow
from tests.conftest import ident


def project_json(call, user, slug):
    def fn(s, ctx):
        project, role = projects.get(s, ctx, slug)
        return projects.project_json(s, project, role)

    return call(user, fn)


def listed(call, user, **kw):
    def fn(s, ctx):
        return [p.slug for p, _ in projects.list_projects(s, ctx, **kw).items]

    return call(user, fn)


def owner_rows(service, slug):
    with service.db.transaction() as s:
        return list(
            s.execute(
                select(ProjectMember.user_id, ProjectMember.role)
                .join(Project, Project.id == ProjectMember.project_id)
                .where(Project.slug == slug, ProjectMember.role == "owner")
            )
        )


# -- create and slugs ----------------------------------------------------------------------
def test_create_makes_the_caller_owner_of_a_private_project(call):
    slug = call("alice", lambda s, ctx: projects.create(s, ctx, name="Churn Model").slug)
    data = project_json(call, "alice", slug)
    assert data["slug"] == "churn-model"
    assert data["name"] == "Churn Model"
    assert data["owner"] == "alice"
    assert data["my_role"] == "owner"
    assert data["visibility"] == "private"
    assert data["archived"] is False and data["deleted_at"] is None
    assert data["etag"].startswith('"project-')


def test_slug_is_derived_from_the_name_and_numbered_on_clashes(make_project):
    assert make_project("alice", "My Project!") == "my-project"
    assert make_project("bob", "my project") == "my-project-2"
    assert make_project("alice", "MY  PROJECT") == "my-project-3"
    assert make_project("alice", "Ünïcödé Daten") == "unicode-daten"
    assert make_project("alice", "!!!") == "project"


def test_numbered_slugs_of_long_names_are_still_valid_slugs(make_project):
    name = "a" * 61 + " bb"  # slug: 61 a's, '-', 'bb' = 64 characters
    assert make_project("alice", name) == "a" * 61 + "-bb"
    second = make_project("alice", name)
    assert second != "a" * 61 + "-bb" and len(second) <= 64
    check_slug(second, "slug")


def test_many_projects_with_the_same_long_name_get_distinct_slugs(make_project):
    name = "a" * 61 + " bb"
    slugs = [make_project("alice", name) for _ in range(3)]
    assert len(set(slugs)) == 3
    for slug in slugs:
        check_slug(slug, "slug")


def test_clash_numbering_ignores_unrelated_numbered_slugs(make_project):
    assert make_project("alice", "My Project") == "my-project"
    assert make_project("alice", "My Project 2024") == "my-project-2024"
    assert make_project("alice", "My Project") == "my-project-2"


def test_explicit_slug_is_used_and_a_clash_is_a_conflict(make_project, count_rows):
    assert make_project("alice", "Anything", slug="churn") == "churn"
    before = count_rows(Project)
    with pytest.raises(Conflict, match=r"^slug: .*'churn'"):
        make_project("bob", "Other", slug="churn")
    assert count_rows(Project) == before


def test_invalid_explicit_slug_is_a_bad_request(make_project):
    for bad in ["My Slug", "-lead", "trail-", "dou--ble", "x" * 65, "ümlaut", ""]:
        with pytest.raises(BadRequest, match=r"^slug: "):
            make_project("alice", "Name", slug=bad)


def test_names_show_as_they_read(make_project):
    """A name is one line and cannot reorder how it shows: 'invoice\u202efdp.exe' shows as
    'invoiceexe.pdf'; in prose (descriptions) such characters stay allowed."""
    for bad, needle in [
        ("invoice\u202efdp.exe", "bidirectional control"),
        ("a\u2066b", "bidirectional control"),
        ("two\nlines", "one line"),
        ("tab\there", "one line"),
    ]:
        with pytest.raises(BadRequest, match=rf"^name: must .*{needle}"):
            make_project("alice", bad)
    slug = make_project("alice", "\u05e9\u05dc\u05d5\u05dd world", description="\u202bRTL\u202c")
    assert slug


def test_create_validates_name_visibility_and_team(make_project, make_team):
    with pytest.raises(BadRequest, match=r"^name: must not be empty"):
        make_project("alice", "   ")
    with pytest.raises(BadRequest, match=r"^name: .*at most 200"):
        make_project("alice", "x" * 201)
    with pytest.raises(BadRequest, match=r"^visibility: "):
        make_project("alice", "P", visibility="secret")
    with pytest.raises(BadRequest, match=r"^team: visibility 'team' needs an owning team"):
        make_project("alice", "P", visibility="team")
    make_team("ml", maintainer="bob")
    with pytest.raises(BadRequest, match=r"^team: ") as err:
        make_project("alice", "P", visibility="team", team="ml")  # alice is not in team ml
    assert err.value.code == "unknown_team"


# -- visibility and roles ------------------------------------------------------------------
def test_private_project_is_invisible_to_other_users(make_project, call, role_of):
    slug = make_project("alice", "Secret")
    assert role_of("bob", slug) == "none"
    with pytest.raises(NotFound, match=r"'secret' not found"):
        call("bob", lambda s, ctx: projects.update(s, ctx, slug, {"name": "x"}))
    assert slug not in listed(call, "bob", scope="all")


def test_public_project_makes_everyone_an_implicit_viewer(make_project, call, role_of):
    slug = make_project("alice", "Open", visibility="public")
    assert role_of("bob", slug) == "viewer"
    assert slug in listed(call, "bob", scope="all")
    assert slug not in listed(call, "bob")  # 'member' scope: bob is not a member
    with pytest.raises(Forbidden, match=r"project.update needs the admin role"):
        call("bob", lambda s, ctx: projects.update(s, ctx, slug, {"name": "x"}))


def test_team_visibility_makes_the_owning_teams_members_viewers(
    make_project, make_team, call, role_of
):
    make_team("ml", maintainer="alice", members=("bob",))
    slug = make_project("alice", "Team Work", visibility="team", team="ml")
    assert project_json(call, "alice", slug)["team"] == "ml"
    assert role_of("bob", slug) == "viewer"
    assert role_of("carol", slug) == "none"
    assert slug in listed(call, "bob", scope="all")
    assert slug not in listed(call, "carol", scope="all")


def test_workbench_admins_act_as_owners_everywhere(make_project, call, role_of):
    slug = make_project("alice", "Private")
    root = ident("root", is_admin=True)
    assert role_of(root, slug) == "owner"
    assert slug in listed(call, root, scope="all")
    call(root, lambda s, ctx: projects.update(s, ctx, slug, {"name": "Renamed by admin"}))
    call(root, lambda s, ctx: projects.soft_delete(s, ctx, slug))
    assert role_of("alice", slug) == "none"


def test_a_teams_project_role_applies_to_every_team_member(
    make_project, make_team, add_member, role_of
):
    make_team("ml", maintainer="bob", members=("carol",))
    slug = make_project("alice", "Shared")
    add_member(slug, team="ml", role="editor")
    assert role_of("bob", slug) == "editor"
    assert role_of("carol", slug) == "editor"
    add_member(slug, "carol", "admin")  # the highest of direct and team roles counts
    assert role_of("carol", slug) == "admin"


def test_list_projects_filters(make_project, call, add_member):
    a = make_project("alice", "Alpha Churn")
    b = make_project("alice", "Beta", visibility="public")
    c = make_project("bob", "Gamma Churn")
    add_member(c, "alice", "editor", by="bob")
    call("alice", lambda s, ctx: projects.set_archived(s, ctx, b, True))
    assert listed(call, "alice") == [a, b, c]  # sorted by name
    assert listed(call, "alice", q="churn") == [a, c]
    assert listed(call, "alice", visibility="public") == [b]
    assert listed(call, "alice", archived=True) == [b]
    assert listed(call, "alice", archived=False) == [a, c]
    assert listed(call, "alice", min_role=Role.ADMIN) == [a, b]
    assert listed(call, "alice", sort="-name") == [c, b, a]
    with pytest.raises(BadRequest, match=r"^scope: "):
        listed(call, "alice", scope="everything")
    with pytest.raises(BadRequest, match=r"^visibility: "):
        listed(call, "alice", visibility="hidden")
    # '%' and '_' are characters like any other; letters beyond ASCII in any case too (SQLite's
    # own lower() folds ASCII only)
    d = make_project("alice", "100% Ölmodell_v2")
    assert listed(call, "alice", q="%") == [d] and listed(call, "alice", q="l_v") == [d]
    assert listed(call, "alice", q="ölm") == [d] and listed(call, "alice", q="ÖLMODELL") == [d]


def test_list_reports_the_callers_role_on_each_project(make_project, call, add_member):
    mine = make_project("alice", "A")
    shared = make_project("bob", "B")
    public = make_project("carol", "C", visibility="public")
    add_member(shared, "alice", "editor", by="bob")

    def fn(s, ctx):
        page = projects.list_projects(s, ctx, scope="all")
        return {p["slug"]: (p["my_role"], p["owner"]) for p in projects.projects_json(s, page)}

    assert call("alice", fn) == {
        mine: ("owner", "alice"),
        shared: ("editor", "bob"),
        public: ("viewer", "carol"),
    }


# -- update ----------------------------------------------------------------------------------
def test_admin_updates_name_description_and_visibility(make_project, add_member, call):
    slug = make_project("alice", "Old")
    add_member(slug, "bob", "admin")
    changes = {"name": "New", "description": "about it", "visibility": "public"}
    call("bob", lambda s, ctx: projects.update(s, ctx, slug, changes))
    data = project_json(call, "carol", slug)  # carol can now see it: it is public
    assert (data["name"], data["description"], data["visibility"]) == ("New", "about it", "public")
    assert data["slug"] == slug  # renaming keeps the slug


def test_update_needs_the_admin_role(make_project, add_member, call):
    slug = make_project("alice", "P")
    for user, role in (("bob", "viewer"), ("carol", "editor")):
        add_member(slug, user, role)
        with pytest.raises(Forbidden, match=rf"admin role.*yours is {role}"):
            call(user, lambda s, ctx, u=user: projects.update(s, ctx, slug, {"name": "x"}))
    with pytest.raises(NotFound):
        call("dave", lambda s, ctx: projects.update(s, ctx, slug, {"name": "x"}))


def test_update_validates_fields(make_project, call):
    slug = make_project("alice", "P")
    for changes, prefix in [
        ({"name": ""}, "name:"),
        ({"description": "x" * 10_001}, "description:"),
        ({"visibility": "world"}, "visibility:"),
        ({"visibility": "team"}, "team:"),
        ({"team": "nope"}, "team:"),
        ({"slug": "Bad Slug"}, "slug:"),
    ]:
        with pytest.raises(BadRequest, match=rf"^{prefix}"):
            call("alice", lambda s, ctx, c=changes: projects.update(s, ctx, slug, c))
    assert project_json(call, "alice", slug)["name"] == "P"


def test_reslug_moves_the_project_and_refuses_clashes(make_project, call, role_of):
    slug = make_project("alice", "Churn")
    other = make_project("alice", "Other")
    call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"slug": "churn-v2"}))
    assert role_of("alice", "churn-v2") == "owner"
    assert role_of("alice", slug) == "none"
    with pytest.raises(Conflict, match=r"^slug: .*'other'"):
        call("alice", lambda s, ctx: projects.update(s, ctx, "churn-v2", {"slug": other}))


def test_team_and_visibility_change_together(make_project, make_team, call, audit_log):
    make_team("ml", maintainer="alice", members=("bob",))
    slug = make_project("alice", "P")
    call(
        "alice", lambda s, ctx: projects.update(s, ctx, slug, {"team": "ml", "visibility": "team"})
    )
    assert project_json(call, "bob", slug)["my_role"] == "viewer"
    with pytest.raises(BadRequest, match=r"^team: visibility 'team' needs an owning team"):
        call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"team": None}))
    call(
        "alice",
        lambda s, ctx: projects.update(s, ctx, slug, {"team": None, "visibility": "private"}),
    )
    data = project_json(call, "alice", slug)
    assert (data["team"], data["visibility"]) == (None, "private")
    # the trail names the team, as the API does (not its internal id)
    assert [e["summary"] for e in audit_log(action="project.update")] == [
        {"team": {"from": None, "to": "ml"}, "visibility": {"from": "private", "to": "team"}},
        {"team": {"from": "ml", "to": None}, "visibility": {"from": "team", "to": "private"}},
    ]


def test_if_match_with_a_stale_etag_is_refused(make_project, call):
    slug = make_project("alice", "P")
    first = project_json(call, "alice", slug)["etag"]
    call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"name": "Q"}, if_match=first))
    second = project_json(call, "alice", slug)["etag"]
    assert second != first
    with pytest.raises(PreconditionFailed, match=r"If-Match"):
        call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"name": "R"}, if_match=first))
    assert project_json(call, "alice", slug)["name"] == "Q"
    call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"name": "R"}, if_match=r"*"))
    third = project_json(call, "alice", slug)["etag"]
    weak_list = f"{first}, W/{third}"  # a list of tags, one of them current (weak form)
    call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"name": "S"}, if_match=weak_list))
    assert project_json(call, "alice", slug)["name"] == "S"
    with pytest.raises(PreconditionFailed):
        call("alice", lambda s, ctx: projects.soft_delete(s, ctx, slug, if_match=first))


def test_update_without_changes_keeps_the_version(make_project, call, audit_log):
    slug = make_project("alice", "P")
    tag = project_json(call, "alice", slug)["etag"]
    call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"name": "P"}))
    assert project_json(call, "alice", slug)["etag"] == tag
    assert [e["action"] for e in audit_log()] == ["project.create"]


# -- archive ---------------------------------------------------------------------------------
def test_archived_project_is_read_only(make_project, add_member, call, role_of):
    slug = make_project("alice", "P")
    add_member(slug, "bob", "editor")
    add_member(slug, "carol", "admin")
    with pytest.raises(Forbidden):  # archiving needs the admin role
        call("bob", lambda s, ctx: projects.set_archived(s, ctx, slug, True))
    call("carol", lambda s, ctx: projects.set_archived(s, ctx, slug, True))
    assert project_json(call, "bob", slug)["archived"] is True
    with pytest.raises(Conflict) as err:
        call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"name": "x"}))
    assert err.value.code == "archived"
    with pytest.raises(Conflict) as err:
        call(
            "bob",
            lambda s, ctx: model_configs.create(s, ctx, slug, name="cfg", parameters={}),
        )
    assert err.value.code == "archived"
    assert role_of("bob", slug) == "editor"  # reading still works
    with pytest.raises(Conflict) as err:
        call("alice", lambda s, ctx: projects.set_archived(s, ctx, slug, True))
    assert err.value.code == "already_archived"
    call("alice", lambda s, ctx: projects.set_archived(s, ctx, slug, False))
    call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"name": "writable again"}))
    with pytest.raises(Conflict) as err:
        call("alice", lambda s, ctx: projects.set_archived(s, ctx, slug, False))
    assert err.value.code == "not_archived"


# -- trash -----------------------------------------------------------------------------------
def test_soft_deleted_project_disappears_for_everyone(make_project, add_member, call, role_of):
    slug = make_project("alice", "Doomed", visibility="public")
    add_member(slug, "bob", "admin")
    with pytest.raises(Forbidden, match=r"owner role"):
        call("bob", lambda s, ctx: projects.soft_delete(s, ctx, slug))
    call("alice", lambda s, ctx: projects.soft_delete(s, ctx, slug))
    for user in ("alice", "bob", "carol", ident("root", is_admin=True)):
        assert role_of(user, slug) == "none"
        assert slug not in listed(call, user, scope="all")
    with pytest.raises(NotFound):
        call("alice", lambda s, ctx: projects.soft_delete(s, ctx, slug))


def test_trash_lists_deleted_projects_to_their_owner_who_can_restore(
    make_project, add_member, call, role_of
):
    slug = make_project("alice", "Doomed")
    add_member(slug, "bob", "admin")
    call("alice", lambda s, ctx: projects.soft_delete(s, ctx, slug))
    assert listed(call, "alice", deleted=True) == [slug]
    assert listed(call, "bob", deleted=True) == []
    with pytest.raises(NotFound):
        call("bob", lambda s, ctx: projects.restore(s, ctx, slug))
    call("alice", lambda s, ctx: projects.restore(s, ctx, slug))
    assert role_of("bob", slug) == "admin"
    assert listed(call, "alice", deleted=True) == []
    with pytest.raises(Conflict) as err:
        call("alice", lambda s, ctx: projects.restore(s, ctx, slug))
    assert err.value.code == "not_deleted"


def test_purge_removes_only_projects_past_the_trash_retention(
    make_project, call, service, audit_log, role_of
):
    old = make_project("alice", "Old")
    young = make_project("alice", "Young")
    call("alice", lambda s, ctx: projects.soft_delete(s, ctx, old))
    call("alice", lambda s, ctx: projects.soft_delete(s, ctx, young))

    def backdate(s, ctx):
        when = utcnow() - ctx.policy.trash_retention - timedelta(hours=1)
        s.execute(update(Project).where(Project.slug == old).values(deleted_at=when))

    call("alice", backdate)
    system = service.system_identity()
    assert call(system, lambda s, ctx: projects.purge_expired(s, ctx)) == [old]
    assert listed(call, "alice", deleted=True) == [young]
    with service.db.transaction() as s:
        assert s.scalar(select(Project).where(Project.slug == old)) is None
    # the audit trail outlives the purged project
    assert [e["action"] for e in audit_log(project_slug=old)] == [
        "project.create",
        "project.delete",
        "project.purge",
    ]
    # the young one stays inside its retention, and goes once it has passed
    soon = utcnow() + timedelta(days=29)
    assert call(system, lambda s, ctx: projects.purge_expired(s, ctx, now=soon)) == []
    later = utcnow() + timedelta(days=31)
    assert call(system, lambda s, ctx: projects.purge_expired(s, ctx, now=later)) == [young]
    assert listed(call, "alice", deleted=True) == []


# -- transfer --------------------------------------------------------------------------------
def transfer(call, by, slug, to):
    call(to, lambda s, ctx: None)
    call(by, lambda s, ctx: projects.transfer(s, ctx, slug, users.get_user(s, to)))


def test_transfer_makes_the_old_owner_an_admin(make_project, call, service, role_of):
    slug = make_project("alice", "P")
    transfer(call, "alice", slug, "bob")
    assert role_of("bob", slug) == "owner"
    assert role_of("alice", slug) == "admin"
    assert project_json(call, "alice", slug)["owner"] == "bob"
    assert len(owner_rows(service, slug)) == 1
    with pytest.raises(Forbidden, match=r"owner role"):
        transfer(call, "alice", slug, "carol")
    # a workbench admin can transfer any project
    transfer(call, ident("root", is_admin=True), slug, "carol")
    assert (role_of("carol", slug), role_of("bob", slug)) == ("owner", "admin")
    assert len(owner_rows(service, slug)) == 1


def test_transfer_to_an_existing_member_keeps_one_owner_row(
    make_project, add_member, call, service, role_of
):
    slug = make_project("alice", "P")
    add_member(slug, "bob", "editor")
    transfer(call, "alice", slug, "bob")
    assert len(owner_rows(service, slug)) == 1
    assert role_of("bob", slug) == "owner"
    with service.db.transaction() as s:
        rows = s.scalars(
            select(ProjectMember.role)
            .join(Project, Project.id == ProjectMember.project_id)
            .where(Project.slug == slug)
        ).all()
    assert sorted(rows) == ["admin", "owner"]
    with pytest.raises(Conflict, match=r"^owner: 'bob' already owns"):
        transfer(call, "bob", slug, "bob")


# -- deleting a team that owns projects ------------------------------------------------------
def test_project_of_a_deleted_team_can_still_be_renamed(make_project, make_team, call):
    make_team("ml", maintainer="alice")
    slug = make_project("alice", "P", visibility="team", team="ml")
    call("alice", lambda s, ctx: teams.delete(s, ctx, "ml"))
    call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"name": "Renamed"}))
    assert project_json(call, "alice", slug)["name"] == "Renamed"
