"""Keeps JupyterHub and the workbench in step (hub service mode).

- workbench -> hub: subscribes to the service's after-commit events; a team created, deleted or
  changed through the workbench becomes the same change of its hub group. Changes that came
  from the hub (``from_hub``) are never pushed back, so nothing ping-pongs.
- hub -> workbench: ``poll_once`` reads every group and applies it to the linked teams
  (``core.hub_groups``); groups with workbench changes not yet (or only just) in the hub are
  skipped for that round. It also gives every user the hub knows (and every approved sign-up)
  a row, so administrators see them and set their quotas before their first visit, and keeps
  their administrator flag equal to the hub's (as a visit would). A push
  that failed is retried before the next poll.
- project servers: after any change of who is editor+ on a project with a server, the server's
  shares are made equal to ``core.project_servers.share_plan`` (granted and revoked); every poll
  reconciles all of them again, so a missed change heals within one interval.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..core import events, hub_groups, project_servers, users
from ..core.events import Event
from ..db.models import utcnow
from ..service import WorkbenchService
from .hub_api import HubAPI, HubAPIError

log = logging.getLogger("jupyter_workbench")
GROUP_EVENTS = (
    events.TEAM_CREATED,
    events.TEAM_DELETED,
    events.TEAM_MEMBER_ADDED,
    events.TEAM_MEMBER_REMOVED,
)


class HubSync:
    def __init__(self, service: WorkbenchService, api: HubAPI) -> None:
        self.service = service
        self.api = api
        self.prefix = service.settings.hub_group_prefix
        self._lock = threading.Lock()
        self._pending: list[Event] = []
        self._touched: dict[str, float] = {}  # group -> when the workbench last pushed to it
        service.events.subscribe(self.on_events)

    # -- workbench -> hub ---------------------------------------------------------------
    def on_events(self, changed: list[Event]) -> None:
        for event in changed:
            group = event.data.get("hub_group")
            if event.kind in GROUP_EVENTS and group and not event.data.get("from_hub"):
                self._push_or_queue(event)
        for event in changed:
            revoke = (
                event.data.get("revoke") if event.kind == events.PROJECT_ACCESS_CHANGED else None
            )
            if revoke:
                self._revoke_all(revoke["owner"], revoke["server_name"])
        slugs = {e.data["project"] for e in changed if e.kind == events.PROJECT_ACCESS_CHANGED}
        for slug in sorted(slugs):
            try:
                self.sync_shares(slug)
            except HubAPIError as exc:
                log.warning("Workbench: shares of project %s's server not updated: %s", slug, exc)

    def _push_or_queue(self, event: Event) -> None:
        group = str(event.data["hub_group"])
        with self._lock:
            self._touched[group] = time.monotonic()
        try:
            self._push(event)
        except HubAPIError as exc:
            log.warning("Workbench: hub group %s not updated (%s); will retry", group, exc)
            with self._lock:
                self._pending.append(event)
        with self._lock:
            self._touched[group] = time.monotonic()

    def _push(self, event: Event) -> None:
        group = str(event.data["hub_group"])
        username = event.data.get("username")
        if event.kind == events.TEAM_CREATED:
            self.api.create_group(group, [username] if username else [])
        elif event.kind == events.TEAM_DELETED:
            self.api.delete_group(group)
        elif event.kind == events.TEAM_MEMBER_ADDED:
            try:
                self.api.add_group_users(group, [str(username)])
            except HubAPIError as exc:
                if exc.status != 404:
                    raise
                self.api.create_group(group, [str(username)])  # the group is not there (yet)
        elif event.kind == events.TEAM_MEMBER_REMOVED:
            try:
                self.api.remove_group_users(group, [str(username)])
            except HubAPIError as exc:
                if exc.status != 404:
                    raise

    def retry_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for event in pending:
            self._push_or_queue(event)

    # -- hub -> workbench ---------------------------------------------------------------
    def poll_once(self) -> dict[str, int]:
        """Read the hub's groups and apply them to the teams; reconcile every server's shares."""
        self.retry_pending()
        started = time.monotonic()
        read_at = utcnow()  # teams and members made from now on are not in what is read
        groups = self.api.groups()
        with self._lock:
            skip = {g for g, at in self._touched.items() if at >= started}
            skip |= {str(e.data["hub_group"]) for e in self._pending}
            self._touched = {g: at for g, at in self._touched.items() if at >= started}
        service = self.service
        counts = service.call(
            service.system_identity(),
            lambda s, ctx: hub_groups.apply_hub_groups(
                s, ctx, groups, prefix=self.prefix, skip=frozenset(skip), read_at=read_at
            ),
            write=True,
        )
        if any(counts.values()):
            log.info("Workbench: teams follow the hub's groups: %s", counts)
        slugs = service.call(
            service.system_identity(), lambda s, ctx: project_servers.all_slugs(s), write=False
        )
        for slug in slugs:
            try:
                self.sync_shares(slug)
            except HubAPIError as exc:
                log.warning("Workbench: shares of project %s's server not updated: %s", slug, exc)
        try:
            self.know_users()
        except HubAPIError as exc:
            log.warning("Workbench: the hub's users not read: %s", exc)
        return counts

    def know_users(self) -> int:
        """Give every user the hub has, and every approved sign-up, a row (admin panel,
        quotas before a first visit), and mark those it no longer has as gone; returns how
        many were new."""
        admins = set(self.service.settings.admin_users)
        read_at = utcnow()  # users made from now on are not in what is read
        known = dict.fromkeys(self.api.approved_signups(), False)
        known.update((name, admin or name in admins) for name, admin in self.api.users().items())
        service = self.service
        added, left = service.call(
            service.system_identity(),
            lambda s, ctx: users.ensure_known_users(s, known, read_at=read_at),
            write=True,
        )
        if added:
            log.info("Workbench: %d user(s) of the hub known now (quotas, admin panel)", added)
        if left:
            service.forget_actors(left)  # a visit of theirs (a new account) brings them back
            log.info("Workbench: %d user(s) no longer on the hub (left out of the admin panel)",
                     len(left))  # fmt: skip
        return added

    # -- project servers ------------------------------------------------------------------
    def plan(self, slug: str) -> project_servers.SharePlan | None:
        service = self.service
        return service.call(
            service.system_identity(),
            lambda s, ctx: project_servers.share_plan(s, slug),
            write=False,
        )

    def sync_shares(self, slug: str) -> project_servers.SharePlan | None:
        """Grant and revoke shares of the project's server until they match its plan."""
        plan = self.plan(slug)
        if plan is None:
            return None
        have = self.api.shared_users(plan.owner, plan.server_name)
        if have is None:
            return plan  # the server was never started: nothing to share yet
        for user in sorted(plan.users - have):
            self.api.share(plan.owner, plan.server_name, user)
        for user in sorted(have - plan.users):
            self.api.revoke(plan.owner, plan.server_name, user)
        if plan.users != have:
            log.info("Workbench: project %s's server shared with %s", slug, sorted(plan.users))
        return plan

    def _revoke_all(self, owner: str, name: str) -> None:
        try:
            for user in sorted(self.api.shared_users(owner, name) or ()):
                self.api.revoke(owner, name, user)
        except HubAPIError as exc:
            log.warning("Workbench: shares of %s/%s not revoked: %s", owner, name, exc)

    def start_server(self, owner: str, name: str, profile: str) -> dict[str, Any]:
        """Start ``owner``'s project server and share it; the hub's answer, as a status."""
        options = {"profile": profile} if profile else {}
        code = self.api.start_server(owner, name, options)
        return {"ready": code in (200, 201), "pending": "spawn" if code == 202 else None}

    def server_status(self, owner: str, name: str) -> dict[str, Any]:
        model = self.api.server(owner, name)
        if model is None:
            return {"ready": False, "pending": None, "running": False}
        return {"ready": bool(model.get("ready")), "pending": model.get("pending"),
                "running": True}  # fmt: skip

    def stop_server(self, owner: str, name: str) -> None:
        self.api.stop_server(owner, name)
