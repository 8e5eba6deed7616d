"""20 parallel clients: no 500s, no lost writes, uniqueness held (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from jupyter_workbench.core.context import Identity

from ..conftest import TOKEN_OF

CLIENTS = 20
_EMPTY = {"POST": b"", "PATCH": b"", "PUT": b""}  # no body, as curl -X POST sends

pytestmark = pytest.mark.slow


class Raw:
    """A client of our own with 40 connections, so 20 requests are truly in flight at once."""

    def __init__(self, port: int, base_url: str) -> None:
        self.client = AsyncHTTPClient(force_instance=True, max_clients=40)
        self.root = f"http://127.0.0.1:{port}{base_url}workbench/api/v1/"

    async def __call__(
        self, user: str, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        response = await self.client.fetch(
            self.root + path,
            method=method,
            headers={"Authorization": f"token {TOKEN_OF[user]}"},
            body=json.dumps(body).encode() if body is not None else _EMPTY.get(method),
            raise_error=False,
            request_timeout=60,
        )
        return response.code, json.loads(response.body) if response.body else None

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def raw(jp_fetch, jp_http_port, jp_base_url):
    client = Raw(jp_http_port, jp_base_url)
    yield client
    client.close()


def _service(jp_serverapp):
    return jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.service


async def test_parallel_project_creation_loses_nothing(raw, jp_serverapp) -> None:
    users = list(TOKEN_OF)[:10]

    creator: dict[str, str] = {}

    async def client(i: int) -> list[tuple[int, Any]]:
        user = users[i % len(users)]
        # Every client races on the same name, so the slugs clash all the time.
        out = [await raw(user, "POST", "projects", {"name": "Race"}) for _ in range(5)]
        creator.update({body["slug"]: user for status, body in out if status == 201})
        return out

    results = [
        r for batch in await asyncio.gather(*(client(i) for i in range(CLIENTS))) for r in batch
    ]
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: CLIENTS * 5}, (statuses, [b for s, b in results if s != 201][:3])
    slugs = [body["slug"] for _, body in results]
    assert len(set(slugs)) == len(slugs) == CLIENTS * 5
    # every project is there, once, with its owner and its audit event
    seen = []
    for user in users:
        cursor = None
        while True:
            path = "projects?limit=100" + (f"&cursor={cursor}" if cursor else "")
            status, page = await raw(user, "GET", path)
            assert status == 200
            seen += [(p["slug"], p["owner"]) for p in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
    assert sorted(s for s, _ in seen) == sorted(slugs)
    assert all(
        owner == slug_owner
        for (_, owner), slug_owner in zip(seen, [o for _, o in seen], strict=True)
    )
    status, audit = await raw(users[0], "GET", "audit?action=project.create&limit=500")
    assert status == 200 and len(audit["items"]) == 10  # alice's own ten creations


async def test_parallel_member_adds_and_updates(raw, jp_serverapp) -> None:
    service = _service(jp_serverapp)
    newcomers = [f"user{i:02d}" for i in range(40)]
    for name in newcomers:
        service.actor_id(Identity(username=name, display_name=name))
    status, _ = await raw("alice", "POST", "projects", {"name": "Crowd"})
    assert status == 201

    async def add(i: int) -> list[int]:
        out = []
        for name in newcomers[i * 2 : i * 2 + 2]:
            out.append(
                (
                    await raw(
                        "alice", "POST", "projects/crowd/members", {"user": name, "role": "viewer"}
                    )
                )[0]
            )
        # and everybody also tries to add the same person: exactly one wins
        out.append(
            (
                await raw(
                    "alice", "POST", "projects/crowd/members", {"user": "bob", "role": "editor"}
                )
            )[0]
        )
        return out

    await raw("bob", "GET", "me")
    statuses = Counter(
        s for batch in await asyncio.gather(*(add(i) for i in range(CLIENTS))) for s in batch
    )
    assert statuses == {201: 41, 409: CLIENTS - 1}, statuses
    status, page = await raw("alice", "GET", "projects/crowd/members?limit=500")
    members = {m["member"]: m["role"] for m in page["items"]}
    assert len(members) == 42 and members["bob"] == "editor" and members["alice"] == "owner"

    # 20 concurrent updates of one project without If-Match: all land, none is lost
    results = await asyncio.gather(
        *(raw("alice", "PATCH", "projects/crowd", {"description": f"d{i}"}) for i in range(CLIENTS))
    )
    assert Counter(s for s, _ in results) == {200: CLIENTS}
    status, final = await raw("alice", "GET", "projects/crowd")
    assert final["etag"].endswith(f'-{1 + CLIENTS}"'), final["etag"]
    status, audit = await raw("alice", "GET", "audit?project=crowd&action=project.update&limit=100")
    assert len(audit["items"]) == CLIENTS


async def test_parallel_first_settings_of_a_quota_all_land(raw, jp_serverapp) -> None:
    """An administrator's double click on 'Add' (or two administrators at once): one PUT
    creates the quota, the others update it; none is a 500."""
    token = jp_serverapp.identity_provider.token  # the server's owner: an administrator
    raw_owner = AsyncHTTPClient(force_instance=True, max_clients=40)

    async def put(i: int) -> int:
        response = await raw_owner.fetch(
            raw.root + "admin/quotas/default",
            method="PUT",
            headers={"Authorization": f"token {token}"},
            body=json.dumps({"max_gpus": i}),
            raise_error=False,
            request_timeout=60,
        )
        return response.code

    try:
        statuses = Counter(await asyncio.gather(*(put(i) for i in range(CLIENTS))))
    finally:
        raw_owner.close()
    assert statuses == {200: CLIENTS}, statuses


async def test_parallel_first_settings_of_a_secret_all_land(raw) -> None:
    await raw("alice", "GET", "me")
    results = await asyncio.gather(
        *(raw("alice", "PUT", "me/secrets/API_KEY", {"value": f"v{i}"}) for i in range(CLIENTS))
    )
    assert Counter(s for s, _ in results) == {200: CLIENTS}, results
    _, listed = await raw("alice", "GET", "me/secrets")
    assert [x["name"] for x in listed["items"]] == ["API_KEY"]


async def test_parallel_decisions_on_one_request_or_invitation_leave_one_outcome(raw) -> None:
    """A double click on 'Approve', or an invitee accepting while an admin revokes: the first
    answer wins, the others are told (409) and change nothing; one audit event each."""
    await raw("bob", "GET", "me")
    await raw("carol", "GET", "me")
    status, _ = await raw("alice", "POST", "projects", {"name": "Doors", "visibility": "public"})
    assert status == 201
    for _round in range(3):
        status, request = await raw("bob", "POST", "projects/doors/access-requests", {})
        assert status == 201, request
        approve = f"projects/doors/access-requests/{request['id']}/approve"
        results = await asyncio.gather(*(raw("alice", "POST", approve, {}) for _ in range(8)))
        assert Counter(s for s, _ in results) == {200: 1, 409: 7}, results
        assert (await raw("alice", "DELETE", "projects/doors/members/bob"))[0] == 200
    _, events = await raw("alice", "GET", "audit?action=access_request.approve&limit=100")
    assert len(events["items"]) == 3

    for _round in range(4):
        status, invitation = await raw(
            "alice", "POST", "projects/doors/invitations", {"username": "carol", "role": "editor"}
        )
        assert status == 201, invitation
        path = f"projects/doors/invitations/{invitation['id']}"
        (accepted, _), (revoked, _) = await asyncio.gather(
            raw("carol", "POST", f"{path}/accept"), raw("alice", "DELETE", path)
        )
        assert sorted((accepted, revoked)) == [200, 409], (accepted, revoked)
        member, _ = await raw("alice", "GET", "projects/doors/members/carol")
        _, listed = await raw("alice", "GET", "projects/doors/invitations?limit=100")
        status_now = next(i["status"] for i in listed["items"] if i["id"] == invitation["id"])
        if accepted == 200:  # she is in, and the invitation says so
            assert (member, status_now) == (200, "accepted")
            assert (await raw("alice", "DELETE", "projects/doors/members/carol"))[0] == 200
        else:  # revoked first: it grants nothing
            assert (member, status_now) == (404, "revoked")


async def test_an_invitation_accepted_while_a_request_is_approved_grants_once(raw) -> None:
    """Two ways in for one user at the same moment: both succeed, one membership results."""
    await raw("carol", "GET", "me")
    status, _ = await raw("alice", "POST", "projects", {"name": "Gate", "visibility": "public"})
    assert status == 201
    for _round in range(5):
        _, request = await raw("carol", "POST", "projects/gate/access-requests", {"role": "editor"})
        _, invitation = await raw(
            "alice", "POST", "projects/gate/invitations", {"username": "carol", "role": "admin"}
        )
        results = await asyncio.gather(
            raw("carol", "POST", f"projects/gate/invitations/{invitation['id']}/accept"),
            raw("alice", "POST", f"projects/gate/access-requests/{request['id']}/approve", {}),
        )
        assert [s for s, _ in results] == [200, 200], results
        status, member = await raw("alice", "GET", "projects/gate/members/carol")
        assert (status, member["role"]) == (200, "admin")  # the higher of the two
        assert (await raw("alice", "DELETE", "projects/gate/members/carol"))[0] == 200


async def test_two_maintainers_stepping_down_at_once_leave_one_maintainer(raw) -> None:
    await raw("bob", "GET", "me")
    for round_ in range(3):
        team = f"pair{round_}"
        assert (await raw("alice", "POST", "teams", {"name": team}))[0] == 201
        added = await raw(
            "alice", "POST", f"teams/{team}/members", {"username": "bob", "role": "maintainer"}
        )
        assert added[0] == 201, added
        # each demotes the other (round 0), or leaves (round 1), or one of each (round 2)
        alice_does, bob_does = [
            (("PATCH", "bob", {"role": "member"}), ("PATCH", "alice", {"role": "member"})),
            (("DELETE", "alice", None), ("DELETE", "bob", None)),
            (("DELETE", "alice", None), ("PATCH", "alice", {"role": "member"})),
        ][round_]
        results = await asyncio.gather(
            raw("alice", alice_does[0], f"teams/{team}/members/{alice_does[1]}", alice_does[2]),
            raw("bob", bob_does[0], f"teams/{team}/members/{bob_does[1]}", bob_does[2]),
        )
        assert all(s in (200, 204, 403, 404, 409) for s, _ in results), results
        _, listed = await raw("bob", "GET", f"teams/{team}/members")
        roles = [m["role"] for m in listed["items"]]
        assert roles.count("maintainer") == 1, (round_, results, listed)


async def test_two_renames_to_one_free_name_at_once_are_200_and_409(raw) -> None:
    """Projects, teams and model configs renamed to the same new name at the same moment: one
    gets it, the other is told that it is taken (not an internal error)."""
    assert (await raw("alice", "POST", "projects", {"name": "Home"}))[0] == 201
    kinds = {  # what: (collection, one item's path, its name field)
        "project": ("projects", "projects/{}", "slug"),
        "team": ("teams", "teams/{}", "name"),
        "config": ("projects/home/model-configs", "projects/home/model-configs/{}", "name"),
    }
    for round_ in range(3):
        for what, (collection, path, field) in kinds.items():
            first, second = f"{what}-{round_}-a", f"{what}-{round_}-b"
            for name in (first, second):
                body = {"name": name} if what != "config" else {"name": name, "parameters": {}}
                made = await raw("alice", "POST", collection, body)
                assert made[0] == 201, made
            target = f"{what}-{round_}-new"
            results = await asyncio.gather(
                raw("alice", "PATCH", path.format(first), {field: target}),
                raw("alice", "PATCH", path.format(second), {field: target}),
            )
            assert sorted(s for s, _ in results) == [200, 409], (what, results)
            loser = second if results[0][0] == 200 else first
            assert (await raw("alice", "GET", path.format(loser)))[0] == 200  # unchanged
