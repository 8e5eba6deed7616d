"""Members, teams, invitations, access requests, model configs and audit over REST."""

from __future__ import annotations


async def _setup(api, *users: str):
    for user in users:
        await api(user).get("me")  # first visit creates the account


async def test_team_membership_grants_project_role(api) -> None:
    alice, bob = api("alice"), api("bob")
    await _setup(api, "bob")
    assert (await alice.post("projects", {"name": "Vision"})).status == 201
    assert (await alice.post("teams", {"name": "cv"})).status == 201
    r = await alice.post("teams/cv/members", {"username": "bob"})
    assert r.status == 201 and r.json["role"] == "member"
    r = await alice.post("projects/vision/members", {"team": "cv", "role": "editor"})
    assert r.status == 201 and r.json["member"] == "team:cv"
    assert (await bob.get("projects/vision")).json["my_role"] == "editor"
    assert [p["slug"] for p in (await bob.get("projects")).json["items"]] == ["vision"]
    # removing bob from the team removes his access
    assert (await alice.delete("teams/cv/members/bob")).status == 204
    assert (await bob.get("projects/vision")).status == 404


async def test_member_roles_can_change_and_members_can_leave(api) -> None:
    alice, bob = api("alice"), api("bob")
    await _setup(api, "bob")
    await alice.post("projects", {"name": "Roles"})
    r = await alice.post("projects/roles/members", {"user": "bob", "role": "viewer"})
    etag = r.json["etag"]
    r = await alice.patch(
        "projects/roles/members/bob", {"role": "admin"}, headers={"If-Match": etag}
    )
    assert r.status == 200 and r.json["role"] == "admin"
    r = await alice.patch(
        "projects/roles/members/bob", {"role": "viewer"}, headers={"If-Match": etag}
    )
    assert r.status == 412
    # an admin cannot touch the owner
    r = await bob.patch("projects/roles/members/alice", {"role": "viewer"})
    assert r.status == 409 and r.json["error"] == "owner"
    r = await bob.post("projects/roles/members", {"user": "alice", "role": "owner"})
    assert r.status == 400
    # bob leaves on his own
    r = await bob.delete("projects/roles/members/bob")
    assert r.status == 200 and r.json == {
        "member": "bob", "removed_role": "admin", "remaining_role": None, "remaining_teams": []
    }  # fmt: skip
    assert (await bob.get("projects/roles")).status == 404
    # the owner cannot leave
    r = await alice.delete("projects/roles/members/alice")
    assert r.status == 409


async def test_invitation_flow(api) -> None:
    alice, dave = api("alice"), api("dave")
    await alice.post("projects", {"name": "Invite"})
    # dave has never visited: invitations work by username
    r = await alice.post("projects/invite/invitations", {"username": "dave", "role": "editor"})
    assert r.status == 201, r
    invitation = r.json
    assert invitation["status"] == "pending" and invitation["invited_by"] == "alice"
    r = await alice.post("projects/invite/invitations", {"username": "dave"})
    assert r.status == 409
    mine = (await dave.get("me/invitations")).json["items"]
    assert [(i["project"], i["role"]) for i in mine] == [("invite", "editor")]
    # dave cannot see the project until he accepts
    assert (await dave.get("projects/invite")).status == 404
    r = await api("erin").post(f"projects/invite/invitations/{invitation['id']}/accept")
    assert r.status == 404
    r = await dave.post(f"projects/invite/invitations/{invitation['id']}/accept")
    assert r.status == 200 and r.json["status"] == "accepted"
    assert (await dave.get("projects/invite")).json["my_role"] == "editor"
    r = await dave.post(f"projects/invite/invitations/{invitation['id']}/decline")
    assert r.status == 409
    listing = (await alice.get("projects/invite/invitations", params={"status": "accepted"})).json
    assert [i["username"] for i in listing["items"]] == ["dave"]


