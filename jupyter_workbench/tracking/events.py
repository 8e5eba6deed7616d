"""Live updates: new metric points and run status changes, fanned out to WebSocket subscribers."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable
from typing import Any

QUEUE_SIZE = 1000


class TrackingEvents:
    """In-process publish/subscribe keyed by run id (one server process holds the sockets)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[str]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, run_id: str) -> asyncio.Queue[str]:
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.setdefault(run_id, set()).add(queue)
        return queue

    def unsubscribe(self, run_id: str, queue: asyncio.Queue[str]) -> None:
        subscribers = self._subscribers.get(run_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[run_id]

    def subscribers(self, run_id: str) -> int:
        return len(self._subscribers.get(run_id, ()))

    def publish(self, run_id: str, points: Iterable[Any], status: str | None = None) -> None:
        """Send points (objects with key/value/step/timestamp) and/or a status to subscribers.

        Safe to call from any thread; a subscriber that does not keep up loses messages
        (its queue is bounded) rather than growing memory.
        """
        if run_id not in self._subscribers:
            return
        message: dict[str, Any] = {"run_id": run_id}
        batch = [
            {
                "key": p.key,
                # NaN and infinities as null: the message stays JSON (a browser's JSON.parse
                # takes no Infinity), and one inf loss must not fail the batch that logged it
                "value": p.value if math.isfinite(p.value) else None,
                "step": p.step,
                "timestamp": p.timestamp,
            }
            for p in points
        ]
        if batch:
            message["metrics"] = batch
        if status:
            message["status"] = status
        if len(message) == 1:
            return
        text = json.dumps(message, allow_nan=False, default=str)
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            loop.call_soon_threadsafe(self._fan_out, run_id, text)
        else:
            self._fan_out(run_id, text)

    def _fan_out(self, run_id: str, text: str) -> None:
        for queue in list(self._subscribers.get(run_id, ())):
            if queue.full():
                continue
            queue.put_nowait(text)
