"""Who is calling and under which rules: passed to every core call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..db.models import User


@dataclass(frozen=True)
class Identity:
    """A caller as the identity source reports them (jupyter-server or JupyterHub)."""

    username: str
    display_name: str = ""
    email: str | None = None
    avatar_url: str | None = None
    color: str | None = None
    is_admin: bool = False
    # JupyterHub group names; None when the identity source knows no groups.
    groups: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Policy:
    """The settings the domain needs (filled from ``settings.Workbench``)."""

    invitation_ttl: timedelta = timedelta(days=7)
    trash_retention: timedelta = timedelta(days=30)
    page_size: int = 50
    max_page_size: int = 500
    # Teams are JupyterHub groups (created there too) named prefix + team name; None: the
    # workbench runs without a hub to mirror teams into.
    hub_group_prefix: str | None = None
    # open uploads (resumable, not yet committed or abandoned) one user may have in a project,
    # and all users together; 0: no limit
    max_open_uploads_per_user: int = 20
    max_open_uploads_per_project: int = 200


@dataclass
class Ctx:
    """The acting user (a row of this transaction's session) and the request's id."""

    user: User
    request_id: str = ""
    policy: Policy = field(default_factory=Policy)