async def test_invitation_revoke_and_decline(api) -> None:
    alice, erin = api("alice"), api("erin")
    await alice.post("projects", {"name": "Rv"})
    first = (await alice.post("projects/rv/invitations", {"username": "erin"})).json
    r = await alice.delete(f"projects/rv/invitations/{first['id']}")
    assert r.status == 200 and r.json["status"] == "revoked"
    r = await erin.post(f"projects/rv/invitations/{first['id']}/accept")
    assert r.status == 409 and r.json["error"] == "revoked"
    second = (await alice.post("projects/rv/invitations", {"username": "erin"})).json
    r = await erin.post(f"projects/rv/invitations/{second['id']}/decline")
    assert r.status == 200 and r.json["status"] == "declined"
    assert (await erin.get("projects/rv")).status == 404
    assert (await alice.delete("projects/rv/invitations/abc")).status == 404


async def test_access_request_flow(api) -> None:
    alice, bob = api("alice"), api("bob")
    await alice.post("projects", {"name": "Public Lab", "visibility": "public"})
    await alice.post("projects", {"name": "Hidden"})
    assert (await bob.post("projects/hidden/access-requests", {"role": "viewer"})).status == 404
    r = await bob.post("projects/public-lab/access-requests", {"role": "viewer"})
    assert r.status == 409, "bob can already view a public project"
    r = await bob.post("projects/public-lab/access-requests", {"role": "editor", "message": "pls"})
    assert r.status == 201, r
    request_id = r.json["id"]
    assert (await bob.get(f"projects/public-lab/access-requests/{request_id}")).status == 200
    assert (await bob.get("projects/public-lab/access-requests")).status == 403
    assert (
        await bob.post(f"projects/public-lab/access-requests/{request_id}/approve")
    ).status == 403
    pending = (
        await alice.get("projects/public-lab/access-requests", params={"status": "pending"})
    ).json
    assert [(p["username"], p["role"]) for p in pending["items"]] == [("bob", "editor")]
    r = await alice.post(
        f"projects/public-lab/access-requests/{request_id}/approve", {"role": "admin"}
    )
    assert r.status == 200 and r.json["granted_role"] == "admin" and r.json["decided_by"] == "alice"
    assert (await bob.get("projects/public-lab")).json["my_role"] == "admin"
    r = await alice.post(f"projects/public-lab/access-requests/{request_id}/deny")
    assert r.status == 409


async def test_model_config_revisions_and_diff(api) -> None:
    alice, bob = api("alice"), api("bob")
    await _setup(api, "bob")
    await alice.post("projects", {"name": "Models"})
    await alice.post("projects/models/members", {"user": "bob", "role": "viewer"})
    schema = {
        "type": "object",
        "properties": {"lr": {"type": "number", "maximum": 1}, "layers": {"type": "array"}},
        "required": ["lr"],
    }
    r = await alice.post(
        "projects/models/model-configs",
        {"name": "baseline", "parameters": {"lr": 0.1, "layers": [64]}, "schema": schema},
    )
    assert r.status == 201 and r.json["revision"] == 1
    r = await alice.patch("projects/models/model-configs/baseline", {"parameters": {"lr": 5}})
    assert r.status == 400 and r.json["error"] == "schema_violation"
    assert "parameters/lr" in r.json["message"]
    r = await alice.patch(
        "projects/models/model-configs/baseline",
        {"parameters": {"lr": 0.01, "layers": [64, 64]}, "message": "deeper"},
    )
    assert r.status == 200 and r.json["revision"] == 2
    r = await alice.patch("projects/models/model-configs/baseline", {"description": "just words"})
    assert r.json["revision"] == 2
    revisions = (await bob.get("projects/models/model-configs/baseline/revisions")).json["items"]
    assert [rev["number"] for rev in revisions] == [2, 1]
    assert revisions[0]["message"] == "deeper" and revisions[0]["author"] == "alice"
    diff = (
        await bob.get(
            "projects/models/model-configs/baseline/diff", params={"from": "1", "to": "2"}
        )
    ).json
    assert diff["parameters"] == [
        {"op": "add", "path": "/layers/1", "new": 64},
        {"op": "replace", "path": "/lr", "old": 0.1, "new": 0.01},
    ]
    assert diff["schema"] == []
    r = await bob.get("projects/models/model-configs/baseline/revisions/1")
    assert r.json["parameters"] == {"lr": 0.1, "layers": [64]}
    assert (await bob.get("projects/models/model-configs/baseline/revisions/9")).status == 404
    assert (
        await bob.patch("projects/models/model-configs/baseline", {"description": "x"})
    ).status == 403
    r = await alice.post(
        "projects/models/model-configs", {"name": "bad", "parameters": {}, "schema": {"type": 5}}
    )
    assert r.status == 400 and r.json["error"] == "invalid_schema"
    assert (await alice.delete("projects/models/model-configs/baseline")).status == 204
    assert (await bob.get("projects/models/model-configs/baseline")).status == 404


