"""JupyterHub configuration of the workbench: ``jupyterhub -f hub_config/jupyterhub_config.py``.

One file for two targets, chosen by ``WORKBENCH_HUB_TARGET``:

- ``local`` (default; what ``make run`` uses): user servers are local processes (no system
  accounts needed), local accounts with bcrypt-hashed passwords and sign-up approved by an admin
  (NativeAuthenticator: lockout after repeated failed logins), an SQLite hub database, and
  configurable-http-proxy from npm.
- ``kubernetes``: KubeSpawner with the GPU profiles of ``hub_config/profiles.yaml``, a
  PersistentVolumeClaim per user, and the hub database (PostgreSQL) from
  ``WORKBENCH_HUB_DB_URL`` (required; never ``DATABASE_URL``, the workbench's own database).
  Its settings: ``jupyter_workbench/hub/kubernetes.py``.

In both, the workbench API runs once per hub as the hub-managed service ``workbench`` (the only
holder of database and storage credentials), and every user's server forwards the workbench URLs
to it in client mode.

Environment (all optional): ``WORKBENCH_HUB_DIR`` (state: hub database, cookie secret, the
service's data), ``WORKBENCH_HUB_IP``/``WORKBENCH_HUB_PORT`` (127.0.0.1:8000),
``WORKBENCH_HUB_ADMIN`` (the admin account, 'admin'), ``WORKBENCH_CHP`` (the proxy command),
``WORKBENCH_SERVICE_PORT`` (10101), ``WORKBENCH_HUB_API_PORT`` (8081),
``WORKBENCH_PROXY_API_PORT`` (8001), ``DATABASE_URL``/``S3_*`` (the service's storage),
``WORKBENCH_PROFILES`` (the profiles file, ``hub_config/profiles.yaml``),
``WORKBENCH_CULL_GPU_TIMEOUT``/``WORKBENCH_CULL_CPU_TIMEOUT`` (idle seconds before a GPU / CPU
server is stopped: 1800 / 3600, 0: never), ``WORKBENCH_CULL_EVERY`` (seconds between checks),
``AUTH_SECRET_KEY``/``AUTH_SECRET_KEY_PREVIOUS`` (the key of user secrets; default: a key file
in the service's data), ``WORKBENCH_HUB_INTERNAL_TOKEN`` (what the spawn hooks present to the
service; default: a random one kept in the state folder).
"""

# ruff: noqa: F821 (``c`` is JupyterHub's config object)
from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path

from jupyter_workbench.hub.culler import culler_service
from jupyter_workbench.hub.hooks import WorkbenchHooks
from jupyter_workbench.hub.oauth import configure_oauth
from jupyter_workbench.hub.signups import CUSTOM_SCOPES, SIGNUPS_SCOPE

HERE = Path(__file__).resolve().parent
TARGET = os.environ.get("WORKBENCH_HUB_TARGET", "local")
STATE = Path(
    os.environ.get("WORKBENCH_HUB_DIR")
    or Path.home() / ".local" / "share" / "jupyter" / "workbench-hub"
)
STATE.mkdir(parents=True, exist_ok=True)
IP = os.environ.get("WORKBENCH_HUB_IP", "127.0.0.1")
PORT = int(os.environ.get("WORKBENCH_HUB_PORT", "8000"))
SERVICE_PORT = int(os.environ.get("WORKBENCH_SERVICE_PORT", "10101"))
ADMIN = os.environ.get("WORKBENCH_HUB_ADMIN", "admin")
SERVICE_URL = f"http://127.0.0.1:{SERVICE_PORT}"


def _state_secret(name: str) -> str:
    """A random secret kept in the state folder (mode 0600), the same across restarts."""
    path = STATE / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


c = get_config()  # type: ignore[name-defined]

# -- the hub --------------------------------------------------------------------------------
c.JupyterHub.ip = IP
c.JupyterHub.port = PORT
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("WORKBENCH_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = (
    f"http://127.0.0.1:{int(os.environ.get('WORKBENCH_PROXY_API_PORT', '8001'))}"
)
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"  # kubernetes: PostgreSQL
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
chp = os.environ.get("WORKBENCH_CHP") or shutil.which("configurable-http-proxy")
local_chp = HERE.parent / ".node" / "node_modules" / ".bin" / "configurable-http-proxy"
if not chp and local_chp.exists():
    chp = str(local_chp)
if chp:
    c.ConfigurableHTTPProxy.command = [chp]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")

# -- accounts: local, bcrypt-hashed, sign-up approved by an admin --------------------------------
# unless OAUTH_* names a provider (GitHub, Google, OpenID Connect: jupyter_workbench/hub/oauth.py)
if configure_oauth(c, os.environ) is None:
    # NativeAuthenticator plus a JSON API of pending sign-ups for the workbench admin panel
    c.JupyterHub.authenticator_class = "jupyter_workbench.hub.signups.WorkbenchNativeAuthenticator"
    c.NativeAuthenticator.open_signup = False  # an admin approves each sign-up
    c.NativeAuthenticator.minimum_password_length = 8
    c.NativeAuthenticator.check_common_password = True
    c.NativeAuthenticator.allowed_failed_logins = 5
    c.NativeAuthenticator.seconds_before_next_try = 300
    c.Authenticator.admin_users = {ADMIN}
    c.Authenticator.allow_all = True  # approved accounts may log in
    c.JupyterHub.template_paths = [
        str(Path(__import__("nativeauthenticator").__file__).parent / "templates")
    ]

