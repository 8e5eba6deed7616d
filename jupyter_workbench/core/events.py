"""Domain events: what core changed, delivered to subscribers after the transaction commits.

Core modules ``emit`` events into the session of the unit of work; ``WorkbenchService`` takes
them when the transaction commits and hands them to its subscribers (the hub layer mirrors teams
into JupyterHub groups and keeps project-server shares in step). A rolled-back unit of work
publishes nothing. Core never knows who listens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

log = logging.getLogger("jupyter_workbench")
_KEY = "workbench_events"

# kinds
TEAM_CREATED = "team.created"  # team, hub_group, username (its first maintainer)
TEAM_DELETED = "team.deleted"  # team, hub_group
TEAM_MEMBER_ADDED = "team.member_added"  # team, hub_group, username, from_hub
TEAM_MEMBER_REMOVED = "team.member_removed"  # team, hub_group, username, from_hub
PROJECT_ACCESS_CHANGED = "project.access_changed"  # project (slug) -- one with a server
PROJECT_MEMBERS_CHANGED = "project.members_changed"  # project (slug): roles, trash, archive


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


def emit(s: Session, kind: str, **data: Any) -> None:
    """Queue an event on this unit of work (published only if it commits)."""
    s.info.setdefault(_KEY, []).append(Event(kind, data))


def take(s: Session) -> list[Event]:
    """The events queued on ``s`` (and forget them)."""
    return list(s.info.pop(_KEY, []))


Subscriber = Callable[[list[Event]], None]


class EventBus:
    """After-commit subscribers; one failing subscriber never fails the request."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> None:
        self.subscribers.append(fn)

    def publish(self, events: list[Event]) -> None:
        if not events:
            return
        for fn in list(self.subscribers):
            try:
                fn(events)
            except Exception:
                log.exception("Workbench event subscriber %r failed", fn)
