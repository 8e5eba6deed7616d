"""The audit trail: one event per mutation, in the same transaction; who may read which events."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from sqlalchemy import update

from jupyter_workbench.core import (
    access_requests,
    audit,
    invitations,
    members,
    model_configs,
    projects,
    teams,
    users,
)
from jupyter_workbench.core.errors import Conflict
from jupyter_workbench.db.models import (
    AuditEvent,
    Invitation,
    ModelConfigRevision,
    Project,
    ProjectMember,
    Team,
    utcnow,
)
from tests.conftest import ident


def visible(call, user, **kw):
    """(actor, action, project slug) of the events ``user`` may list, oldest first."""

    def fn(s, ctx):
        page = audit.list_events(s, ctx, sort="time", limit=500, **kw)
        return [(e.actor_name, e.action, e.project_slug) for e in page.items]

    return call(user, fn)


def test_project_creation_is_recorded_with_its_details(call, audit_log):
    call("alice", lambda s, ctx: projects.create(s, ctx, name="Churn", visibility="public"))
    assert audit_log() == [
        {
            "actor": "alice",
            "action": "project.create",
            "object_type": "project",
            "object_id": "churn",
            "project": "churn",
            "summary": {"name": "Churn", "visibility": "public", "team": None},
        }
    ]


def my_invitation(s, ctx):
    return invitations.my_invitations(s, ctx).items[0].id


def pending_invitation(s, ctx, slug):
    return invitations.list_invitations(s, ctx, slug, status="pending").items[0].id


def pending_request(s, ctx, slug):
    return access_requests.list_requests(s, ctx, slug, status="pending").items[0].id


def test_every_mutation_writes_exactly_one_event(call, make_project, audit_log):
    slug = make_project("alice", "P", visibility="public")
    for user in ("bob", "carol"):
        call(user, lambda s, ctx: None)
    steps = [
        ("alice", "project.update", lambda s, ctx: projects.update(s, ctx, slug, {"name": "Q"})),
        ("alice", "project.archive", lambda s, ctx: projects.set_archived(s, ctx, slug, True)),
        ("alice", "project.unarchive", lambda s, ctx: projects.set_archived(s, ctx, slug, False)),
        ("alice", "member.add", lambda s, ctx: members.add(s, ctx, slug, user="bob")),
        (
            "alice",
            "member.update",
            lambda s, ctx: members.change_role(s, ctx, slug, "bob", "editor"),
        ),
        ("bob", "member.leave", lambda s, ctx: members.remove(s, ctx, slug, "bob")),
        ("alice", "member.add", lambda s, ctx: members.add(s, ctx, slug, user="bob")),
        ("alice", "member.remove", lambda s, ctx: members.remove(s, ctx, slug, "bob")),
        (
            "alice",
            "invitation.create",
            lambda s, ctx: invitations.create(s, ctx, slug, username="bob"),
        ),
        (
            "bob",
            "invitation.accept",
            lambda s, ctx: invitations.respond(s, ctx, slug, my_invitation(s, ctx), accept=True),
        ),
        (
            "alice",
            "invitation.create",
            lambda s, ctx: invitations.create(s, ctx, slug, username="zed"),
        ),
        (
            "alice",
            "invitation.revoke",
            lambda s, ctx: invitations.revoke(s, ctx, slug, pending_invitation(s, ctx, slug)),
        ),
        ("carol", "access_request.create", lambda s, ctx: access_requests.create(s, ctx, slug)),
        (
            "alice",
            "access_request.approve",
            lambda s, ctx: access_requests.decide(
                s, ctx, slug, pending_request(s, ctx, slug), approve=True
            ),
        ),
        (
            "carol",
            "model_config.create",
            lambda s, ctx: model_configs.create(s, ctx, slug, name="m", parameters={"a": 1}),
        ),
        (
            "carol",
            "model_config.update",
            lambda s, ctx: model_configs.update(s, ctx, slug, "m", {"parameters": {"a": 2}}),
        ),
        ("alice", "model_config.delete", lambda s, ctx: model_configs.delete(s, ctx, slug, "m")),
        ("alice", "team.create", lambda s, ctx: teams.create(s, ctx, name="ml")),
        ("alice", "team.update", lambda s, ctx: teams.update(s, ctx, "ml", {"description": "d"})),
        ("alice", "team.member_add", lambda s, ctx: teams.add_member(s, ctx, "ml", username="bob")),
        (
            "alice",
            "team.member_update",
            lambda s, ctx: teams.change_member_role(s, ctx, "ml", "bob", "maintainer"),
        ),
        ("bob", "team.member_leave", lambda s, ctx: teams.remove_member(s, ctx, "ml", "bob")),
        ("alice", "team.delete", lambda s, ctx: teams.delete(s, ctx, "ml")),
        (
            "alice",
            "project.transfer",
            lambda s, ctx: projects.transfer(s, ctx, slug, users.get_user(s, "carol")),
        ),
        ("carol", "project.delete", lambda s, ctx: projects.soft_delete(s, ctx, slug)),
        ("carol", "project.restore", lambda s, ctx: projects.restore(s, ctx, slug)),
    ]
    for user, action, fn in steps:
        before = len(audit_log())
        call(user, fn)
        after = audit_log()
        assert len(after) == before + 1, action
        assert (after[-1]["actor"], after[-1]["action"]) == (user, action)


def test_event_summaries_describe_the_change(call, make_project, add_member, audit_log):
    slug = make_project("alice", "Old")
    call("alice", lambda s, ctx: projects.update(s, ctx, slug, {"name": "New", "slug": "new"}))
    [event] = audit_log(action="project.update")
    assert event["project"] == "new" and event["object_id"] == "new"
    assert event["summary"] == {
        "name": {"from": "Old", "to": "New"},
        "slug": {"from": "old", "to": "new"},
    }
    add_member("new", "bob", "viewer")
    call("alice", lambda s, ctx: members.change_role(s, ctx, "new", "bob", "admin"))
    [event] = audit_log(action="member.update")
    assert (event["object_type"], event["object_id"]) == ("member", "bob")
    assert event["summary"] == {"role": {"from": "viewer", "to": "admin"}}
    call("alice", lambda s, ctx: projects.transfer(s, ctx, "new", users.get_user(s, "bob")))
    [event] = audit_log(action="project.transfer")
    assert event["summary"] == {"owner": {"from": "alice", "to": "bob"}}
    call("bob", lambda s, ctx: model_configs.create(s, ctx, "new", name="m", parameters={}))
    call("bob", lambda s, ctx: model_configs.update(s, ctx, "new", "m", {"parameters": {"x": 1}}))
    [event] = audit_log(action="model_config.update")
    assert event["summary"] == {"revision": {"from": 1, "to": 2}}


def test_transfer_by_a_workbench_admin_records_the_previous_owner(call, make_project, audit_log):
    slug = make_project("alice", "P")
    call("bob", lambda s, ctx: None)
    root = ident("root", is_admin=True)
    call(root, lambda s, ctx: projects.transfer(s, ctx, slug, users.get_user(s, "bob")))
    [event] = audit_log(action="project.transfer")
    assert event["actor"] == "root"
    assert event["summary"] == {"owner": {"from": "alice", "to": "bob"}}


def test_request_id_is_recorded(service, audit_log):
    service.call(
        ident("alice"),
        lambda s, ctx: projects.create(s, ctx, name="P"),
        write=True,
        request_id="req-42",
    )
    with service.db.transaction() as s:
        assert s.query(AuditEvent.request_id).scalar() == "req-42"


def test_failed_operations_leave_no_event_and_no_row(
    call, make_project, add_member, make_team, audit_log, count_rows
):
    slug = make_project("alice", "P", slug="p")
    add_member(slug, "bob", "viewer")
    make_team("ml")
    call("alice", lambda s, ctx: model_configs.create(s, ctx, slug, name="a", parameters={}))
    call("alice", lambda s, ctx: model_configs.create(s, ctx, slug, name="b", parameters={}))
    call("alice", lambda s, ctx: invitations.create(s, ctx, slug, username="zed"))
    tables = (Project, ProjectMember, Team, Invitation, ModelConfigRevision)
    events, rows = len(audit_log()), [count_rows(t) for t in tables]
    failing = [
        lambda s, ctx: projects.create(s, ctx, name="Again", slug="p"),
        lambda s, ctx: members.add(s, ctx, slug, user="bob", role="editor"),
        lambda s, ctx: teams.create(s, ctx, name="ml"),
        lambda s, ctx: invitations.create(s, ctx, slug, username="zed", role="editor"),
        # a new revision is made before the rename clashes: the whole update is undone
        lambda s, ctx: model_configs.update(
            s, ctx, slug, "a", {"parameters": {"x": 1}, "name": "b"}
        ),
        # the first archive succeeds, the second fails: the transaction keeps neither
        lambda s, ctx: (
            projects.set_archived(s, ctx, slug, True),
            projects.set_archived(s, ctx, slug, True),
        ),
    ]
    for fn in failing:
        with pytest.raises(Conflict):
            call("alice", fn)
    assert len(audit_log()) == events
    assert [count_rows(t) for t in tables] == rows
    assert [e["action"] for e in audit_log(action="project.archive")] == []
    assert call("alice", lambda s, ctx: projects.get(s, ctx, slug)[0].archived_at) is None


def test_a_conflict_caught_inside_a_transaction_records_nothing(call, make_project, audit_log):
    """The savepoint around an insert undoes it; the caller's later work still commits."""
    make_project("alice", "P", slug="p")

    def fn(s, ctx):
        with contextlib.suppress(Conflict):
            projects.create(s, ctx, name="Again", slug="p")
        return projects.create(s, ctx, name="Other").slug

    assert call("alice", fn) == "other"
    assert [e["object_id"] for e in audit_log()] == ["p", "other"]


