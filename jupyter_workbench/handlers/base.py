"""The base of every workbench API handler: auth, JSON in/out, errors, paging, ETags.

Handlers stay thin: an ``@endpoint`` declares the access action, the body and query schemas and
the response (the OpenAPI document is generated from these declarations), parses and validates
the request, and the method body calls one core function through ``self.call``.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.client import responses
from typing import Any, TypeVar
from urllib.parse import quote

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from sqlalchemy.orm import Session
from tornado import web

from ..core import json_input
from ..core.access import ADMIN_ACTIONS, require_admin
from ..core.context import Ctx, Identity
from ..core.errors import BadRequest, NotFound, PayloadTooLarge, Unauthenticated, WorkbenchError
from ..core.pagination import Page
from ..core.validation import DB_ID_MAX, db_id
from ..identity import ServerIdentitySource
from ..service import WorkbenchService

T = TypeVar("T")
MAX_INT = DB_ID_MAX  # ids and numbers are 32-bit integers in the database
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_IGNORED_QUERY = {"token", "_xsrf"}
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "a JSON object",
    "array": "a JSON array",
    "null": "null",
}
STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    416: "range_not_satisfiable",
    500: "internal_error",
}


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` saving the answer as ``filename`` (RFC 6266): an ASCII name for
    old clients, and the exact one as UTF-8 (``filename*``); header values are Latin-1 only."""
    plain = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


