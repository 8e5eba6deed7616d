"""The jupyter-server extension: serves the workbench API under ``{base_url}workbench/api/v1/``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Instance

from .identity import WorkbenchIdentityProvider
from .settings import Workbench

if TYPE_CHECKING:
    from .tracking.store import TrackingStore
    from .tracking.supervisor import MlflowSupervisor
    from .tracking.upstream import Upstream

# The API's modules (database, storage, MLflow, handlers) are imported only where the API is
# served: a hub user server in client mode forwards, and starts faster without them.


class WorkbenchApp(ExtensionApp):
    """Jupyter Workbench server extension."""

    name = "jupyter_workbench"
    description = "Projects, teams, datasets, experiments and a model registry inside Jupyter."
    load_other_extensions = True
    classes = [Workbench, WorkbenchIdentityProvider]

    service = Instance("jupyter_workbench.service.WorkbenchService", allow_none=True)
    identity_source = Instance("jupyter_workbench.identity.ServerIdentitySource", allow_none=True)
    _purge_task: asyncio.Task[Any] | None = None
    _reconcile_task: asyncio.Task[Any] | None = None
    _hub_poll_task: asyncio.Task[Any] | None = None
    hub_sync: Any = None  # hub.sync.HubSync in hub service mode
    documents: Any = None  # documents_live.LiveDocuments: the co-editing rooms
    mlflow: Upstream | None = None
    mlflow_supervisor: MlflowSupervisor | None = None
    _tracking_store: TrackingStore | None = None
    _tracking_lock = threading.Lock()
    workbench_settings: Workbench

    def initialize_settings(self) -> None:
        settings = Workbench(parent=self)
        self.workbench_settings = settings
        if settings.mode == "client":
            self._initialize_client(settings)
            return
        from .identity import ServerIdentitySource
        from .service import WorkbenchService
        from .tracking.supervisor import MlflowSupervisor
        from .tracking.upstream import Upstream

        self.service = WorkbenchService(settings)
        self._fail_leftover_operations()
        self.identity_source = ServerIdentitySource(settings)
        self.settings["workbench_service"] = self.service
        from .documents_live import LiveDocuments

        self.documents = LiveDocuments(self.service)
        self.settings["workbench_documents"] = self.documents
        self.hub_sync = None
        if settings.hub_sync_active:
            from .hub.hub_api import HubAPI
            from .hub.sync import HubSync

            self.hub_sync = HubSync(
                self.service, HubAPI(settings.hub_api_url, settings.hub_api_token)
            )
            self.settings["workbench_hub"] = self.hub_sync
        self.mlflow_supervisor = None
        if not settings.mlflow_url:
            root = Path(settings.data_dir) / "mlflow"
            self.mlflow_supervisor = MlflowSupervisor(
                root,
                backend_store_uri=settings.mlflow_backend_store_uri,
                artifacts_destination=settings.mlflow_artifacts_destination,
            )
            if settings.mlflow_autostart and MlflowSupervisor.available():
                self.mlflow_supervisor.start()
        self.mlflow = Upstream(settings.mlflow_url, self.mlflow_supervisor)
        self.settings["workbench_mlflow"] = self.mlflow
        self._tracking_store: TrackingStore | None = None
        self.log.info(
            "Workbench API at %sworkbench/api/v1/ (database: %s)",
            self.serverapp.base_url if self.serverapp else "/",
            self.service.db.url.render_as_string(hide_password=True),
        )

    def tracking_store(self) -> TrackingStore | None:
        """Direct access to MLflow's database (fast paths), when the workbench knows it."""
        with self._tracking_lock:
            return self._build_tracking_store()

    def _build_tracking_store(self) -> TrackingStore | None:
        if self._tracking_store is None:
            assert self.service is not None
            settings = self.service.settings
            url = settings.mlflow_backend_store_uri
            if not url and self.mlflow_supervisor is not None:
                url = self.mlflow_supervisor.backend_store_uri
            if url:
                from .tracking.store import TrackingStore

                self._tracking_store = TrackingStore(url)
        return self._tracking_store

    def _initialize_client(self, settings: Workbench) -> None:
        """A hub user server: no database, no storage, no MLflow -- it forwards."""
        if not settings.service_url:
            raise ValueError("Workbench.mode is 'client' but Workbench.service_url is empty")
        import httpx

        self.settings["workbench_service_url"] = settings.service_url
        self.settings["workbench_forward_client"] = httpx.AsyncClient(
            timeout=httpx.Timeout(600, connect=10)
        )
        self.log.info("Workbench client mode: forwarding to %s", settings.service_url)

    def initialize_handlers(self) -> None:
        if not self.workbench_settings.hub_service:  # a server with a user's own files
            from .examples import examples_folder
            from .handlers.examples import ExampleCopyHandler, ExamplesHandler

            found = {"folder": examples_folder(self.workbench_settings.examples_dir)}
            self.handlers.extend(
                [
                    (r"/workbench/examples/?", ExamplesHandler, found),
                    (r"/workbench/examples/(?P<name>[^/]+)", ExampleCopyHandler, found),
                ]
            )
        if self.workbench_settings.mode == "client":
            from .handlers.forward import ForwardHandler, ForwardWebSocketHandler

            live = r"/(?P<path>workbench/api/v1/runs/[0-9a-f]{32}/live)"
            room = r"/(?P<path>workbench/api/v1/rooms/[0-9a-f]{32})"
            self.handlers.extend(
                [
                    (live, ForwardWebSocketHandler),
                    (room, ForwardWebSocketHandler),
                    (r"/(?P<path>workbench/(?:api/v1|mlflow)(?:/.*)?)", ForwardHandler),
                ]
            )
            return
        from .handlers.routes import tornado_handlers

        self.handlers.extend(tornado_handlers())
        from jupyter_server.base.handlers import AuthenticatedFileHandler

        from .admin_panel import STATIC_PATH, AdminPageHandler, ServiceRootHandler

        self.handlers.append((r"/workbench/admin/?", AdminPageHandler))
        # the hub's stylesheet, for the panel where no hub serves it
        self.handlers.append(
            (r"/workbench/admin/static/(.*)", AuthenticatedFileHandler, {"path": STATIC_PATH})
        )
        if self.workbench_settings.hub_service:
            # the service's own root: the hub's Services menu links there
            self.handlers.extend([(r"/admin/?", AdminPageHandler), (r"/?", ServiceRootHandler)])

    def kernel_environment(self, serverapp: Any) -> dict[str, str]:
        """What kernels need to reach the workbench and MLflow as this server's user."""
        url = str(serverapp.connection_url).rstrip("/")
        token = os.environ.get("JUPYTERHUB_API_TOKEN") or serverapp.identity_provider.token or ""
        return {
            "WORKBENCH_URL": url,
            "WORKBENCH_TOKEN": token,
            "MLFLOW_TRACKING_URI": f"{url}/workbench/mlflow",
            "MLFLOW_TRACKING_TOKEN": token,
        }

    def _fail_leftover_operations(self) -> None:
        from .core import operations

        assert self.service is not None
        with self.service.db.transaction(write=True) as s:
            failed = operations.fail_leftovers(s)
        if failed:
            self.log.warning(
                "Workbench: %d operation(s) left running by the last run marked failed", failed
            )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # Kernels inherit the server's environment: the stock mlflow client and ours work there
        # with nothing set by hand (values a user set explicitly win).
        for key, value in self.kernel_environment(serverapp).items():
            if value:
                os.environ.setdefault(key, value)
        self._page_token_per_user(serverapp)
        if self.service is not None and self.service.settings.purge_interval_seconds > 0:
            self._purge_task = asyncio.create_task(self._purge_forever())
        settings = self.workbench_settings
        if self.service is not None and settings.hub_service:
            from .hub.hub_client import on_hub

            if on_hub() and settings.usage_reconcile_interval_seconds > 0:
                self._reconcile_task = asyncio.create_task(self._reconcile_forever())
        if self.hub_sync is not None and self.workbench_settings.hub_group_sync_interval > 0:
            self._hub_poll_task = asyncio.create_task(self._poll_hub_forever())

    def _page_token_per_user(self, serverapp: Any) -> None:
        """A server shared with per-user tokens: each browser acts as whoever signed in.

        JupyterLab puts the server's (owner's) token in every page, and its frontend sends it
        with every request -- everyone would act as the owner. With per-user tokens the page
        carries none, and requests go with the caller's own login cookie (as behind a hub).
        """
        provider = serverapp.identity_provider
        if isinstance(provider, WorkbenchIdentityProvider) and provider.user_tokens:
            page_config = serverapp.web_app.settings.setdefault("page_config_data", {})
            page_config["token"] = ""

    async def _reconcile_forever(self) -> None:
        from .hub.usage_sync import reconcile_with_hub

        assert self.service is not None
        interval = self.workbench_settings.usage_reconcile_interval_seconds
        await asyncio.sleep(min(10, interval))  # the hub finishes starting first
        while True:
            try:
                ended = await reconcile_with_hub(self.service)
                if ended:
                    self.log.info("Usage: ended %d run(s) the hub no longer has", len(ended))
            except Exception as exc:  # the hub may be restarting: try again next time
                self.log.warning("Usage reconciliation with the hub failed: %s", exc)
            await asyncio.sleep(interval)

    async def _poll_hub_forever(self) -> None:
        """Hub groups -> teams (and every project server's shares), every interval."""
        assert self.service is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self.service.executor, self.hub_sync.poll_once)
            except Exception as exc:
                self.log.warning("Workbench: reading the hub's groups failed: %s", exc)
            await asyncio.sleep(self.workbench_settings.hub_group_sync_interval)

    async def _purge_forever(self) -> None:
        assert self.service is not None
        from .core.projects import purge_expired

        service = self.service
        while True:
            try:
                purged = await service.acall(service.system_identity(), purge_expired, write=True)
                if purged:
                    self.log.info("Purged %d project(s) from the trash: %s", len(purged), purged)
            except Exception:
                self.log.exception("Workbench trash purge failed")
            await asyncio.sleep(service.settings.purge_interval_seconds)

    async def stop_extension(self) -> None:
        for task in (self._purge_task, self._reconcile_task, self._hub_poll_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.hub_sync is not None:
            self.hub_sync.api.close()
        if self.documents is not None:
            await self.documents.close()
        if self.mlflow is not None:
            await self.mlflow.close()
        if self._tracking_store is not None:
            self._tracking_store.dispose()
        if self.mlflow_supervisor is not None:
            self.mlflow_supervisor.stop()
        if self.service is not None:
            self.service.close()
