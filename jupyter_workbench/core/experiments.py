"""Experiments and registered models on MLflow, owned by projects.

MLflow knows no projects: its experiment and model names are global. The workbench records which
project owns each MLflow experiment (named ``<project slug>/<name>`` in MLflow and tagged with
the project) and each registered model, and the MLflow proxy asks this module before it lets a
request through.
"""

from __future__ import annotations

import posixpath
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import Experiment, Project, RegisteredModel
from . import audit
from .access import check_project, is_superuser
from .context import Ctx
from .errors import BadRequest, Conflict, WorkbenchError
from .pagination import Page, SortSpec, paginate
from .text_search import holds_text
from .validation import check_name, check_text

PROJECT_TAG = "workbench.project"
PROJECT_ID_TAG = "workbench.project_id"
DEFAULT_EXPERIMENT = "Default"
EXPERIMENT_SORTS = SortSpec(
    {"name": Experiment.name, "created": Experiment.created_at},
    id_column=Experiment.id,
    default="name",
    any_case=frozenset({"name"}),
)


def mlflow_experiment_name(project: Project, name: str) -> str:
    return f"{project.slug}/{name}"


def split_experiment_name(mlflow_name: str) -> tuple[str, str] | None:
    """'slug/name' -> (slug, name); None when the name names no project."""
    if "/" not in mlflow_name:
        return None
    slug, name = mlflow_name.split("/", 1)
    return (slug, name) if slug and name else None


def record_experiment(
    s: Session, ctx: Ctx, project: Project, name: str, mlflow_id: str, mlflow_name: str
) -> Experiment:
    experiment = Experiment(
        project_id=project.id,
        name=check_name(name, "name", max_length=200),
        mlflow_experiment_id=mlflow_id,
        mlflow_name=mlflow_name,
        created_by_id=ctx.user.id,
    )
    try:
        with s.begin_nested():
            s.add(experiment)
            s.flush()
    except IntegrityError:
        raise Conflict(
            f"name: project '{project.slug}' already has an experiment '{name}'"
        ) from None
    audit.record(
        s, ctx, "experiment.create", "experiment", name, project=project,
        summary={"mlflow_experiment_id": mlflow_id},
    )  # fmt: skip
    return experiment


def experiment_owner(s: Session, mlflow_id: str) -> tuple[Experiment, Project] | None:
    row = s.execute(
        select(Experiment, Project)
        .join(Project, Project.id == Experiment.project_id)
        .where(Experiment.mlflow_experiment_id == str(mlflow_id))
    ).first()
    return (row[0], row[1]) if row else None


def experiment_by_mlflow_name(s: Session, mlflow_name: str) -> tuple[Experiment, Project] | None:
    row = s.execute(
        select(Experiment, Project)
        .join(Project, Project.id == Experiment.project_id)
        .where(Experiment.mlflow_name == mlflow_name)
    ).first()
    return (row[0], row[1]) if row else None


def experiment_in_project(s: Session, slug: str, name: str) -> Experiment | None:
    return s.scalar(
        select(Experiment)
        .join(Project, Project.id == Experiment.project_id)
        .where(Project.slug == slug, Project.deleted_at.is_(None), Experiment.name == name)
    )


def project_default_experiment(s: Session, project: Project) -> Experiment | None:
    return s.scalar(
        select(Experiment).where(
            Experiment.project_id == project.id, Experiment.name == DEFAULT_EXPERIMENT
        )
    )


def readable_experiment_ids(s: Session, ctx: Ctx, scope: Project | None = None) -> set[str]:
    """MLflow ids of the experiments the caller may read (in ``scope`` only, if given)."""
    stmt = (
        select(Experiment.mlflow_experiment_id, Experiment.project_id)
        .join(Project, Project.id == Experiment.project_id)
        .where(Project.deleted_at.is_(None), Experiment.mlflow_experiment_id.is_not(None))
    )
    if scope is not None:
        stmt = stmt.where(Experiment.project_id == scope.id)
    rows = list(s.execute(stmt))
    if is_superuser(ctx.user):
        return {str(r[0]) for r in rows}
    from .projects import visible_project_ids

    visible = set(s.scalars(visible_project_ids(ctx.user)))
    return {str(r[0]) for r in rows if r[1] in visible}