# -- who reads what ------------------------------------------------------------------------------
@pytest.fixture
def history(call, make_project, add_member):
    """alice owns 'a' (bob is admin, carol viewer); dave owns 'd'; each did something."""
    a = make_project("alice", "A")
    add_member(a, "bob", "admin")
    add_member(a, "carol", "viewer")
    d = make_project("dave", "D")
    add_member(d, "carol", "editor", by="dave")
    call("carol", lambda s, ctx: model_configs.create(s, ctx, d, name="m", parameters={}))
    call("carol", lambda s, ctx: teams.create(s, ctx, name="carols"))
    return a, d


def test_project_admins_see_their_projects_events(history, call):
    assert visible(call, "bob") == [
        ("alice", "project.create", "a"),
        ("alice", "member.add", "a"),
        ("alice", "member.add", "a"),
    ]
    assert visible(call, "alice") == visible(call, "bob")
    call("alice", lambda s, ctx: members.remove(s, ctx, "a", "bob"))
    assert visible(call, "bob") == []  # removed admins lose the project's events


def test_admins_through_a_team_see_the_projects_events(history, call, make_team, add_member):
    a, _ = history
    make_team("ops", maintainer="erin", members=("frank",))
    add_member(a, team="ops", role="admin")
    assert {x[2] for x in visible(call, "frank")} == {a}
    assert ("alice", "member.add", a) in visible(call, "frank")


