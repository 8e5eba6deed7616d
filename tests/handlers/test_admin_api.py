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
