"""Small asyncio helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def gather_at_most(
    limit: int, fn: Callable[[T], Awaitable[R]], items: Iterable[T]
) -> list[R]:
    """``fn`` of every item, at most ``limit`` at once; results in the items' order."""
    slots = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with slots:
            return await fn(item)

    return list(await asyncio.gather(*(one(item) for item in items)))
