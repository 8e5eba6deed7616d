"""The Python client of the workbench: ``import jupyter_workbench as wb`` (see ``default``) or
``from jupyter_workbench.client import Client``.

>>> wb.use("my-project")                     # the current project (checked)
>>> ds = wb.datasets.get("events", version="v3")
>>> ds.files(); ds.to_pandas("t.csv"); ds.open("big.bin").read(100)   # range requests

>>> client = Client()                       # WORKBENCH_URL + WORKBENCH_TOKEN from the environment
>>> with client.run("my-project", "baseline", params={"lr": 0.01}) as run:
...     for step in range(1000):
...         run.log({"loss": 1 / (step + 1)}, step=step)   # returns at once; sent in batches

``run.log`` only enqueues (see ``runs``); registered models are in ``client.models`` (see
``models``), and ``client.datasets.commit`` uploads a folder as a new dataset version.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from ..core.validation import run_key_problem
from . import errors
from .discovery import discover
from .errors import ConnectionFailed, NotConfigured, WorkbenchError
from .models import Models, ModelVersion
from .resources import Datasets, DatasetVersion, Project, _text
from .runs import BATCH_POINTS, Run, _mapping, active_run

__all__ = [
    "BATCH_POINTS",
    "Client",
    "DatasetVersion",
    "ModelVersion",
    "Project",
    "Run",
    "active_run",
    "errors",
]

RETRIES = 3
KNOWN_SHOWN = 20  # names an error lists at most ("no experiment X (experiments: ...)")
SEARCH_PAGE = 1000  # runs per request of search_runs (the most the server answers at once)


class Client:
    """A connection to one workbench (standalone server or hub user server).

    With no ``url``/``token`` it finds them itself (see ``discovery.discover``). Every request
    has a timeout; connection errors are retried ``retries`` times with exponential backoff,
    then raise ``ConnectionFailed``. Error answers raise ``errors.NotFound``,
    ``PermissionDenied``, ``BadRequest``, ``Conflict`` ... carrying the server's message.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30,
        retries: int = RETRIES,
        backoff: float = 0.2,
        project: str | None = None,
    ) -> None:
        if not url:
            url, found_token = discover()
            token = token or found_token
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(
                f"url: {url!r} is not a server's address (like 'http://127.0.0.1:8888/' or "
                "'https://hub.example.org/user/alice/')"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout: must be a number of seconds above 0, not {timeout!r}")
        self.url = url.rstrip("/")
        self.token = (
            token or os.environ.get("WORKBENCH_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN")
        )
        self.retries = max(1, retries)
        self.backoff = backoff
        self.current_project: str | None = project or os.environ.get("WORKBENCH_PROJECT") or None
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        self.http = httpx.Client(headers=headers, timeout=timeout)
        self.datasets = Datasets(self)
        self.models = Models(self)

    def __repr__(self) -> str:
        return f"<Client {self.url} project={self.current_project!r}>"

    # -- plumbing ---------------------------------------------------------------------
    def api_url(self, path: str) -> str:
        return f"{self.url}/workbench/api/v1/{path.lstrip('/')}"

    def mlflow_url(self, project: str) -> str:
        """The tracking URI of a project, for the stock ``mlflow`` client."""
        return f"{self.url}/workbench/mlflow/p/{project}"

    def send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """One call, retried on connection errors (any error for GET); raises on 4xx/5xx."""
        last: Exception | None = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
            try:
                response = self.http.request(method, url, **kw)
            except RuntimeError:
                if self.http.is_closed:  # a run's sender thread, say, after close()
                    raise errors.WorkbenchError(
                        "this workbench client was closed (Client.close()); make a new one "
                        "(wb.connect() for the default connection of wb.* and %wb)",
                        code="client_closed",
                    ) from None
                raise
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = exc  # nothing was sent: safe to retry any method
                continue
            except httpx.ReadTimeout as exc:  # taken, never answered: a second try waits as long
                raise ConnectionFailed(
                    f"the workbench at {self.url} took the request but did not answer within "
                    f"{self.http.timeout.read} s ({method} {url}"
                    + (
                        "; it may or may not have been applied)"
                        if method not in ("GET", "HEAD")
                        else ")"
                    ),
                    code="timeout",
                ) from exc
            except httpx.TransportError as exc:
                if method not in ("GET", "HEAD"):  # it may have been applied: never resend
                    raise ConnectionFailed(
                        f"cannot reach the workbench at {self.url}: {method} failed midway "
                        f"(it may or may not have been applied): {exc}",
                        code="failed_midway",
                    ) from exc
                last = exc
                continue
            if 300 <= response.status_code < 400:
                raise errors.WorkbenchError(
                    f"{method} {url} was redirected to {response.headers.get('location')!r}: "
                    "WORKBENCH_URL must be the Jupyter server's own address (on a hub: "
                    "https://HUB/user/NAME)",
                    status=response.status_code,
                    code="redirected",
                )
            if response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                error = errors.from_response(response.status_code, body, url=url)
                raise self._signed_out(error) if response.status_code == 401 else error
            return response
        raise ConnectionFailed(
            f"cannot reach the workbench at {self.url} after {self.retries} tries: {last}"
        ) from last

    def _signed_out(self, error: errors.WorkbenchError) -> errors.WorkbenchError:
        """A 401 saying which token failed (the server's "sign in first: send 'Authorization:
        token ...'" read as if none had been sent, when the one sent was refused)."""
        if self.token:
            why = (
                f"{self.url} refused the token (WORKBENCH_TOKEN or JUPYTERHUB_API_TOKEN, or "
                "wb.connect(url, token)): expired, or another server's?"
            )
        else:
            why = f"no token for {self.url}: set WORKBENCH_TOKEN, or call wb.connect(url, token)"
        return errors.Unauthorized(f"{why} ({error.message})", status=401, code=error.code)

    def request(self, method: str, url: str, **kw: Any) -> Any:
        """``send`` answering the JSON body (``None`` when empty)."""
        response = self.send(method, url, **kw)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise errors.WorkbenchError(
                f"{method} {url} answered {kind}, not JSON: no workbench API there? "
                "(WORKBENCH_URL must be a Jupyter server with the jupyter_workbench extension)",
                status=response.status_code,
                code="not_json",
            ) from None

    def stream_bytes(self, url: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        """A download in pieces (a whole file without holding it in memory)."""
        last: Exception | None = None
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
            sent = 0
            try:
                with self.http.stream("GET", url) as response:
                    if response.status_code >= 300:
                        response.read()
                        self.send("GET", url)  # raises the mapped error
                    for piece in response.iter_bytes(chunk):
                        sent += len(piece)
                        yield piece
                return
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = exc
            except httpx.TransportError as exc:
                if sent:  # what was handed out cannot be taken back: the caller starts again
                    raise ConnectionFailed(
                        f"the download of {url} broke off after {sent:,} bytes: {exc}"
                    ) from exc
                last = exc
        raise ConnectionFailed(f"cannot reach the workbench at {self.url}: {last}") from last

    def paged(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated list."""
        params = {"limit": 500, **params}
        while True:
            page = self.get(path, **params)
            yield from page.get("items", [])
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", self.api_url(path), params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", self.api_url(path), json=body)

    def wait_operation(
        self,
        operation: dict[str, Any],
        *,
        timeout: float | None = None,
        poll: float = 0.5,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Follow a background operation (a store-wide verify, a gc ...) until it ends; its
        ``result`` when it succeeded, else ``WorkbenchError`` with its error. ``TimeoutError``
        after ``timeout`` seconds (``None``: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while operation["state"] == "running":
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"operation {operation['id']} still running after {timeout} s")
            time.sleep(poll)
            try:
                operation = self.get(f"operations/{quote(str(operation['id']), safe='')}")
            except ConnectionFailed as exc:  # one slow answer: the operation runs on
                if exc.code != "timeout":
                    raise
                continue
            if on_progress is not None:
                on_progress(operation)
        if operation["state"] != "succeeded":
            raise errors.WorkbenchError(
                f"operation {operation['id']} {operation['state']}: "
                f"{operation.get('error') or operation.get('message') or 'no reason given'}",
                code=str(operation["state"]),
            )
        return dict(operation.get("result") or {})

    # -- projects -----------------------------------------------------------------------
    def projects(self) -> list[Project]:
        """Every project you can see."""
        return [Project(self, data) for data in self.paged("projects")]

    def project(self, slug: str | None = None) -> Project:
        """One project (default: the current one)."""
        return Project(self, self.get(f"projects/{quote(self.project_slug(slug), safe='')}"))

    def create_project(
        self,
        name: str,
        slug: str | None = None,
        *,
        description: str = "",
        visibility: str | None = None,
        exist_ok: bool = False,
    ) -> Project:
        """A new project you own. With ``exist_ok``, your existing one instead: without
        ``slug``, the project called ``name`` that you own (else a new one, under a free slug
        the server picks: ``quickstart``, ``quickstart-2``...); with ``slug``, that project if
        you can edit it. A slug taken by a project you cannot edit is a ``Conflict`` still."""
        if exist_ok and not slug:
            for found in self.projects():
                if found.name == name and found.role == "owner":
                    return found
        body: dict[str, Any] = {"name": name}
        if slug:
            body["slug"] = slug
        if description:
            body["description"] = description
        if visibility:
            body["visibility"] = visibility
        try:
            return Project(self, self.post("projects", body))
        except errors.Conflict as taken:
            if not (exist_ok and slug):
                raise
            try:
                project = self.project(slug)
            except (errors.NotFound, errors.PermissionDenied):
                project = None
            if project is None or project.role not in ("owner", "admin", "editor"):
                role = f"you are a {project.role}" if project and project.role else "not yours"
                raise errors.Conflict(
                    f"slug: a project '{slug}' exists and {role}; give another slug, or none "
                    f"to have your own '{name}'",
                    code=taken.code,
                ) from None
            return project

    def use(self, slug: str) -> Project:
        """Make ``slug`` the current project (checked: it must exist and be visible)."""
        project = self.project(_text(slug, "slug"))
        self.current_project = project.slug
        return project

    def project_slug(self, slug: str | None = None) -> str:
        """``slug``, else the current project's (``NotConfigured`` when there is none)."""
        if slug is not None and not isinstance(slug, str):
            raise TypeError(f"project: expected a project's slug, got {type(slug).__name__}")
        slug = slug or self.current_project
        if not slug:
            raise NotConfigured(
                "no current project: call wb.use('slug') (or %wb project use SLUG) or pass project="
            )
        return slug

    def search_runs(
        self,
        projects: list[str] | None = None,
        *,
        experiment: str | None = None,
        filter: str = "",
        max_results: int = 100,
        order_by: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Runs of the projects you can read (MLflow filter syntax), newest first;
        ``experiment``: only that experiment's (of the one project given, or the current one),
        searched by the server, so ``max_results`` counts its runs alone. More than
        ``SEARCH_PAGE`` runs are fetched page by page."""
        if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
            raise errors.BadRequest("max_results: must be a whole number of at least 1")
        body: dict[str, Any] = {}
        if experiment:
            if projects and len(projects) > 1:
                raise errors.BadRequest("experiment: give one project with it")
            slug = self.project_slug(projects[0] if projects else None)
            projects = [slug]
            body["experiment_ids"] = [self.experiment_named(slug, experiment)]
        if projects:
            body["projects"] = projects
        if filter:
            body["filter"] = filter
        if order_by:
            body["order_by"] = order_by
        runs: list[dict[str, Any]] = []
        while True:
            body["max_results"] = min(SEARCH_PAGE, max_results - len(runs))
            page = self.post("runs/search", body)
            runs.extend(page["runs"])
            token = page.get("next_page_token")
            if not token or not page["runs"] or len(runs) >= max_results:
                return runs[:max_results]
            body["page_token"] = token

    # -- experiments and runs ---------------------------------------------------------
    def experiment_id(self, project: str, name: str) -> str:
        """The MLflow id of a project's experiment, created when missing."""
        base = self.mlflow_url(project) + "/api/2.0/mlflow"
        try:
            found = self.request(
                "GET", f"{base}/experiments/get-by-name", params={"experiment_name": name}
            )["experiment"]
        except errors.NotFound:
            created = self.request("POST", f"{base}/experiments/create", json={"name": name})
            return str(created["experiment_id"])
        if found.get("lifecycle_stage") == "deleted":  # MLflow: "The experiment 3 must be ..."
            raise errors.Conflict(
                f"experiment {name!r} of project {project!r} was deleted: restore it (in MLflow's "
                f"UI, or MlflowClient().restore_experiment({found['experiment_id']!r})), or "
                "name another",
                code="experiment_deleted",
            )
        return str(found["experiment_id"])

    def run(
        self,
        project: str,
        experiment: str = "Default",
        *,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        name: str | None = None,
    ) -> Run:
        """Start a run in a project's experiment; it is the active run until it ends. Params
        or tags that are not a dict raise ``TypeError``, and names MLflow refuses a
        ``ValueError``, before anything is made; a run whose
        params or tags the server refuses ends ``FAILED`` and the refusal is raised."""
        experiment = _text(experiment, "experiment")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a string, got {type(name).__name__} {name!r:.60}")
        for what, given in (("params", params), ("tags", tags)):
            if given is not None:
                for key in _mapping(given, what):
                    problem = run_key_problem(key) if isinstance(key, str) and key else None
                    if problem:  # refused by the server after the run was made: a FAILED run
                        raise ValueError(f"{what}: name {key!r:.60}: {problem}")
        base = self.mlflow_url(project) + "/api/2.0/mlflow"
        body: dict[str, Any] = {
            "experiment_id": self.experiment_id(project, experiment),
            "start_time": int(time.time() * 1000),
        }
        if name:
            body["run_name"] = name
        info = self.request("POST", f"{base}/runs/create", json=body)["run"]["info"]
        run = Run(self, project, info["run_id"], info)
        if params or tags:
            try:
                self.post(
                    f"runs/{run.run_id}/batch",
                    {
                        "params": {k: str(v) for k, v in (params or {}).items()},
                        "tags": {k: str(v) for k, v in (tags or {}).items()},
                    },
                )
            except WorkbenchError:  # no run left RUNNING that nobody holds
                with contextlib.suppress(WorkbenchError):
                    run.end("FAILED")
                raise
        run.activate()
        return run

    def compare(self, run_ids: list[str]) -> dict[str, Any]:
        """Params that differ, metrics side by side, and system fields of several runs."""
        return dict(self.post("runs/compare", {"run_ids": run_ids}))

    def experiment_named(self, project: str, name: str) -> str:
        """The MLflow id of an existing experiment of a project (``NotFound`` naming the
        project's experiments when it has none of that name)."""
        path = f"projects/{quote(project, safe='')}/experiments"
        for experiment in self.get(path, name=name[:200])["items"]:
            if experiment.get("name") == name:
                return str(experiment["mlflow_experiment_id"])
        first = self.get(path, limit=KNOWN_SHOWN + 1)["items"]
        known = ", ".join(str(e.get("name")) for e in first[:KNOWN_SHOWN]) or "none yet"
        known += ", ..." if len(first) > KNOWN_SHOWN else ""
        raise errors.NotFound(
            f"project {project!r} has no experiment {name!r} (experiments: {known})"
        )

    def experiments(self, project: str | None = None, q: str = "") -> list[dict[str, Any]]:
        """A project's experiments by name (default: the current project); ``q``: only those
        with this text in their name (any case)."""
        slug = self.project_slug(project)
        params = {"q": q} if q else {}
        return list(self.paged(f"projects/{quote(slug, safe='')}/experiments", **params))

    def history(
        self, run_id: str, key: str, max_points: int = 2000, *, start_step: int | None = None
    ) -> dict[str, Any]:
        """A metric's points, downsampled by the server to at most ``max_points`` (extremes
        kept); from ``start_step`` on when given."""
        params: dict[str, Any] = {"max_points": max_points}
        if start_step is not None:
            params["start_step"] = start_step
        path = f"runs/{quote(run_id, safe='')}/metrics/{quote(key, safe='')}/history"
        return self.get(path, **params)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
