"""Whether a run holds what a ``runs:/<run>/<path>`` URI names, asked of the MLflow server.

A registered model version made from such a URI points at the run's artifact ``path``: a file or
folder the run logged, or (MLflow 3's ``log_model``) a logged model of the run named after the
path's first part, which MLflow's ``runs:/`` URIs also resolve to. A version pointing at neither
would point at nothing, so it is refused before anything is created. Where MLflow cannot list the
run's artifacts at all (an artifact store it cannot reach or list: an external MLflow's S3 without
credentials, a host its policy refuses), the path is not provably missing: the version is made,
with a warning saying that the path went unchecked.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import unquote, urlparse

from ..core.errors import BadRequest, NotFound
from .upstream import Upstream

SHOWN = 20  # names the refusal lists of what the run holds
LOGGED_MODEL_PAGES = 10  # pages of a run's logged models looked through (100 each)


def runs_uri(source: object) -> tuple[str, str] | None:
    """``(run id, artifact path)`` of a ``runs:/<run>/<path>`` URI as MLflow reads it (the path
    may be ``""``: the run's whole artifact root); ``None`` for any other source."""
    if not isinstance(source, str):
        return None
    parsed = urlparse(source)
    if parsed.scheme != "runs" or parsed.netloc or not parsed.path.startswith("/"):
        return None  # MLflow judges these itself
    run_id, _, path = parsed.path[1:].partition("/")
    return (run_id, path) if run_id else None


def models_uri(source: object) -> tuple[str, str] | None:
    """What a ``models:/`` URI names as MLflow reads it: ``("model_id", id)`` for
    ``models:/<id>``, ``("name", registered model)`` for ``models:/<name>/<version or stage>``
    or ``models:/<name>@<alias>``; ``None`` for any other source (or one MLflow refuses)."""
    if not isinstance(source, str):
        return None
    parsed = urlparse(source, allow_fragments=False)
    path = parsed.path
    if parsed.scheme != "models" or not path.startswith("/") or len(path) <= 1:
        return None
    parts = path.lstrip("/").split("/")
    if len(parts) > 2 or not parts[0].strip():
        return None
    if len(parts) == 2:
        return ("name", parts[0]) if parts[1].strip() else None
    if "@" in path:
        name, _, alias = parts[0].rpartition("@")
        return ("name", name) if alias.strip() else None
    return ("model_id", parts[0])


def inside(source: str, root: str) -> bool:
    """Whether the URI ``source`` is the folder ``root`` or lies under it (never by '.' or
    '..' parts, however often encoded)."""
    plain = source
    while (decoded := unquote(plain)) != plain:
        plain = decoded
    if any(part in (".", "..") for part in plain.split("/")):
        return False
    root = root.rstrip("/")
    return source.rstrip("/") == root or source.startswith(f"{root}/")


class _Unlistable(Exception):
    """MLflow cannot list the run's artifacts (its store failed or refused), whatever the path."""


async def check_run_artifact(
    upstream: Upstream, run_id: str, path: str, *, field: str
) -> str | None:
    """``BadRequest`` naming the run, the path and what the run holds where ``runs:/<run_id>/
    <path>`` names nothing; ``field`` is the request field the path came from. Returns ``None``
    once the path is found, or a warning where MLflow cannot list the run's artifacts (the path
    could not be checked, so it is not refused)."""
    path = path.strip("/")
    parent = posixpath.dirname(path)
    try:
        entries = await _listing(upstream, run_id, parent, field)
    except _Unlistable as exc:
        if path and path.split("/", 1)[0] in await _logged_models(upstream, run_id):
            return None
        what = f"'{path}'" if path else "the artifact root"
        return (
            f"{field}: {what} was not checked: MLflow could not list the artifacts of run "
            f"'{run_id}' ({exc})"
        )
    if (not path and entries) or path in entries:
        return None
    models = await _logged_models(upstream, run_id) if path else []
    if path.split("/", 1)[0] in models:
        return None
    if not entries and parent:  # the parent folder is missing too: show the top level
        try:
            entries = await _listing(upstream, run_id, "", field)
        except _Unlistable:  # pragma: no cover - the parent's listing just worked
            entries = []
    held = [f"'{e}'" for e in entries] + [f"'{m}' (a logged model)" for m in models]
    if not path:
        raise BadRequest(f"{field}: run '{run_id}' has no artifacts", code="no_artifact")
    raise BadRequest(
        f"{field}: run '{run_id}' has no artifact '{path}' ({_holds(held)})", code="no_artifact"
    )


def _holds(held: list[str]) -> str:
    if not held:
        return "it has no artifacts"
    more = f" and {len(held) - SHOWN} more" if len(held) > SHOWN else ""
    return f"it has: {', '.join(held[:SHOWN])}{more}"


async def _listing(upstream: Upstream, run_id: str, folder: str, field: str) -> list[str]:
    """The run-relative paths of what the run's artifact ``folder`` holds (none if missing);
    ``_Unlistable`` where MLflow cannot list the run's artifacts."""
    params = {"run_id": run_id, **({"path": folder} if folder else {})}
    status, data = await upstream.get_json("/api/2.0/mlflow/artifacts/list", params)
    message = str((data or {}).get("message") or f"MLflow answered {status}")
    if status == 404:
        raise NotFound(f"run '{run_id}' not found")
    if status == 400 and folder:
        # an unsafe path ('..', an absolute one), or a store MLflow refuses to open: only the
        # first lets the run's root be listed
        root, _ = await upstream.get_json("/api/2.0/mlflow/artifacts/list", {"run_id": run_id})
        if root in (200, 404):
            raise BadRequest(f"{field}: {message}")
    if status != 200:
        raise _Unlistable(message)
    files: list[dict[str, Any]] = (data or {}).get("files") or []
    return [str(f["path"]).strip("/") for f in files if f.get("path")]


async def _logged_models(upstream: Upstream, run_id: str) -> list[str]:
    """Names of the models the run logged with MLflow 3's ``log_model`` (none where the server
    knows no logged models)."""
    experiment = await upstream.experiment_of_run(run_id)
    if experiment is None or not run_id.isalnum():
        return []
    body: dict[str, Any] = {
        "experiment_ids": [experiment],
        "filter": f"source_run_id = '{run_id}'",
        "max_results": 100,
    }
    names: list[str] = []
    for _ in range(LOGGED_MODEL_PAGES):
        status, data = await upstream.post_json("/api/2.0/mlflow/logged-models/search", body)
        if status != 200 or not data:
            return names
        for model in data.get("models") or []:
            info = model.get("info") or {}
            if info.get("source_run_id") == run_id and info.get("name"):
                names.append(str(info["name"]))
        token = data.get("next_page_token")
        if not token:
            break
        body["page_token"] = token
    return names
