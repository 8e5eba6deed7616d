"""Keep usage accounting true to the hub: runs of servers the hub no longer has are ended.

The spawn hooks report every start and stop, but a stop can be missed (the service was down or
restarting, the hook timed out). ``reconcile_with_hub`` compares the open runs with the hub's
running servers; the service runs it at start and every ``usage_reconcile_interval_seconds``.
"""

from __future__ import annotations

from typing import Any

from ..core import usage
from ..db.models import utcnow
from ..service import WorkbenchService
from .hub_client import running_servers


async def reconcile_with_hub(service: WorkbenchService) -> list[dict[str, Any]]:
    """End the runs of servers the hub does not run; the runs ended."""
    seen_at = utcnow()
    running = await running_servers()
    return await service.acall(
        service.system_identity(),
        lambda s, ctx: usage.reconcile(s, ctx, running, seen_at),
        write=True,
    )
