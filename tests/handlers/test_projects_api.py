"""The projects REST API as a curl user meets it: status codes, bodies, ETags, errors."""

from __future__ import annotations

import json

import pytest

from ..conftest import OWNER


async def _create(client, name: str, **fields):
    r = await client.post("projects", {"name": name, **fields})
    assert r.status == 201, r
    return r.json


async def test_create_answers_201_with_slug_location_and_etag(api) -> None:
    r = await api("alice").post(
        "projects", {"name": "Churn Model!", "description": "Q3", "visibility": "public"}
    )
    assert r.status == 201, r
    body = r.json
    assert body["slug"] == "churn-model"
    assert body["owner"] == "alice" and body["my_role"] == "owner"
    assert body["visibility"] == "public" and body["description"] == "Q3"
    assert r.headers["Location"].endswith("/workbench/api/v1/projects/churn-model")
    assert r.headers["ETag"] == body["etag"]
    assert r.headers["X-Request-Id"]


async def test_same_name_gets_a_new_slug_but_explicit_slug_clash_is_409(api) -> None:
    alice, bob = api("alice"), api("bob")
    assert (await _create(alice, "Demo"))["slug"] == "demo"
    assert (await _create(bob, "Demo"))["slug"] == "demo-2"
    r = await bob.post("projects", {"name": "Other", "slug": "demo"})
    assert r.status == 409, r
    assert r.json["error"] == "conflict" and "slug" in r.json["message"]


async def test_get_patch_with_etags(api) -> None:
    alice = api("alice")
    created = await _create(alice, "Etag Demo")
    r = await alice.get("projects/etag-demo")
    assert r.status == 200 and r.headers["ETag"] == created["etag"]
    r = await alice.patch(
        "projects/etag-demo", {"description": "v2"}, headers={"If-Match": created["etag"]}
    )
    assert r.status == 200, r
    assert r.json["description"] == "v2" and r.json["etag"] != created["etag"]
    # The old ETag is stale now: 412, and nothing changes.
    r = await alice.patch(
        "projects/etag-demo", {"description": "v3"}, headers={"If-Match": created["etag"]}
    )
    assert r.status == 412, r
    assert r.json["error"] == "precondition_failed"
    assert (await alice.get("projects/etag-demo")).json["description"] == "v2"


async def test_rename_and_reslug(api) -> None:
    alice = api("alice")
    await _create(alice, "Old Name")
    r = await alice.patch("projects/old-name", {"name": "New Name", "slug": "new-name"})
    assert r.status == 200, r
    assert (await alice.get("projects/old-name")).status == 404
    assert (await alice.get("projects/new-name")).json["name"] == "New Name"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ('{"name": ', 400, "not valid JSON"),
        ('["a list"]', 400, "must be a JSON object"),
        ('{"name": 5}', 400, "name: must be a string"),
        ('{"name": "x", "colour": "red"}', 400, "colour: unknown field (known: name, description,"),
        ('{"description": "no name"}', 400, "name: is required"),
        ('{"name": ""}', 400, "name: must not be empty"),
        (json.dumps({"name": "x" * 201}), 400, "name: must be at most 200 characters"),
        ('{"name": "x", "visibility": "secret"}', 400, "visibility: must be one of"),
        ('{"name": "x", "slug": "Bad Slug"}', 400, "slug:"),
        ('{"name": "x", "visibility": "team"}', 400, "team:"),
        ('{"name": "bad\\u0000name"}', 400, "name: must not contain the NUL character"),
    ],
)
async def test_bad_input_is_a_clear_400_and_nothing_is_written(api, body, status, needle) -> None:
    alice = api("alice")
    r = await alice.post("projects", raw=body.encode())
    assert r.status == status, r
    assert set(r.json) == {"error", "message"}
    assert needle in r.json["message"], r.json
    listing = await alice.get("projects")
    assert listing.json["items"] == []


async def test_body_over_the_limit_is_413(api) -> None:
    r = await api("alice").post("projects", {"name": "big", "description": "x" * (65 * 1024)})
    assert r.status == 413, r
    assert r.json["error"] == "payload_too_large"


async def test_unknown_query_parameter_and_bad_limit_are_400(api) -> None:
    alice = api("alice")
    r = await alice.get("projects", params={"colour": "red"})
    assert r.status == 400 and "colour: unknown query parameter" in r.json["message"]
    r = await alice.get("projects", params={"limit": "zero"})
    assert r.status == 400 and "limit: must be an integer" in r.json["message"]
    r = await alice.get("projects", params={"limit": ""})  # empty is not "unset": say so
    assert r.status == 400 and r.json["message"] == "limit: must be an integer (got '')"
    r = await alice.get("projects", params={"limit": "0"})
    assert r.status == 400 and "limit" in r.json["message"]
    r = await alice.get("projects", params={"cursor": "garbage!!"})
    assert r.status == 400 and "cursor" in r.json["message"]