# -- user servers -----------------------------------------------------------------------------
PROFILES = os.environ.get("WORKBENCH_PROFILES") or str(HERE / "profiles.yaml")
if TARGET == "local":
    c.JupyterHub.spawner_class = "jupyter_workbench.hub.spawner.LocalWorkbenchSpawner"
    c.LocalWorkbenchSpawner.home_dir_template = str(STATE / "home" / "{username}")
    c.LocalWorkbenchSpawner.workbench_service_url = f"{SERVICE_URL}/services/workbench/"
    c.LocalWorkbenchSpawner.profiles_file = PROFILES
    c.Spawner.cmd = [sys.executable, "-m", "jupyter_workbench.hub.singleuser"]
elif TARGET == "kubernetes":
    from jupyter_workbench.hub.kubernetes import configure_kubernetes

    configure_kubernetes(c, PROFILES)  # KubeSpawner, PVCs, WORKBENCH_HUB_DB_URL (required)
else:
    raise ValueError(f"WORKBENCH_HUB_TARGET: must be 'local' or 'kubernetes' (got {TARGET!r})")

# Every start asks the workbench first (quotas, usage accounting, the user's secrets for the
# server's environment); every stop is reported. The hub and the service share a token for it.
INTERNAL_TOKEN = os.environ.get("WORKBENCH_HUB_INTERNAL_TOKEN") or _state_secret(
    "hub-internal-token"
)
_hooks = WorkbenchHooks(f"{SERVICE_URL}/services/workbench/", INTERNAL_TOKEN, PROFILES)
c.Spawner.pre_spawn_hook = _hooks.pre_spawn
c.Spawner.post_stop_hook = _hooks.post_stop
c.Spawner.default_url = "/lab"
# Project servers are named servers ('project-{slug}'), shared with the project's editors.
c.JupyterHub.allow_named_servers = True
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 120
# A user server's token, and the tokens browsers get for it, may reach the workbench service.
WORKBENCH_SCOPE = "access:services!service=workbench"
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "read:users!user",
    "read:users:groups!user",
    WORKBENCH_SCOPE,
]
c.Spawner.oauth_client_allowed_scopes = [WORKBENCH_SCOPE]

# -- the workbench service ----------------------------------------------------------------------
service_env = {
    key: os.environ[key]
    for key in (
        "DATABASE_URL", "DATABASE_POOL_SIZE", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY",
        "S3_ENDPOINT_URL", "S3_PREFIX", "S3_REGION", "WORKBENCH_MLFLOW_URL", "PATH", "HOME",
        "WORKBENCH_HUB_GROUP_SYNC_INTERVAL", "WORKBENCH_HUB_GROUP_PREFIX",
    )
    if key in os.environ
}  # fmt: skip
service_env["WORKBENCH_DATA_DIR"] = str(STATE / "workbench")
service_env["WORKBENCH_HUB_INTERNAL_TOKEN"] = INTERNAL_TOKEN
for key in ("AUTH_SECRET_KEY", "AUTH_SECRET_KEY_PREVIOUS"):
    if key in os.environ:
        service_env[key] = os.environ[key]
c.JupyterHub.services = [
    {
        "name": "workbench",
        "url": SERVICE_URL,
        "command": [sys.executable, "-m", "jupyter_workbench.hub.service"],
        "environment": service_env,
        "oauth_no_confirm": True,
        "display": True,
    }
]
c.JupyterHub.custom_scopes = CUSTOM_SCOPES
c.JupyterHub.load_roles = [
    # every user may use the workbench (its own rules decide what they see there)
    # sharing: users may share their own servers with other users and groups, by name
    {"name": "user",
     "scopes": ["self", WORKBENCH_SCOPE, "shares!user", "read:users:name", "read:groups:name"]},
    # teams = groups (admin:groups: create/delete them, members), project servers (servers:
    # start/stop them; shares + access:servers: share them, which needs holding that access)
    {"name": "workbench-service", "services": ["workbench"],
     "scopes": ["read:users", "list:users", "admin:groups", "servers", "shares",
                SIGNUPS_SCOPE]},
]  # fmt: skip
# Idle servers are stopped, GPU ones sooner (WORKBENCH_CULL_GPU_TIMEOUT/_CPU_TIMEOUT/_EVERY).
CULLER, CULLER_ROLE = culler_service(PROFILES)
c.JupyterHub.services.append(CULLER)
c.JupyterHub.load_roles.append(CULLER_ROLE)
