"""JSON Schemas of request bodies, query parameters and responses (also the OpenAPI components)."""

from __future__ import annotations

from typing import Any

from ..core.pagination import SortSpec
from .base import Param

# Text fields refuse control characters (newlines and tabs are fine in long texts).
_NO_CONTROL = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
_NO_CONTROL_MULTILINE = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"
_CONTROL_HINT = {"x-pattern-message": "must not contain control characters"}
SLUG = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
    "x-pattern-message": "must be a slug: lowercase letters, digits and single hyphens",
}
NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": _NO_CONTROL, **_CONTROL_HINT}
DESCRIPTION = {
    "type": "string",
    "maxLength": 10000,
    "pattern": _NO_CONTROL_MULTILINE,
    **_CONTROL_HINT,
}
MESSAGE = {"type": "string", "maxLength": 2000, "pattern": _NO_CONTROL_MULTILINE, **_CONTROL_HINT}
USERNAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": _NO_CONTROL,
    **_CONTROL_HINT,
}
ROLE = {"type": "string", "enum": ["viewer", "editor", "admin"]}
ANY_ROLE = {"type": "string", "enum": ["none", "viewer", "editor", "admin", "owner"]}
VISIBILITY = {"type": "string", "enum": ["private", "team", "public"]}
TEAM_ROLE = {"type": "string", "enum": ["member", "maintainer"]}
TIME = {"type": "string", "format": "date-time"}
OPT_TIME = {"type": ["string", "null"], "format": "date-time"}
ETAG = {"type": "string", "description": "Send back in If-Match to update only this version."}


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """A closed JSON object schema: unknown fields are errors."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        **extra,
    }
    if required:
        schema["required"] = list(required)
    return schema


def page_of(item: dict[str, Any]) -> dict[str, Any]:
    return obj(
        {"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}},
        ("items", "next_cursor"),
    )


def paging(sorts: SortSpec) -> tuple[Param, ...]:
    return (
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Items per page."),
        Param("cursor", {"type": "string", "maxLength": 1000}, "next_cursor of the previous page."),
        Param(
            "sort",
            {"type": "string", "enum": sorts.names},
            f"Order (default {sorts.default}); '-' for descending.",
        ),
    )


# -- users ---------------------------------------------------------------------------
USER = obj(
    {
        "username": {"type": "string"},
        "display_name": {"type": "string"},
        "avatar_url": {"type": ["string", "null"]},
        "color": {"type": ["string", "null"]},
        "is_admin": {"type": "boolean"},
    },
    ("username", "display_name", "is_admin"),
)
TEAM_REF = obj(
    {"name": {"type": "string"}, "display_name": {"type": "string"}, "role": TEAM_ROLE},
    ("name", "role"),
)
ME = obj(
    {
        **USER["properties"],
        "email": {"type": ["string", "null"]},
        "created_at": TIME,
        "last_seen_at": TIME,
        "teams": {"type": "array", "items": TEAM_REF},
    },
    ("username", "display_name", "is_admin", "teams"),
)

# -- projects ------------------------------------------------------------------------
PROJECT = obj(
    {
        "slug": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "visibility": VISIBILITY,
        "team": {"type": ["string", "null"]},
        "owner": {"type": ["string", "null"]},
        "my_role": ANY_ROLE,
        "archived": {"type": "boolean"},
        "archived_at": OPT_TIME,
        "deleted_at": OPT_TIME,
        "created_at": TIME,
        "updated_at": TIME,
        "etag": ETAG,
    },
    ("slug", "name", "visibility", "owner", "my_role", "archived", "created_at", "etag"),
)
PROJECT_CREATE = obj(
    {
        "name": NAME,
        "description": DESCRIPTION,
        "visibility": VISIBILITY,
        "slug": SLUG,
        "team": {**SLUG, "type": ["string", "null"]},
    },
    ("name",),
    # visibility 'team' needs the owning team
    **{
        "if": {"properties": {"visibility": {"const": "team"}}, "required": ["visibility"]},
        "then": {"properties": {"team": SLUG}, "required": ["team"]},
    },
)
PROJECT_UPDATE = obj(
    {
        "name": NAME,
        "description": DESCRIPTION,
        "visibility": VISIBILITY,
        "slug": SLUG,
        "team": {**SLUG, "type": ["string", "null"]},
    },
    minProperties=1,
)
TRANSFER = obj({"owner": USERNAME}, ("owner",))

# -- members -------------------------------------------------------------------------
MEMBER = obj(
    {
        "member": {"type": "string", "description": "A username, or 'team:<name>' for a team."},
        "kind": {"type": "string", "enum": ["user", "team"]},
        "role": {"type": "string", "enum": ["viewer", "editor", "admin", "owner"]},
        "user": obj({"username": {"type": "string"}, "display_name": {"type": "string"}}),
        "team": obj({"name": {"type": "string"}, "display_name": {"type": "string"}}),
        "added_at": TIME,
        "updated_at": TIME,
        "etag": ETAG,
    },
    ("member", "kind", "role", "etag"),
)
MEMBER_ADD = obj(
    {
        "user": {**USERNAME, "description": "Username to add (give this or 'team')."},
        "team": {**SLUG, "description": "Team to add (give this or 'user')."},
        "role": ROLE,
    },
    ("role",),
)
MEMBER_UPDATE = obj({"role": ROLE}, ("role",))

# -- invitations and access requests --------------------------------------------------
INVITATION_STATUS = {
    "type": "string",
    "enum": ["pending", "accepted", "declined", "revoked", "expired"],
}
INVITATION = obj(
    {
        "id": {"type": "integer"},
        "project": {"type": ["string", "null"]},
        "project_name": {"type": ["string", "null"]},
        "username": {"type": "string"},
        "role": ROLE,
        "message": {"type": "string"},
        "status": INVITATION_STATUS,
        "invited_by": {"type": ["string", "null"]},
        "created_at": TIME,
        "expires_at": TIME,
        "responded_at": OPT_TIME,
    },
    ("id", "username", "role", "status", "expires_at"),
)
INVITATION_CREATE = obj({"username": USERNAME, "role": ROLE, "message": MESSAGE}, ("username",))
REQUEST_STATUS = {"type": "string", "enum": ["pending", "approved", "denied", "withdrawn"]}
ACCESS_REQUEST = obj(
    {
        "id": {"type": "integer"},
        "username": {"type": "string"},
        "role": ROLE,
        "message": {"type": "string"},
        "status": REQUEST_STATUS,
        "granted_role": {"type": ["string", "null"]},
        "decided_by": {"type": ["string", "null"]},
        "created_at": TIME,
        "decided_at": OPT_TIME,
    },
    ("id", "username", "role", "status"),
)
ACCESS_REQUEST_CREATE = obj({"role": ROLE, "message": MESSAGE})
APPROVE = obj({"role": ROLE})

# -- teams ---------------------------------------------------------------------------
TEAM = obj(
    {
        "name": {"type": "string"},
        "display_name": {"type": "string"},
        "description": {"type": "string"},
        "source": {"type": "string", "enum": ["workbench", "hub"]},
        "member_count": {"type": "integer"},
        "created_at": TIME,
        "updated_at": TIME,
        "etag": ETAG,
    },
    ("name", "display_name", "source", "etag"),
)
TEAM_CREATE = obj({"name": SLUG, "display_name": NAME, "description": DESCRIPTION}, ("name",))
TEAM_UPDATE = obj({"name": SLUG, "display_name": NAME, "description": DESCRIPTION}, minProperties=1)
TEAM_MEMBER = obj(
    {
        "username": {"type": "string"},
        "display_name": {"type": "string"},
        "role": TEAM_ROLE,
        "added_at": TIME,
    },
    ("username", "role"),
)
TEAM_MEMBER_ADD = obj({"username": USERNAME, "role": TEAM_ROLE}, ("username",))
TEAM_MEMBER_UPDATE = obj({"role": TEAM_ROLE}, ("role",))

# -- model configs -------------------------------------------------------------------
JSON_OBJECT = {"type": "object", "description": "Any JSON object."}
MODEL_CONFIG = obj(
    {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "revision": {"type": "integer"},
        "parameters": JSON_OBJECT,
        "schema": {"type": ["object", "null"]},
        "created_at": TIME,
        "updated_at": TIME,
        "etag": ETAG,
    },
    ("name", "revision", "etag"),
)
MODEL_CONFIG_CREATE = obj(
    {
        "name": NAME,
        "parameters": JSON_OBJECT,
        "schema": {
            "type": ["object", "null"],
            "description": "JSON Schema (2020-12) for parameters.",
        },
        "description": DESCRIPTION,
        "message": MESSAGE,
    },
    ("name", "parameters"),
)
MODEL_CONFIG_UPDATE = obj(
    {
        "name": NAME,
        "parameters": JSON_OBJECT,
        "schema": {"type": ["object", "null"]},
        "description": DESCRIPTION,
        "message": MESSAGE,
    },
    minProperties=1,
)
REVISION = obj(
    {
        "number": {"type": "integer"},
        "parameters": JSON_OBJECT,
        "schema": {"type": ["object", "null"]},
        "message": {"type": "string"},
        "author": {"type": ["string", "null"]},
        "created_at": TIME,
    },
    ("number", "parameters"),
)
CHANGE = {
    "type": "object",
    "properties": {
        "op": {"type": "string", "enum": ["add", "remove", "replace"]},
        "path": {"type": "string"},
        "old": {},
        "new": {},
    },
    "required": ["op", "path"],
}
DIFF = obj(
    {
        "from": {"type": "integer"},
        "to": {"type": "integer"},
        "parameters": {"type": "array", "items": CHANGE},
        "schema": {"type": "array", "items": CHANGE},
    },
    ("from", "to", "parameters", "schema"),
)

# -- audit ---------------------------------------------------------------------------
AUDIT_EVENT = obj(
    {
        "id": {"type": "integer"},
        "time": TIME,
        "actor": {"type": "string"},
        "action": {"type": "string"},
        "object_type": {"type": "string"},
        "object_id": {"type": "string"},
        "project": {"type": ["string", "null"]},
        "summary": {"type": "object"},
        "request_id": {"type": "string"},
    },
    ("id", "time", "actor", "action", "object_type", "object_id"),
)
