"""Teams and their members."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..core import teams
from ..core.context import Ctx
from . import schemas as S
from .base import Param, WorkbenchHandler, endpoint, page_json


class TeamsHandler(WorkbenchHandler):
    @endpoint(
        action="team.read",
        summary="List teams",
        response=S.page_of(S.TEAM),
        query=(
            Param("q", {"type": "string", "maxLength": 200}, "Text in the name or display name."),
            Param("mine", {"type": "boolean"}, "Only teams you belong to."),
            *S.paging(teams.TEAM_SORTS),
        ),
    )
    async def get(self) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = teams.list_teams(
                s,
                ctx,
                q=q.get("q"),
                mine=q.get("mine", False),
                **self.page_args(),
            )
            return page_json(page, lambda t: teams.team_json(s, t))

        self.reply(await self.call(work))

    @endpoint(
        action="teams.create",
        summary="Create a team (you become its maintainer)",
        status=201,
        body=S.TEAM_CREATE,
        response=S.TEAM,
        example={"name": "{fresh}", "display_name": "Vision"},
        errors=(409,),
    )
    async def post(self) -> None:
        b = self.body

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            team = teams.create(
                s,
                ctx,
                name=b["name"],
                display_name=b.get("display_name", ""),
                description=b.get("description", ""),
            )
            return teams.team_json(s, team)

        data = await self.call(work)
        self.reply(data, status=201, etag=data["etag"])


class TeamHandler(WorkbenchHandler):
    @endpoint(action="team.read", summary="Get a team", response=S.TEAM)
    async def get(self, name: str) -> None:
        data = await self.call(lambda s, ctx: teams.team_json(s, teams.get(s, ctx, name)))
        self.reply(data, etag=data["etag"])

    @endpoint(
        action="team.manage",
        summary="Rename or describe a team",
        body=S.TEAM_UPDATE,
        response=S.TEAM,
        example={"display_name": "Renamed"},
        errors=(409, 412),
    )
    async def patch(self, name: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return teams.team_json(s, teams.update(s, ctx, name, self.body, if_match=self.if_match))

        data = await self.call(work)
        self.reply(data, etag=data["etag"])

    @endpoint(action="team.manage", summary="Delete a team", status=204, errors=(412,))
    async def delete(self, name: str) -> None:
        await self.call(lambda s, ctx: teams.delete(s, ctx, name, if_match=self.if_match))
        self.reply(None, status=204)


class TeamMembersHandler(WorkbenchHandler):
    @endpoint(
        action="team.read",
        summary="List a team's members",
        response=S.page_of(S.TEAM_MEMBER),
        query=(Param("role", S.TEAM_ROLE), *S.paging(teams.TEAM_MEMBER_SORTS)),
    )
    async def get(self, name: str) -> None:
        q = self.query

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            page = teams.list_members(
                s,
                ctx,
                name,
                role=q.get("role"),
                **self.page_args(),
            )
            return page_json(page, teams.team_member_json)

        self.reply(await self.call(work))

    @endpoint(
        action="team.manage",
        summary="Add a member",
        status=201,
        body=S.TEAM_MEMBER_ADD,
        response=S.TEAM_MEMBER,
        example={"username": "{newcomer}", "role": "member"},
        errors=(409,),
    )
    async def post(self, name: str) -> None:
        b = self.body

        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return teams.team_member_json(
                teams.add_member(s, ctx, name, username=b["username"], role=b.get("role", "member"))
            )

        self.reply(await self.call(work), status=201)


class TeamMemberHandler(WorkbenchHandler):
    @endpoint(
        action="team.manage",
        summary="Change a member's team role",
        body=S.TEAM_MEMBER_UPDATE,
        response=S.TEAM_MEMBER,
        example={"role": "maintainer"},
        errors=(409,),
    )
    async def patch(self, name: str, username: str) -> None:
        def work(s: Session, ctx: Ctx) -> dict[str, Any]:
            return teams.team_member_json(
                teams.change_member_role(s, ctx, name, username, self.body["role"])
            )

        self.reply(await self.call(work))

    @endpoint(
        action="team.manage",
        summary="Remove a member (or leave, for yourself)",
        status=204,
        errors=(409,),
    )
    async def delete(self, name: str, username: str) -> None:
        await self.call(lambda s, ctx: teams.remove_member(s, ctx, name, username))
        self.reply(None, status=204)