# -- registered models ---------------------------------------------------------------
MODEL_NAME_MAX = 255  # our registered_models.name column (MLflow's holds 256)


def check_model_name(name: object, field: str = "name") -> str:
    """A name MLflow and our table both accept, checked before MLflow creates anything."""
    if not isinstance(name, str) or not name.strip():
        raise BadRequest(f"{field}: a registered model needs a name", code="invalid_field")
    if len(name) > MODEL_NAME_MAX:  # as sent (check_name measures it stripped)
        raise BadRequest(
            f"{field}: is {len(name)} characters long, at most {MODEL_NAME_MAX} allowed",
            code="invalid_field",
        )
    check_name(name, field, max_length=MODEL_NAME_MAX)  # one line, no control characters
    if "/" in name or ":" in name:
        raise BadRequest(f"{field}: {name!r} must not contain '/' or ':'", code="invalid_field")
    if posixpath.normpath(name) != name or name == "." or name.startswith(".."):
        raise BadRequest(f"{field}: {name!r} must not be a dot path", code="invalid_field")
    return name


DESCRIPTION_MAX = 5000  # MLflow's column for model and version descriptions


def check_description(value: object, field: str = "description") -> str:
    """A model's or version's description: text (markdown) without control characters other
    than line breaks and tabs (it is shown in terminals too); checked before MLflow stores it."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{field}: must be a string", code="invalid_field")
    return check_text(
        value.replace("\r\n", "\n"), field, max_length=DESCRIPTION_MAX, allow_empty=True
    )


def record_model(s: Session, ctx: Ctx, project: Project, name: str) -> RegisteredModel:
    row = RegisteredModel(project_id=project.id, name=name, created_by_id=ctx.user.id)
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:
        raise Conflict(f"name: a registered model '{name}' already exists") from None
    audit.record(s, ctx, "model.create", "model", name, project=project)
    return row


def model_owner(s: Session, name: str) -> Project | None:
    return s.scalar(
        select(Project)
        .join(RegisteredModel, RegisteredModel.project_id == Project.id)
        .where(RegisteredModel.name == name)
    )


def readable_experiments_json(
    s: Session, ctx: Ctx, mlflow_ids: set[str | None]
) -> dict[str, dict[str, str]]:
    """Of these MLflow experiments, those the caller may read: ``{mlflow id: {"project",
    "name", "mlflow_experiment_id"}}``."""
    wanted = {str(i) for i in mlflow_ids if i}
    if not wanted:
        return {}
    rows = s.execute(
        select(Experiment, Project)
        .join(Project, Project.id == Experiment.project_id)
        .where(Experiment.mlflow_experiment_id.in_(wanted), Project.deleted_at.is_(None))
    )
    found = {}
    for experiment, project in rows:
        try:
            check_project(s, ctx, project, "experiments.read")
        except WorkbenchError:
            continue
        found[str(experiment.mlflow_experiment_id)] = {
            "project": project.slug,
            "name": experiment.name,
            "mlflow_experiment_id": str(experiment.mlflow_experiment_id),
        }
    return found


def record_model_version(
    s: Session,
    ctx: Ctx,
    project: Project,
    name: str,
    version: str,
    run_id: str | None,
    *,
    warning: str | None = None,
) -> None:
    """Audit a new version MLflow made of a project's model (through the REST API or a stock
    client through the proxy); ``warning``: what could not be checked (its source's path)."""
    summary: dict[str, Any] = {"version": str(version), "run_id": run_id}
    if warning:
        summary["warning"] = warning
    audit.record(s, ctx, "model.version_create", "model", name, project=project, summary=summary)


def record_version_undone(
    s: Session, ctx: Ctx, project: Project, name: str, version: str, reason: str
) -> None:
    """Audit a version deleted again right after it was made (``reason``: what it lacked)."""
    audit.record(s, ctx, "model.version_delete", "model", name, project=project,
                 summary={"version": str(version), "reason": reason})  # fmt: skip


def rename_model(s: Session, ctx: Ctx, old: str, new: str) -> None:
    row = s.scalar(select(RegisteredModel).where(RegisteredModel.name == old))
    if row is not None:
        row.name = new
        project = s.get(Project, row.project_id)
        audit.record(s, ctx, "model.rename", "model", new, project=project,
                     summary={"name": {"from": old, "to": new}})  # fmt: skip


def check_rename(s: Session, project: Project, mlflow_id: str, name: str) -> tuple[str, str]:
    """The name an experiment of ``project`` may be renamed to (it stays in the project), and
    its MLflow name now."""
    name = check_name(name, "new_name", max_length=200)
    taken = experiment_in_project(s, project.slug, name)
    if taken is not None and taken.mlflow_experiment_id != str(mlflow_id):
        raise Conflict(f"new_name: project '{project.slug}' already has an experiment '{name}'")
    owner = experiment_owner(s, mlflow_id)
    mlflow_name = owner[0].mlflow_name if owner is not None else None
    return name, mlflow_name or mlflow_experiment_name(project, name)


def rename_experiment(s: Session, ctx: Ctx, mlflow_id: str, name: str, mlflow_name: str) -> None:
    """Follow a rename MLflow carried out (``check_rename`` was asked first)."""
    owner = experiment_owner(s, mlflow_id)
    if owner is not None:
        row, project = owner
        old, row.name, row.mlflow_name = row.name, name, mlflow_name
        audit.record(s, ctx, "experiment.rename", "experiment", name, project=project,
                     summary={"name": {"from": old, "to": name}})  # fmt: skip


def forget_model(s: Session, ctx: Ctx, name: str) -> None:
    row = s.scalar(select(RegisteredModel).where(RegisteredModel.name == name))
    if row is not None:
        project = s.get(Project, row.project_id)
        audit.record(s, ctx, "model.delete", "model", name, project=project)
        s.delete(row)


def readable_model_names(s: Session, ctx: Ctx, scope: Project | None = None) -> set[str]:
    stmt = (
        select(RegisteredModel.name, RegisteredModel.project_id)
        .join(Project, Project.id == RegisteredModel.project_id)
        .where(Project.deleted_at.is_(None))
    )
    if scope is not None:
        stmt = stmt.where(RegisteredModel.project_id == scope.id)
    rows = list(s.execute(stmt))
    if is_superuser(ctx.user):
        return {r[0] for r in rows}
    from .projects import visible_project_ids

    visible = set(s.scalars(visible_project_ids(ctx.user)))
    return {r[0] for r in rows if r[1] in visible}


def project_for_tags(tags: list[dict[str, Any]]) -> str | None:
    """The project slug a create request names in its ``workbench.project`` tag, if any."""
    for tag in tags or []:
        if isinstance(tag, dict) and tag.get("key") == PROJECT_TAG:
            value = tag.get("value")
            if not isinstance(value, str) or not value:
                raise BadRequest(f"tags.{PROJECT_TAG}: must be a project slug")
            return value
    return None


def experiment_project(s: Session, ctx: Ctx, mlflow_id: str, action: str) -> Project:
    """The project owning MLflow experiment ``mlflow_id``, if the caller may do ``action``."""
    from .access import check_project
    from .errors import NotFound

    owner = experiment_owner(s, mlflow_id)
    if owner is None:
        raise NotFound(f"experiment '{mlflow_id}' not found")
    check_project(s, ctx, owner[1], action)
    return owner[1]


def list_experiments(
    s: Session,
    ctx: Ctx,
    slug: str,
    *,
    q: str | None = None,
    name: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Experiment]:
    """A page of a project's experiments: ``q``, text in the name (in any case); ``name``,
    that name exactly."""
    from .access import require_project

    project, _ = require_project(s, ctx, slug, "experiments.read")
    stmt = select(Experiment).where(Experiment.project_id == project.id)
    if q:
        stmt = stmt.where(holds_text(q, Experiment.name))
    if name is not None:
        stmt = stmt.where(Experiment.name == name)
    return paginate(s, stmt, EXPERIMENT_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    return {
        "name": experiment.name,
        "mlflow_experiment_id": experiment.mlflow_experiment_id,
        "mlflow_name": experiment.mlflow_name,
        "description": experiment.description,
        "created_at": experiment.created_at.isoformat(),
    }
