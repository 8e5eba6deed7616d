"""Collaborative documents of a project: README, notes, dataset and model cards, experiment
reports. Their content is a pycrdt (Yjs) document edited live in rooms (``collab/``); this module
owns which documents exist, who may open or change them, and their named snapshots."""

from __future__ import annotations

import difflib
import re
import uuid
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, defer

from ..collab.store import initial_update
from ..db.models import (
    Dataset,
    Document,
    DocumentSnapshot,
    DocumentUpdate,
    Experiment,
    ModelCard,
    ModelCardRevision,
    Project,
    RegisteredModel,
    User,
)
from . import audit
from .access import Role, check_project, require_project
from .context import Ctx
from .errors import BadRequest, NotFound
from .pagination import Page, SortSpec, paginate
from .validation import check_name, db_id

# kind -> what its ``ref`` names
KINDS: dict[str, str] = {
    "readme": "nothing (one README per project; ref is empty)",
    "notes": "a name of your choice",
    "dataset-card": "a dataset of the project",
    "model-card": "a registered model of the project",
    "report": "an experiment of the project",
}
_NOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ID = re.compile(r"^[0-9a-f]{32}$")


def _check_kind_ref(s: Session, project: Project, kind: object, ref: object) -> tuple[str, str]:
    if not isinstance(kind, str) or kind not in KINDS:
        raise BadRequest(f"kind: must be one of {', '.join(KINDS)} (got {kind!r})",
                         code="invalid_field")  # fmt: skip
    if ref is None:
        ref = ""
    if not isinstance(ref, str):
        raise BadRequest("ref: must be a string", code="invalid_field")
    if kind == "readme":
        if ref:
            raise BadRequest("ref: a project has one README; leave ref empty",
                             code="invalid_field")  # fmt: skip
        return kind, ""
    if not ref:
        raise BadRequest(f"ref: a {kind} document needs ref ({KINDS[kind]})", code="invalid_field")
    if kind == "notes":
        if not _NOTE_NAME.match(ref):
            raise BadRequest("ref: a notes name is 1-100 letters, digits, '.', '_' or '-'",
                             code="invalid_field")  # fmt: skip
        return kind, ref
    target: dict[str, Any] = {
        "dataset-card": (Dataset, Dataset.name, "dataset"),
        "model-card": (RegisteredModel, RegisteredModel.name, "model"),
        "report": (Experiment, Experiment.name, "experiment"),
    }
    model, column, label = target[kind]
    found = s.scalar(select(model.id).where(model.project_id == project.id, column == ref))
    if found is None:
        raise NotFound(f"{label} '{ref}' not found in project '{project.slug}'")
    return kind, ref


def _seed_text(s: Session, project: Project, kind: str, ref: str) -> str:
    """What a new document starts with: the existing card's text, or the project's description."""
    if kind == "dataset-card":
        card = s.scalar(
            select(Dataset.card).where(Dataset.project_id == project.id, Dataset.name == ref)
        )
        return card or ""
    if kind == "model-card":
        markdown = s.scalar(
            select(ModelCardRevision.markdown)
            .join(ModelCard, ModelCard.id == ModelCardRevision.card_id)
            .where(ModelCard.model_name == ref,
                   ModelCardRevision.number == ModelCard.current_revision)
        )  # fmt: skip
        return markdown or ""
    if kind == "readme":
        return f"# {project.name}\n\n{project.description}".rstrip() + "\n"
    if kind == "report":
        description = s.scalar(
            select(Experiment.description).where(
                Experiment.project_id == project.id, Experiment.name == ref
            )
        )
        return f"# Report: {ref}\n\n{description or ''}".rstrip() + "\n"
    return ""


def open_document(
    s: Session, ctx: Ctx, slug: str, *, kind: object, ref: object = "", title: object = None
) -> tuple[Document, bool]:
    """The project's document of ``kind``/``ref``, created (editors) if it is new: (doc, created).
    A new card starts with the card's current text, a README with the project's description."""
    project, _ = require_project(s, ctx, slug, "documents.read")
    kind, ref = _check_kind_ref(s, project, kind, ref)
    existing = s.scalar(
        select(Document).where(
            Document.project_id == project.id, Document.kind == kind, Document.ref == ref
        )
    )
    if existing is not None:
        return existing, False
    check_project(s, ctx, project, "documents.write")
    if title is None:
        title = ref or "README"
    if not isinstance(title, str):
        raise BadRequest("title: must be a string", code="invalid_field")
    title = check_name(title, "title", max_length=255)
    document = Document(
        id=uuid.uuid4().hex,
        project_id=project.id,
        kind=kind,
        ref=ref,
        title=title,
        created_by_id=ctx.user.id,
    )
    s.add(document)
    s.flush()
    seed = _seed_text(s, project, kind, ref)
    if seed:
        s.execute(
            insert(DocumentUpdate),
            [{"document_id": document.id, "data": initial_update(seed), "merged": 1}],
        )
    audit.record(s, ctx, "document.create", "document", document.id, project=project,
                 summary={"kind": kind, "ref": ref})  # fmt: skip
    return document, True


