"""The admin panel's API and page on a real jupyter-server (standalone: no hub)."""

from __future__ import annotations

from typing import Any

from tornado.httpclient import HTTPClientError

from ..conftest import OWNER, TOKEN_OF


async def test_people_lists_users_with_teams_and_servers_for_admins_only(api: Any) -> None:
    await api("alice").post("teams", {"name": "vision"})
    await api("bob").get("me")
    admin = api(OWNER)
    r = await admin.get("admin/people")
    assert r.status == 200, r
    people = {p["username"]: p for p in r.json["items"]}
    assert {"alice", "bob"} <= set(people)
    assert people["alice"]["teams"] == [{"team": "vision", "role": "maintainer"}]
    assert people["bob"]["servers"] == [] and people["bob"]["gpu_hours_this_month"] == 0
    assert r.json["totals"]["teams"] == 1 and r.json["totals"]["users"] >= 3
    only = await admin.get("admin/people", params={"q": "ALI"})
    assert [p["username"] for p in only.json["items"]] == ["alice"]
    refused = await api("alice").get("admin/people")
    assert refused.status == 403 and "administrators" in refused.json["message"]


async def test_people_are_read_a_page_at_a_time_by_last_visit_or_name(api: Any) -> None:
    for user in ("carol", "alice", "bob"):  # seen in this order
        assert (await api(user).get("me")).status == 200
    admin = api(OWNER)
    names, cursor = [], None
    for _ in range(10):
        params = {"limit": 2, "sort": "name", **({"cursor": cursor} if cursor else {})}
        r = await admin.get("admin/people", params=params)
        assert r.status == 200, r
        names += [p["username"] for p in r.json["items"]]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
    assert names == sorted(names) and {"alice", "bob", "carol", OWNER} <= set(names)
    assert len(names) == len(set(names)) == r.json["totals"]["users"]
    recent = await admin.get("admin/people", params={"limit": 3})  # the last seen first
    assert [p["username"] for p in recent.json["items"]][:3] == [OWNER, "bob", "alice"]
    assert recent.json["next_cursor"]
    bad = await admin.get("admin/people", params={"cursor": "nonsense"})
    assert bad.status == 400 and "cursor" in bad.json["message"]


async def test_signups_need_a_hub(api: Any) -> None:
    r = await api(OWNER).get("admin/signups")
    assert r.status == 409 and r.json["error"] == "no_hub"
    assert (await api("alice").get("admin/signups")).status == 403
    bad = await api(OWNER).post("admin/signups/zed", {"action": "promote"})
    assert bad.status == 400 and "action" in bad.json["message"]


async def test_the_admin_page_is_served_to_admins_and_refused_to_others(
    jp_fetch: Any, jp_serverapp: Any
) -> None:
    token = jp_serverapp.identity_provider.token
    page = await jp_fetch("workbench", "admin", headers={"Authorization": f"token {token}"})
    text = page.body.decode()
    assert page.code == 200 and "Pending sign-ups" in text and '"admin": true' in text
    assert "workbench/api/v1/" in text
    try:
        await jp_fetch(
            "workbench", "admin", headers={"Authorization": f"token {TOKEN_OF['alice']}"}
        )
    except HTTPClientError as exc:
        assert exc.code == 403
        assert b"for administrators" in (exc.response.body if exc.response else b"")
    else:  # pragma: no cover
        raise AssertionError("a non-admin got the admin panel")


async def test_the_workbench_s_own_actor_is_not_listed_among_people(
    api: Any, jp_serverapp: Any
) -> None:
    service = jp_serverapp.web_app.settings["workbench_service"]
    service.actor_id(service.system_identity())  # as when the trash purge has run
    assert (await api("alice").get("me")).status == 200
    found = await api("alice").get("users", params={"admin": "true"})
    assert found.status == 200 and "[system]" not in [u["username"] for u in found.json["items"]]
    people = (await api(OWNER).get("admin/people", params={"sort": "name"})).json
    assert "[system]" not in [p["username"] for p in people["items"]]


async def test_others_are_refused_before_being_told_what_is_wrong(api: Any) -> None:
    """A non-administrator's malformed query or body is a 403, not a 400 describing the API."""
    alice = api("alice")
    for method, path, kw in [
        ("GET", "admin/people", {"params": {"limit": "many"}}),
        ("GET", "admin/usage", {"params": {"group_by": "planet"}}),
        ("PUT", "admin/quotas/user:bob", {"body": {"max_gpus": "lots"}}),
        ("POST", "admin/signups/zed", {"body": {"action": "promote"}}),
    ]:
        r = await alice.request(method, path, **kw)
        assert r.status == 403, (path, r)
        assert "only workbench administrators" in r.json["message"]
    # an administrator is told what is wrong
    r = await api(OWNER).get("admin/people", params={"limit": "many"})
    assert r.status == 400 and "limit" in r.json["message"]
