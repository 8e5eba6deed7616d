"""Keep usage accounting true to the hub: runs of servers the hub no longer has are ended.

The spawn hooks report every start and stop, but a stop can be missed (the service was down or
restarting, the hook timed out). ``reconcile_with_hub`` compares the open runs with the hub's
running servers; the service runs it at start and every ``usage_reconcile_interval_seconds``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ..concurrency import gather_at_most
from ..core import usage
from ..db.models import utcnow
from ..service import WorkbenchService
from .hub_client import HubRefused, hub_request, running_servers


async def reconcile_with_hub(service: WorkbenchService) -> list[dict[str, Any]]:
    """End the runs of servers the hub does not run, at the time the hub stopped them where it
    still knows it (else now); the runs ended."""
    seen_at = utcnow()
    running = await running_servers()
    open_keys = await service.acall(
        service.system_identity(),
        lambda s, ctx: {(r.username, r.server_name) for r in usage.open_runs(s)},
        write=False,
    )
    stopped = await stop_times(open_keys - running)
    return await service.acall(
        service.system_identity(),
        lambda s, ctx: usage.reconcile(s, ctx, running, seen_at, stopped),
        write=True,
    )


HUB_LOOKUPS = 8  # users' models asked of the hub at once


async def stop_times(wanted: set[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    """When the hub stopped each of these (user, server) pairs: the ``last_activity`` it sets
    on a stop (stopped servers included), for those it still has (a deleted user or server:
    none). One request per user, ``HUB_LOOKUPS`` at a time (after a hub restart that stopped
    every server, that is every user who had one)."""

    async def servers_of(username: str) -> dict[str, Any]:
        try:
            model = await hub_request(
                "GET", f"users/{quote(username, safe='')}?include_stopped_servers=1"
            )
        except HubRefused as exc:
            if exc.status == 404:
                return {}
            raise
        return dict(model.get("servers") or {})

    users = sorted({user for user, _ in wanted})
    found: dict[tuple[str, str], datetime] = {}
    for username, servers in zip(
        users, await gather_at_most(HUB_LOOKUPS, servers_of, users), strict=True
    ):
        for name, server in servers.items():
            when = server.get("last_activity")
            if (username, name) in wanted and when and not server.get("ready"):
                found[(username, name)] = _parse_time(str(when))
    return found


def _parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
