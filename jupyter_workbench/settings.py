"""Every workbench setting, in one traitlets Configurable.

Set them the Jupyter way (``c.Workbench.database_url = ...`` in ``jupyter_server_config.py``,
or ``--Workbench.database_url=...`` on the command line); the environment variables named in
the help texts only provide defaults.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool, Float, Int, Set, Unicode, default
from traitlets.config import Configurable


def _env_int(name: str, fallback: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else fallback
    except ValueError:
        return fallback


class Workbench(Configurable):
    """Settings of the workbench API, shared by the server extension, CLI and hub service."""

    data_dir = Unicode(
        help="Folder for the workbench's own files (the embedded SQLite database, local blob "
        "storage). Default: $WORKBENCH_DATA_DIR, else 'workbench' in the Jupyter data dir.",
    ).tag(config=True)

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return os.environ.get("WORKBENCH_DATA_DIR") or str(Path(jupyter_data_dir()) / "workbench")

    database_url = Unicode(
        help="SQLAlchemy URL of the database, e.g. 'postgresql+psycopg://user@host/db'. "
        "Default: $DATABASE_URL, else an embedded SQLite file 'workbench.db' in data_dir.",
    ).tag(config=True)

    @default("database_url")
    def _default_database_url(self) -> str:
        return os.environ.get("DATABASE_URL", "")

    database_pool_size = Int(
        help="Connections kept open to PostgreSQL. Default: $DATABASE_POOL_SIZE, else 10.",
    ).tag(config=True)

    @default("database_pool_size")
    def _default_pool_size(self) -> int:
        return _env_int("DATABASE_POOL_SIZE", 10)

    auto_migrate = Bool(
        True,
        help="Apply pending database migrations when the server starts. When off, run "
        "'jupyter workbench migrate' before starting.",
    ).tag(config=True)

    worker_threads = Int(
        8,
        help="Threads that run database work for API requests, off the server's event loop.",
    ).tag(config=True)

    max_request_bytes = Int(
        1024 * 1024,
        help="Largest JSON request body accepted, in bytes; larger bodies get 413.",
    ).tag(config=True)

    page_size = Int(50, help="Items per page of a list when the request gives no 'limit'.").tag(
        config=True
    )

    max_page_size = Int(500, help="Largest 'limit' a list request may ask for.").tag(config=True)

    invitation_ttl_hours = Float(
        168.0,
        help="Hours after which an unanswered project invitation expires.",
    ).tag(config=True)

    trash_retention_days = Int(
        30,
        help="Days a deleted project stays restorable before it is purged for good.",
    ).tag(config=True)

    purge_interval_seconds = Int(
        3600,
        help="How often the server purges projects whose trash retention has passed "
        "(0 disables the periodic purge; 'jupyter workbench purge' still works).",
    ).tag(config=True)

    admin_users = Set(
        Unicode(),
        help="Usernames that are workbench administrators (they may see and manage every "
        "project). JupyterHub admins and the standalone owner are administrators too.",
    ).tag(config=True)

    standalone_username = Unicode(
        help="The user that callers authenticated by the server's single token act as when "
        "jupyter-server runs standalone. Default: the operating-system user.",
    ).tag(config=True)

    @default("standalone_username")
    def _default_standalone_username(self) -> str:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "owner"
        return name or "owner"

    def resolved_database_url(self) -> str:
        """The database URL in force: the setting, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir) / 'workbench.db'}"
