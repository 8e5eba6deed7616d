"""Entity tags for optimistic concurrency: ``If-Match`` with a stale tag is refused (412)."""

from __future__ import annotations

from typing import Protocol

from .errors import PreconditionFailed


class Versioned(Protocol):
    id: int
    version: int


def etag(obj: Versioned) -> str:
    return f'"{type(obj).__name__.lower()}-{obj.id}-{obj.version}"'


def check_etag(obj: Versioned, if_match: str | None) -> None:
    """Raise PreconditionFailed unless ``if_match`` is absent, '*' or lists the current tag."""
    if not if_match:
        return
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" in tags or etag(obj) in tags:
        return
    raise PreconditionFailed(
        f"If-Match: the object changed since you read it (current ETag is {etag(obj)})"
    )
