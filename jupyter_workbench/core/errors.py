"""Typed domain errors; ``handlers/base.py`` maps each to one HTTP status."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error the domain raises on purpose."""

    status = 400
    code = "bad_request"
    # whether the transaction that raised it still commits what it did before (a refusal that
    # found and recorded something on the way, like an invitation found expired)
    keeps_changes = False

    def __init__(
        self, message: str, *, code: str | None = None, keeps_changes: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.keeps_changes = keeps_changes


class BadRequest(WorkbenchError):
    """The input is malformed or breaks a rule; the message names the field."""


class Unauthenticated(WorkbenchError):
    status = 401
    code = "unauthenticated"


class Forbidden(WorkbenchError):
    """The caller may see the object but not do this to it."""

    status = 403
    code = "forbidden"


class NotFound(WorkbenchError):
    """The object does not exist, or the caller may not know that it does."""

    status = 404
    code = "not_found"


class Conflict(WorkbenchError):
    """A uniqueness clash or a state that forbids the change."""

    status = 409
    code = "conflict"


class PreconditionFailed(WorkbenchError):
    """``If-Match`` named a version that is no longer current."""

    status = 412
    code = "precondition_failed"


class PayloadTooLarge(WorkbenchError):
    status = 413
    code = "payload_too_large"


class RangeNotSatisfiable(WorkbenchError):
    status = 416
    code = "range_not_satisfiable"
