"""JSON Schemas of the collaborative documents API."""

from __future__ import annotations

from ..core.documents import KINDS
from .schemas import NAME, TIME, obj, page_of

KIND = {"type": "string", "enum": list(KINDS)}
USER_FIELD = obj(
    {
        "username": {"type": "string"},
        "name": {"type": "string"},
        "display_name": {"type": "string"},
        "initials": {"type": "string"},
        "color": {"type": "string"},
        "avatar_url": {"type": ["string", "null"]},
    },
    description="Who a collaborator is: the awareness 'user' field every peer sees.",
)
PRESENCE = obj(
    {
        "user": USER_FIELD,
        "can_write": {"type": "boolean"},
        "connections": {"type": "integer"},
        "joined_at": {"type": "number", "description": "Unix time of the first connection."},
    }
)
DOCUMENT = obj(
    {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "project": {"type": "string"},
        "kind": KIND,
        "ref": {"type": "string"},
        "title": {"type": "string"},
        "created_by": {"type": ["string", "null"]},
        "created_at": TIME,
        "can_write": {"type": "boolean"},
        "room": {"type": "string", "description": "The WebSocket path of its room."},
        "text": {"type": "string"},
        "present": {"type": "array", "items": PRESENCE},
    },
    description="A collaborative document; its room speaks y-websocket's protocol and its "
    "shared type is the Y.Text 'content'.",
)
DOCUMENT_LIST = page_of(DOCUMENT)
DOCUMENT_CREATE = obj(
    {
        "kind": KIND,
        "ref": {"type": "string", "maxLength": 255},
        "title": {"type": "string", "maxLength": 255},
    },
    ("kind",),
)
PRESENCE_LIST = obj({"users": {"type": "array", "items": PRESENCE}})
SNAPSHOT = obj(
    {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "automatic": {"type": "boolean"},
        "created_by": {"type": ["string", "null"]},
        "created_at": TIME,
        "characters": {"type": "integer"},
        "text": {"type": "string"},
    }
)
SNAPSHOT_LIST = page_of(SNAPSHOT)
SNAPSHOT_CREATE = obj({"name": NAME}, ("name",))
SNAPSHOT_DIFF = obj(
    {"from": {"type": "string"}, "to": {"type": "string"}, "diff": {"type": "string"}}
)
COMPACTION = obj(
    {
        "rows_before": {"type": "integer"},
        "bytes_before": {"type": "integer"},
        "bytes_after": {"type": "integer"},
    }
)
PUBLISHED = obj(
    {
        "kind": {"type": "string"},
        "ref": {"type": "string"},
        "dataset_version": {"type": "integer"},
        "revision": {"type": "integer", "description": "The model card's new revision."},
    }
)