def test_others_see_only_their_own_events(history, call):
    assert visible(call, "carol") == [
        ("carol", "model_config.create", "d"),
        ("carol", "team.create", None),
    ]
    assert visible(call, "erin") == []


def test_workbench_admins_see_everything(history, call, audit_log):
    assert len(visible(call, ident("root", is_admin=True))) == len(audit_log())


def feed(call, user, **kw):
    """(actor, action, project slug) of the user's activity feed, oldest first."""
    return visible(call, user, scope="activity", **kw)


def test_the_activity_feed_shows_everything_in_the_users_projects(history, call):
    a, d = history
    call("frank", lambda s, ctx: None)
    call("alice", lambda s, ctx: invitations.create(s, ctx, a, username="frank"))
    # carol: viewer of 'a', editor of 'd': both projects' events, and her own team
    assert feed(call, "carol") == [
        ("alice", "project.create", a),
        ("alice", "member.add", a),
        ("alice", "member.add", a),
        ("dave", "project.create", d),
        ("dave", "member.add", d),
        ("carol", "model_config.create", d),
        ("carol", "team.create", None),
    ]  # ... but not the invitation of frank to 'a': only its admins see people's invitations
    assert ("alice", "invitation.create", a) in feed(call, "bob")  # an admin of 'a'
    assert feed(call, "erin") == []  # no project, nothing done
    # a workbench admin's feed is their projects, not the whole audit trail
    assert feed(call, ident("root", is_admin=True)) == []
    call("alice", lambda s, ctx: members.remove(s, ctx, a, "carol"))
    assert {x[2] for x in feed(call, "carol")} == {d, None}  # removed: 'a' is gone from it