async def test_private_projects_are_404_to_strangers_and_403_to_low_roles(api) -> None:
    alice, bob, carol = api("alice"), api("bob"), api("carol")
    await _create(alice, "Secret")
    await _create(alice, "Open", visibility="public")
    assert (await bob.get("projects/secret")).status == 404
    r = await bob.patch("projects/secret", {"description": "x"})
    assert r.status == 404, "existence of a private project must not leak"
    assert (await bob.get("projects/open")).json["my_role"] == "viewer"
    r = await bob.patch("projects/open", {"description": "x"})
    assert r.status == 403 and r.json["error"] == "forbidden"
    await alice.post("projects/secret/members", {"user": "carol", "role": "editor"})
    # carol has never visited yet: the add fails with a clear message, not a 500.
    r = await alice.post("projects/secret/members", {"user": "carol", "role": "editor"})
    assert r.status == 400 and r.json["error"] == "unknown_user"
    await carol.get("me")
    r = await alice.post("projects/secret/members", {"user": "carol", "role": "editor"})
    assert r.status == 201, r
    assert (await carol.get("projects/secret")).json["my_role"] == "editor"
    assert (await carol.delete("projects/secret")).status == 403


async def test_listing_pages_filters_and_sorts(api) -> None:
    alice = api("alice")
    for i in range(7):
        await _create(alice, f"P{i}", visibility="public" if i % 2 else "private")
    seen, cursor = [], None
    while True:
        params = {"limit": "3", "sort": "-name"}
        if cursor:
            params["cursor"] = cursor
        r = await alice.get("projects", params=params)
        assert r.status == 200, r
        seen += [p["slug"] for p in r.json["items"]]
        cursor = r.json["next_cursor"]
        if not cursor:
            break
    assert seen == [f"p{i}" for i in reversed(range(7))]
    r = await alice.get("projects", params={"visibility": "public"})
    assert [p["slug"] for p in r.json["items"]] == ["p1", "p3", "p5"]
    r = await alice.get("projects", params={"q": "p4"})
    assert [p["slug"] for p in r.json["items"]] == ["p4"]
    # bob sees alice's public projects only with scope=all
    bob = api("bob")
    assert (await bob.get("projects")).json["items"] == []
    r = await bob.get("projects", params={"scope": "all"})
    assert [p["slug"] for p in r.json["items"]] == ["p1", "p3", "p5"]


async def test_archive_makes_a_project_read_only(api) -> None:
    alice = api("alice")
    await _create(alice, "Arch")
    r = await alice.post("projects/arch/archive")
    assert r.status == 200 and r.json["archived"] is True
    r = await alice.patch("projects/arch", {"description": "x"})
    assert r.status == 409 and r.json["error"] == "archived"
    r = await alice.post("projects/arch/model-configs", {"name": "c", "parameters": {}})
    assert r.status == 409 and r.json["error"] == "archived"
    assert (await alice.post("projects/arch/archive")).status == 409
    assert (await alice.post("projects/arch/unarchive")).json["archived"] is False
    assert (await alice.patch("projects/arch", {"description": "x"})).status == 200
    listing = await alice.get("projects", params={"archived": "true"})
    assert listing.json["items"] == []


async def test_delete_goes_to_trash_and_restore_brings_it_back(api) -> None:
    alice = api("alice")
    await _create(alice, "Trash Me")
    assert (await alice.delete("projects/trash-me")).status == 204
    assert (await alice.get("projects/trash-me")).status == 404
    assert (await alice.get("projects")).json["items"] == []
    trash = await alice.get("projects", params={"deleted": "true"})
    assert [p["slug"] for p in trash.json["items"]] == ["trash-me"]
    assert trash.json["items"][0]["deleted_at"]
    # the slug stays reserved while it is in the trash
    assert (await alice.post("projects", {"name": "x", "slug": "trash-me"})).status == 409
    r = await alice.post("projects/trash-me/restore")
    assert r.status == 200 and r.json["deleted_at"] is None
    assert (await alice.get("projects/trash-me")).status == 200


async def test_transfer_ownership(api) -> None:
    alice, bob = api("alice"), api("bob")
    await bob.get("me")
    await _create(alice, "Handover")
    r = await alice.post("projects/handover/transfer", {"owner": "bob"})
    assert r.status == 200 and r.json["owner"] == "bob"
    assert (await alice.get("projects/handover")).json["my_role"] == "admin"
    members = (await bob.get("projects/handover/members")).json["items"]
    assert sorted((m["member"], m["role"]) for m in members) == [
        ("alice", "admin"),
        ("bob", "owner"),
    ]
    # only the owner may transfer
    assert (await alice.post("projects/handover/transfer", {"owner": "alice"})).status == 403


async def test_errors_are_json_for_unknown_routes_and_methods(api) -> None:
    alice = api("alice")
    r = await alice.get("no/such/route")
    assert r.status == 404 and r.json["error"] == "not_found"
    r = await alice.request("PUT", "projects")
    assert r.status == 405 and r.json["error"] == "method_not_allowed"
    r = await api(None).post("projects", {"name": "x"})
    assert r.status == 401 and r.json["error"] == "unauthenticated"


