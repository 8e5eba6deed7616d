"""The access matrix: every route x method x caller answers the status its access rule implies.

Generated from the route table (``handlers/routes.py``) and the rules in ``core/access.py``:
a new route or method without an access rule, or with a rule this test cannot evaluate, fails.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from jupyter_workbench.core import datasets as ds
from jupyter_workbench.core import operations, user_secrets
from jupyter_workbench.core.access import (
    ALL_ACTIONS,
    PROJECT_RULES,
    SELF_RULES,
    TEAM_RULES,
    Role,
)
from jupyter_workbench.core.context import Identity
from jupyter_workbench.db.models import (
    AccessRequest,
    CommitSession,
    Dataset,
    Invitation,
    ModelConfig,
    ModelConfigRevision,
    Project,
    ProjectMember,
    SessionChunk,
    Team,
    TeamMember,
    User,
    utcnow,
)
from jupyter_workbench.handlers.openapi import ERROR, build_spec
from jupyter_workbench.handlers.routes import ROUTES

CALLERS = ["anonymous", "stranger", "viewer", "editor", "admin", "owner", "team_member"]
USER_OF = {
    "stranger": "alice",  # no role; the invitee of the seeded invitation
    "viewer": "bob",  # also the requester of the seeded access request
    "editor": "carol",
    "admin": "dave",
    "owner": "erin",  # also the maintainer of the seeded team
    "team_member": "frank",  # member of the seeded team, which holds 'editor' on the project
}
BYSTANDER = "grace"  # a viewer and team member: the target of member/team-member changes
NEWCOMER = "heidi"  # known to the workbench, member of nothing: the target of adds and invites
ROLE_OF = {
    "stranger": Role.NONE,
    "viewer": Role.VIEWER,
    "editor": Role.EDITOR,
    "admin": Role.ADMIN,
    "owner": Role.OWNER,
    "team_member": Role.EDITOR,
}
CASES = [
    pytest.param(route, method, id=f"{method.upper()} {route.template}")
    for route in ROUTES
    for method in route.endpoints()
]


# Routes that act on a project in another state than active.
STATE_OF = {"/projects/{slug}/unarchive": "archived", "/projects/{slug}/restore": "deleted"}


def expected_status(
    action: str, caller: str, success: int, body: dict[str, Any] | None, state: str = "active"
) -> int:
    """What the access rule of ``action`` says ``caller`` gets on the seeded objects."""
    role = ROLE_OF.get(caller, Role.NONE)
    if state == "deleted" and role < Role.OWNER:
        return 404  # a project in the trash is invisible to all but its owner
    if action in PROJECT_RULES:
        if role == Role.NONE:
            return 404
        if action.startswith("server.") and role >= PROJECT_RULES[action]:
            # project servers need JupyterHub, absent here (tests/hub/ covers them); the
            # start/stop records of a never-started server: none yet for read and stop
            return 409 if action == "server.start" else 404
        return success if role >= PROJECT_RULES[action] else 403
    if action in TEAM_RULES:
        if TEAM_RULES[action] == "user":
            return success
        return success if caller == "owner" else 403
    if action in (
        "projects.list",
        "projects.create",
        "teams.create",
        "user.read",
        "audit.list",
        "activity.list",
        "notifications.own",
        "datasets.search",
        "lineage.read",
        "runs.search",
        "operations.read",  # the seeded operation is always the caller's own
    ):
        return success
    if action in ("storage.admin", "usage.admin", "quotas.admin", "admin.read", "signups.admin"):
        return 403  # no caller here is a workbench administrator
    if action == "hub.internal":
        return 403  # only the hub, with its internal token
    if action in ("secrets.own", "usage.own"):
        return success  # each caller acts on their own
    if action == "invitations.respond":
        if caller == "stranger":
            return success
        return 403
    if action == "access_requests.create":
        if role == Role.NONE:
            return 404
        wanted = Role[str((body or {}).get("role", "editor")).upper()]
        if caller == "viewer":
            return 409  # the viewer's seeded request is still pending: one at a time
        return success if role < wanted else 409
    if action == "access_requests.view":
        if role == Role.NONE:
            return 404
        return success if caller == "viewer" or role >= Role.ADMIN else 403
    if action == "access_requests.withdraw":
        if role == Role.NONE:
            return 404
        return success if caller == "viewer" else 403
    raise AssertionError(f"the access matrix cannot evaluate the rule of action {action!r}")


def seed(s: Session, tag: str, state: str) -> dict[str, Any]:
    """A private project with every kind of member, a team, an invitation, a request, a config."""
    users = {u.username: u for u in s.query(User)}
    project = Project(slug=f"p-{tag}", name=f"Project {tag}", visibility="private")
    if state == "archived":
        project.archived_at = utcnow()
    elif state == "deleted":
        project.deleted_at = utcnow()
    team = Team(name=f"squad-{tag}", display_name="Squad")
    s.add_all([project, team])
    s.flush()
    s.add_all(
        [
            ProjectMember(project_id=project.id, user_id=users["erin"].id, role="owner"),
            ProjectMember(project_id=project.id, user_id=users["dave"].id, role="admin"),
            ProjectMember(project_id=project.id, user_id=users["carol"].id, role="editor"),
            ProjectMember(project_id=project.id, user_id=users["bob"].id, role="viewer"),
            ProjectMember(project_id=project.id, user_id=users[BYSTANDER].id, role="viewer"),
            ProjectMember(project_id=project.id, team_id=team.id, role="editor"),
            TeamMember(team_id=team.id, user_id=users["erin"].id, role="maintainer"),
            TeamMember(team_id=team.id, user_id=users["frank"].id, role="member"),
            TeamMember(team_id=team.id, user_id=users[BYSTANDER].id, role="member"),
        ]
    )
    invitation = Invitation(
        project_id=project.id,
        invitee_username="alice",
        role="viewer",
        expires_at=utcnow().replace(year=utcnow().year + 1),
        created_by_id=users["dave"].id,  # an admin of the project: the invitation stands
    )
    request = AccessRequest(project_id=project.id, user_id=users["bob"].id, role="editor")
    config = ModelConfig(project_id=project.id, name="cfg", current_revision=2)
    s.add_all([invitation, request, config])
    s.flush()
    s.add_all(
        [
            ModelConfigRevision(model_config_id=config.id, number=n, parameters={"lr": 0.1 * n})
            for n in (1, 2)
        ]
    )
    s.flush()
    return {
        "slug": project.slug,
        "member": BYSTANDER,
        "invitation_id": invitation.id,
        "request_id": request.id,
        "number": 1,
        "username": BYSTANDER,
        "team": team.name,
    }


def seed_dataset(service: Any, slug: str, caller: str, tmp_path: Any) -> dict[str, Any]:
    """Dataset 'ds' with v1 (file a.txt, tag production), an upload and an operation that are
    the caller's own."""
    folder = tmp_path / "ds-source"
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_bytes(b"hello")
    owner = Identity("erin", "erin")
    jobs = service.datasets
    jobs.commit_folder(owner, slug, "ds", folder, message="seed")
    service.call(
        owner, lambda s, ctx: ds.set_tag(s, ctx, slug, "ds", "production", "v1"), write=True
    )
    _n, entry = jobs.file_entry(owner, slug, "ds", "v1", "a.txt")
    upload_id = uuid.uuid4().hex
    me = Identity(caller, caller)

    def rows(s: Session, ctx: Any) -> str:
        project = s.scalar(select(Project).where(Project.slug == slug))
        dataset = s.scalar(select(Dataset).where(Dataset.project_id == project.id))
        s.add(
            CommitSession(
                id=upload_id,
                dataset_id=dataset.id,
                user_id=ctx.user.id,
                kind="upload",
                # another path: the same files as v1 would make no new version (200)
                files=[dataclasses.replace(entry, path="b.txt").as_json()],
            )
        )
        s.flush()
        s.add(SessionChunk(session_id=upload_id, chunk_digest=entry.chunks[0][0]))
        return operations.start(s, ctx, "gc").id

    op_id = service.call(me, rows, write=True)
    return {
        "ref": "v1",
        "path": "a.txt",
        "tag": "production",
        "upload_id": upload_id,
        "op_id": op_id,
    }


