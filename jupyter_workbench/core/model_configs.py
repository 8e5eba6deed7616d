"""Model configs: named JSON parameter sets, validated by an optional JSON Schema.

Every change of parameters or schema is stored as a new numbered revision; any two revisions
can be diffed.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import ModelConfig, ModelConfigRevision, Project, User, utcnow
from . import audit
from .access import require_project
from .context import Ctx
from .errors import BadRequest, Conflict, NotFound
from .etags import check_etag, etag
from .json_diff import json_diff
from .pagination import Page, SortSpec, paginate
from .text_search import holds_text
from .validation import check_name, check_text

MAX_PARAMETERS_BYTES = 256 * 1024
CONFIG_SORTS = SortSpec(
    {
        "name": ModelConfig.name,
        "updated": ModelConfig.updated_at,
        "created": ModelConfig.created_at,
    },
    id_column=ModelConfig.id,
    default="name",
)
REVISION_SORTS = SortSpec(
    {"number": ModelConfigRevision.number}, id_column=ModelConfigRevision.id, default="-number"
)


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "/"


def validate(parameters: Any, schema: dict[str, Any] | None) -> None:
    """Raise BadRequest naming the first offending parameter (or schema keyword)."""
    if not isinstance(parameters, dict):
        raise BadRequest("parameters: must be a JSON object", code="invalid_field")
    if len(json.dumps(parameters)) > MAX_PARAMETERS_BYTES:
        raise BadRequest(
            f"parameters: larger than {MAX_PARAMETERS_BYTES // 1024} KiB", code="invalid_field"
        )
    if schema is None:
        return
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise BadRequest(
            f"schema{_pointer(exc.absolute_path)}: not a valid JSON Schema: {exc.message}",
            code="invalid_schema",
        ) from None
    validator = _compiled(schema)
    if validator.is_valid(parameters):
        return
    first = min(validator.iter_errors(parameters), key=lambda e: list(map(str, e.instance_path)))
    raise BadRequest(
        f"parameters{_pointer(first.instance_path)}: {first.message}", code="schema_violation"
    )


def _refuse(uri: str) -> Any:
    raise ValueError(f"{uri} is not fetched: a config's schema is one document")


def _compiled(schema: dict[str, Any]) -> Any:
    """The schema as a native validator: its patterns run in linear time (a pattern written to
    backtrack cannot stall the server) and a ``$ref`` to another document is never fetched."""
    try:
        return jsonschema_rs.Draft202012Validator(schema, retriever=_refuse)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        reason = str(exc).split("\n", 1)[0]
        raise BadRequest(f"schema: {reason}", code="invalid_schema") from None


def _check_config_name(value: str, field: str = "name") -> str:
    """A config's name, in Unicode's composed form (NFC): 'café' typed composed or decomposed
    (as macOS keyboards may send it) is one name, never two configs that look the same."""
    return unicodedata.normalize("NFC", check_name(value, field, max_length=200))


def _load(s: Session, project: Project, name: str, *, for_update: bool = False) -> ModelConfig:
    config = None
    for candidate in dict.fromkeys((name, unicodedata.normalize("NFC", name))):
        stmt = select(ModelConfig).where(
            ModelConfig.project_id == project.id, ModelConfig.name == candidate
        )
        config = s.scalar(stmt.with_for_update() if for_update else stmt)
        if config is not None:
            break
    if config is None:
        raise NotFound(f"model config '{name}' not found in project '{project.slug}'")
    return config


def current(s: Session, config: ModelConfig) -> ModelConfigRevision:
    return s.scalars(
        select(ModelConfigRevision).where(
            ModelConfigRevision.model_config_id == config.id,
            ModelConfigRevision.number == config.current_revision,
        )
    ).one()


def create(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    name: str,
    parameters: dict[str, Any],
    schema: dict[str, Any] | None = None,
    description: str = "",
    message: str = "",
) -> tuple[ModelConfig, ModelConfigRevision]:
    project, _ = require_project(s, ctx, slug, "model_configs.write")
    name = _check_config_name(name)
    validate(parameters, schema)
    config = ModelConfig(
        project_id=project.id,
        name=name,
        description=check_text(description, "description", max_length=10_000, allow_empty=True),
        current_revision=1,
        created_by_id=ctx.user.id,
    )
    try:
        with s.begin_nested():
            s.add(config)
            s.flush()
    except IntegrityError:
        raise Conflict(f"name: a model config named '{name}' already exists") from None
    revision = ModelConfigRevision(
        model_config_id=config.id,
        number=1,
        parameters=parameters,
        json_schema=schema,
        message=check_text(message, "message", max_length=2000, allow_empty=True),
        author_id=ctx.user.id,
    )
    s.add(revision)
    audit.record(
        s,
        ctx,
        "model_config.create",
        "model_config",
        name,
        project=project,
        summary={"revision": 1},
    )
    s.flush()
    return config, revision


def get(s: Session, ctx: Ctx, slug: str, name: str) -> tuple[ModelConfig, ModelConfigRevision]:
    project, _ = require_project(s, ctx, slug, "model_configs.read")
    config = _load(s, project, name)
    return config, current(s, config)


def list_configs(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    q: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[ModelConfig]:
    project, _ = require_project(s, ctx, slug, "model_configs.read")
    stmt = select(ModelConfig).where(ModelConfig.project_id == project.id)
    if q:
        stmt = stmt.where(holds_text(q, ModelConfig.name))
    return paginate(s, stmt, CONFIG_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def update(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    changes: dict[str, Any],
    *,
    if_match: str | None = None,
) -> tuple[ModelConfig, ModelConfigRevision]:
    """Change parameters/schema (a new revision), description or name."""
    project, _ = require_project(s, ctx, slug, "model_configs.write")
    config = _load(s, project, name, for_update=True)
    check_etag(config, if_match)
    latest = current(s, config)
    summary: dict[str, Any] = {}
    parameters = changes.get("parameters", latest.parameters)
    schema = changes.get("schema", latest.json_schema)
    changed = json_diff(latest.parameters, parameters) or json_diff(latest.json_schema, schema)
    message = check_text(changes.get("message", ""), "message", max_length=2000, allow_empty=True)
    if message and not changed and message != latest.message:
        # (like git refusing an empty commit: a message describes a revision, and there is
        # none to make; the same message as the latest revision's is a retry, answered as such)
        raise Conflict(
            f"message: the parameters and schema are those of revision {latest.number} already;"
            " a message is recorded with a new revision only, and this update makes none",
            code="unchanged",
        )
    if changed:
        validate(parameters, schema)
        number = config.current_revision + 1
        latest = ModelConfigRevision(
            model_config_id=config.id,
            number=number,
            parameters=parameters,
            json_schema=schema,
            message=message,
            author_id=ctx.user.id,
        )
        s.add(latest)
        config.current_revision = number
        summary["revision"] = {"from": number - 1, "to": number}
    description = config.description
    if "description" in changes:
        description = check_text(
            changes["description"], "description", max_length=10_000, allow_empty=True
        )
    if description != config.description:  # (as stored: surrounding blanks do not count)
        config.description = description
        summary["description"] = "changed"
    new_name = config.name
    if "name" in changes:
        new_name = _check_config_name(changes["name"])
    if new_name != config.name:
        taken = Conflict(f"name: a model config named '{new_name}' already exists")
        if s.scalar(
            select(ModelConfig.id).where(
                ModelConfig.project_id == project.id, ModelConfig.name == new_name
            )
        ):
            raise taken
        summary["name"] = {"from": config.name, "to": new_name}
        config.name = new_name
        try:
            s.flush()
        except IntegrityError:  # taken meanwhile by a concurrent rename or create
            raise taken from None
    if summary:
        config.updated_at = utcnow()
        audit.record(
            s,
            ctx,
            "model_config.update",
            "model_config",
            config.name,
            project=project,
            summary=summary,
        )
    s.flush()
    return config, latest


def delete(s: Session, ctx: Ctx, slug: str, name: str, *, if_match: str | None = None) -> None:
    project, _ = require_project(s, ctx, slug, "model_configs.delete")
    config = _load(s, project, name)
    check_etag(config, if_match)
    audit.record(
        s,
        ctx,
        "model_config.delete",
        "model_config",
        name,
        project=project,
        summary={"revisions": config.current_revision},
    )
    s.delete(config)
    s.flush()


def list_revisions(
    s: Session,
    ctx: Ctx,
    slug: str,
    name: str,
    *,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[ModelConfigRevision]:
    project, _ = require_project(s, ctx, slug, "model_configs.read")
    config = _load(s, project, name)
    stmt = select(ModelConfigRevision).where(ModelConfigRevision.model_config_id == config.id)
    return paginate(s, stmt, REVISION_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def _revision(s: Session, config: ModelConfig, number: int) -> ModelConfigRevision:
    revision = s.scalar(
        select(ModelConfigRevision).where(
            ModelConfigRevision.model_config_id == config.id, ModelConfigRevision.number == number
        )
    )
    if revision is None:
        raise NotFound(f"model config '{config.name}' has no revision {number}")
    return revision


def get_revision(s: Session, ctx: Ctx, slug: str, name: str, number: int) -> ModelConfigRevision:
    project, _ = require_project(s, ctx, slug, "model_configs.read")
    return _revision(s, _load(s, project, name), number)


def diff(s: Session, ctx: Ctx, slug: str, name: str, old: int, new: int) -> dict[str, Any]:
    """Changes from revision ``old`` to ``new`` of parameters and schema (JSON pointers)."""
    project, _ = require_project(s, ctx, slug, "model_configs.read")
    config = _load(s, project, name)
    a, b = _revision(s, config, old), _revision(s, config, new)
    return {
        "from": old,
        "to": new,
        "parameters": json_diff(a.parameters, b.parameters),
        "schema": json_diff(a.json_schema, b.json_schema),
    }


def config_json(s: Session, config: ModelConfig, revision: ModelConfigRevision) -> dict[str, Any]:
    return {
        "name": config.name,
        "description": config.description,
        "revision": revision.number,
        "parameters": revision.parameters,
        "schema": revision.json_schema,
        "created_at": config.created_at.isoformat(),
        "updated_at": config.updated_at.isoformat(),
        "etag": etag(config),
    }


def config_summary_json(config: ModelConfig) -> dict[str, Any]:
    return {
        "name": config.name,
        "description": config.description,
        "revision": config.current_revision,
        "created_at": config.created_at.isoformat(),
        "updated_at": config.updated_at.isoformat(),
        "etag": etag(config),
    }


def revision_json(s: Session, revision: ModelConfigRevision) -> dict[str, Any]:
    author = s.get(User, revision.author_id) if revision.author_id else None
    return {
        "number": revision.number,
        "parameters": revision.parameters,
        "schema": revision.json_schema,
        "message": revision.message,
        "author": author.username if author else None,
        "created_at": revision.created_at.isoformat(),
    }