def get_document(s: Session, ctx: Ctx, document_id: str, action: str) -> tuple[Document, Role]:
    """A document the caller may ``action`` (NotFound when they may not see its project)."""
    if not _ID.match(document_id):
        raise NotFound(f"document '{document_id}' not found")
    document = s.get(Document, document_id)
    if document is None:
        raise NotFound(f"document '{document_id}' not found")
    try:
        role = check_project(s, ctx, document.project, action)
    except NotFound:
        raise NotFound(f"document '{document_id}' not found") from None
    return document, role


def may_write(document: Document, role: Role) -> bool:
    """Whether a caller with ``role`` may edit the document (archived projects are read-only)."""
    return role >= Role.EDITOR and document.project.archived_at is None


DOCUMENT_SORTS = SortSpec(
    {"created": Document.created_at, "ref": Document.ref, "title": Document.title},
    id_column=Document.id,
    default="created",
)


def list_documents(
    s: Session,
    ctx: Ctx,
    slug: str,
    kind: str | None = None,
    ref: str | None = None,
    *,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Document]:
    """A page of the project's documents, of one ``kind`` (and ``ref``) if given."""
    project, _ = require_project(s, ctx, slug, "documents.read")
    stmt = select(Document).where(Document.project_id == project.id)
    if kind:
        if kind not in KINDS:
            raise BadRequest(f"kind: must be one of {', '.join(KINDS)}", code="invalid_field")
        stmt = stmt.where(Document.kind == kind)
    if ref is not None:
        stmt = stmt.where(Document.ref == ref)
    return paginate(s, stmt, DOCUMENT_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def delete_document(s: Session, ctx: Ctx, document_id: str) -> Document:
    document, _ = get_document(s, ctx, document_id, "documents.delete")
    audit.record(s, ctx, "document.delete", "document", document.id, project=document.project,
                 summary={"kind": document.kind, "ref": document.ref})  # fmt: skip
    s.delete(document)
    return document


def document_json(s: Session, document: Document, role: Role | None = None) -> dict[str, Any]:
    creator = s.get(User, document.created_by_id) if document.created_by_id else None
    out: dict[str, Any] = {
        "id": document.id,
        "project": document.project.slug,
        "kind": document.kind,
        "ref": document.ref,
        "title": document.title,
        "created_by": creator.username if creator else None,
        "created_at": document.created_at.isoformat(),
    }
    if role is not None:
        out["can_write"] = may_write(document, role)
    return out


PUBLISHABLE = ("dataset-card", "model-card")


def publish(s: Session, ctx: Ctx, document_id: str, text: str) -> dict[str, Any]:
    """Make a card document's text the card itself: the dataset's card, or a new revision of
    the model's card (its structured fields kept). Editors of the project."""
    document, _ = get_document(s, ctx, document_id, "documents.write")
    slug, ref = document.project.slug, document.ref
    if document.kind == "dataset-card":
        from . import datasets

        dataset = datasets.update_dataset(s, ctx, slug, ref, {"card": text})
        return {"kind": document.kind, "ref": ref, "dataset_version": dataset.version}
    if document.kind == "model-card":
        from . import registry

        _card, current = registry.get_card(s, ctx, slug, ref)
        fields = dict(current.fields) if current is not None else {}
        _card, revision = registry.save_card(s, ctx, slug, ref, markdown=text, fields=fields)
        return {"kind": document.kind, "ref": ref, "revision": revision.number}
    raise BadRequest(
        f"a {document.kind} document has no card to publish to (only {', '.join(PUBLISHABLE)})",
        code="not_publishable",
    )


# -- snapshots -----------------------------------------------------------------------------
def check_snapshot_name(name: object) -> str:
    if not isinstance(name, str):
        raise BadRequest("name: must be a string", code="invalid_field")
    return check_name(name, "name", max_length=200)


def add_snapshot(
    s: Session,
    ctx: Ctx | None,
    document_id: str,
    *,
    name: str,
    state: bytes,
    text: str,
    automatic: bool = False,
) -> DocumentSnapshot:
    """Record a snapshot; ``ctx`` None for an automatic one (no caller to check or audit)."""
    if ctx is not None:
        document, _ = get_document(s, ctx, document_id, "documents.write")
    else:
        found = s.get(Document, document_id)
        if found is None:
            raise NotFound(f"document '{document_id}' not found")
        document = found
    snapshot = DocumentSnapshot(
        document_id=document.id,
        name=name,
        automatic=automatic,
        state=state,
        text=text,
        created_by_id=ctx.user.id if ctx is not None else None,
    )
    s.add(snapshot)
    s.flush()
    if ctx is not None:
        summary = {"snapshot": snapshot.id, "name": name}
        audit.record(s, ctx, "document.snapshot", "document", document.id,
                     project=document.project, summary=summary)  # fmt: skip
    return snapshot


SNAPSHOT_SORTS = SortSpec(
    {"created": DocumentSnapshot.id}, id_column=DocumentSnapshot.id, default="-created"
)


def list_snapshots(
    s: Session,
    ctx: Ctx,
    document_id: str,
    *,
    sort: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[DocumentSnapshot]:
    """One page of the document's snapshots, newest first, without their state and text (a
    long-edited document has hundreds, each a copy of it): ``snapshot_lengths`` for sizes."""
    get_document(s, ctx, document_id, "documents.read")
    stmt = (
        select(DocumentSnapshot)
        .where(DocumentSnapshot.document_id == document_id)
        .options(defer(DocumentSnapshot.state), defer(DocumentSnapshot.text))
    )
    return paginate(s, stmt, SNAPSHOT_SORTS, ctx, sort=sort, limit=limit, cursor=cursor)


def snapshot_lengths(s: Session, snapshots: list[DocumentSnapshot]) -> dict[int, int]:
    """Each snapshot's text length in characters, counted by the database."""
    rows = s.execute(
        select(DocumentSnapshot.id, func.length(DocumentSnapshot.text)).where(
            DocumentSnapshot.id.in_([x.id for x in snapshots])
        )
    )
    return {row_id: int(length or 0) for row_id, length in rows}


def get_snapshot(s: Session, ctx: Ctx, document_id: str, snapshot_id: str) -> DocumentSnapshot:
    get_document(s, ctx, document_id, "documents.read")
    row_id = db_id(snapshot_id)
    snapshot = None if row_id is None else s.get(DocumentSnapshot, row_id)
    if snapshot is None or snapshot.document_id != document_id:
        raise NotFound(f"snapshot '{snapshot_id}' of document '{document_id}' not found")
    return snapshot


def record_restore(
    s: Session,
    ctx: Ctx,
    document_id: str,
    snapshot_id: str,
    *,
    failed: str = "",
    refused: dict[str, Any] | None = None,
) -> None:
    """Audit a restore (``failed``: why it stopped partway, what it changed being kept;
    ``refused``: why it was refused, nothing changed: its ``reason``, the refusal's code, and
    what says more, as the size and limit of a document it would have taken past its limit)."""
    document, _ = get_document(s, ctx, document_id, "documents.write")
    snapshot = get_snapshot(s, ctx, document_id, snapshot_id)
    summary = {
        "snapshot": snapshot.id,
        "name": snapshot.name,
        **({"failed": failed} if failed else {}),
        **({"refused": refused} if refused else {}),
    }
    audit.record(s, ctx, "document.restore", "document", document.id, project=document.project,
                 summary=summary)  # fmt: skip


def snapshot_json(
    s: Session, snapshot: DocumentSnapshot, *, text: bool = False, characters: int | None = None
) -> dict[str, Any]:
    """``characters``: the text's length when the text was not loaded (``snapshot_lengths``)."""
    creator = s.get(User, snapshot.created_by_id) if snapshot.created_by_id else None
    out: dict[str, Any] = {
        "id": snapshot.id,
        "name": snapshot.name,
        "automatic": snapshot.automatic,
        "created_by": creator.username if creator else None,
        "created_at": snapshot.created_at.isoformat(),
        "characters": len(snapshot.text) if characters is None else characters,
    }
    if text:
        out["text"] = snapshot.text
    return out


def text_diff(before: str, after: str, *, before_name: str, after_name: str) -> str:
    """A unified diff of two texts (what ``diff -u`` prints)."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=before_name,
            tofile=after_name,
        )
    )
