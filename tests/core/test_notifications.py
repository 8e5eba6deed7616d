"""Notifications: what waits for a user, read from the pending rows themselves."""

from __future__ import annotations

from jupyter_workbench.core import access_requests, members, notifications, projects
from jupyter_workbench.db.models import Project, PromotionRequest, User


def _ask_promotion(call, slug: str, by: str, version: str) -> None:
    """The row the registry's promotion request writes (its MLflow side is tested elsewhere)."""

    def ask(s, ctx):
        project = s.query(Project).filter_by(slug=slug).one()
        requester = s.query(User).filter_by(username=by).one()
        s.add(
            PromotionRequest(
                project_id=project.id,
                model_name="churn",
                version=version,
                alias="production",
                note=f"v{version} is better",
                requested_by_id=requester.id,
            )
        )

    call(by, ask)


def test_promotion_requests_wait_for_the_other_admins(call, make_project, add_member):
    slug = make_project("alice", "Models")
    add_member(slug, "bob", "admin")
    add_member(slug, "carol", "editor")
    _ask_promotion(call, slug, "carol", "3")
    _ask_promotion(call, slug, "bob", "4")

    def pending(user):
        return [
            (n["kind"], n["model"], n["version"], n["by"])
            for n in call(user, lambda s, ctx: notifications.pending(s, ctx))
        ]

    assert pending("alice") == [
        ("promotion", "churn", "4", "bob"),
        ("promotion", "churn", "3", "carol"),
    ]  # newest first
    assert pending("bob") == [("promotion", "churn", "3", "carol")]  # not his own request
    assert pending("carol") == []  # an editor decides nothing

    def decide(s, ctx):
        for row in s.query(PromotionRequest).filter_by(version="3"):
            row.status = "approved"

    call("alice", decide)
    assert pending("bob") == []
    # a project in the trash waits for no one
    call("alice", lambda s, ctx: projects.soft_delete(s, ctx, slug))
    assert pending("alice") == []


def test_an_access_request_granted_another_way_waits_for_no_one(
    call, make_project, add_member, make_team
):
    slug = make_project("alice", "Open", visibility="public")
    add_member(slug, "bob", "admin")
    call("carol", lambda s, ctx: access_requests.create(s, ctx, slug, role="editor"))
    call("dave", lambda s, ctx: access_requests.create(s, ctx, slug, role="editor"))

    def waiting(user):
        return [
            (n["kind"], n["by"]) for n in call(user, lambda s, ctx: notifications.pending(s, ctx))
        ]

    assert waiting("bob") == [("access_request", "dave"), ("access_request", "carol")]
    # carol is made an admin directly, dave an editor through a team
    call("alice", lambda s, ctx: members.add(s, ctx, slug, user="carol", role="admin"))
    make_team("ml", maintainer="erin", members=("dave",))
    add_member(slug, team="ml", role="editor")
    assert waiting("bob") == []
    assert waiting("carol") == []  # (not her own request to decide, either)
