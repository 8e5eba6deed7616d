"""Projects, their members, invitations and access requests."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..core import access_requests, invitations, members, projects
from ..core.access import Role
from ..core.context import Ctx
from ..core.users import find_user
from . import schemas as S
from .base import Param, WorkbenchHandler, endpoint, page_json

PROJECT_QUERY = (
    Param(
        "scope",
        {"type": "string", "enum": ["member", "all"]},
        "'member' (default): projects you belong to; 'all': every project you can see.",
    ),
    Param("q", {"type": "string", "maxLength": 200}, "Text in the name or slug."),
    Param("visibility", S.VISIBILITY),
    Param("archived", {"type": "boolean"}, "Only archived (true) or only active (false) projects."),
    Param("deleted", {"type": "boolean"}, "List your projects in the trash instead."),
    Param("role", S.ROLE, "Only projects where your role is at least this."),
    *S.paging(projects.PROJECT_SORTS),
)


def _project(s: Session, ctx: Ctx, project: Any, role: Role | None = None) -> dict[str, Any]:
    if role is None:
        role = projects.roles_for_projects(s, ctx.user, [project])[project.id]
    return projects.project_json(s, project, role)


class ProjectsHandler(WorkbenchHandler):
    @endpoint(
        action="projects.list",
        summary="List your projects",
        response=S.page_of(S.PROJECT),
        query=PROJECT_QUERY,
    )
    async def get(self) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = projects.list_projects(
                s,
                ctx,
                scope=q.get("scope", "member"),
                q=q.get("q"),
                visibility=q.get("visibility"),
                archived=q.get("archived"),
                deleted=q.get("deleted", False),
                min_role=Role.parse(q["role"]) if "role" in q else None,
                **self.page_args(),
            )
            return {"items": projects.projects_json(s, page), "next_cursor": page.next_cursor}

        self.reply(await self.call(work))

    @endpoint(
        action="projects.create",
        summary="Create a project",
        status=201,
        body=S.PROJECT_CREATE,
        response=S.PROJECT,
        example={"name": "Churn model", "description": "Q3 churn", "visibility": "private"},
    )
    async def post(self) -> None:
        b = self.body

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            project = projects.create(
                s,
                ctx,
                name=b["name"],
                description=b.get("description", ""),
                visibility=b.get("visibility", "private"),
                slug=b.get("slug"),
                team=b.get("team"),
            )
            return projects.project_json(s, project, Role.OWNER)

        data = await self.call(work)
        self.set_header("Location", self.request.path.rstrip("/") + "/" + data["slug"])
        self.reply(data, status=201, etag=data["etag"])


class ProjectHandler(WorkbenchHandler):
    @endpoint(action="project.read", summary="Get a project", response=S.PROJECT)
    async def get(self, slug: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            project, role = projects.get(s, ctx, slug)
            return projects.project_json(s, project, role)

        data = await self.call(work)
        self.reply(data, etag=data["etag"])

    @endpoint(
        action="project.update",
        summary="Rename, describe or change visibility",
        body=S.PROJECT_UPDATE,
        response=S.PROJECT,
        example={"description": "updated"},
        errors=(409, 412),
    )
    async def patch(self, slug: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            project = projects.update(s, ctx, slug, self.body, if_match=self.if_match)
            return _project(s, ctx, project)

        data = await self.call(work)
        self.reply(data, etag=data["etag"])

    @endpoint(
        action="project.delete",
        summary="Move a project to the trash (restorable)",
        status=204,
        errors=(412,),
    )
    async def delete(self, slug: str) -> None:
        await self.call(lambda s, ctx: projects.soft_delete(s, ctx, slug, if_match=self.if_match))
        self.reply(None, status=204)


class ProjectArchiveHandler(WorkbenchHandler):
    @endpoint(
        action="project.archive",
        summary="Archive a project (read-only)",
        response=S.PROJECT,
        errors=(409,),
    )
    async def post(self, slug: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return _project(s, ctx, projects.set_archived(s, ctx, slug, True))

        data = await self.call(work)
        self.reply(data, etag=data["etag"])


class ProjectUnarchiveHandler(WorkbenchHandler):
    @endpoint(
        action="project.archive", summary="Unarchive a project", response=S.PROJECT, errors=(409,)
    )
    async def post(self, slug: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return _project(s, ctx, projects.set_archived(s, ctx, slug, False))

        data = await self.call(work)
        self.reply(data, etag=data["etag"])


class ProjectRestoreHandler(WorkbenchHandler):
    @endpoint(
        action="project.restore",
        summary="Restore a project from the trash",
        response=S.PROJECT,
        errors=(409,),
    )
    async def post(self, slug: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return _project(s, ctx, projects.restore(s, ctx, slug))

        data = await self.call(work)
        self.reply(data, etag=data["etag"])


class ProjectTransferHandler(WorkbenchHandler):
    @endpoint(
        action="project.transfer",
        summary="Transfer ownership (the old owner becomes admin)",
        body=S.TRANSFER,
        response=S.PROJECT,
        example={"owner": "{bystander}"},
        errors=(409,),
    )
    async def post(self, slug: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            new_owner = find_user(s, self.body["owner"], "owner")
            return _project(s, ctx, projects.transfer(s, ctx, slug, new_owner))

        data = await self.call(work)
        self.reply(data, etag=data["etag"])


MEMBER_QUERY = (
    Param("role", {"type": "string", "enum": ["viewer", "editor", "admin", "owner"]}),
    Param("kind", {"type": "string", "enum": ["user", "team"]}),
    *S.paging(members.MEMBER_SORTS),
)


class MembersHandler(WorkbenchHandler):
    @endpoint(
        action="members.read",
        summary="List members",
        response=S.page_of(S.MEMBER),
        query=MEMBER_QUERY,
    )
    async def get(self, slug: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = members.list_members(
                s,
                ctx,
                slug,
                role=q.get("role"),
                kind=q.get("kind"),
                **self.page_args(),
            )
            return page_json(page, members.member_json)

        self.reply(await self.call(work))

    @endpoint(
        action="members.manage",
        summary="Add a user or a team",
        status=201,
        body=S.MEMBER_ADD,
        response=S.MEMBER,
        example={"user": "{newcomer}", "role": "viewer"},
        errors=(409,),
    )
    async def post(self, slug: str) -> None:
        b = self.body

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            row = members.add(s, ctx, slug, user=b.get("user"), team=b.get("team"), role=b["role"])
            return members.member_json(row)

        data = await self.call(work)
        self.reply(data, status=201, etag=data["etag"])


class MemberHandler(WorkbenchHandler):
    @endpoint(action="members.read", summary="Get a member", response=S.MEMBER)
    async def get(self, slug: str, member: str) -> None:
        data = await self.call(
            lambda s, ctx: members.member_json(members.get(s, ctx, slug, member))
        )
        self.reply(data, etag=data["etag"])

    @endpoint(
        action="members.manage",
        summary="Change a member's role",
        body=S.MEMBER_UPDATE,
        response=S.MEMBER,
        example={"role": "editor"},
        errors=(409, 412),
    )
    async def patch(self, slug: str, member: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            row = members.change_role(
                s, ctx, slug, member, self.body["role"], if_match=self.if_match
            )
            return members.member_json(row)

        data = await self.call(work)
        self.reply(data, etag=data["etag"])

    @endpoint(
        action="members.manage",
        summary="Remove a member (or leave, for yourself); says which role a removed user still"
        " holds through teams",
        response=S.MEMBER_REMOVED,
        errors=(409, 412),
    )
    async def delete(self, slug: str, member: str) -> None:
        self.reply(
            await self.call(
                lambda s, ctx: members.remove(s, ctx, slug, member, if_match=self.if_match)
            )
        )


class InvitationsHandler(WorkbenchHandler):
    @endpoint(
        action="invitations.read",
        summary="List invitations",
        response=S.page_of(S.INVITATION),
        query=(Param("status", S.INVITATION_STATUS), *S.paging(invitations.INVITATION_SORTS)),
    )
    async def get(self, slug: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = invitations.list_invitations(
                s,
                ctx,
                slug,
                status=q.get("status"),
                **self.page_args(),
            )
            return page_json(page, lambda i: invitations.invitation_json(s, i))

        self.reply(await self.call(work, write=True))

    @endpoint(
        action="invitations.manage",
        summary="Invite a user by username",
        status=201,
        body=S.INVITATION_CREATE,
        response=S.INVITATION,
        example={"username": "{newcomer}", "role": "editor", "message": "join us"},
        errors=(409,),
    )
    async def post(self, slug: str) -> None:
        b = self.body

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            invitation = invitations.create(
                s,
                ctx,
                slug,
                username=b["username"],
                role=b.get("role", "viewer"),
                message=b.get("message", ""),
            )
            return invitations.invitation_json(s, invitation)

        self.reply(await self.call(work), status=201)


class InvitationHandler(WorkbenchHandler):
    @endpoint(
        action="invitations.manage",
        summary="Revoke a pending invitation",
        response=S.INVITATION,
        errors=(409,),
    )
    async def delete(self, slug: str, invitation_id: str) -> None:
        number = self.path_int(invitation_id, "invitation")

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return invitations.invitation_json(s, invitations.revoke(s, ctx, slug, number))

        self.reply(await self.call(work))


class InvitationAcceptHandler(WorkbenchHandler):
    @endpoint(
        action="invitations.respond",
        summary="Accept an invitation (invitee only)",
        response=S.INVITATION,
        errors=(409,),
    )
    async def post(self, slug: str, invitation_id: str) -> None:
        number = self.path_int(invitation_id, "invitation")

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return invitations.invitation_json(
                s, invitations.respond(s, ctx, slug, number, accept=True)
            )

        self.reply(await self.call(work))


class InvitationDeclineHandler(WorkbenchHandler):
    @endpoint(
        action="invitations.respond",
        summary="Decline an invitation (invitee only)",
        response=S.INVITATION,
        errors=(409,),
    )
    async def post(self, slug: str, invitation_id: str) -> None:
        number = self.path_int(invitation_id, "invitation")

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return invitations.invitation_json(
                s, invitations.respond(s, ctx, slug, number, accept=False)
            )

        self.reply(await self.call(work))


class AccessRequestsHandler(WorkbenchHandler):
    @endpoint(
        action="access_requests.read",
        summary="List access requests",
        response=S.page_of(S.ACCESS_REQUEST),
        query=(Param("status", S.REQUEST_STATUS), *S.paging(access_requests.REQUEST_SORTS)),
    )
    async def get(self, slug: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = access_requests.list_requests(
                s,
                ctx,
                slug,
                status=q.get("status"),
                **self.page_args(),
            )
            return page_json(page, lambda r: access_requests.request_json(s, r))

        self.reply(await self.call(work))

    @endpoint(
        action="access_requests.create",
        summary="Ask for a role on a project you can see",
        status=201,
        body=S.ACCESS_REQUEST_CREATE,
        response=S.ACCESS_REQUEST,
        example={"role": "admin", "message": "I maintain the pipeline"},
        errors=(409,),
    )
    async def post(self, slug: str) -> None:
        b = self.body

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            request = access_requests.create(
                s, ctx, slug, role=b.get("role", "editor"), message=b.get("message", "")
            )
            return access_requests.request_json(s, request)

        self.reply(await self.call(work), status=201)


class AccessRequestHandler(WorkbenchHandler):
    @endpoint(
        action="access_requests.view",
        summary="Get an access request (admins, or its requester)",
        response=S.ACCESS_REQUEST,
    )
    async def get(self, slug: str, request_id: str) -> None:
        number = self.path_int(request_id, "access request")
        self.reply(
            await self.call(
                lambda s, ctx: access_requests.request_json(
                    s, access_requests.get(s, ctx, slug, number)
                )
            )
        )

    @endpoint(
        action="access_requests.withdraw",
        summary="Withdraw your pending request",
        response=S.ACCESS_REQUEST,
        errors=(409,),
    )
    async def delete(self, slug: str, request_id: str) -> None:
        number = self.path_int(request_id, "access request")
        self.reply(
            await self.call(
                lambda s, ctx: access_requests.request_json(
                    s, access_requests.withdraw(s, ctx, slug, number)
                )
            )
        )


class AccessRequestApproveHandler(WorkbenchHandler):
    @endpoint(
        action="access_requests.decide",
        summary="Approve, granting the requested role or 'role'",
        body=S.APPROVE,
        response=S.ACCESS_REQUEST,
        example={"role": "editor"},
        errors=(409,),
    )
    async def post(self, slug: str, request_id: str) -> None:
        number = self.path_int(request_id, "access request")

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            request = access_requests.decide(
                s, ctx, slug, number, approve=True, role=self.body.get("role")
            )
            return access_requests.request_json(s, request)

        self.reply(await self.call(work))


class AccessRequestDenyHandler(WorkbenchHandler):
    @endpoint(
        action="access_requests.decide",
        summary="Deny a pending request",
        response=S.ACCESS_REQUEST,
        errors=(409,),
    )
    async def post(self, slug: str, request_id: str) -> None:
        number = self.path_int(request_id, "access request")

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return access_requests.request_json(
                s, access_requests.decide(s, ctx, slug, number, approve=False)
            )

        self.reply(await self.call(work))