async def test_team_rules(api) -> None:
    alice, bob = api("alice"), api("bob")
    await _setup(api, "bob")
    await alice.post("teams", {"name": "data", "display_name": "Data"})
    assert (await alice.post("teams", {"name": "data"})).status == 409
    assert (await bob.patch("teams/data", {"display_name": "Mine"})).status == 403
    await alice.post("teams/data/members", {"username": "bob"})
    # the last maintainer cannot leave
    r = await alice.delete("teams/data/members/alice")
    assert r.status == 409 and r.json["error"] == "last_maintainer"
    await alice.patch("teams/data/members/bob", {"role": "maintainer"})
    assert (await alice.delete("teams/data/members/alice")).status == 204
    r = await bob.patch("teams/data", {"name": "data-eng"})
    assert r.status == 200 and r.json["name"] == "data-eng"
    teams = (await alice.get("teams")).json["items"]
    assert [t["name"] for t in teams] == ["data-eng"]
    assert (await alice.get("teams", params={"mine": "true"})).json["items"] == []


async def test_audit_trail(api) -> None:
    alice, bob = api("alice"), api("bob")
    await _setup(api, "bob")
    await alice.post("projects", {"name": "Audited"}, headers={"X-Request-Id": "req-123"})
    await alice.patch("projects/audited", {"description": "d"})
    await alice.post("projects/audited/members", {"user": "bob", "role": "viewer"})
    events = (await alice.get("audit", params={"project": "audited", "sort": "time"})).json["items"]
    assert [e["action"] for e in events] == ["project.create", "project.update", "member.add"]
    assert events[0]["request_id"] == "req-123" and events[0]["actor"] == "alice"
    assert events[1]["summary"] == {"description": {"from": "", "to": "d"}}
    # bob is only a viewer: the project's audit is forbidden, and the global list hides it
    assert (await bob.get("audit", params={"project": "audited"})).status == 403
    assert (await bob.get("audit")).json["items"] == []
    member_events = (await alice.get("audit", params={"action": "member.*"})).json["items"]
    assert [e["object_id"] for e in member_events] == ["bob"]
    r = await alice.get("audit", params={"since": "yesterday"})
    assert r.status == 400 and "since" in r.json["message"]
    for name, value in [
        ("since", "0001-01-01T00:00:00+14:00"),
        ("until", "9999-12-31T23:59-14:00"),
    ]:
        r = await alice.get("audit", params={name: value})
        assert r.status == 400 and r.json["message"] == f"{name}: '{value}' is out of range in UTC"


async def test_activity_feed(api) -> None:
    alice, bob, carol = api("alice"), api("bob"), api("carol")
    await _setup(api, "bob")
    await carol.get("me")
    await alice.post("projects", {"name": "Feed"})
    await alice.post("projects/feed/members", {"user": "bob", "role": "viewer"})
    await alice.post("projects/feed/invitations", {"username": "carol", "role": "viewer"})
    # bob, a viewer, sees what happens in the project (the audit trail stays closed to him)...
    events = (await bob.get("activity", params={"sort": "time"})).json["items"]
    assert [(e["actor"], e["action"]) for e in events] == [
        ("alice", "project.create"),
        ("alice", "member.add"),
    ]  # ... but not who else was invited: that is for the project's admins
    assert "invitation.create" in [e["action"] for e in (await alice.get("activity")).json["items"]]
    r = await bob.get("activity", params={"project": "feed", "action": "member.*"})
    assert [e["object_id"] for e in r.json["items"]] == ["bob"]
    # carol is not a member yet: the project's feed is not hers to read
    assert (await carol.get("activity")).json["items"] == []
    assert (await carol.get("activity", params={"project": "feed"})).status == 404
    r = await bob.get("activity", params={"limit": "0"})
    assert r.status == 400 and "limit" in r.json["message"]


