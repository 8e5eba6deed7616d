"""Authorization of the workbench service's jupyter-server.

The service runs jupyter-server only to host the workbench API: its contents, kernels, sessions
and terminals APIs must answer no one (the service holds the database and storage credentials),
so its Authorizer refuses every jupyter-server resource. The workbench's own handlers apply the
workbench's access rules instead.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer


class WorkbenchOnlyAuthorizer(Authorizer):
    """Refuses every jupyter-server API (kernels, contents, terminals ...) to every user."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return False