async def test_owner_token_is_a_stable_admin_identity(api) -> None:
    owner = api(OWNER)
    first = (await owner.get("me")).json
    second = (await owner.get("me")).json
    assert first["username"] == second["username"] == OWNER
    assert first["is_admin"] is True
    await _create(api("alice"), "Private Thing")
    # administrators see every project
    assert (await owner.get("projects/private-thing")).json["my_role"] == "owner"


async def test_me_lists_my_teams(api) -> None:
    alice = api("alice")
    assert (await alice.post("teams", {"name": "ml", "display_name": "ML"})).status == 201
    me = (await alice.get("me")).json
    assert me["username"] == "alice"
    assert me["teams"] == [{"name": "ml", "display_name": "ML", "role": "maintainer"}]


async def test_slugs_stay_unique_and_short_for_long_and_numbered_names(api) -> None:
    alice = api("alice")
    slugs = [(await _create(alice, "x" * 70))["slug"] for _ in range(3)]
    assert slugs == ["x" * 64, "x" * 62 + "-2", "x" * 62 + "-3"]
    assert (await _create(alice, "Model 2024"))["slug"] == "model-2024"
    assert [(await _create(alice, "Model"))["slug"] for _ in range(2)] == ["model", "model-2"]


async def test_error_messages_stay_short_for_huge_bad_input(api) -> None:
    alice = api("alice")
    r = await alice.post("projects", {"name": "x", "description": ["y"] * 100_000})
    assert r.status in (400, 413)
    assert len(r.body) < 1000, "the error must not echo the input back"


async def test_text_no_database_can_store_is_refused_at_the_door(api) -> None:
    """NUL and lone surrogates (PostgreSQL and UTF-8 refuse them), nesting past the stack, and
    NaN: a 400 naming the field, or a 404 for a path nothing can be named by."""
    alice = api("alice")
    await _create(alice, "Lab")
    for raw, needle in [
        (b'{"name": "x", "description": "a\\ud800b"}', "description: must not contain a lone"),
        (b'{"name": "x", "description": "a\\u0000b"}', "description: must not contain the NUL"),
        (b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}", "body: nested deeper than 64 levels"),
        (b'{"name": "x", "description": NaN}', "NaN is not a JSON number"),
    ]:
        r = await alice.post("projects", raw=raw)
        assert r.status == 400 and r.json["error"] == "invalid_json", r
        assert needle in r.json["message"], r.json
    r = await alice.get("projects", params={"q": "a\x00b"})
    assert r.status == 400 and r.json["message"] == "q: must not contain the NUL character (%00)"
    for path in ("projects/la\x00b", "projects/lab\x00/members", "documents/a\x00b"):
        r = await alice.get(path)
        assert r.status == 404 and r.json["error"] == "not_found", (path, r)
    assert [p["slug"] for p in (await alice.get("projects")).json["items"]] == ["lab"]


async def test_an_unknown_route_is_a_json_404_named_within_the_api(api) -> None:
    # named from the API root: through a user server the service's own prefix means nothing
    r = await api("alice").get("no-such-thing/here")
    assert r.status == 404 and r.json["error"] == "not_found"
    assert r.json["message"] == (
        "no API route GET '/no-such-thing/here' (the routes are listed in openapi.json)"
    )


async def test_archive_unarchive_restore_and_transfer_answer_the_new_etag(api) -> None:
    """Each answers the project as it is now, with its ETag header (as GET does): a client can
    go on with If-Match without reading the project again."""
    alice, bob = api("alice"), api("bob")
    await bob.get("me")
    await _create(alice, "Tagged")
    steps = [
        ("projects/tagged/archive", None),
        ("projects/tagged/unarchive", None),
        ("projects/tagged/transfer", {"owner": "bob"}),
    ]
    for path, body in steps:
        r = await alice.post(path, body)
        assert r.status == 200, r
        assert (
            r.headers["ETag"] == r.json["etag"] == (await alice.get("projects/tagged")).json["etag"]
        ), path
    assert (await bob.delete("projects/tagged")).status == 204
    r = await bob.post("projects/tagged/restore")
    assert r.status == 200 and r.headers["ETag"] == r.json["etag"]
    patched = await bob.patch(
        "projects/tagged", {"description": "back"}, headers={"If-Match": r.headers["ETag"]}
    )
    assert patched.status == 200, patched


async def test_the_owner_reads_the_trail_of_a_project_in_the_trash(api) -> None:
    alice, bob = api("alice"), api("bob")
    await bob.get("me")
    await _create(alice, "Binned")
    added = await alice.post("projects/binned/members", {"user": "bob", "role": "admin"})
    assert added.status == 201, added
    assert (await bob.delete("projects/binned")).status == 403  # deleting is the owner's
    assert (await alice.delete("projects/binned")).status == 204
    r = await alice.get("audit", params={"project": "binned", "action": "project.delete"})
    assert r.status == 200, r
    assert [(e["actor"], e["action"]) for e in r.json["items"]] == [("alice", "project.delete")]
    assert (await alice.get("activity", params={"project": "binned"})).status == 200
    # to everyone else it is gone, as the project itself is
    assert (await bob.get("audit", params={"project": "binned"})).status == 404
