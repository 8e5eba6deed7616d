"""The route table of the REST API: the single list that tornado, OpenAPI and tests read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .account import (
    ActivityHandler,
    AuditHandler,
    MeHandler,
    MyInvitationsHandler,
    NotificationsHandler,
    UsersHandler,
)
from .admin import PeopleHandler, ReconcileHandler, SignupHandler, SignupsHandler
from .base import Endpoint, NotFoundHandler, WorkbenchHandler
from .datasets import (
    ArchiveHandler,
    ConsumerLineageHandler,
    DatasetGCHandler,
    DatasetsHandler,
    FileHandler,
    FilesHandler,
    LineageHandler,
    OneDatasetHandler,
    OpenUploadsHandler,
    OperationCancelHandler,
    OperationHandler,
    OperationsHandler,
    SearchHandler,
    StorageVerifyHandler,
    TagHandler,
    TagsHandler,
    UploadChunksHandler,
    UploadCommitHandler,
    UploadHandler,
    UploadsHandler,
    VerifyVersionHandler,
    VersionHandler,
    VersionsHandler,
)
from .datasets import (
    DiffHandler as DatasetDiffHandler,
)
from .documents import (
    CompactHandler,
    DocumentHandler,
    DocumentsHandler,
    PresenceHandler,
    PublishHandler,
    SnapshotDiffHandler,
    SnapshotHandler,
    SnapshotRestoreHandler,
    SnapshotsHandler,
)
from .hub_internal import HubSpawnHandler, HubStopHandler
from .live import RunLiveHandler
from .mlflow_proxy import MlflowProxyHandler
from .model_configs import (
    DiffHandler,
    ModelConfigHandler,
    ModelConfigsHandler,
    RevisionHandler,
    RevisionsHandler,
)
from .openapi import ApiIndexHandler, OpenAPIHandler
from .project_servers import ProjectServerHandler
from .projects import (
    AccessRequestApproveHandler,
    AccessRequestDenyHandler,
    AccessRequestHandler,
    AccessRequestsHandler,
    InvitationAcceptHandler,
    InvitationDeclineHandler,
    InvitationHandler,
    InvitationsHandler,
    MemberHandler,
    MembersHandler,
    ProjectArchiveHandler,
    ProjectHandler,
    ProjectRestoreHandler,
    ProjectsHandler,
    ProjectTransferHandler,
    ProjectUnarchiveHandler,
)
from .registry import (
    CardHandler,
    CardHistoryHandler,
    ModelHandler,
    ModelsHandler,
    ModelVersionsHandler,
    PromotionApproveHandler,
    PromotionHandler,
    PromotionRejectHandler,
    PromotionsHandler,
)
from .rooms import RoomHandler
from .runs import (
    AggregateHandler,
    CompareHandler,
    ExperimentsHandler,
    ExportHandler,
    HistoryHandler,
    RunBatchHandler,
    RunLineageHandler,
    SearchRunsHandler,
)
from .secrets import SecretHandler, SecretsHandler
from .teams import TeamHandler, TeamMemberHandler, TeamMembersHandler, TeamsHandler
from .usage import (
    MyUsageHandler,
    QuotaHandler,
    QuotasHandler,
    ServersHandler,
    UsageHandler,
    UsageSeriesHandler,
)

API_PREFIX = "workbench/api/v1"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    template: str
    handler: type[WorkbenchHandler]

    @property
    def pattern(self) -> str:
        # {path} is a file path inside a dataset: it may contain slashes
        pattern = self.template.replace("{path}", "(?P<path>.+)")
        return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)

    def endpoints(self) -> dict[str, Endpoint]:
        """The declared endpoint of each HTTP method the handler implements."""
        found = {}
        for method in HTTP_METHODS:
            fn = getattr(self.handler, method, None)
            meta = getattr(fn, "endpoint", None)
            if meta is not None:
                found[method] = meta
        return found


P = "/projects/{slug}"
D = f"{P}/datasets/{{name}}"
M = f"{P}/models/{{name}}"
ROUTES: list[Route] = [
    Route("/me", MeHandler),
    Route("/me/invitations", MyInvitationsHandler),
    Route("/me/notifications", NotificationsHandler),
    Route("/users", UsersHandler),
    Route("/projects", ProjectsHandler),
    Route(P, ProjectHandler),
    Route(f"{P}/archive", ProjectArchiveHandler),
    Route(f"{P}/unarchive", ProjectUnarchiveHandler),
    Route(f"{P}/restore", ProjectRestoreHandler),
    Route(f"{P}/transfer", ProjectTransferHandler),
    Route(f"{P}/server", ProjectServerHandler),
    Route(f"{P}/members", MembersHandler),
    Route(f"{P}/members/{{member}}", MemberHandler),
    Route(f"{P}/invitations", InvitationsHandler),
    Route(f"{P}/invitations/{{invitation_id}}", InvitationHandler),
    Route(f"{P}/invitations/{{invitation_id}}/accept", InvitationAcceptHandler),
    Route(f"{P}/invitations/{{invitation_id}}/decline", InvitationDeclineHandler),
    Route(f"{P}/access-requests", AccessRequestsHandler),
    Route(f"{P}/access-requests/{{request_id}}", AccessRequestHandler),
    Route(f"{P}/access-requests/{{request_id}}/approve", AccessRequestApproveHandler),
    Route(f"{P}/access-requests/{{request_id}}/deny", AccessRequestDenyHandler),
    Route(f"{P}/model-configs", ModelConfigsHandler),
    Route(f"{P}/model-configs/{{name}}", ModelConfigHandler),
    Route(f"{P}/model-configs/{{name}}/revisions", RevisionsHandler),
    Route(f"{P}/model-configs/{{name}}/revisions/{{number}}", RevisionHandler),
    Route(f"{P}/model-configs/{{name}}/diff", DiffHandler),
    Route(f"{P}/datasets", DatasetsHandler),
    Route(f"{P}/datasets-gc", DatasetGCHandler),
    Route(f"{P}/datasets-uploads", OpenUploadsHandler),
    Route(f"{D}", OneDatasetHandler),
    Route(f"{D}/versions", VersionsHandler),
    Route(f"{D}/versions/{{ref}}", VersionHandler),
    Route(f"{D}/versions/{{ref}}/files", FilesHandler),
    Route(f"{D}/versions/{{ref}}/files/{{path}}", FileHandler),
    Route(f"{D}/versions/{{ref}}/archive", ArchiveHandler),
    Route(f"{D}/versions/{{ref}}/verify", VerifyVersionHandler),
    Route(f"{D}/versions/{{ref}}/lineage", LineageHandler),
    Route(f"{D}/diff", DatasetDiffHandler),
    Route(f"{D}/tags", TagsHandler),
    Route(f"{D}/tags/{{tag}}", TagHandler),
    Route(f"{D}/uploads", UploadsHandler),
    Route(f"{D}/uploads/{{upload_id}}", UploadHandler),
    Route(f"{D}/uploads/{{upload_id}}/chunks", UploadChunksHandler),
    Route(f"{D}/uploads/{{upload_id}}/commit", UploadCommitHandler),
    Route("/datasets", SearchHandler),
    Route("/lineage", ConsumerLineageHandler),
    Route("/operations", OperationsHandler),
    Route("/operations/{op_id}", OperationHandler),
    Route("/operations/{op_id}/cancel", OperationCancelHandler),
    Route("/storage/verify", StorageVerifyHandler),
    Route(f"{P}/experiments", ExperimentsHandler),
    Route(f"{P}/models", ModelsHandler),
    Route(f"{M}", ModelHandler),
    Route(f"{M}/versions", ModelVersionsHandler),
    Route(f"{M}/promotions", PromotionsHandler),
    Route(f"{M}/promotions/{{request_id}}", PromotionHandler),
    Route(f"{M}/promotions/{{request_id}}/approve", PromotionApproveHandler),
    Route(f"{M}/promotions/{{request_id}}/reject", PromotionRejectHandler),
    Route(f"{M}/card", CardHandler),
    Route(f"{M}/card/history", CardHistoryHandler),
    Route("/runs/{run_id}/batch", RunBatchHandler),
    Route("/runs/{run_id}/lineage", RunLineageHandler),
    Route("/runs/{run_id}/metrics/{key}/history", HistoryHandler),
    Route("/runs/export", ExportHandler),
    Route("/runs/search", SearchRunsHandler),
    Route("/runs/compare", CompareHandler),
    Route("/runs/aggregate", AggregateHandler),
    Route(f"{P}/documents", DocumentsHandler),
    Route("/documents/{document_id}", DocumentHandler),
    Route("/documents/{document_id}/presence", PresenceHandler),
    Route("/documents/{document_id}/compact", CompactHandler),
    Route("/documents/{document_id}/publish", PublishHandler),
    Route("/documents/{document_id}/snapshots", SnapshotsHandler),
    Route("/documents/{document_id}/snapshots/{snapshot_id}", SnapshotHandler),
    Route("/documents/{document_id}/snapshots/{snapshot_id}/diff", SnapshotDiffHandler),
    Route("/documents/{document_id}/snapshots/{snapshot_id}/restore", SnapshotRestoreHandler),
    Route("/teams", TeamsHandler),
    Route("/teams/{name}", TeamHandler),
    Route("/teams/{name}/members", TeamMembersHandler),
    Route("/teams/{name}/members/{username}", TeamMemberHandler),
    Route("/audit", AuditHandler),
    Route("/activity", ActivityHandler),
    Route("/me/secrets", SecretsHandler),
    Route("/me/secrets/{secret}", SecretHandler),
    Route("/me/usage", MyUsageHandler),
    Route("/admin/usage", UsageHandler),
    Route("/admin/usage/series", UsageSeriesHandler),
    Route("/admin/servers", ServersHandler),
    Route("/admin/quotas", QuotasHandler),
    Route("/admin/quotas/{subject}", QuotaHandler),
    Route("/admin/people", PeopleHandler),
    Route("/admin/usage/reconcile", ReconcileHandler),
    Route("/admin/signups", SignupsHandler),
    Route("/admin/signups/{username}", SignupHandler),
    Route("/hub/spawn", HubSpawnHandler),
    Route("/hub/stop", HubStopHandler),
]


def tornado_handlers() -> list[tuple[str, type[Any]]]:
    """(regex, handler) pairs relative to the server's base_url."""
    out: list[tuple[str, type[Any]]] = [
        (f"/{API_PREFIX}{route.pattern}/?", route.handler) for route in ROUTES
    ]
    out.append((f"/{API_PREFIX}/?", ApiIndexHandler))
    out.append((f"/{API_PREFIX}/openapi.json", OpenAPIHandler))
    out.append((f"/{API_PREFIX}/runs/(?P<run_id>[0-9a-f]{{32}})/live", RunLiveHandler))
    out.append((f"/{API_PREFIX}/rooms/(?P<document_id>[0-9a-f]{{32}})", RoomHandler))
    out.append((r"/workbench/mlflow(?:/p/(?P<scope>[^/]+))?(?P<path>/.*)?", MlflowProxyHandler))
    out.append((f"/{API_PREFIX}(?:/.*)?", NotFoundHandler))
    return out
