"""Helpers shared by the domain tests: short ways to make projects, members and read the audit.

Everything here goes through the ``call`` fixture (one transaction per call, like a request) or,
for checks that must not depend on access rules, reads the database directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from jupyter_workbench.core import members, projects, teams
from jupyter_workbench.core.errors import NotFound
from jupyter_workbench.db.models import AuditEvent
from jupyter_workbench.service import WorkbenchService


@pytest.fixture
def make_project(call: Callable[..., Any]) -> Callable[..., str]:
    """``make_project("alice", "Name", visibility=..., team=...)`` -> the new project's slug."""

    def make(owner: Any = "alice", name: str = "Proj", **kw: Any) -> str:
        return call(owner, lambda s, ctx: projects.create(s, ctx, name=name, **kw).slug)

    return make


@pytest.fixture
def add_member(call: Callable[..., Any]) -> Callable[..., None]:
    """``add_member(slug, "bob", "editor", by="alice")`` (or ``team="ml"`` instead of a user)."""

    def add(
        slug: str,
        user: str | None = None,
        role: str = "viewer",
        *,
        team: str | None = None,
        by: Any = "alice",
    ) -> None:
        if user is not None:
            call(user, lambda s, ctx: None)  # the user exists once they have used the workbench
        call(by, lambda s, ctx: members.add(s, ctx, slug, user=user, team=team, role=role))

    return add


@pytest.fixture
def make_team(call: Callable[..., Any]) -> Callable[..., None]:
    """``make_team("ml", maintainer="alice", members=["bob"])``."""

    def make(name: str, *, maintainer: str = "alice", members: tuple[str, ...] = ()) -> None:
        call(maintainer, lambda s, ctx: teams.create(s, ctx, name=name))
        for username in members:
            call(username, lambda s, ctx: None)
            call(
                maintainer,
                lambda s, ctx, u=username: teams.add_member(s, ctx, name, username=u),
            )

    return make


@pytest.fixture
def role_of(call: Callable[..., Any]) -> Callable[[Any, str], str]:
    """The effective role label a user has on a project, or 'none' when they cannot see it."""

    def role(user: Any, slug: str) -> str:
        try:
            return call(user, lambda s, ctx: projects.get(s, ctx, slug)[1].label)
        except NotFound:
            return "none"

    return role


@pytest.fixture
def audit_log(service: WorkbenchService) -> Callable[..., list[dict[str, Any]]]:
    """Every audit event (oldest first) as dicts, read straight from the database."""

    def read(**where: Any) -> list[dict[str, Any]]:
        with service.db.transaction() as s:
            stmt = select(AuditEvent).order_by(AuditEvent.id)
            for key, value in where.items():
                stmt = stmt.where(getattr(AuditEvent, key) == value)
            return [
                {
                    "actor": e.actor_name,
                    "action": e.action,
                    "object_type": e.object_type,
                    "object_id": e.object_id,
                    "project": e.project_slug,
                    "summary": e.summary,
                }
                for e in s.scalars(stmt)
            ]

    return read


@pytest.fixture
def count_rows(service: WorkbenchService) -> Callable[[Any], int]:
    """``count_rows(Model)`` -> the number of rows in its table."""

    def count(model: Any) -> int:
        with service.db.transaction() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    return count
