"""JSON Schemas of request bodies, query parameters and responses (also the OpenAPI components)."""

from __future__ import annotations

from typing import Any

from ..core.pagination import CURSOR_MAX, SortSpec
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


# a cursor is URL-safe base64: only ASCII, so the longest one keeps a request line with every
# other parameter at its longest (percent-encoded) within tornado's 64 KiB header limit
CURSOR = {
    "type": "string",
    "maxLength": CURSOR_MAX,
    "pattern": "^[A-Za-z0-9_-]*$",
    "x-pattern-message": "not a cursor this API returned",
}
CURSOR_PARAM = Param("cursor", CURSOR, "next_cursor of the previous page.")


def paging(sorts: SortSpec) -> tuple[Param, ...]:
    return (
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Items per page."),
        CURSOR_PARAM,
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
MEMBER_REMOVED = obj(
    {
        "member": {"type": "string", "description": "The member removed (or who left)."},
        "removed_role": {"type": "string", "enum": ["viewer", "editor", "admin"]},
        "remaining_role": {
            "type": ["string", "null"],
            "enum": ["viewer", "editor", "admin", "owner", None],
            "description": "The highest role a removed user still holds through their teams"
            " (null: none; they may still see a public or team project).",
        },
        "remaining_teams": {
            "type": "array",
            "description": "The teams that still give the removed user a role, with those roles.",
            "items": obj({"team": {"type": "string"}, "role": ROLE}, ("team", "role")),
        },
    },
    ("member", "removed_role", "remaining_role", "remaining_teams"),
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
        "acceptable": {
            "type": "boolean",
            "description": "(Your own invitations only.) Whether you can accept it now.",
        },
        "reason": {
            "type": ["string", "null"],
            "description": "(Your own invitations only.) Why you cannot accept it, if so: its"
            " inviter may no longer grant its role (decline it, or ask an admin to invite you"
            " again).",
        },
    },
    ("id", "username", "role", "status", "expires_at"),
)
NOTIFICATION = obj(
    {
        "kind": {"type": "string", "enum": ["invitation", "access_request", "promotion"]},
        "id": {"type": "integer", "description": "The invitation's or request's id."},
        "project": {"type": "string"},
        "project_name": {"type": "string"},
        "by": {"type": ["string", "null"], "description": "Who invited or asked."},
        "message": {"type": "string"},
        "role": ROLE,
        "expires_at": TIME,
        "acceptable": {
            "type": "boolean",
            "description": "(Invitations.) Whether you can accept it now.",
        },
        "reason": {
            "type": ["string", "null"],
            "description": "(Invitations.) Why you cannot accept it, if so.",
        },
        "model": {"type": "string"},
        "version": {"type": "string"},
        "alias": {"type": "string"},
        "created_at": TIME,
    },
    ("kind", "id", "project", "project_name", "by", "message", "created_at"),
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
        "hub_group": {
            "type": ["string", "null"],
            "description": "The JupyterHub group this team is kept in sync with.",
        },
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

# -- datasets ------------------------------------------------------------------------
DATASET_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 100,
    "pattern": "^[a-z0-9][a-z0-9._-]{0,99}$",
    "x-pattern-message": "must be lowercase letters, digits, '.', '_' or '-'",
}
DATASET_METADATA = {
    "type": "object",
    "description": "Free JSON; known keys: license, source, schema, tags (a list of tags).",
    "properties": {
        "license": {"type": "string", "maxLength": 200},
        "source": {"type": "string", "maxLength": 2000},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 50},
    },
}
DATASET = obj(
    {
        "project": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "card": {"type": "string"},
        "metadata": {"type": "object"},
        "latest_version": {"type": ["integer", "null"]},
        "version_count": {"type": "integer"},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "can_write": {"type": "boolean"},
        "created_at": TIME,
        "updated_at": TIME,
        "etag": ETAG,
    },
    ("project", "name", "latest_version", "etag"),
)
DATASET_CREATE = obj(
    {
        "name": DATASET_NAME,
        "description": DESCRIPTION,
        "card": {"type": "string", "maxLength": 200000},
        "metadata": DATASET_METADATA,
    },
    ("name",),
)
DATASET_UPDATE = obj(
    {
        "description": DESCRIPTION,
        "card": {"type": "string", "maxLength": 200000},
        "metadata": DATASET_METADATA,
    },
    minProperties=1,
)
VERSION = obj(
    {
        "version": {"type": "integer"},
        "name": {"type": "string"},
        "parent": {"type": ["integer", "null"]},
        "message": {"type": "string"},
        "author": {"type": ["string", "null"]},
        "file_count": {"type": "integer"},
        "total_bytes": {"type": "integer"},
        "manifest_digest": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "created_at": TIME,
    },
    ("version", "name", "file_count", "total_bytes"),
)
DATASET_FILE = obj(
    {
        "path": {"type": "string"},
        "size": {"type": "integer"},
        "digest": {"type": "string"},
        "media_type": {"type": "string"},
        "chunk_count": {"type": "integer"},
        "chunks": {"type": "array"},
    },
    ("path", "size", "digest", "media_type"),
)
DIGEST = {"type": "string", "pattern": "^[0-9a-f]{64}$", "x-pattern-message": "must be 64 hex"}
UPLOAD_FILE = obj(
    {
        "path": {"type": "string", "minLength": 1, "maxLength": 1024},
        "size": {"type": "integer", "minimum": 0},
        "digest": DIGEST,
        "media_type": {"type": "string", "maxLength": 255},
        "chunks": {
            "type": "array",
            "items": {
                "type": "array",
                "prefixItems": [DIGEST, {"type": "integer", "minimum": 1}],
                "minItems": 2,
                "maxItems": 2,
            },
        },
    },
    ("path", "size", "digest", "chunks"),
)
UPLOAD_CREATE = obj(
    {"files": {"type": "array", "items": UPLOAD_FILE, "maxItems": 1_000_000}}, ("files",)
)
UPLOAD = obj(
    {
        "id": {"type": "string"},
        "state": {"type": "string"},
        "files": {"type": "integer"},
        "bytes_total": {"type": "integer"},
        "chunks_total": {"type": "integer"},
        "missing": {"type": "array", "items": {"type": "string"}},
        "missing_bytes": {"type": "integer"},
        "created_at": TIME,
    },
    ("id", "state", "missing"),
)
OPEN_UPLOAD = obj(
    {
        "id": {"type": "string"},
        "dataset": {"type": "string"},
        "owner": {"type": ["string", "null"]},
        "state": {"type": "string"},
        "created_at": TIME,
        "last_active_at": TIME,
    },
    ("id", "dataset", "owner", "state", "created_at", "last_active_at"),
)
CHUNKS_STORED = obj(
    {
        "received": {"type": "integer"},
        "stored": {"type": "integer"},
        "bytes_new": {"type": "integer"},
    },
    ("received", "stored"),
)
COMMIT = obj(
    {
        "message": {"type": "string", "maxLength": 10000},
        "parent": {"type": "string", "maxLength": 64},
        "strict_parent": {"type": "boolean"},
        "mode": {"type": "string", "enum": ["replace", "update"]},
        "delete": {"type": "array", "items": {"type": "string", "maxLength": 1024}},
    }
)
COMMIT_RESULT = obj(
    {
        "version": VERSION,
        "unchanged": {
            "type": "boolean",
            "description": "true: the files were exactly the latest version's, which is "
            "'version'; no new version was made (200, not 201)",
        },
        "replayed": {
            "type": "boolean",
            "description": "true: the upload was published already, by a commit asking the "
            "same (a retry after a lost answer); this is that commit's answer, nothing new",
        },
        "stored": {"type": "object"},
        "seconds": {"type": "number"},
    },
    ("version",),
)
TAG = obj({"tag": {"type": "string"}, "version": {"type": "integer"}}, ("tag", "version"))
TAG_SET = obj({"version": {"type": "string", "minLength": 1, "maxLength": 64}}, ("version",))
LINEAGE = obj(
    {
        "project": {"type": ["string", "null"]},
        "dataset": {"type": "string"},
        "version": {"type": "integer"},
        "consumer": {"type": "string"},
        "direction": {"type": "string", "enum": ["read", "write"]},
        "recorded_by": {"type": ["string", "null"]},
        "time": TIME,
    },
    ("dataset", "version", "consumer", "direction"),
)
LINEAGE_RECORD = obj(
    {
        "consumer": {**NAME, "maxLength": 255, "description": "e.g. 'run:4f2a9c'"},
        "direction": {"type": "string", "enum": ["read", "write"]},
    },
    ("consumer",),
)
VERSION_DIFF = {
    "type": "object",
    "properties": {
        "from": {"type": "integer"},
        "to": {"type": "integer"},
        "added": {"type": "array"},
        "removed": {"type": "array"},
        "modified": {"type": "array"},
        "tables": {"type": "array"},
        "summary": {"type": "object"},
    },
    "required": ["from", "to", "added", "removed", "modified", "tables"],
}
OPERATION = obj(
    {
        "id": {"type": "string"},
        "kind": {"type": "string"},
        "state": {"type": "string", "enum": ["running", "succeeded", "failed", "cancelled"]},
        "message": {"type": "string"},
        "bytes_done": {"type": "integer"},
        "bytes_total": {"type": ["integer", "null"]},
        "files_done": {"type": "integer"},
        "files_total": {"type": ["integer", "null"]},
        "progress": {"type": ["number", "null"]},
        "cancel_requested": {"type": "boolean"},
        "result": {"type": "object"},
        "error": {"type": "string"},
        "created_at": TIME,
        "updated_at": TIME,
    },
    ("id", "kind", "state"),
)
GC_REQUEST = obj({"dry_run": {"type": "boolean"}})