def test_event_filters(history, call):
    a, d = history
    root = ident("root", is_admin=True)
    assert [x[1] for x in visible(call, root, action="member.add")] == ["member.add"] * 3
    assert {x[1] for x in visible(call, root, action="model_config.*")} == {"model_config.create"}
    assert {x[1] for x in visible(call, root, action="team*")} == {"team.create"}
    assert {x[0] for x in visible(call, root, actor="carol")} == {"carol"}
    assert [x[1] for x in visible(call, root, object_type="team")] == ["team.create"]

    def project_id(s, ctx):
        return projects.get(s, ctx, d)[0].id

    pid = call("dave", project_id)
    assert {x[2] for x in visible(call, root, project_id=pid)} == {"d"}
    # 'dave' administers 'd' only: filtering by project 'a' shows him nothing
    a_id = call("alice", lambda s, ctx: projects.get(s, ctx, a)[0].id)
    assert visible(call, "dave", project_id=a_id) == []


def test_time_window_filters(history, call):
    cut = utcnow()
    call("alice", lambda s, ctx: projects.update(s, ctx, "a", {"description": "later"}))
    root = ident("root", is_admin=True)
    assert visible(call, root, since=cut) == [("alice", "project.update", "a")]
    assert ("alice", "project.update", "a") not in visible(call, root, until=cut)
    assert len(visible(call, root, until=cut)) == len(visible(call, root)) - 1
    assert visible(call, root, since=cut + timedelta(days=1)) == []


def test_purged_project_events_stay_visible_to_workbench_admins(history, call, service):
    a, _ = history
    call("alice", lambda s, ctx: projects.soft_delete(s, ctx, a))

    def backdate(s, ctx):
        s.execute(
            update(Project)
            .where(Project.slug == a)
            .values(deleted_at=utcnow() - timedelta(days=31))
        )

    call("alice", backdate)
    call(service.system_identity(), lambda s, ctx: projects.purge_expired(s, ctx))
    root = ident("root", is_admin=True)
    assert [x[1] for x in visible(call, root) if x[2] == a] == [
        "project.create",
        "member.add",
        "member.add",
        "project.delete",
        "project.purge",
    ]
    assert ("[system]", "project.purge", a) in visible(call, root)


def test_purged_projects_events_do_not_leak_to_a_new_project(call, make_project, service):
    """A purged project's id must never hand its audit trail to a later project's admins."""
    old = make_project("alice", "Secret Plans")
    call("alice", lambda s, ctx: projects.soft_delete(s, ctx, old))
    later = utcnow() + timedelta(days=31)
    call(service.system_identity(), lambda s, ctx: projects.purge_expired(s, ctx, now=later))
    make_project("mallory", "Fresh")
    assert [x for x in visible(call, "mallory") if x[2] == old] == []


def test_an_action_prefix_matches_underscores_and_percents_literally(call):
    root = ident("root", is_admin=True)
    for action in ("a_b.x", "axb.y", "a%c.z", "abc.w"):
        call(root, lambda s, ctx, a=action: audit.record(s, ctx, a, "thing", 1))
    assert [x[1] for x in visible(call, root, action="a_b*")] == ["a_b.x"]
    assert [x[1] for x in visible(call, root, action="a%*")] == ["a%c.z"]
    assert visible(call, root, action="a_b") == []  # (an exact action: no prefix at all)
