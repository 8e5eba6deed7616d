"""The OpenAPI 3.1 document, generated from the route table's endpoint declarations."""

from __future__ import annotations

import re
from typing import Any

from .. import __version__
from ..core.access import BLOCKED_WHEN_ARCHIVED
from .base import MAX_INT, STATUS_CODES, WorkbenchHandler, endpoint

ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "A stable, machine-readable code."},
        "message": {"type": "string", "description": "What is wrong, naming the field."},
    },
    "required": ["error", "message"],
}
ERROR_TEXT = {
    400: "Bad input (JSON, types, unknown fields, lengths, parameters)",
    401: "Not signed in",
    403: "Visible, but the caller lacks the role",
    404: "Not found, or not visible to the caller",
    409: "Conflict with the current state (uniqueness, archived, pending ...)",
    412: "If-Match named a stale ETag",
    413: "Request body too large",
    416: "Range outside the file",
}
PATH_DOCS = {
    "slug": "Project slug.",
    "member": "A username, or 'team:<name>'.",
    "name": "Team or model config name.",
    "username": "A username.",
    "invitation_id": "Invitation id.",
    "request_id": "Access request id.",
    "number": "Revision number.",
}


def _operation(method: str, template: str, meta: Any) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": meta.summary,
        "operationId": f"{method}_{re.sub(r'[^a-z0-9]+', '_', template.lower()).strip('_')}",
        "tags": [template.strip("/").split("/")[0]],
        "x-workbench-action": meta.action,
    }
    params: list[dict[str, Any]] = []
    for name in re.findall(r"\{(\w+)\}", template):
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if name in ("invitation_id", "request_id", "number"):
            schema = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": schema,
                "description": PATH_DOCS.get(name, name),
            }
        )
    for p in meta.query:
        params.append(
            {
                "name": p.name,
                "in": "query",
                "required": p.required,
                "schema": p.schema,
                "description": p.description or p.name,
            }
        )
    if method in ("patch", "put", "delete"):
        params.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "ETag from a read: refuse the change if the object changed since.",
            }
        )
    if params:
        op["parameters"] = params
    if meta.raw_body:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    if meta.body is not None:
        content: dict[str, Any] = {"schema": meta.body}
        if meta.example is not None and "{" not in str(meta.example):
            content["example"] = meta.example
        op["requestBody"] = {
            "required": bool(meta.body.get("required") or meta.body.get("minProperties")),
            "content": {"application/json": content},
        }
    responses: dict[str, Any] = {}
    if meta.status == 204:
        responses["204"] = {"description": "Done"}
    elif meta.produces:
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses[str(meta.status)] = {
            "description": "The bytes",
            "content": {meta.produces: binary},
        }
        if meta.produces != "application/x-tar":
            responses["206"] = {
                "description": "The requested range",
                "content": {meta.produces: binary},
            }
            responses["304"] = {"description": "Not modified (If-None-Match)"}
    else:
        text = {201: "Created", 202: "Accepted: an operation to poll"}.get(meta.status, "OK")
        for code in (meta.status, *meta.also):
            responses[str(code)] = {
                "description": text if code == meta.status else STATUS_CODES.get(code, "OK"),
                "content": {"application/json": {"schema": meta.response or {}}},
            }
    errors = {400, 401, 404, 413} | set(meta.errors)
    if method != "get" or meta.action in BLOCKED_WHEN_ARCHIVED:
        errors.add(409)  # uniqueness and state conflicts (an archived project ...)
    if method in ("patch", "put", "delete"):
        errors.add(412)
    if not meta.public:
        errors.add(403)
    for code in sorted(errors):
        responses[str(code)] = {
            "description": ERROR_TEXT.get(code, STATUS_CODES.get(code, "error")),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    op["responses"] = responses
    if meta.public:
        op["security"] = []
    return op


def build_spec(base_url: str = "/") -> dict[str, Any]:
    from .routes import API_PREFIX, ROUTES

    paths: dict[str, Any] = {}
    for route in ROUTES:
        item = paths.setdefault(route.template, {})
        for method, meta in route.endpoints().items():
            item[method] = _operation(method, route.template, meta)
    own = getattr(OpenAPIHandler.get, "endpoint")  # noqa: B009
    paths["/openapi.json"] = {"get": _operation("get", "/openapi.json", own)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Jupyter Workbench API",
            "version": __version__,
            "description": "Projects, teams, access control and model configs. Authenticate with "
            "'Authorization: token <token>' (the Jupyter server's or JupyterHub token).",
        },
        "servers": [{"url": f"{base_url.rstrip('/')}/{API_PREFIX}"}],
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'token <your token>'",
                }
            },
        },
    }


class OpenAPIHandler(WorkbenchHandler):
    @endpoint(
        action="user.read",
        summary="This OpenAPI document",
        response={"type": "object"},
        public=True,
    )
    async def get(self) -> None:
        self.reply(build_spec(self.base_url))


class ApiIndexHandler(WorkbenchHandler):
    """The API's root: where to start (the address ``make run`` and ``make lab`` print)."""

    @endpoint(
        action="user.read",
        summary="Where to start: this API's version and the addresses of its description",
        response={"type": "object"},
        public=True,
    )
    async def get(self) -> None:
        root = f"{self.request.protocol}://{self.request.host}{self.base_url}workbench/api/v1"
        self.reply(
            {
                "name": "Jupyter Workbench API",
                "version": __version__,
                "openapi": f"{root}/openapi.json",
                "me": f"{root}/me",
                "projects": f"{root}/projects",
                "authentication": "send 'Authorization: token <your token>'",
            }
        )
