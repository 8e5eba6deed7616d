"""Entity tags for optimistic concurrency: ``If-Match`` with a stale tag is refused (412)."""

from __future__ import annotations

import re
from typing import Protocol

from .errors import PreconditionFailed

# one entity tag of a list (RFC 9110 8.8.3): optional W/, then a quoted opaque tag (which may
# hold commas), with the list's commas and spaces before it (empty elements allowed)
_LISTED_TAG = re.compile(r'[\s,]*(?:W/)?("[^"]*")\s*(?:,|$)')


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


def none_match(if_none_match: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` header matches the strong ``tag`` by weak comparison, as
    GET and HEAD use it (RFC 9110 13.1.2): '*', or a list of tags, any of them (``W/`` or not)
    with the same opaque tag. A malformed header matches nothing."""
    if not if_none_match:
        return False
    value = if_none_match.strip(" \t,")
    if value == "*":
        return True
    opaque = tag.removeprefix("W/")
    position = 0
    while position < len(value):
        listed = _LISTED_TAG.match(value, position)
        if listed is None:
            return False
        if listed.group(1) == opaque:
            return True
        position = listed.end()
    return False
