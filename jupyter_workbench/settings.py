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
from traitlets import Bool, Float, Int, List, Set, Unicode, default
from traitlets.config import Configurable


def _env_int(name: str, fallback: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else fallback
    except ValueError:
        return fallback


class Workbench(Configurable):
    """Settings of the workbench API, shared by the server extension, CLI and hub service."""

    mode = Unicode(
        help="'standalone': this server hosts the workbench API (database, storage, MLflow). "
        "'client': a JupyterHub user server that forwards the same URLs to the hub's workbench "
        "service under the caller's identity, holding no credentials. Default: $WORKBENCH_MODE, "
        "else 'standalone'.",
    ).tag(config=True)

    @default("mode")
    def _default_mode(self) -> str:
        return os.environ.get("WORKBENCH_MODE", "standalone")

    service_url = Unicode(
        help="Client mode: base URL of the hub's workbench service, e.g. "
        "'http://127.0.0.1:8000/services/workbench/'. Default: $WORKBENCH_SERVICE_URL.",
    ).tag(config=True)

    @default("service_url")
    def _default_service_url(self) -> str:
        return os.environ.get("WORKBENCH_SERVICE_URL", "")

    examples_dir = Unicode(
        help="Folder of the example notebooks that the lab's launcher offers to copy into a "
        "user's folder (a team's own onboarding notebooks, say; on a hub, set it for the user "
        "servers, e.g. with c.Spawner.environment). Default: $WORKBENCH_EXAMPLES_DIR, else the "
        "examples installed with the package (share/jupyter/workbench/examples).",
    ).tag(config=True)

    @default("examples_dir")
    def _default_examples_dir(self) -> str:
        return os.environ.get("WORKBENCH_EXAMPLES_DIR", "")

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

    io_threads = Int(
        8,
        help="Threads that move dataset bytes (uploads, downloads, commits, garbage collection).",
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

    # -- datasets and blob storage -------------------------------------------------------
    storage_backend = Unicode(
        help="Where dataset bytes live: 'local' (a folder, see storage_dir) or 's3'. "
        "Default: 's3' when $S3_BUCKET is set, else 'local'.",
    ).tag(config=True)

    @default("storage_backend")
    def _default_storage_backend(self) -> str:
        return "s3" if os.environ.get("S3_BUCKET") else "local"

    storage_dir = Unicode(
        help="Folder of the local blob store. Default: 'blobs' in data_dir.",
    ).tag(config=True)

    @default("storage_dir")
    def _default_storage_dir(self) -> str:
        return str(Path(self.data_dir) / "blobs")

    s3_bucket = Unicode(help="S3 bucket of the blob store. Default: $S3_BUCKET.").tag(config=True)

    @default("s3_bucket")
    def _default_s3_bucket(self) -> str:
        return os.environ.get("S3_BUCKET", "")

    s3_access_key = Unicode(
        help="S3 access key id. Default: $S3_ACCESS_KEY (else boto3's usual credential chain)."
    ).tag(config=True)

    @default("s3_access_key")
    def _default_s3_access_key(self) -> str:
        return os.environ.get("S3_ACCESS_KEY", "")

    s3_secret_key = Unicode(
        help="S3 secret access key. Default: $S3_SECRET_KEY. Never logged or shown."
    ).tag(config=True)

    @default("s3_secret_key")
    def _default_s3_secret_key(self) -> str:
        return os.environ.get("S3_SECRET_KEY", "")

    s3_endpoint_url = Unicode(
        help="S3-compatible endpoint (MinIO, Ceph ...). Default: $S3_ENDPOINT_URL, else AWS."
    ).tag(config=True)

    @default("s3_endpoint_url")
    def _default_s3_endpoint_url(self) -> str:
        return os.environ.get("S3_ENDPOINT_URL", "")

    s3_prefix = Unicode(
        help="Key prefix inside the bucket, e.g. 'workbench/'. Default: $S3_PREFIX, else none."
    ).tag(config=True)

    @default("s3_prefix")
    def _default_s3_prefix(self) -> str:
        return os.environ.get("S3_PREFIX", "")

    s3_region = Unicode(help="S3 region. Default: $S3_REGION, else $AWS_REGION.").tag(config=True)

    @default("s3_region")
    def _default_s3_region(self) -> str:
        return os.environ.get("S3_REGION") or os.environ.get("AWS_REGION", "")

    pack_target_mib = Int(
        32,
        help="Chunks are stored packed into objects of about this many MiB (fewer, larger "
        "objects: cheaper and faster on S3).",
    ).tag(config=True)

    max_dataset_commit_bytes = Int(
        help="Largest total size of one dataset commit or upload, in bytes. "
        "Default: $MAX_DATASET_SIZE, else 1 TiB.",
    ).tag(config=True)

    @default("max_dataset_commit_bytes")
    def _default_max_dataset(self) -> int:
        return _env_int("MAX_DATASET_SIZE", 1024**4)

    max_upload_request_bytes = Int(
        64 * 1024 * 1024,
        help="Largest body of one upload request (a manifest, or a batch of chunks), in bytes.",
    ).tag(config=True)

    dataset_session_hours = Float(
        24.0,
        help="Hours an unfinished commit or upload may stay idle before garbage collection "
        "frees what it stored.",
    ).tag(config=True)

    max_open_uploads_per_user = Int(
        20,
        help="Open uploads (started, not yet committed or abandoned) one user may have in a "
        "project; starting one more is refused (409 too_many_uploads) until one is committed, "
        "abandoned (DELETE .../uploads/{id}) or expired. 0: no limit.",
    ).tag(config=True)

    max_open_uploads_per_project = Int(
        200,
        help="Open uploads all users together may have in a project (see "
        "max_open_uploads_per_user). 0: no limit.",
    ).tag(config=True)

    gc_grace_minutes = Float(
        60.0,
        help="Minutes a retired pack object is kept before garbage collection deletes it "
        "(readers that just looked up a chunk still find it).",
    ).tag(config=True)

    table_diff_max_bytes = Int(
        2 * 1024**3,
        help="CSV/Parquet files larger than this are diffed by file only, not row by row.",
    ).tag(config=True)

    table_diff_max_files = Int(
        50,
        help="Changed CSV/Parquet files a version diff compares row by row (the first ones by "
        "path); the others are diffed by file only. Each takes a read of both versions.",
    ).tag(config=True)

    dataset_cache_dir = Unicode(
        help="Local cache of file contents for materialized dataset versions. "
        "Default: 'cache' in data_dir.",
    ).tag(config=True)

    @default("dataset_cache_dir")
    def _default_dataset_cache_dir(self) -> str:
        return str(Path(self.data_dir) / "cache")

    verify_uploads = Bool(
        True,
        help="Re-read an upload's chunks and check each file's BLAKE3 before publishing it.",
    ).tag(config=True)

    # -- experiments on MLflow ------------------------------------------------------------
    mlflow_url = Unicode(
        help="An external MLflow tracking server the workbench fronts (its proxy is the only way "
        "in): 'http://host:port' or 'unix:/path/to/socket'. Default: $WORKBENCH_MLFLOW_URL, else "
        "empty: the workbench runs its own MLflow server on a private unix socket.",
    ).tag(config=True)

    @default("mlflow_url")
    def _default_mlflow_url(self) -> str:
        return os.environ.get("WORKBENCH_MLFLOW_URL", "")

    mlflow_autostart = Bool(
        True,
        help="Start the managed MLflow server with the workbench; when off it starts on the "
        "first request to the MLflow proxy.",
    ).tag(config=True)

    mlflow_backend_store_uri = Unicode(
        help="Store of the managed MLflow server. Default: SQLite 'mlflow/mlflow.db' in data_dir.",
    ).tag(config=True)

    mlflow_artifacts_destination = Unicode(
        help="Where the managed MLflow server keeps artifacts (a folder or an s3:// URI). "
        "Default: 'mlflow/artifacts' in data_dir.",
    ).tag(config=True)

    secrets_key = Unicode(
        help="Secret from which the AES-256-GCM key of user secrets is derived (HKDF-SHA256). "
        "Default: $AUTH_SECRET_KEY; when empty, the key file secrets_key_file is used.",
    ).tag(config=True)

    @default("secrets_key")
    def _default_secrets_key(self) -> str:
        return os.environ.get("AUTH_SECRET_KEY", "")

    secrets_previous_keys = List(
        Unicode(),
        help="Earlier values of secrets_key, still accepted for reading while "
        "`jupyter workbench rotate-keys` re-encrypts everything under the current key. "
        "Default: $AUTH_SECRET_KEY_PREVIOUS (comma-separated).",
    ).tag(config=True)

    @default("secrets_previous_keys")
    def _default_secrets_previous_keys(self) -> list[str]:
        raw = os.environ.get("AUTH_SECRET_KEY_PREVIOUS", "")
        return [k.strip() for k in raw.split(",") if k.strip()]

    secrets_key_file = Unicode(
        help="Key file of user secrets when secrets_key is empty: one key per line, the first is "
        "current, later lines are earlier keys. Created (mode 0600) with a random key on first "
        "use. Default: 'secrets.key' in data_dir.",
    ).tag(config=True)

    @default("secrets_key_file")
    def _default_secrets_key_file(self) -> str:
        return str(Path(self.data_dir) / "secrets.key")

    hub_service = Bool(
        False,
        help="Running as the hub-managed service (`python -m jupyter_workbench.hub.service` sets "
        "it): the admin panel is also served at the service's root, /services/workbench/admin.",
    ).tag(config=True)

    usage_reconcile_interval_seconds = Int(
        300,
        help="Hub service mode: how often usage accounting is checked against the hub's running "
        "servers (runs of servers the hub no longer has are ended); also done at start. "
        "0 disables it.",
    ).tag(config=True)

    collab_room_idle_seconds = Float(
        60.0,
        help="Co-editing: a document's room closes (and is compacted) this many seconds after "
        "its last connection leaves.",
    ).tag(config=True)

    collab_compact_after_updates = Int(
        500,
        help="Co-editing: merge a document's stored updates into one snapshot row once it has "
        "this many (storage stays near the document's own size).",
    ).tag(config=True)

    collab_snapshot_minutes = Float(
        10.0,
        help="Co-editing: take an automatic history snapshot of a document after this many "
        "minutes of editing; 0 disables automatic snapshots.",
    ).tag(config=True)

    collab_access_check_seconds = Float(
        2.0,
        help="Co-editing: how often every connection's project role is checked again (a removed "
        "member is disconnected, a demoted editor becomes read-only); membership changes made "
        "through the workbench are applied at once. 0: only those.",
    ).tag(config=True)

    collab_max_document_bytes = Int(
        32 * 1024 * 1024,
        help="Co-editing: the largest a document may grow, in bytes of its encoded Yjs state "
        "(its text and edit history; the server holds it in memory while its room is open). "
        "An edit that would take it past this is refused and its sender disconnected (close "
        "code 4413); the others go on. A document already past it (the limit was lowered) "
        "opens read-only until a restore makes it smaller. 0: no limit.",
    ).tag(config=True)

    collab_awareness_per_second = Float(
        10.0,
        help="Co-editing: awareness updates (cursors, selections, names) one connection may have "
        "relayed to the others per second, after a burst of collab_awareness_burst. Past it they "
        "are coalesced, not dropped: the latest state of each of the connection's clients is "
        "relayed as soon as the rate allows. A connection sending awareness at ten times this "
        "rate (past ten times the burst) is disconnected (close code 4429). 0: no limit.",
    ).tag(config=True)

    collab_awareness_burst = Int(
        20,
        help="Co-editing: awareness updates one connection may have relayed at once before "
        "collab_awareness_per_second applies.",
    ).tag(config=True)

    hub_internal_token = Unicode(
        help="Hub service mode: the token JupyterHub's spawn hooks present to the workbench "
        "(quota checks, usage accounting, secrets for a server's environment). Empty disables "
        "those endpoints. Default: $WORKBENCH_HUB_INTERNAL_TOKEN.",
    ).tag(config=True)

    @default("hub_internal_token")
    def _default_hub_internal_token(self) -> str:
        return os.environ.get("WORKBENCH_HUB_INTERNAL_TOKEN", "")

    # -- JupyterHub: teams = groups, project servers ----------------------------------------
    hub_api_url = Unicode(
        help="Hub service mode: JupyterHub's REST API, e.g. 'http://127.0.0.1:8081/hub/api/'. "
        "Default: $JUPYTERHUB_API_URL (the hub sets it for its services).",
    ).tag(config=True)

    @default("hub_api_url")
    def _default_hub_api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "")

    hub_api_token = Unicode(
        help="Hub service mode: the service's JupyterHub API token (needs the scopes of the "
        "'workbench-service' role in hub_config/jupyterhub_config.py). Never logged. "
        "Default: $JUPYTERHUB_API_TOKEN.",
    ).tag(config=True)

    @default("hub_api_token")
    def _default_hub_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    hub_sync = Bool(
        True,
        help="Hub service mode (hub_api_url and hub_api_token set, mode 'standalone'): teams "
        "and JupyterHub groups are kept in sync both ways, and project servers are shared "
        "through the hub's sharing API. Off: hub groups only become teams as each user's "
        "requests report them.",
    ).tag(config=True)

    hub_group_sync_interval = Int(
        help="Seconds between two reads of the hub's groups (GET /hub/api/groups): a group an "
        "admin creates or edits in the hub shows as a team with those members within this "
        "time. Each user's own groups also follow their requests. The same poll makes the hub's "
        "users and approved sign-ups known (admin panel, quotas) before their first visit. "
        "0 disables the poll. "
        "Default: $WORKBENCH_HUB_GROUP_SYNC_INTERVAL, else 60.",
    ).tag(config=True)

    @default("hub_group_sync_interval")
    def _default_hub_group_sync_interval(self) -> int:
        return _env_int("WORKBENCH_HUB_GROUP_SYNC_INTERVAL", 60)

    hub_group_prefix = Unicode(
        help="Only JupyterHub groups whose name starts with this prefix are teams (the team is "
        "named after the rest), and a team created in the workbench becomes the group "
        "prefix + name. Empty: every group is a team. Default: $WORKBENCH_HUB_GROUP_PREFIX.",
    ).tag(config=True)

    @default("hub_group_prefix")
    def _default_hub_group_prefix(self) -> str:
        return os.environ.get("WORKBENCH_HUB_GROUP_PREFIX", "")

    project_server_profile = Unicode(
        "",
        help="The server profile (a slug of profiles.yaml) project servers start with; empty: "
        "the default profile.",
    ).tag(config=True)

    @property
    def hub_sync_active(self) -> bool:
        """Teams mirror hub groups both ways, and project servers are available."""
        return bool(
            self.hub_sync and self.hub_api_url and self.hub_api_token and self.mode != "client"
        )

    def resolved_database_url(self) -> str:
        """The database URL in force: the setting, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir) / 'workbench.db'}"
