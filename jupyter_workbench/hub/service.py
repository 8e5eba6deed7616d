"""``python -m jupyter_workbench.hub.service``: the workbench API as a JupyterHub service.

JupyterHub starts it (``c.JupyterHub.services``) with its environment: the service prefix and URL,
its API token and OAuth client. It is the single home of the workbench's data: it alone holds
the database and storage credentials. Users reach it with their hub tokens (directly, or through
their own servers in client mode); identity and groups come from the hub.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

from traitlets.config import Config

OTHER_EXTENSIONS = (
    "jupyterlab",
    "jupyter_lsp",
    "jupyter_server_terminals",
    "notebook_shim",
    "notebook",
    "jupyter_server_fileid",
    "jupyter_server_ydoc",
    "jupyter_collaboration",
)


def service_config() -> Config:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/workbench/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    config = Config()
    server = config.ServerApp
    server.base_url = prefix
    server.ip = url.hostname or "127.0.0.1"
    server.port = url.port or 10101
    server.port_retries = 0
    server.open_browser = False
    server.allow_root = True
    server.identity_provider_class = "jupyterhub.singleuser.extension.JupyterHubIdentityProvider"
    server.authorizer_class = "jupyter_workbench.hub.auth.WorkbenchOnlyAuthorizer"
    server.terminals_enabled = False
    server.jpserver_extensions = {name: False for name in OTHER_EXTENSIONS}
    server.jpserver_extensions["jupyter_workbench"] = True
    root = os.environ.get("WORKBENCH_DATA_DIR") or os.getcwd()
    os.makedirs(os.path.join(root, "service-root"), exist_ok=True)
    server.root_dir = os.path.join(root, "service-root")
    config.Workbench.mode = "standalone"
    config.Workbench.hub_service = True
    return config


def main(argv: list[str] | None = None) -> None:
    from ..fast_start import skip_slow_imports
    from ..tracking.group_leader import die_with_parent

    # a managed service lives and dies with its hub: a hub that restarts starts a new one, which
    # would find the old one on its port
    die_with_parent(os.getppid())
    skip_slow_imports()
    from jupyter_server.serverapp import ServerApp

    ServerApp.launch_instance(
        argv=argv if argv is not None else sys.argv[1:], config=service_config()
    )


if __name__ == "__main__":  # pragma: no cover
    main()