@dataclass(frozen=True)
class Param:
    """A query parameter: its JSON Schema (string values are converted to its type)."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False
    example: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """What one handler method does, for validation, access tests and the OpenAPI document."""

    action: str
    summary: str
    status: int = 200
    body: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    query: tuple[Param, ...] = ()
    example: dict[str, Any] | None = None
    errors: tuple[int, ...] = field(default=())
    # other success statuses answered with the same response (e.g. 200 where nothing was made)
    also: tuple[int, ...] = field(default=())
    public: bool = False
    # upload endpoints take bodies up to Workbench.max_upload_request_bytes
    large_body: bool = False
    # a binary body (application/octet-stream), passed through unparsed
    raw_body: bool = False
    # media type of a non-JSON response (downloads)
    produces: str | None = None


class ApiError(web.HTTPError):
    """A WorkbenchError on its way out as an HTTP response."""

    def __init__(self, error: WorkbenchError) -> None:
        super().__init__(error.status, log_message=error.message.replace("%", "%%"))
        self.code = error.code
        self.message = error.message


def _field_of(error: ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return path or "body"


def describe_validation_error(error: ValidationError, root: str = "body") -> str:
    """A short message naming the offending field, for bodies and query parameters."""
    where = _field_of(error) if root == "body" else root
    if "propertyNames" in error.schema_path:  # the rule is about a key, not its value
        shown = str(error.instance)
        where = f"{where} key {shown if len(shown) <= 40 else shown[:37] + '...'!r}"
    validator, value = error.validator, error.validator_value
    if validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        prefix = f"{where}." if where != "body" else ""
        hint = f" (known: {', '.join(known)})" if known else ""
        return f"{prefix}{extra[0]}: unknown field{hint}" if extra else f"{where}: unknown field"
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        prefix = f"{where}." if where != "body" else ""
        return f"{prefix}{missing}: is required"
    if validator == "type":
        kinds = value if isinstance(value, list) else [value]
        names = [_TYPE_NAMES.get(str(k), str(k)) for k in kinds]
        return f"{where}: must be {' or '.join(names)}"
    if validator == "maxLength":
        return f"{where}: must be at most {value} characters long"
    if validator == "minLength":
        return (
            f"{where}: must not be empty"
            if value == 1
            else f"{where}: must be at least {value} characters long"
        )
    if validator == "enum":
        return f"{where}: must be one of {', '.join(map(str, value))}"
    if validator == "pattern":
        hint = error.schema.get("x-pattern-message")
        return f"{where}: {hint}" if hint else f"{where}: does not match the pattern {value}"
    if validator in ("minimum", "maximum"):
        word = "at least" if validator == "minimum" else "at most"
        return f"{where}: must be {word} {value}"
    if validator == "maxItems":
        return f"{where}: at most {value} items (send more in several requests)"
    if validator == "minItems":
        return f"{where}: at least {value} item{'s' if value != 1 else ''}"
    if validator == "minProperties":
        return f"{where}: give at least one field to change"
    if validator == "maxProperties":
        return f"{where}: must have at most {value} entries"
    text = error.message
    return f"{where}: {text if len(text) <= 300 else text[:300] + '...'}"


@functools.lru_cache(maxsize=512)
def _validators(key: int) -> tuple[Any, Draft202012Validator]:
    schema = _SCHEMAS[key]
    return jsonschema_rs.validator_for(schema), Draft202012Validator(schema)


_SCHEMAS: dict[int, dict[str, Any]] = {}


def _validate(schema: dict[str, Any], instance: Any, root: str = "body") -> None:
    """Validate in native code (jsonschema-rs); only a failure pays for the detailed message."""
    _SCHEMAS.setdefault(id(schema), schema)
    fast, slow = _validators(id(schema))
    if fast.is_valid(instance):
        return
    errors = sorted(
        slow.iter_errors(instance),
        key=lambda e: (len(list(e.absolute_path)), str(list(e.absolute_path))),
    )
    if errors:
        raise BadRequest(
            describe_validation_error(errors[0], root),
            code="invalid_field" if root == "body" else "invalid_parameter",
        )


def _convert_query(param: Param, raw: str) -> Any:
    kind = param.schema.get("type", "string")
    if kind == "integer":
        try:
            number = int(raw)
        except ValueError:
            raise BadRequest(
                f"{param.name}: must be an integer (got {raw!r})", code="invalid_parameter"
            ) from None
        # 32-bit unless the parameter's schema says more (a step: 64-bit); the schema's own
        # bounds are checked next
        bounds = (param.schema.get("minimum", 0), param.schema.get("maximum", 0))
        if abs(number) > max(MAX_INT, *(abs(b) for b in bounds)):
            raise BadRequest(f"{param.name}: {raw} is out of range", code="invalid_parameter")
        return number
    if kind == "boolean":
        lowered = raw.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise BadRequest(
            f"{param.name}: must be true or false (got {raw!r})", code="invalid_parameter"
        )
    return raw


def endpoint(
    **spec: Any,
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """Declare a handler method's contract; the wrapper validates the request against it."""
    meta = Endpoint(**spec)

    def decorate(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(method)
        async def wrapper(self: WorkbenchHandler, **path: str) -> None:
            try:
                for value in path.values():
                    if value and "\x00" in value:  # no name or id holds it: nothing is there
                        raise NotFound(f"{value!r} not found (no name holds a NUL character)")
                try:
                    self.query = self._parse_query(meta)
                    self.body = self._parse_body(meta)
                except BadRequest:
                    if meta.action in ADMIN_ACTIONS:  # a 403 first: no hints for others
                        await self.call(lambda s, ctx: require_admin(ctx, "do this"), write=False)
                    raise
                await method(self, **path)
            except WorkbenchError as exc:
                raise ApiError(exc) from None

        wrapper.endpoint = meta  # type: ignore[attr-defined]
        # jupyter-server's own login check would answer 403 (or redirect); ours answers 401.
        setattr(wrapper, "__allow_unauthenticated", True)
        return wrapper

    return decorate


class WorkbenchHandler(ExtensionHandlerMixin, APIHandler):
    """Base handler of the workbench REST API."""

    query: dict[str, Any]
    body: dict[str, Any]
    request_id: str = ""

    @property
    def service(self) -> WorkbenchService:
        service: WorkbenchService = self.settings["workbench_service"]
        return service

    def check_xsrf_cookie(self) -> None:
        # Anonymous requests are refused with 401 in prepare(); only check signed-in ones.
        if getattr(self, "_jupyter_current_user", None) is None:
            return None
        return super().check_xsrf_cookie()

    async def prepare(self) -> None:  # type: ignore[override]
        incoming = self.request.headers.get("X-Request-Id", "")
        self.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        self.set_header("X-Request-Id", self.request_id)
        await super().prepare()
        method = getattr(self, (self.request.method or "get").lower(), None)
        meta: Endpoint | None = getattr(method, "endpoint", None)
        try:
            if self.current_user is None and not (meta and meta.public):
                raise Unauthenticated(self.why_unauthenticated())
            settings = self.service.settings
            large = meta is not None and meta.large_body
            limit = settings.max_upload_request_bytes if large else settings.max_request_bytes
            if len(self.request.body or b"") > limit:
                raise PayloadTooLarge(f"body: larger than the {limit} bytes allowed")
        except WorkbenchError as exc:
            raise ApiError(exc) from None

    def why_unauthenticated(self) -> str:
        if self.request.headers.get("Authorization") and self.service.settings.hub_service:
            return (
                "the token was refused: JupyterHub does not know it (expired or revoked?), or "
                "it lacks the scope 'access:services!service=workbench' (or 'access:services')"
            )
        return "sign in first: send 'Authorization: token <your token>'"

    # -- identity and units of work -----------------------------------------------------
    def identity(self) -> Identity:
        source: ServerIdentitySource = self.extensionapp.identity_source  # type: ignore[attr-defined]
        return source.identity(self.current_user, self.identity_provider)

    async def call(self, fn: Callable[[Session, Ctx], T], *, write: bool | None = None) -> T:
        """Run ``fn(session, ctx)`` as the caller in one transaction, off the event loop."""
        if write is None:
            write = self.request.method not in ("GET", "HEAD")
        if_match = self.request.headers.get("If-Match")
        return await self.service.acall(
            self.identity(),
            fn,
            write=write,
            request_id=self.request_id,
            # With If-Match the client asked to lose the race: 412 via check_etag or 409.
            retry_stale=not if_match,
        )

    # -- request parsing ----------------------------------------------------------------
    @property
    def if_match(self) -> str | None:
        return self.request.headers.get("If-Match")

    def _parse_query(self, meta: Endpoint) -> dict[str, Any]:
        known = {p.name: p for p in meta.query}
        values: dict[str, Any] = {}
        for name, raw_values in self.request.query_arguments.items():
            if name in _IGNORED_QUERY:
                continue
            param = known.get(name)
            if param is None:
                allowed = ", ".join(sorted(known)) or "none"
                raise BadRequest(
                    f"{name}: unknown query parameter (allowed: {allowed})",
                    code="invalid_parameter",
                )
            if len(raw_values) > 1:
                raise BadRequest(f"{name}: given more than once", code="invalid_parameter")
            raw = raw_values[0].decode("utf-8", "replace")
            if "\x00" in raw:
                raise BadRequest(
                    f"{name}: must not contain the NUL character (%00)", code="invalid_parameter"
                )
            value = _convert_query(param, raw)
            _validate(param.schema, value, root=name)
            values[name] = value
        for param in meta.query:
            if param.required and param.name not in values:
                raise BadRequest(
                    f"{param.name}: query parameter is required", code="invalid_parameter"
                )
        return values

    def _parse_body(self, meta: Endpoint) -> dict[str, Any]:
        raw = self.request.body or b""
        if meta.raw_body:
            return {}
        if meta.body is None:
            if raw.strip():
                raise BadRequest("body: this endpoint takes no request body", code="invalid_body")
            return {}
        data: Any = json_input.parse(raw) if raw.strip() else {}
        _validate(meta.body, data)
        if not isinstance(data, dict):  # pragma: no cover - every body schema is an object
            raise BadRequest("body: must be a JSON object", code="invalid_field")
        return data

    def path_int(self, value: str, what: str) -> int:
        """A numeric id from the URL; anything else cannot name an object (404)."""
        row_id = db_id(value)
        if row_id is None:
            raise ApiError(NotFound(f"{what} {value!r} not found"))
        return row_id

    # -- responses ----------------------------------------------------------------------
    def reply(self, data: Any, *, status: int = 200, etag: str | None = None) -> None:
        self.set_status(status)
        if etag:
            self.set_header("ETag", etag)
        if status == 204:
            self.finish()
            return
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(data, default=str))

    def page_args(self, *, sort: bool = True) -> dict[str, Any]:
        """A list's ``limit``, ``cursor`` (and ``sort``) from the query, as keywords."""
        names = ("sort", "limit", "cursor") if sort else ("limit", "cursor")
        return {name: self.query.get(name) for name in names}

    @property
    def error_headers(self) -> dict[str, str]:
        """Headers an error response keeps (tornado clears the others before writing it)."""
        if not hasattr(self, "_error_headers"):
            self._error_headers: dict[str, str] = {}
        return self._error_headers

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        for name, value in self.error_headers.items():
            self.set_header(name, value)
        if status_code == 405:
            allowed = [
                m.upper()
                for m in ("get", "post", "put", "patch", "delete")
                if hasattr(getattr(type(self), m, None), "endpoint")
            ]
            self.set_header("Allow", ", ".join(allowed))
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            body = {"error": exc.code, "message": exc.message}
        elif isinstance(exc, web.HTTPError):
            body = {
                "error": STATUS_CODES.get(status_code, "error"),
                "message": exc.log_message % exc.args
                if exc.log_message
                else (exc.reason or responses.get(status_code, "error")),
            }
        else:
            body = {
                "error": STATUS_CODES.get(status_code, "error"),
                "message": f"internal error (request id {self.request_id})"
                if status_code >= 500
                else responses.get(status_code, "error"),
            }
        self.finish(json.dumps(body))


class NotFoundHandler(WorkbenchHandler):
    """Unknown paths under the API answer a JSON 404, not jupyter-server's HTML page."""

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        # the route as the API names it: a user server forwards here under another prefix
        route = self.request.path.partition("/workbench/api/v1")[2] or "/"
        raise ApiError(
            NotFound(
                f"no API route {self.request.method} {route!r} (the routes are listed in "
                "openapi.json)"
            )
        )

    @endpoint(action="user.read", summary="Unknown route", public=True)
    async def get(self, **_: str) -> None:  # pragma: no cover - prepare() always raises
        raise ApiError(NotFound("no such route"))


def page_json(page: Page[T], item_json: Callable[[T], Any]) -> dict[str, Any]:
    """A list's answer: one page of items as JSON, and the cursor of the next page."""
    return {"items": [item_json(x) for x in page.items], "next_cursor": page.next_cursor}
