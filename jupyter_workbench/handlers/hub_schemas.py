"""Schemas of the hub-related endpoints: secrets, quotas, usage, servers."""

from __future__ import annotations

from typing import Any

from .schemas import TIME, obj, page_of

SECRET_NAME = {"type": "string", "minLength": 1, "maxLength": 128}
SECRET = obj({"name": {"type": "string"}, "created_at": TIME, "updated_at": TIME},
             ("name", "created_at", "updated_at"))  # fmt: skip
SECRETS = obj({"items": {"type": "array", "items": SECRET}}, ("items",))
SECRET_PUT = obj({"value": {"type": "string", "maxLength": 65536}}, ("value",))

LIMIT_INT = {"type": ["integer", "null"], "minimum": 0, "maximum": 100000}
LIMIT_HOURS = {"type": ["number", "null"], "minimum": 0, "maximum": 10_000_000}
LIMITS = {
    "max_servers": {**LIMIT_INT, "description": "Servers running at once (null: no limit)."},
    "max_gpus": {**LIMIT_INT, "description": "GPUs in use at once (null: no limit)."},
    "gpu_hours_per_month": {**LIMIT_HOURS, "description": "GPU-hours per calendar month (UTC)."},
}
QUOTA_SUBJECT = {"type": "string", "maxLength": 300}
QUOTA = obj(
    {"subject": {"type": "string"}, **LIMITS, "updated_at": TIME},
    ("subject", "max_servers", "max_gpus", "gpu_hours_per_month"),
)
QUOTAS = page_of(QUOTA)
QUOTA_PUT = obj(LIMITS, minProperties=1)

RUN = obj(
    {
        "id": {"type": "integer"},
        "user": {"type": "string"},
        "server_name": {"type": "string"},
        "profile": {"type": "string"},
        "gpus": {"type": "integer"},
        "project": {"type": ["string", "null"]},
        "started_at": TIME,
        "stopped_at": {"type": ["string", "null"]},
        "hours": {"type": "number"},
    },
    ("id", "user", "server_name", "profile", "gpus", "started_at"),
)
HOURS = {"server_hours": {"type": "number"}, "gpu_hours": {"type": "number"}}
USAGE_ROW = obj({"key": {"type": "string"}, **HOURS, "runs": {"type": "integer"}},
                ("key", "server_hours", "gpu_hours", "runs"))  # fmt: skip
USAGE_REPORT = obj(
    {
        "group_by": {"type": "string"},
        "from": TIME,
        "to": TIME,
        "items": {"type": "array", "items": USAGE_ROW},
        "total": obj(HOURS, ("server_hours", "gpu_hours")),
    },
    ("group_by", "from", "to", "items", "total"),
)
USAGE_SERIES = obj(
    {
        "bucket": {"type": "string"},
        "from": TIME,
        "to": TIME,
        "points": {"type": "array", "items": obj({"start": TIME, **HOURS},
                                                 ("start", "server_hours", "gpu_hours"))},
    },
    ("bucket", "from", "to", "points"),
)  # fmt: skip
MY_USAGE = obj(
    {
        "month": {"type": "string"},
        **HOURS,
        "running": {"type": "array", "items": RUN},
        "quota": {"type": "object"},
    },
    ("month", "server_hours", "gpu_hours", "running", "quota"),
)
SERVERS = obj({"items": {"type": "array", "items": RUN}}, ("items",))
RUNNING = page_of(RUN)


def time_param_schema() -> dict[str, Any]:
    return {"type": "string", "maxLength": 40, "description": "ISO 8601 date or date-time (UTC)."}


PERSON = obj(
    {
        "username": {"type": "string"},
        "display_name": {"type": "string"},
        "is_admin": {"type": "boolean"},
        "last_seen_at": TIME,
        "left_hub_at": {**TIME, "type": ["string", "null"],
                        "description": "When the hub stopped having this user (null: it has)."},
        "teams": {
            "type": "array",
            "items": obj({"team": {"type": "string"}, "role": {"type": "string"}},
                         ("team", "role")),
        },
        "servers": {"type": "array", "items": RUN},
        "gpus_in_use": {"type": "integer"},
        "server_hours_this_month": {"type": "number"},
        "gpu_hours_this_month": {"type": "number"},
    },
    ("username", "teams", "servers"),
)  # fmt: skip
PEOPLE = obj(
    {
        "items": {"type": "array", "items": PERSON},
        "next_cursor": {"type": ["string", "null"]},
        "totals": obj(
            {"users": {"type": "integer"}, "left_hub": {"type": "integer"},
             "teams": {"type": "integer"},
             "servers_running": {"type": "integer"}, "gpus_in_use": {"type": "integer"},
             "month": {"type": "string"}},
        ),
    },
    ("items", "next_cursor", "totals"),
)  # fmt: skip
SIGNUP = obj(
    {"name": {"type": "string"}, "email": {"type": ["string", "null"]},
     "has_2fa": {"type": "boolean"}},
    ("name",),
)  # fmt: skip
SIGNUPS = obj({"items": {"type": "array", "items": SIGNUP}}, ("items",))
SIGNUP_ACTION = obj({"action": {"type": "string", "enum": ["approve", "discard"]}}, ("action",))
SIGNUP_DONE = obj({"name": {"type": "string"}, "action": {"type": "string"}}, ("name", "action"))
PROJECT_SERVER = obj(
    {
        "project": {"type": "string"},
        "owner": {"type": "string", "description": "The hub user whose named server it is."},
        "server_name": {"type": "string"},
        "url": {"type": "string", "description": "Where it answers, under the hub's base URL."},
        "created_at": TIME,
        "started_at": {"type": ["string", "null"]},
        "shared_with": {"type": "array", "items": {"type": "string"},
                        "description": "The project's other editors and above."},
        "ready": {"type": "boolean"},
        "pending": {"type": ["string", "null"]},
        "running": {"type": "boolean"},
    },
    ("project", "owner", "server_name", "url", "shared_with", "ready"),
)  # fmt: skip