def seed_run(service: Any, mlflow_server: Any, slug: str) -> dict[str, Any]:
    """An MLflow experiment owned by the project, with one run that logged 'loss'."""
    import httpx

    from jupyter_workbench.core import experiments as ex

    transport = httpx.HTTPTransport(uds=str(mlflow_server.socket))
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        name = f"{slug}/matrix"
        exp_id = client.post("/api/2.0/mlflow/experiments/create", json={"name": name}).json()[
            "experiment_id"
        ]
        run_id = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": exp_id}).json()[
            "run"
        ]["info"]["run_id"]
        client.post(
            "/api/2.0/mlflow/runs/log-metric",
            json={"run_id": run_id, "key": "loss", "value": 1.0, "timestamp": 1, "step": 0},
        )

    def record(s: Session, ctx: Any) -> None:
        project = s.scalar(select(Project).where(Project.slug == slug))
        ex.record_experiment(s, ctx, project, "matrix", str(exp_id), name)

    service.call(Identity("seeder", "seeder", is_admin=True), record, write=True)
    return {"run_id": run_id, "key": "loss"}


def seed_model(
    service: Any, mlflow_server: Any, slug: str, run_id: str, caller: str
) -> dict[str, Any]:
    """A registered model with version 1 (from the run's artifact folder 'model'), and two
    pending promotion requests: one by carol (for approve/reject) and one by the caller (for
    withdraw)."""
    import httpx

    from jupyter_workbench.core import experiments as ex
    from jupyter_workbench.db.models import PromotionRequest

    name = f"model-{slug}"
    transport = httpx.HTTPTransport(uds=str(mlflow_server.socket))
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        run = client.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}).json()["run"]
        root = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:").lstrip("/")
        put = f"/api/2.0/mlflow-artifacts/artifacts/{root}/model/weights.txt"
        assert client.put(put, content=b"w").status_code == 200
        client.post("/api/2.0/mlflow/registered-models/create", json={"name": name})
        client.post(
            "/api/2.0/mlflow/model-versions/create",
            json={"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id},
        )
    users = {}

    def record(s: Session, ctx: Any) -> dict[str, int]:
        project = s.scalar(select(Project).where(Project.slug == slug))
        ex.record_model(s, ctx, project, name)
        for who in {"carol", caller}:
            users[who] = s.scalar(select(User.id).where(User.username == who))
        ids = {}
        for who in ("carol", caller):
            row = PromotionRequest(
                project_id=project.id,
                model_name=name,
                version="1",
                alias="prod" if who == "carol" else "champion",
                requested_by_id=users[who],
            )
            s.add(row)
            s.flush()
            ids[who] = row.id
        return ids

    ids = service.call(Identity("seeder", "seeder", is_admin=True), record, write=True)
    return {"model": name, "carols_request": ids["carol"], "callers_request": ids[caller]}


def seed_document(service: Any, slug: str) -> dict[str, Any]:
    """The card document of dataset 'carded', with one snapshot."""
    from jupyter_workbench.core import documents

    def make(s: Session, ctx: Any) -> dict[str, Any]:
        ds.create(s, ctx, slug, name="carded")
        document, _ = documents.open_document(s, ctx, slug, kind="dataset-card", ref="carded")
        snapshot = documents.add_snapshot(s, ctx, document.id, name="one", state=b"\x00\x00",
                                          text="")  # fmt: skip
        return {"document_id": document.id, "snapshot_id": snapshot.id}

    return service.call(Identity("seeder", "seeder", is_admin=True), make, write=True)  # type: ignore[no-any-return]


def seed_secret(service: Any, username: str | None) -> None:
    """The caller's own secret MATRIX_SECRET (what DELETE /me/secrets/{secret} removes)."""
    if username is None:
        return
    keys = service.keyring()
    service.call(
        Identity(username=username, display_name=username),
        lambda s, ctx: user_secrets.put(s, ctx, keys, "MATRIX_SECRET", "matrix"),
        write=True,
    )


def fill(template: str, values: dict[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "secret":
            return "MATRIX_SECRET"
        if name == "subject":
            return "default"
        if name == "name":
            if template.startswith("/teams"):
                return str(values["team"])
            if "/models/" in template:
                return str(values["model"])
            return "ds" if "/datasets/" in template else "cfg"
        if name == "request_id" and "/models/" in template:
            own = template.endswith("{request_id}")  # DELETE: withdraw one's own request
            return str(values["callers_request" if own else "carols_request"])
        return str(values[name])

    return re.sub(r"\{(\w+)\}", one, template)


def body_for(
    example: dict[str, Any] | None, tag: str, values: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The endpoint's example body with its placeholders filled in for this case."""
    if example is None:
        return None
    names = {
        "{bystander}": BYSTANDER,
        "{newcomer}": NEWCOMER,
        "{fresh}": f"fresh-{tag}",
        "{run_id}": str((values or {}).get("run_id", "")),
    }

    def fill_in(value: Any) -> Any:
        if isinstance(value, str):
            for placeholder, real in names.items():
                value = value.replace(placeholder, real)
            return value
        if isinstance(value, list):
            return [fill_in(v) for v in value]
        if isinstance(value, dict):
            return {k: fill_in(v) for k, v in value.items()}
        return value

    return fill_in(example)  # type: ignore[no-any-return]


SPEC = build_spec("/")


def response_problem(template: str, method: str, status: int, body: bytes) -> str | None:
    """Why a response does not match the OpenAPI document, or None when it does."""
    documented = SPEC["paths"][template][method]["responses"]
    if str(status) not in documented:
        return f"status {status} is not documented (documented: {sorted(documented)})"
    content = documented[str(status)].get("content")
    if content is None:
        return "a body where none is documented" if body else None
    if "application/json" not in content:
        return None  # bytes (downloads): nothing to validate but the status
    schema = content["application/json"]["schema"]
    if schema.get("$ref") == "#/components/schemas/Error":
        schema = ERROR
    errors = list(Draft202012Validator(schema).iter_errors(json.loads(body)))
    return f"body does not match its schema: {errors[0].message}" if errors else None


def test_every_route_method_names_a_known_access_rule() -> None:
    unknown = [
        f"{method.upper()} {route.template}: {meta.action}"
        for route in ROUTES
        for method, meta in route.endpoints().items()
        if meta.action not in ALL_ACTIONS
    ]
    assert not unknown, f"routes whose action has no access rule: {unknown}"
    handlers_without_endpoints = [r.template for r in ROUTES if not r.endpoints()]
    assert not handlers_without_endpoints


def test_every_rule_has_a_description() -> None:
    for action, text in SELF_RULES.items():
        assert text, action


@pytest.fixture
def jp_server_config(jp_server_config: Any, mlflow_config: dict[str, str]) -> Any:
    jp_server_config["Workbench"].update(mlflow_config)
    return jp_server_config


@pytest.mark.parametrize(("route", "method"), CASES)
async def test_access_matrix(route, method, api, jp_serverapp, tmp_path, mlflow_server) -> None:
    meta = route.endpoints()[method]
    service = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.service
    for name in [*USER_OF.values(), BYSTANDER, NEWCOMER]:
        service.actor_id(Identity(username=name, display_name=name))
    admin = Identity(username="seeder", display_name="seeder", is_admin=True)
    mismatches = []
    state = STATE_OF.get(route.template, "active")
    needs_data = any(part in route.template for part in ("/datasets", "/operations", "/lineage"))
    for caller in CALLERS:
        tag = uuid.uuid4().hex[:8]
        values = service.call(admin, lambda s, _ctx, tag=tag: seed(s, tag, state), write=True)
        if needs_data:
            values |= seed_dataset(service, values["slug"], USER_OF.get(caller, "erin"), tmp_path)
        if any(part in route.template for part in ("/runs", "/experiments", "/models")):
            values |= seed_run(service, mlflow_server, values["slug"])
        if "/models/" in route.template:
            values |= seed_model(
                service,
                mlflow_server,
                values["slug"],
                values["run_id"],
                USER_OF.get(caller, "erin"),
            )
        if "/documents/" in route.template:
            values |= seed_document(service, values["slug"])
        path = fill(route.template, values)
        body = body_for(meta.example, tag, values)
        client = api(None if caller == "anonymous" else USER_OF[caller])
        query = {
            p.name: str(p.example).replace("{run_id}", str(values.get("run_id", "")))
            for p in meta.query
            if p.required
        }
        if route.template.startswith("/me/secrets/"):
            seed_secret(service, USER_OF.get(caller))
        response = await client.request(method.upper(), path, body, params=query)
        want = (
            401
            if caller == "anonymous" and not meta.public
            else expected_status(meta.action, caller, meta.status, body, state)
        )
        if response.status != want:
            mismatches.append(
                f"{caller}: got {response.status}, want {want}: {response.body[:200]!r}"
            )
        problem = response_problem(route.template, method, response.status, response.body)
        if problem:
            mismatches.append(f"{caller}: {problem}")
        assert response.status != 500
    assert not mismatches, f"{method.upper()} {route.template} ({meta.action}):\n" + "\n".join(
        mismatches
    )
