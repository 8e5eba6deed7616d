"""The authorizing MLflow proxy at ``{base_url}workbench/mlflow/``.

Stock MLflow clients use it as their tracking URI with the caller's Jupyter/JupyterHub token
(``MLFLOW_TRACKING_TOKEN``, sent as ``Authorization: Bearer``). Every request is matched against
``tracking/rules.py`` (deny by default), its project found (from the experiment, run, logged model,
artifact path or registered model it names) and the caller's role on that project checked before
the request reaches MLflow. Searches are filtered to what the caller may see, with pages still
full. ``{base_url}workbench/mlflow/p/<slug>/`` scopes everything to one project: experiment names
there need no ``<slug>/`` prefix, and experiment ``0`` ("Default") is the project's own.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from tornado import web

from ..core import audit, json_input
from ..core import experiments as ex
from ..core.access import check_project, require_project
from ..core.context import Ctx, Identity
from ..core.errors import NotFound, WorkbenchError
from ..db.models import Project
from ..identity import ServerIdentitySource
from ..service import WorkbenchService
from ..tracking import artifacts, rules
from ..tracking.store import Point
from ..tracking.upstream import MlflowUnavailable, Upstream, failure
from .streaming import RefusesUnreadBodies

log = logging.getLogger("jupyter_workbench.mlflow_proxy")

ERROR_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "RESOURCE_ALREADY_EXISTS",
    502: "TEMPORARILY_UNAVAILABLE",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "TEMPORARILY_UNAVAILABLE",
}
ACTION_OF = {
    "read": "experiments.read",
    "write": "experiments.write",
    "delete": "experiments.delete",
    "promote": "models.promote",
}
PROTECTED_ALIASES = frozenset({"production", "prod", "champion"})
# request fields an audited call's event keeps (how it changed the object)
AUDITED_FIELDS = ("new_name", "alias", "version", "stage", "archive_existing_versions")
RESPONSE_HEADERS = ("Content-Type", "Content-Disposition", "Cache-Control", "ETag", "Last-Modified")
MAX_SEARCH_RESULTS = 50000  # MLflow's own ceiling on a search page
SEARCH_PAGE_CALLS = 50
_UPPER = re.compile("[A-Z]")


# registry writes whose body may carry a description (checked as text before MLflow stores it)
DESCRIBED = frozenset({"model.version_create", "model.version_update", "model.update"})


class ProxyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _from(exc: WorkbenchError) -> ProxyError:
    return ProxyError(exc.status if exc.status in ERROR_CODES else 400, exc.message)


@web.stream_request_body
class MlflowProxyHandler(RefusesUnreadBodies, ExtensionHandlerMixin, JupyterHandler):
    """Authorize, then forward to the tracking server (streaming artifacts both ways)."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

    scope_slug: str | None = None
    mlflow_path: str = "/"
    match: rules.Match | None = None
    project_scope: Project | None = None

    # -- plumbing ------------------------------------------------------------------------
    @property
    def upstream_path(self) -> str:
        """``mlflow_path`` (decoded by tornado) quoted again for MLflow: an artifact named
        'a?b.txt' or 'c%41.txt' keeps its name."""
        return quote(self.mlflow_path, safe="/")

    @property
    def service(self) -> WorkbenchService:
        service: WorkbenchService = self.settings["workbench_service"]
        return service

    @property
    def upstream(self) -> Upstream:
        upstream: Upstream = self.settings["workbench_mlflow"]
        return upstream

    def identity(self) -> Identity:
        source: ServerIdentitySource = self.extensionapp.identity_source  # type: ignore[attr-defined]
        return source.identity(self.current_user, self.identity_provider)

    async def db(self, fn: Callable[[Session, Ctx], Any], *, write: bool = False) -> Any:
        try:
            return await self.service.acall(self.identity(), fn, write=write)
        except WorkbenchError as exc:
            raise _from(exc) from None

    def check_xsrf_cookie(self) -> None:
        """Token callers skip XSRF; browser (cookie) callers must come from this origin (the
        MLflow UI cannot send Jupyter's _xsrf token)."""
        if getattr(self, "_jupyter_current_user", None) is None or self.token_authenticated:
            return
        if not (self.request.headers.get("Origin") or self.request.headers.get("Referer")):
            raise web.HTTPError(403, "cookie-authenticated changes need an Origin header")
        if not self.check_origin():
            raise web.HTTPError(403, "cross-origin request refused")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or getattr(exc, "message", None) or "error"
        self.set_header("Content-Type", "application/json")
        code = ERROR_CODES.get(status_code, "INTERNAL_ERROR")
        self.finish(json.dumps({"error_code": code, "message": message}))

    def fail(self, error: ProxyError) -> None:
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error_code": ERROR_CODES.get(error.status, "INTERNAL_ERROR"),
                                "message": error.message}))  # fmt: skip

    # -- request lifecycle -----------------------------------------------------------------
    async def prepare(self) -> None:  # type: ignore[override]
        self._chunks: list[bytes] = []
        self._stream_queue: asyncio.Queue[bytes | None] | None = None
        self._stream_task: asyncio.Task[Any] | None = None
        self._answering = False
        self._error: ProxyError | None = None
        self._refusal: web.HTTPError | None = None
        # what an audited call acts on, found while authorizing it: (project, experiment name)
        self._owner: tuple[Project, str] | None = None
        self._warning: str | None = None  # what authorizing could not check (audited)
        self._checked_source: tuple[str, str] | None = None  # a runs:/ source found there
        try:
            await self._prepare()
        except web.HTTPError as exc:
            if self._is_upload():
                # An artifact upload refused before its body: it is not read.
                self.refused_unread = True
                raise
            # Answered once the (small) body has been read: answering before would make
            # tornado drop the keep-alive connection without telling the client.
            self._refusal = exc

    async def _prepare(self) -> None:
        await super().prepare()
        scope, path = self.path_kwargs.get("scope"), self.path_kwargs.get("path") or "/"
        self.scope_slug, self.mlflow_path = scope, path
        if self.current_user is None:
            raise web.HTTPError(401, "sign in first: set MLFLOW_TRACKING_TOKEN to your token")
        if any(segment in (".", "..") for segment in path.split("/")):
            # the path sent on would lose them (HTTP clients resolve dot segments): MLflow
            # would act on another path than the one checked here
            raise web.HTTPError(400, "path: '.' and '..' segments are not allowed")
        self.match = rules.match(self.request.method or "GET", path)
        if self.match is None:
            raise web.HTTPError(
                403, f"{self.request.method} {path} is not allowed through the workbench proxy"
            )
        if self.scope_slug:
            self.project_scope = await self._scope()
        if self._is_upload():
            # Artifacts stream straight through: authorize now, before the body arrives.
            self.request.connection.set_max_body_size(1 << 40)  # type: ignore[union-attr]
            try:
                await self._authorize({})
            except ProxyError as exc:
                raise web.HTTPError(exc.status, exc.message) from None
            self._stream_queue = asyncio.Queue(maxsize=16)
            self._stream_task = asyncio.ensure_future(self._forward_stream())
            # its failure is answered by _handle, or nobody is left to answer (see below)
            self._stream_task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def on_connection_close(self) -> None:
        """The client went away: an upload it left unfinished is given up, so its stream to
        MLflow (a pooled connection, waiting for the rest) does not wait forever."""
        super().on_connection_close()
        task = getattr(self, "_stream_task", None)
        if task is None or self._answering:  # _relay reads and closes MLflow's answer
            return
        if not task.done():
            task.cancel()
        elif not task.cancelled() and task.exception() is None:
            self._closing = asyncio.ensure_future(task.result().aclose())

    def _is_upload(self) -> bool:
        return (
            self.request.method == "PUT"
            and self.match is not None
            and (self.match.rule.locate == "artifact_path")
        )

    async def data_received(self, chunk: bytes) -> None:
        if self._refusal is not None:
            return  # read to keep the connection usable, and dropped
        if self._stream_queue is not None:
            await self._feed(chunk)
        else:
            self._chunks.append(chunk)
            if sum(len(c) for c in self._chunks) > self.service.settings.max_upload_request_bytes:
                raise web.HTTPError(413, "request body too large")

    async def _feed(self, chunk: bytes | None) -> None:
        """Hand a piece of an upload (``None``: the end) to the stream to MLflow. Once that
        stream has failed, the rest of the body is read and dropped, and ``_handle`` answers
        the failure (waiting on a queue nobody empties would hang the request)."""
        assert self._stream_queue is not None and self._stream_task is not None
        task = self._stream_task
        if task.done():
            return
        put = asyncio.ensure_future(self._stream_queue.put(chunk))
        await asyncio.wait({put, task}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()

    async def _scope(self) -> Project:
        slug = self.scope_slug or ""

        def load(s: Session, ctx: Ctx) -> Project:
            project, _ = require_project(s, ctx, slug, "experiments.read")
            return project

        try:
            return await self.db(load)
        except ProxyError as exc:
            raise web.HTTPError(exc.status, exc.message) from None

    # Our own 401 (in prepare) replaces jupyter-server's login redirect.
    @allow_unauthenticated
    async def get(self, **_: str) -> None:
        await self._handle()

    @allow_unauthenticated
    async def post(self, **_: str) -> None:
        await self._handle()

    @allow_unauthenticated
    async def put(self, **_: str) -> None:
        await self._handle()

    @allow_unauthenticated
    async def patch(self, **_: str) -> None:
        await self._handle()

    @allow_unauthenticated
    async def delete(self, **_: str) -> None:
        await self._handle()

    # -- the request's fields, read where MLflow reads them ---------------------------------
    # MLflow reads a GET's fields from its query string (a field given twice: its first value)
    # and any other request's from its JSON body, where a field may also be spelled the JSON
    # way (``runId`` for ``run_id``). The proxy checks those same values and forwards only
    # what it read: a GET without a body, any other request with its body as parsed.
    _json: dict[str, Any]

    def _body(self) -> dict[str, Any]:
        if not hasattr(self, "_json"):
            raw = b"".join(self._chunks)
            if self.request.method == "GET" or not raw.strip():
                self._json, self._chunks = {}, []
                return self._json
            try:  # what MLflow would choke on (or store as garbage) is refused here
                data = json_input.parse(raw, where="request body")
            except WorkbenchError as exc:
                raise ProxyError(400, exc.message) from None
            if not isinstance(data, dict):
                raise ProxyError(400, "request body: must be a JSON object")
            if self.match is None or self.match.rule.locate != "graphql":
                data = _proto_names(data)
            self._rewrite(data)
        return self._json

    def _field(self, *names: str) -> str | None:
        """The first of ``names`` the request gives a value (not empty) for, as MLflow reads
        it (``run_id`` or else ``run_uuid``)."""
        if self.request.method == "GET":
            query = self._query_text()
            return next((query[n][0] for n in names if query.get(n) and query[n][0]), None)
        body = self._body()
        return next((str(body[n]) for n in names if body.get(n) not in (None, "")), None)

    def _fields(self, name: str) -> Any:
        """A list-valued field: all of a GET's values for ``name``, or the body's value."""
        if self.request.method == "GET":
            return self._query_text().get(name, [])
        return self._body().get(name)

    # -- authorization ---------------------------------------------------------------------
    async def _handle(self) -> None:
        if self._refusal is not None:
            raise self._refusal
        try:
            if self._stream_task is not None:
                self._answering = True  # the whole body is in: MLflow will answer it
                await self._feed(None)
                await self._relay(await self._stream_task)
                return
            post = await self._authorize(self._body())
            if post in ("search", "done"):
                return
            response = await self._send()
            await self._relay(response, post)
        except ProxyError as exc:
            self.fail(exc)
        except WorkbenchError as exc:  # a rule of core/ the request broke, before any DB call
            self.fail(_from(exc))
        except MlflowUnavailable as exc:
            self.fail(ProxyError(503, str(exc)))
        except httpx.TransportError as exc:
            # MLflow dropped the connection or did not answer in time: a gateway error the
            # caller can retry (stock MLflow clients retry 502 and 504), with what happened.
            self.log.warning("MLflow %s %s failed: %r", self.request.method, self.mlflow_path, exc)
            if self._headers_written:  # midway through its answer: cut it, never pass it whole
                self.request.connection.close()  # type: ignore[union-attr]
            else:
                self.clear()  # none of MLflow's headers (a file name, an ETag) on the error
                status = 504 if isinstance(exc, httpx.TimeoutException) else 502
                self.fail(ProxyError(status, failure(exc)))

    async def _authorize(self, body: dict[str, Any]) -> Any:
        """Check the caller may do this; returns what to do with the response, if anything."""
        assert self.match is not None
        rule, params = self.match.rule, self.match.params
        if rule.level == "open":
            return None
        action = ACTION_OF[rule.level]
        locate = rule.locate
        if locate == "experiment":
            exp_id = self._field(rule.field or "experiment_id")
            if exp_id is None:
                raise ProxyError(400, f"missing '{rule.field or 'experiment_id'}'")
            exp_id = await self._scoped_id(exp_id, rule.field)
            await self._check_experiment(exp_id, action)
            if rule.audit == "experiment.rename":
                return await self._authorize_rename(body, exp_id)
        elif locate == "experiments":
            ids = self._fields(rule.field)
            if not isinstance(ids, list) or not ids:
                raise ProxyError(400, f"missing '{rule.field}'")
            mapped = [await self._scoped_id(str(i), None) for i in ids]
            if self.project_scope is not None and self.request.method != "GET":
                body[rule.field] = mapped
                self._rewrite(body)
            for exp_id in mapped:
                await self._check_experiment(exp_id, action)
        elif locate in ("run", "runs"):
            run_ids = (
                self._fields("run_ids")
                if locate == "runs"
                else [self._field("run_id", "run_uuid") or ""]
            )
            if not isinstance(run_ids, list) or not run_ids or not all(run_ids):
                raise ProxyError(400, "missing 'run_id'")
            for run_id in run_ids:
                exp_id = await self.upstream.experiment_of_run(run_id)
                if exp_id is None:
                    raise ProxyError(404, f"run '{run_id}' not found")
                await self._check_experiment(exp_id, action, f"run '{run_id}'")
            if self.request.method == "POST" and locate == "run":
                live = live_update(self.mlflow_path, body)
                if live is not None:
                    return ("live", run_ids[0], live)
        elif locate == "logged_model":
            exp_id = await self.upstream.experiment_of_logged_model(params["model_id"])
            if exp_id is None:
                raise ProxyError(404, f"logged model '{params['model_id']}' not found")
            await self._check_experiment(exp_id, action, f"logged model '{params['model_id']}'")
        elif locate == "artifact_path":
            path = params.get("path") or self._field("path") or ""
            first = path.strip("/").split("/", 1)[0]
            if not first:
                raise ProxyError(403, "listing the artifact root is not allowed; name a path")
            await self._check_experiment(first, action)
        elif locate == "experiment_name":
            return await self._authorize_by_name(action)
        elif locate == "new_experiment":
            return await self._authorize_new_experiment(body)
        elif locate in ("model", "model_alias"):
            name = self._field("name")
            if name is None:
                raise ProxyError(400, "missing 'name'")
            alias = (self._field("alias") or "").lower()
            if (
                locate == "model_alias"
                and self.request.method != "GET"
                and alias in PROTECTED_ALIASES
            ):
                action = "models.promote"
            await self._check_model(name, action)
            if rule.audit in DESCRIBED and "description" in body:
                ex.check_description(body["description"])
            if rule.audit == "model.version_create":
                await self._check_source(body)
            if self.match.route.startswith("^registered\\-models/rename"):
                return ("rename_model", name, ex.check_model_name(body.get("new_name"), "new_name"))
            if (
                self.request.method == "DELETE"
                and "registered\\-models/delete$" in self.match.route
            ):
                return ("delete_model", name, None)
        elif locate == "new_model":
            return await self._authorize_new_model(body)
        elif locate == "graphql":
            filtered = await self._authorize_graphql(body, action)
            if filtered is not None:
                return filtered
        elif locate in ("search_experiments", "search_models", "search_model_versions"):
            await self._search(locate)
            return "search"
        else:  # pragma: no cover - every locator of rules.py is handled above
            raise ProxyError(403, f"no rule for {locate}")
        await self._check_links(rule.links, body)
        return ("audit", rule.audit, None) if rule.audit else None

    async def _check_links(self, links: tuple[tuple[str, str, str], ...], body: Any) -> None:
        """Each run or logged model the body links the object to (``rules.Rule.links``) is one
        the caller may read: a link names it in the linked object's own views."""
        for holder, key, kind in links:
            items = body.get(holder) if holder else [body]
            for index, item in enumerate(items if isinstance(items, list) else []):
                one = item.get(key) if isinstance(item, dict) else None
                if not isinstance(one, str) or not one:
                    continue
                field = f"{holder}.{index}.{key}" if holder else key
                if kind == "run":
                    exp_id = await self.upstream.experiment_of_run(one)
                    await self._readable(exp_id, f"run '{one}'", field)
                else:
                    exp_id = await self.upstream.experiment_of_logged_model(one)
                    await self._readable(exp_id, f"logged model '{one}'", field)

    async def _authorize_graphql(self, body: dict[str, Any], action: str) -> Any:
        """The MLflow UI's GraphQL: read-only queries whose root fields are on an allow-list,
        each naming the runs/experiments it reads, all of which the caller must see. In a
        project scope experiment '0' is the project's Default, as over REST (the query sent on
        says so). A run's ``modelVersions`` (any model's versions made from the run) are
        filtered to the models the caller may read, its ``modelInputs``/``modelOutputs`` (logged
        models of any experiment linked to the run) to the logged models it may read; in a
        scope, to the project's own."""
        from graphql import (
            FieldNode,
            GraphQLError,
            OperationDefinitionNode,
            OperationType,
            parse,
            print_ast,
            value_from_ast_untyped,
        )

        try:
            document = parse(str(body.get("query") or ""))
        except GraphQLError as exc:
            raise ProxyError(400, f"query: {exc.message}") from None
        variables = body.get("variables") or {}
        mapped_zero = False
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode) or (
                definition.operation != OperationType.QUERY
            ):
                raise ProxyError(403, "only GraphQL queries are allowed through the proxy")
            for selection in definition.selection_set.selections:
                if not isinstance(selection, FieldNode):
                    raise ProxyError(403, "GraphQL: root fragments are not allowed")
                field = selection.name.value
                if field == "__typename":
                    continue
                if field not in rules.GRAPHQL_FIELDS:
                    raise ProxyError(403, f"GraphQL: {field} is not allowed through the proxy")
                kind, keys = rules.GRAPHQL_FIELDS[field]
                given = {
                    a.name.value: value_from_ast_untyped(a.value, variables)
                    for a in selection.arguments
                }
                data = given.get("input") or {}
                ids = next((data[k] for k in keys if data.get(k)), None)
                if not ids:
                    raise ProxyError(400, f"GraphQL: {field} needs {keys[0]}")
                for one in ids if isinstance(ids, list) else [ids]:
                    if kind in ("run", "runs"):
                        exp_id = await self.upstream.experiment_of_run(str(one))
                        if exp_id is None:
                            raise ProxyError(404, f"run '{one}' not found")
                        await self._check_experiment(exp_id, action, f"run '{one}'")
                    else:
                        exp_id = await self._scoped_id(str(one), None)
                        if exp_id != str(one):
                            _graphql_zero(selection, keys, variables, exp_id)
                            mapped_zero = True
                        await self._check_experiment(exp_id, action)
        filtered = _graphql_filtered_lists(document)
        if mapped_zero or filtered:
            body["query"] = print_ast(document)
            self._rewrite(body)
        return ("graphql", filtered, None) if filtered else None

    async def _scoped_id(self, exp_id: str, _field: str | None) -> str:
        """In a project scope, experiment '0' (MLflow's Default) is the project's Default."""
        if self.project_scope is None or exp_id != "0":
            return exp_id
        project = self.project_scope

        def find(s: Session, ctx: Ctx) -> str | None:
            row = ex.project_default_experiment(s, s.get(Project, project.id))  # type: ignore[arg-type]
            return row.mlflow_experiment_id if row else None

        found = await self.db(find)
        if found:
            self._replace_experiment_zero(found)
            return str(found)
        created = await self._create_experiment(project, ex.DEFAULT_EXPERIMENT)
        self._replace_experiment_zero(created)
        return created

    def _replace_experiment_zero(self, exp_id: str) -> None:
        body = self._body()
        if body.get("experiment_id") in ("0", 0):
            body["experiment_id"] = exp_id
            self._rewrite(body)
        if self.request.method == "GET" and self._field("experiment_id") == "0":
            self._query_override = {"experiment_id": exp_id}

    async def _check_experiment(self, exp_id: str, action: str, what: str = "") -> None:
        """The caller may do ``action`` on experiment ``exp_id``; ``what`` (default: the
        experiment) is the object asked for, named in a refusal."""
        scope = self.project_scope
        missing = f"{what or f'experiment {exp_id!r}'} not found"

        def check(s: Session, ctx: Ctx) -> tuple[Project, str]:
            owner = ex.experiment_owner(s, exp_id)
            if owner is None or (scope is not None and owner[1].id != scope.id):
                raise NotFound(missing)
            _check_hidden(s, ctx, owner[1], action, missing)
            return owner[1], owner[0].name

        self._owner = await self.db(check)

    async def _check_model(self, name: str, action: str) -> None:
        scope = self.project_scope

        def check(s: Session, ctx: Ctx) -> tuple[Project, str]:
            project = ex.model_owner(s, name)
            missing = f"registered model '{name}' not found"
            if project is None or (scope is not None and project.id != scope.id):
                raise NotFound(missing)
            _check_hidden(s, ctx, project, action, missing)
            return project, ""

        self._owner = await self.db(check)

    async def _check_source(self, body: dict[str, Any]) -> None:
        """A new version's files come from a run or a logged model (``run_id``/``model_id``,
        a ``runs:/<run>/<path>`` or ``models:/<id>`` source) or from another registered
        model's version (``models:/<name>/<version>``, ``models:/<name>@<alias>``): the caller
        must be able to read it -- MLflow only checks that a source lies inside the run or
        logged model given, so a version could otherwise serve another project's files. Any
        other source must lie inside the artifacts of the run or logged model given (MLflow
        takes an ``s3://`` one on trust). A ``runs:/`` path must name something the run holds
        (a version pointing at nothing is refused, as over REST; where MLflow cannot list the
        run's artifacts it is made, and its audit event says that the path went unchecked)."""
        source = body.get("source")
        found, named = artifacts.runs_uri(source), artifacts.models_uri(source)
        runs = {found[0]} if found else set()
        if isinstance(body.get("run_id"), str) and body["run_id"]:
            runs.add(body["run_id"])
        for run_id in sorted(runs):
            exp_id = await self.upstream.experiment_of_run(run_id)
            await self._readable(exp_id, f"run '{run_id}'", "run_id" if not found else "source")
        models = {}
        if isinstance(body.get("model_id"), str) and body["model_id"]:
            models[body["model_id"]] = "model_id"
        if named is not None and named[0] == "model_id":
            models.setdefault(named[1], "source")
        for one, field in models.items():
            exp_id = await self.upstream.experiment_of_logged_model(one)
            await self._readable(exp_id, f"logged model '{one}'", field)
        if named is not None and named[0] == "name":
            await self._readable_model(named[1])
        if found is not None:
            warning = await artifacts.check_run_artifact(self.upstream, *found, field="source")
            if warning is not None:
                self.log.warning("model version of %s: %s", body.get("name"), warning)
            self._warning = warning
            self._checked_source = found if warning is None else None
        elif named is None and isinstance(source, str) and not _is_prompt(body):
            await self._check_inside(source, sorted(runs), list(models))

    async def _readable_model(self, name: str) -> None:
        """NotFound, as for a model that does not exist, unless the caller may read the
        registered model ``name`` (a version's ``models:/`` source)."""
        missing = f"source: registered model '{name}' not found"

        def check(s: Session, ctx: Ctx) -> None:
            project = ex.model_owner(s, name)
            if project is None:
                raise NotFound(missing)
            _check_hidden(s, ctx, project, "experiments.read", missing)

        await self.db(check)

    async def _check_inside(self, source: str, runs: list[str], models: list[str]) -> None:
        """A source that is no ``runs:/`` or ``models:/`` URI lies inside the artifacts of the
        run or logged model the request gives (both already found readable)."""
        roots = [await self.upstream.artifact_root("run", r) for r in runs] + [
            await self.upstream.artifact_root("logged_model", m) for m in models
        ]
        if any(root and artifacts.inside(source, root) for root in roots):
            return
        raise ProxyError(
            400,
            "source: must be a runs:/ or models:/ URI, or lie inside the artifacts of the run "
            "(run_id) or logged model (model_id) given",
        )

    async def _readable(self, exp_id: str | None, what: str, field: str) -> None:
        """NotFound (the same as for what does not exist) unless the caller may read the
        experiment ``exp_id`` (None: MLflow knows no such thing)."""

        def check(s: Session, ctx: Ctx) -> None:
            try:
                ex.experiment_project(s, ctx, exp_id or "", "experiments.read")
            except NotFound:
                raise NotFound(f"{field}: {what} not found") from None

        await self.db(check)

    async def _authorize_by_name(self, action: str) -> None:
        """Names are looked up in the workbench (project + name), never taken from MLflow: an
        experiment a purged project left behind under the same name stays invisible."""
        name = self._field("experiment_name") or ""
        scope = self.project_scope
        if scope is not None:
            prefix = f"{scope.slug}/"
            slug, short = scope.slug, name[len(prefix) :] if name.startswith(prefix) else name
        else:
            parts = ex.split_experiment_name(name)
            if parts is None:
                raise ProxyError(404, f"experiment '{name}' not found")
            slug, short = parts

        def find(s: Session, ctx: Ctx) -> str:
            experiment = ex.experiment_in_project(s, slug, short)
            if experiment is None:
                raise NotFound(f"experiment '{name}' not found")
            project = s.get(Project, experiment.project_id)
            _check_hidden(s, ctx, project, action, f"experiment '{name}' not found")  # type: ignore[arg-type]
            return str(experiment.mlflow_name)

        self._query_override = {"experiment_name": await self.db(find)}

    async def _project_for_new(self, name: str, tags: list[Any], sep: str) -> tuple[Project, str]:
        """The project a new experiment/model goes to, and its name inside that project."""
        if self.project_scope is not None:
            prefix = f"{self.project_scope.slug}{sep}"
            return self.project_scope, name[len(prefix) :] if name.startswith(prefix) else name
        slug = ex.project_for_tags(tags)
        short = name
        if slug is None and sep in name:
            slug, short = name.split(sep, 1)
        if not slug:
            raise ProxyError(
                400,
                f"name the project of '{name}': call it '<project>{sep}{name}', tag it "
                f"'{ex.PROJECT_TAG}', or use the tracking URI .../workbench/mlflow/p/<project>",
            )

        def load(s: Session, ctx: Ctx) -> Project:
            return require_project(s, ctx, slug, "experiments.write")[0]

        project: Project = await self.db(load)
        return project, short

    async def _authorize_new_experiment(self, body: dict[str, Any]) -> str:
        name = body.get("name") or ""
        if not name:
            raise ProxyError(400, "missing 'name'")
        if not isinstance(name, str):
            raise ProxyError(400, "name: must be a string")
        if body.get("artifact_location"):
            # an experiment's artifacts live where the workbench serves and checks them: a
            # location of the caller's choice could be another project's folder, or the
            # server's own disk
            raise ProxyError(
                400,
                "artifact_location: not settable here; the workbench stores every experiment's "
                "artifacts itself (leave it out)",
            )
        project, short = await self._project_for_new(name, _tags(body), "/")

        def check(s: Session, ctx: Ctx) -> None:
            check_project(s, ctx, s.get(Project, project.id), "experiments.write")  # type: ignore[arg-type]

        await self.db(check)
        exp_id = await self._create_experiment(project, short, body)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"experiment_id": exp_id}))
        return "done"

    async def _create_experiment(
        self, project: Project, short: str, body: dict[str, Any] | None = None
    ) -> str:
        mlflow_name = ex.mlflow_experiment_name(project, short)
        payload = dict(body or {})
        payload["name"] = mlflow_name
        tags = [t for t in _tags(payload) if not str(t.get("key", "")).startswith("workbench.")]
        tags += [{"key": ex.PROJECT_TAG, "value": project.slug},
                 {"key": ex.PROJECT_ID_TAG, "value": str(project.id)}]  # fmt: skip
        payload["tags"] = tags
        # The plain name may be taken in MLflow by an experiment of a purged project that had
        # the same slug: never adopt it (its runs are not this project's); take a new name.
        for candidate in (mlflow_name, f"{mlflow_name}.{project.id}",
                          f"{mlflow_name}.{project.id}.{uuid.uuid4().hex[:6]}"):  # fmt: skip
            payload["name"] = candidate
            status, data = await self.upstream.post_json(
                "/api/2.0/mlflow/experiments/create", payload
            )
            taken = status == 400 and "already exists" in str((data or {}).get("message", ""))
            if not taken and (data or {}).get("error_code") != "RESOURCE_ALREADY_EXISTS":
                break
        if status != 200:
            message = (data or {}).get("message", "MLflow refused the experiment")
            raise ProxyError(status if status in ERROR_CODES else 400, message)
        exp_id = str(data["experiment_id"])
        mlflow_name = candidate

        def record(s: Session, ctx: Ctx) -> None:
            ex.record_experiment(s, ctx, s.get(Project, project.id), short, exp_id, mlflow_name)  # type: ignore[arg-type]

        await self.db(record, write=True)
        return exp_id

    async def _authorize_rename(self, body: dict[str, Any], exp_id: str) -> Any:
        """An experiment keeps its project: its new name is '<slug>/NAME' (a project's tracking
        URI may give NAME alone), and the workbench follows the rename."""
        assert self._owner is not None
        project = self._owner[0]
        new = self._field("new_name") or ""
        prefix = f"{project.slug}/"
        if new.startswith(prefix):
            new = new[len(prefix) :]
        elif self.project_scope is None:
            raise ProxyError(
                400, f"new_name: an experiment of project '{project.slug}' is named '{prefix}NAME'"
            )
        short, old = await self.db(lambda s, ctx: ex.check_rename(s, project, exp_id, new))
        body["new_name"] = ex.mlflow_experiment_name(project, short)
        self._rewrite(body)
        return ("rename_experiment", exp_id, (short, body["new_name"], old))

    async def _authorize_new_model(self, body: dict[str, Any]) -> tuple[str, str, int]:
        name = body.get("name")
        if not name:
            raise ProxyError(400, "missing 'name'")
        ex.check_model_name(name)
        ex.check_description(body.get("description"))
        tags = _tags(body)
        project, _short = await self._project_for_new(name, tags, "\0")
        body["tags"] = [t for t in tags if t.get("key") != ex.PROJECT_TAG] + [
            {"key": ex.PROJECT_TAG, "value": project.slug}
        ]
        self._rewrite(body)
        return ("record_model", name, project.id)

    # -- searches filtered to what the caller may see, pages still full -------------------------
    async def _search(self, kind: str) -> None:
        scope = self.project_scope
        if kind == "search_experiments":
            allowed = await self.db(lambda s, ctx: ex.readable_experiment_ids(s, ctx, scope))
            items_key = "experiments"

            def keep(item: dict[str, Any]) -> bool:
                return str(item.get("experiment_id")) in allowed
        else:
            allowed = await self.db(lambda s, ctx: ex.readable_model_names(s, ctx, scope))
            items_key = "registered_models" if kind == "search_models" else "model_versions"

            def keep(item: dict[str, Any]) -> bool:
                return str(item.get("name")) in allowed

        is_get = self.request.method == "GET"
        request = self._query_text() if is_get else self._body()
        wanted = _max_results(_first(request.get("max_results")))
        upstream_token, skip = _decode_token(_first(request.get("page_token")))
        found: list[dict[str, Any]] = []
        next_token = None
        for _ in range(SEARCH_PAGE_CALLS):
            query = dict(request)
            query["max_results"] = max(wanted, 100)
            if upstream_token:
                query["page_token"] = upstream_token
            else:
                query.pop("page_token", None)
            if is_get:
                response = await self._send_raw("GET", params=_flat(query))
            else:
                response = await self._send_raw("POST", body=query)
            if response.status_code != 200:
                await self._relay(response)
                return
            data = response.json()
            items = data.get(items_key, [])
            for index, item in enumerate(items[skip:], start=skip):
                if keep(item):
                    found.append(item)
                    if len(found) == wanted:
                        more = index + 1 < len(items) or data.get("next_page_token")
                        next_token = _encode_token(upstream_token, index + 1) if more else None
                        break
            if next_token or len(found) == wanted:
                break
            skip = 0
            upstream_token = data.get("next_page_token")
            if not upstream_token:
                break
        result: dict[str, Any] = {items_key: found}
        if next_token:
            result["next_page_token"] = next_token
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(result))

    # -- forwarding ----------------------------------------------------------------------
    def _rewrite(self, body: dict[str, Any]) -> None:
        self._json = body
        self._chunks = [json.dumps(body).encode()]

    def _query_text(self) -> dict[str, list[str]]:
        """The query's arguments as text (MLflow reads UTF-8: other bytes are refused here)."""
        try:
            arguments = self.request.query_arguments.items()
            return {k: [v.decode() for v in values] for k, values in arguments}
        except UnicodeDecodeError:
            raise ProxyError(400, "the query string must be UTF-8 text") from None

    def _upstream_params(self) -> list[tuple[str, str | int | float | bool | None]]:
        override = getattr(self, "_query_override", {})
        params = [
            (k, override.get(k, v))
            for k, values in self._query_text().items()
            if k != "token"
            for v in values
        ]
        return params

    def _forward_headers(self) -> dict[str, str]:
        keep = ("Content-Type", "Accept", "Accept-Encoding", "Range", "If-None-Match")
        return {k: v for k, v in self.request.headers.items() if k in keep}

    async def _send_raw(
        self, method: str, *, params: Any = None, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        await self.upstream.ready()
        client = self.upstream.client()
        return await client.request(
            method,
            self.upstream_path,
            params=params,
            json=body,
            headers={"Accept": "application/json"},
        )

    async def _send(self) -> httpx.Response:
        await self.upstream.ready()
        client = self.upstream.client()
        request = client.build_request(
            self.request.method or "GET",
            self.upstream_path,
            params=self._upstream_params(),
            content=b"".join(self._chunks) if self._chunks else None,  # a GET's: none (_body)
            headers=self._forward_headers(),
        )
        return await client.send(request, stream=True)

    async def _forward_stream(self) -> httpx.Response:
        assert self._stream_queue is not None
        queue = self._stream_queue

        async def body() -> Any:
            while True:
                chunk = await queue.get()
                if chunk is None:
                    return
                yield chunk

        await self.upstream.ready()
        client = self.upstream.client()
        request = client.build_request(
            "PUT", self.upstream_path, params=self._upstream_params(), content=body(),
            headers=self._forward_headers(),
        )  # fmt: skip
        return await client.send(request, stream=True)

    async def _relay(self, response: httpx.Response, post: Any = None) -> None:
        try:
            answer: bytes | None = None  # read whole: an audited call's (small) answer
            if post and response.status_code == 200:
                if post[0] == "audit":
                    answer = await response.aread()
                    await self._audit(post[1], answer)
                elif post[0] == "graphql":
                    answer = await self._graphql_readable(await response.aread(), post[1])
                else:
                    await self._after(post)
            self.set_status(response.status_code)
            for name in RESPONSE_HEADERS:
                if name in response.headers:
                    self.set_header(name, response.headers[name])
            if answer is not None:
                self.write(answer)
            else:
                async for chunk in response.aiter_raw():
                    self.write(chunk)
                    await self.flush()
            self.finish()
        finally:
            await response.aclose()

    async def _graphql_readable(self, answer: bytes, keys: dict[str, str]) -> bytes:
        """A GraphQL answer whose filtered lists (``keys``: response key -> the field each item
        is filtered by, :data:`GRAPHQL_FILTERED`) hold only what the caller may read, in a
        scope only the project's own: ``modelVersions`` of readable registered models,
        ``modelInputs``/``modelOutputs`` naming logged models of readable experiments."""
        try:
            data = json.loads(answer)
        except ValueError:
            return answer
        scope = self.project_scope
        named: dict[str, set[str]] = {"name": set(), "modelId": set()}

        def items(value: Any) -> Any:  # (key, item) of each filtered list, anywhere
            if isinstance(value, list):
                for v in value:
                    yield from items(v)
            elif isinstance(value, dict):
                for k, inner in value.items():
                    if k in keys and isinstance(inner, list):
                        yield from ((k, v) for v in inner)
                    else:
                        yield from items(inner)

        for key, item in items(data):
            if isinstance(item, dict) and isinstance(item.get(keys[key]), str):
                named[keys[key]].add(item[keys[key]])
        allowed: dict[str, set[str]] = {"name": set(), "modelId": set()}
        if named["name"]:
            allowed["name"] = await self.db(lambda s, ctx: ex.readable_model_names(s, ctx, scope))
        if named["modelId"]:
            ids = sorted(named["modelId"])
            of = self.upstream.experiment_of_logged_model
            found = await experiments_of_logged_models(of, ids)
            readable = await self.db(lambda s, ctx: ex.readable_experiment_ids(s, ctx, scope))
            allowed["modelId"] = {m for m, e in zip(ids, found, strict=True) if e in readable}

        def keep(value: Any) -> Any:
            if isinstance(value, list):
                return [keep(v) for v in value]
            if not isinstance(value, dict):
                return value
            return {
                k: [v for v in inner if isinstance(v, dict) and v.get(keys[k]) in allowed[keys[k]]]
                if k in keys and isinstance(inner, list)
                else keep(inner)
                for k, inner in value.items()
            }

        return json.dumps(keep(data)).encode()

    async def _audit(self, action: str, answer: bytes) -> None:
        """Record a call MLflow carried out: what it acted on and the fields that say how."""
        if self._owner is None:  # pragma: no cover - an audited rule's locator sets it
            return
        project, experiment = self._owner
        assert self.match is not None
        locate = self.match.rule.locate
        if locate == "experiment":
            object_type, object_id = "experiment", experiment
        elif locate == "run":
            object_type, object_id = "run", self._field("run_id", "run_uuid") or ""
        elif locate == "logged_model":
            object_type, object_id = "logged_model", self.match.params.get("model_id", "")
        elif locate == "artifact_path":
            object_type, object_id = "artifact", self.match.params.get("path", "")
        else:
            object_type, object_id = "model", self._field("name") or ""
        summary = {key: value for key in AUDITED_FIELDS if (value := self._field(key))}
        if locate == "run":
            summary["experiment"] = experiment
        version: dict[str, Any] | None = None
        if action == "model.version_create":
            try:
                version = json.loads(answer)["model_version"]
            except (ValueError, KeyError, TypeError):
                version = None

        gone, made = None, str((version or {}).get("version", ""))
        if version is not None and self._checked_source is not None:
            gone = await self._source_gone(object_id, made)

        def record(s: Session, ctx: Ctx) -> None:
            owner = s.get(Project, project.id)
            assert owner is not None  # it owns what the call acted on
            if version is not None:  # the same event as the REST API's registration
                run_id = version.get("run_id")
                ex.record_model_version(
                    s, ctx, owner, object_id, version["version"], run_id, warning=self._warning
                )
                if gone is not None and gone[1]:
                    ex.record_version_undone(s, ctx, owner, object_id, version["version"], gone[0])
                return
            audit.record(s, ctx, action, object_type, object_id, project=owner, summary=summary)

        await self.db(record, write=True)
        if gone is not None:
            undone = "; the version is deleted again" if gone[1] else "; the version stays"
            raise ProxyError(
                409,
                f"{gone[0]}: it was deleted while version {made} was made{undone}",
            )

    async def _source_gone(self, name: str, version: str) -> tuple[str, bool] | None:
        """The ``runs:/`` source checked again once MLflow made the version: ``None`` if it is
        still there (or can no longer be listed), else why not and whether the version (which
        points at nothing) was deleted again (as the REST API's registration does)."""
        assert self._checked_source is not None
        try:
            await artifacts.check_run_artifact(self.upstream, *self._checked_source, field="source")
            return None
        except WorkbenchError as exc:
            if exc.code != "no_artifact":
                raise
            why = exc.message
        status, data = await self.upstream.delete_json(
            "/api/2.0/mlflow/model-versions/delete", {"name": name, "version": version}
        )
        if status != 200:
            self.log.warning("version %s of %s could not be deleted again: %s", version, name, data)
        return why, status == 200

    async def _follow_rename(self, exp_id: str, short: str, new: str, old: str) -> None:
        """Record MLflow's rename; where that fails (a name taken meanwhile), MLflow's is
        undone, so that the two never disagree on the experiment's name."""
        try:
            await self.db(lambda s, ctx: ex.rename_experiment(s, ctx, exp_id, short, new),
                          write=True)  # fmt: skip
        except (ProxyError, WorkbenchError, SQLAlchemyError):
            body = {"experiment_id": exp_id, "new_name": old}
            await self.upstream.post_json("/api/2.0/mlflow/experiments/update", body)
            message = f"new_name: '{new}' was taken meanwhile; the name stays '{old}'"
            raise ProxyError(409, message) from None

    async def _after(self, post: Any) -> None:
        """Keep the workbench's ownership records in step with what MLflow just did."""
        kind, name, extra = post
        if kind == "live":
            points, status = extra
            self.service.tracking_events.publish(name, points, status)
            return
        if kind == "record_model":

            def record(s: Session, ctx: Ctx) -> None:
                ex.record_model(s, ctx, s.get(Project, extra), name)  # type: ignore[arg-type]
        elif kind == "rename_model" and extra:

            def record(s: Session, ctx: Ctx) -> None:
                ex.rename_model(s, ctx, name, extra)
        elif kind == "rename_experiment":
            await self._follow_rename(name, *extra)
            return
        elif kind == "delete_model":

            def record(s: Session, ctx: Ctx) -> None:
                ex.forget_model(s, ctx, name)
        else:  # pragma: no cover
            return
        await self.db(record, write=True)


def _graphql_zero(selection: Any, keys: tuple[str, ...], variables: Any, exp_id: str) -> None:
    """Experiment '0' in a root field's ``input`` (a literal or a variable) becomes ``exp_id``,
    the project's Default, in the query MLflow runs."""
    from graphql import ListValueNode, ObjectValueNode, StringValueNode, VariableNode

    def mapped(value: Any) -> Any:
        return exp_id if str(value) == "0" else value

    def in_variable(name: str, key: str | None) -> None:
        value = variables.get(name) if isinstance(variables, dict) else None
        if key is not None:
            holder, name = value, key
            value = value.get(key) if isinstance(value, dict) else None
        else:
            holder = variables
        if isinstance(holder, dict) and value is not None:
            holder[name] = [mapped(v) for v in value] if isinstance(value, list) else mapped(value)

    for argument in selection.arguments:
        if argument.name.value != "input":
            continue
        if isinstance(argument.value, VariableNode):
            for key in keys:
                in_variable(argument.value.name.value, key)
            continue
        if not isinstance(argument.value, ObjectValueNode):
            continue
        for field in argument.value.fields:
            if field.name.value not in keys:
                continue
            value = field.value
            if isinstance(value, VariableNode):
                in_variable(value.name.value, None)
            elif isinstance(value, ListValueNode):
                field.value = ListValueNode(values=tuple(
                    StringValueNode(value=exp_id) if _is_zero(v) else v for v in value.values
                ))  # fmt: skip
            elif _is_zero(value):
                field.value = StringValueNode(value=exp_id)


def _is_zero(node: Any) -> bool:
    """Whether a GraphQL literal is experiment ``"0"`` (MLflow refuses a number there)."""
    from graphql import StringValueNode

    return isinstance(node, StringValueNode) and node.value == "0"


# a run's lists that may name objects of other projects, and the field each item is filtered by
GRAPHQL_FILTERED = {"modelVersions": "name", "modelInputs": "modelId", "modelOutputs": "modelId"}

# logged models looked up in MLflow at once to filter a GraphQL answer (a page of runs may
# name hundreds: not all at once)
GRAPHQL_LOOKUPS_AT_ONCE = 8


async def experiments_of_logged_models(
    of: Callable[[str], Awaitable[str | None]],
    ids: list[str],
    at_once: int = GRAPHQL_LOOKUPS_AT_ONCE,
) -> list[str | None]:
    """The experiment of each logged model (``of`` asks MLflow), ``at_once`` lookups at a time;
    one MLflow could not answer is None (left out as unreadable), not a failed answer."""
    gate = asyncio.Semaphore(at_once)

    async def one(model_id: str) -> str | None:
        async with gate:
            try:
                return await of(model_id)
            except Exception as exc:
                log.warning("Looking up logged model %s in MLflow failed: %r", model_id, exc)
                return None

    return list(await asyncio.gather(*(one(m) for m in ids)))


def _graphql_filtered_lists(document: Any) -> dict[str, str]:
    """The response keys under which a query selects a list of :data:`GRAPHQL_FILTERED`, and
    the field each item is filtered by, which each is made to select; ``ProxyError`` where
    another field shares such a key or the filtered field's key is taken by another field (the
    filter would misread it)."""
    from graphql import FieldNode, NameNode, SelectionSetNode, visit
    from graphql.language import Visitor

    fields: list[FieldNode] = []

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            fields.append(node)

    visit(document, Collect())
    key_of = {id(f): (f.alias or f.name).value for f in fields}
    lists = [f for f in fields if f.name.value in GRAPHQL_FILTERED]
    keys = {key_of[id(f)]: f.name.value for f in lists}
    for f in fields:
        if key_of[id(f)] in keys and f.name.value != keys[key_of[id(f)]]:
            raise ProxyError(403, f"GraphQL: a field aliased as {key_of[id(f)]} is not allowed")
    for field in lists:
        by = GRAPHQL_FILTERED[field.name.value]
        chosen = field.selection_set.selections if field.selection_set else ()
        named = [s for s in chosen if isinstance(s, FieldNode) and key_of[id(s)] == by]
        if any(s.name.value != by for s in named):
            raise ProxyError(403, f"GraphQL: {field.name.value}' {by} may not be aliased to")
        if not named:
            field.selection_set = SelectionSetNode(
                selections=(*chosen, FieldNode(name=NameNode(value=by), arguments=(),
                                               directives=()))
            )  # fmt: skip
    return {key: GRAPHQL_FILTERED[name] for key, name in keys.items()}


def _is_prompt(body: dict[str, Any]) -> bool:
    """Whether MLflow takes a version request for a prompt's (whose source is a placeholder
    MLflow checks): its last ``mlflow.prompt.is_prompt`` tag says "true"."""
    tags = {t.get("key"): t.get("value") for t in _tags(body)}
    return str(tags.get("mlflow.prompt.is_prompt", "false")).lower() == "true"


def _check_hidden(s: Session, ctx: Ctx, project: Project, action: str, missing: str) -> None:
    """``check_project``, where a project the caller may not see refuses with ``missing``: the
    words of an object that does not exist (its project's name would say that it does)."""
    try:
        check_project(s, ctx, project, action)
    except NotFound:
        raise NotFound(missing) from None


def live_update(path: str, body: dict[str, Any]) -> tuple[list[Point], str | None] | None:
    """The metric points and status a stock client's run write carries, for live subscribers."""
    endpoint = path.rstrip("/").rsplit("/", 2)[-2:]
    if endpoint[0] != "runs":
        return None
    try:
        if endpoint[1] == "log-metric":
            metrics = [body]
        elif endpoint[1] == "log-batch":
            metrics = body.get("metrics") or []
        elif endpoint[1] == "update":
            status = body.get("status")
            return ([], status) if isinstance(status, str) and status else None
        else:
            return None
        points = [
            Point(
                str(m["key"]),
                float(m["value"]),
                int(m.get("timestamp") or 0),
                int(m.get("step") or 0),
            )
            for m in metrics
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # MLflow answered 200, so it understood; we just do not stream it
    return (points, None) if points else None


def _proto_names(value: Any) -> Any:
    """``value`` with its JSON-style field names (``runId``) spelled as MLflow's protobuf
    names (``run_id``), which MLflow reads alike; a field spelled both ways is refused, as
    MLflow refuses it."""
    if isinstance(value, list):
        return [_proto_names(item) if isinstance(item, (dict, list)) else item for item in value]
    if not isinstance(value, dict):
        return value
    named: dict[str, Any] = {}
    for key, inner in value.items():
        # (a log-batch body holds thousands of small dicts: most keys are lower case already)
        name = key if key.islower() else _UPPER.sub(lambda m: f"_{m.group().lower()}", key)
        if name in named or (name != key and name in value):
            raise ProxyError(400, f"{name}: given twice, as '{name}' and as '{key}'")
        named[name] = _proto_names(inner) if isinstance(inner, (dict, list)) else inner
    return named


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _flat(query: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for key, value in query.items():
        for v in value if isinstance(value, list) else [value]:
            out.append((key, str(v)))
    return out


def _tags(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A create request's ``tags``: MLflow's list of ``{"key", "value"}`` objects."""
    tags = body.get("tags") or []
    if not isinstance(tags, list) or not all(
        isinstance(t, dict) and isinstance(t.get("key"), str) for t in tags
    ):
        raise ProxyError(400, 'tags: must be a list of {"key": ..., "value": ...} objects')
    return tags


def _max_results(value: Any) -> int:
    """A search's page size: a whole number from 1 to MLflow's largest."""
    if value in (None, ""):
        return 100
    try:
        number = int(value) if not isinstance(value, (bool, float)) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not 1 <= number <= MAX_SEARCH_RESULTS:
        raise ProxyError(
            400, f"max_results: must be a whole number from 1 to {MAX_SEARCH_RESULTS}, "
            f"not {str(value)[:40]!r}"
        )  # fmt: skip
    return number


def _encode_token(upstream: str | None, skip: int) -> str:
    raw = json.dumps({"t": upstream, "s": skip}).encode()
    return "wb" + base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str | None) -> tuple[str | None, int]:
    if not token:
        return None, 0
    if not token.startswith("wb"):
        raise ProxyError(400, "page_token: not a token this proxy issued")
    try:
        data = json.loads(base64.urlsafe_b64decode(token[2:]))
    except (ValueError, binascii.Error, TypeError):
        data = None
    if not isinstance(data, dict):
        raise ProxyError(400, "page_token: not a token this proxy issued")
    upstream, skip = data.get("t"), data.get("s", 0)
    if not (upstream is None or isinstance(upstream, str)) or not (
        isinstance(skip, int) and not isinstance(skip, bool) and 0 <= skip <= MAX_SEARCH_RESULTS
    ):
        raise ProxyError(400, "page_token: not a token this proxy issued")
    return upstream, skip
