"""Exceptions of the Python client, carrying the server's own message."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Any error the workbench answered (or the failure to reach it)."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        if status is not None:
            self.status = status


class BadRequest(WorkbenchError):
    status = 400


class Unauthorized(WorkbenchError):
    status = 401


class PermissionDenied(WorkbenchError):
    status = 403


class NotFound(WorkbenchError):
    status = 404


class Conflict(WorkbenchError):
    status = 409


class ServerError(WorkbenchError):
    """A 5xx answer."""


class ConnectionFailed(WorkbenchError):
    """The server could not be reached (after retries)."""


class NotConfigured(WorkbenchError):
    """No workbench to talk to was found, or no current project was chosen."""


BY_STATUS: dict[int, type[WorkbenchError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    412: Conflict,
    413: BadRequest,
}


def from_response(status: int, body: object, url: str = "") -> WorkbenchError:
    """The error for an answer: the server's JSON message, else the status and the URL (a 404
    without a JSON body means no workbench answers there)."""
    message, code = f"HTTP {status}" + (f" from {url}" if url else ""), ""
    if isinstance(body, dict):
        message = str(body.get("message") or message)
        code = str(body.get("error") or body.get("error_code") or "")
    elif status == 404:
        message += (
            ": no workbench API there (is the jupyter_workbench server extension enabled on "
            "that server, and WORKBENCH_URL its address?)"
        )
    cls = BY_STATUS.get(status, ServerError if status >= 500 else WorkbenchError)
    return cls(message, status=status, code=code)