async def test_notifications_are_what_waits_for_each_user(api) -> None:
    alice, bob, carol, dave = api("alice"), api("bob"), api("carol"), api("dave")
    for user in (bob, carol, dave):
        await user.get("me")
    await alice.post("projects", {"name": "Notify", "visibility": "public"})
    await alice.post("projects/notify/members", {"user": "bob", "role": "admin"})
    invited = await alice.post(
        "projects/notify/invitations", {"username": "carol", "role": "editor", "message": "join"}
    )
    asked = await dave.post("projects/notify/access-requests", {"role": "editor", "message": "pls"})
    assert invited.status == 201 and asked.status == 201
    (note,) = (await carol.get("me/notifications")).json["items"]
    assert note["kind"] == "invitation" and note["id"] == invited.json["id"]
    assert (note["project"], note["by"], note["role"], note["message"]) == (
        "notify", "alice", "editor", "join",
    )  # fmt: skip
    for admin in (alice, bob):  # both admins may decide dave's request
        items = (await admin.get("me/notifications")).json["items"]
        assert [(n["kind"], n["by"], n["role"]) for n in items] == [
            ("access_request", "dave", "editor")
        ]
    assert (await dave.get("me/notifications")).json["items"] == []
    # answered: gone, for whoever had it
    assert (await carol.post(f"projects/notify/invitations/{note['id']}/accept")).status == 200
    assert (await carol.get("me/notifications")).json["items"] == []
    r = await bob.post(f"projects/notify/access-requests/{asked.json['id']}/approve")
    assert r.status == 200
    assert (await alice.get("me/notifications")).json["items"] == []


async def test_removing_a_member_says_what_their_teams_still_give(api) -> None:
    alice, bob = api("alice"), api("bob")
    await _setup(api, "bob")
    await alice.post("projects", {"name": "Kept"})
    await alice.post("teams", {"name": "kept-ml"})
    await alice.post("teams/kept-ml/members", {"username": "bob"})
    await alice.post("projects/kept/members", {"user": "bob", "role": "admin"})
    await alice.post("projects/kept/members", {"team": "kept-ml", "role": "viewer"})
    r = await alice.delete("projects/kept/members/bob")
    assert r.status == 200 and r.json == {
        "member": "bob",
        "removed_role": "admin",
        "remaining_role": "viewer",
        "remaining_teams": [{"team": "kept-ml", "role": "viewer"}],
    }
    assert (await bob.get("projects/kept")).json["my_role"] == "viewer"


async def test_my_invitations_say_whether_they_can_be_accepted(api) -> None:
    alice, bob, carol = api("alice"), api("bob"), api("carol")
    await _setup(api, "bob", "carol")
    await alice.post("projects", {"name": "Trap"})
    await alice.post("projects/trap/members", {"user": "bob", "role": "admin"})
    r = await bob.post("projects/trap/invitations", {"username": "carol", "role": "editor"})
    assert r.status == 201
    [item] = (await carol.get("me/invitations")).json["items"]
    assert (item["acceptable"], item["reason"]) == (True, None)
    await alice.delete("projects/trap/members/bob")
    [item] = (await carol.get("me/invitations")).json["items"]
    assert item["acceptable"] is False and "sent by 'bob'" in item["reason"]
    [note] = (await carol.get("me/notifications")).json["items"]
    assert (note["acceptable"], note["reason"]) == (False, item["reason"])
    r = await carol.post(f"projects/trap/invitations/{item['id']}/accept")
    assert r.status == 409 and r.json["error"] == "inviter_lost_role"
    assert (await carol.post(f"projects/trap/invitations/{item['id']}/decline")).status == 200
