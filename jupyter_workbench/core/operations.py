"""Long operations (commits, uploads, verification, garbage collection) and their progress."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..db.models import Operation, Project, utcnow
from .access import check_project, is_superuser
from .context import Ctx
from .errors import Conflict, NotFound, WorkbenchError
from .pagination import Page, SortSpec, paginate

STATES = ("running", "succeeded", "failed", "cancelled")
# Kinds of operation that everyone who may start one in its project follows (and may cancel):
# one runs for all of them (a version's verify), whoever started it.
SHARED_KINDS: dict[str, str] = {"verify_version": "datasets.verify"}
INTERRUPTED = "interrupted: the workbench stopped before the operation finished"
_SORTS = SortSpec({"created": Operation.id}, id_column=Operation.id, default="-created")


def time_ordered_id() -> str:
    """32 hex characters that sort by creation time (milliseconds, then random)."""
    return f"{int(time.time() * 1000):013x}{uuid.uuid4().hex[:19]}"


def start(
    s: Session,
    ctx: Ctx,
    kind: str,
    *,
    project: Project | None = None,
    message: str = "",
    bytes_total: int | None = None,
    files_total: int | None = None,
) -> Operation:
    op = Operation(
        id=time_ordered_id(),
        user_id=ctx.user.id,
        project_id=project.id if project else None,
        kind=kind,
        message=message,
        bytes_total=bytes_total,
        files_total=files_total,
    )
    s.add(op)
    s.flush()
    return op


def get(s: Session, ctx: Ctx, op_id: str) -> Operation:
    """An operation of the caller's (any, for an administrator; a shared one of a project
    where they may start it)."""
    op = s.get(Operation, op_id)
    if op is None:
        raise NotFound(f"operation {op_id} not found")
    if op.user_id == ctx.user.id or is_superuser(ctx.user) or _shares(s, ctx, op):
        return op
    raise NotFound(f"operation {op_id} not found")


def _shares(s: Session, ctx: Ctx, op: Operation) -> bool:
    action = SHARED_KINDS.get(op.kind)
    project = s.get(Project, op.project_id) if action and op.project_id else None
    if action is None or project is None:
        return False
    try:
        check_project(s, ctx, project, action)
    except WorkbenchError:
        return False
    return True


def list_mine(
    s: Session,
    ctx: Ctx,
    *,
    state: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Operation]:
    stmt = select(Operation).where(Operation.user_id == ctx.user.id)
    if state:
        stmt = stmt.where(Operation.state == state)
    return paginate(s, stmt, _SORTS, ctx, sort=None, limit=limit, cursor=cursor)


def request_cancel(s: Session, ctx: Ctx, op_id: str) -> Operation:
    op = get(s, ctx, op_id)
    if op.state != "running":
        raise Conflict(f"operation {op_id} is {op.state}", code=op.state)
    op.cancel_requested = True
    op.updated_at = utcnow()
    s.flush()
    return op


def fail_leftovers(s: Session) -> int:
    """Fail the operations still marked running when the workbench starts: the process that ran
    them is gone (one workbench process runs them all), and nobody must wait on them forever.
    Returns how many there were."""
    result = s.execute(
        update(Operation)
        .where(Operation.state == "running")
        .values(state="failed", error=INTERRUPTED, updated_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def operation_json(op: Operation) -> dict[str, Any]:
    fraction = None
    if op.bytes_total:
        fraction = min(1.0, op.bytes_done / op.bytes_total)
    return {
        "id": op.id,
        "kind": op.kind,
        "state": op.state,
        "message": op.message,
        "bytes_done": op.bytes_done,
        "bytes_total": op.bytes_total,
        "files_done": op.files_done,
        "files_total": op.files_total,
        "progress": fraction,
        "cancel_requested": op.cancel_requested,
        "result": op.result,
        "error": op.error,
        "created_at": op.created_at.isoformat(),
        "updated_at": op.updated_at.isoformat(),
    }
