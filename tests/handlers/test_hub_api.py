"""The hub-related REST API on a real jupyter-server: secrets, quotas, usage, the spawn gate."""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import OWNER

HUB_TOKEN = "hub-internal-test-token"


@pytest.fixture
def jp_server_config(jp_server_config: Any) -> Any:
    jp_server_config["Workbench"]["hub_internal_token"] = HUB_TOKEN
    jp_server_config["Workbench"]["secrets_key"] = "test-secrets-key"
    return jp_server_config


def hub(user: str, **extra: Any) -> dict[str, Any]:
    return {"user": {"name": user, "groups": []}, **extra}


async def test_secrets_are_write_only_over_the_api(api: Any) -> None:
    alice = api("alice")
    r = await alice.request("PUT", "me/secrets/HF_TOKEN", {"value": "hf_abc"})
    assert r.status == 200 and r.json["name"] == "HF_TOKEN"
    assert b"hf_abc" not in r.body
    listed = await alice.get("me/secrets")
    assert [x["name"] for x in listed.json["items"]] == [
        "HF_TOKEN"
    ] and b"hf_abc" not in listed.body
    assert (await api("bob").get("me/secrets")).json["items"] == []
    bad = await alice.request("PUT", "me/secrets/LD_PRELOAD", {"value": "x"})
    assert bad.status == 400 and "reserved" in bad.json["message"]
    assert (await alice.request("DELETE", "me/secrets/HF_TOKEN")).status == 204
    assert (await alice.request("DELETE", "me/secrets/HF_TOKEN")).status == 404


async def test_the_spawn_gate_checks_quotas_records_usage_and_hands_over_secrets(api: Any) -> None:
    await api("alice").request("PUT", "me/secrets/API_KEY", {"value": "k-123"})
    admin = api(OWNER)
    r = await admin.request("PUT", "admin/quotas/default", {"max_gpus": 1})
    assert r.status == 200, r
    assert (await admin.request("PUT", "admin/quotas/user:alice", {"max_servers": 3})).status == 200
    r = await admin.get("admin/quotas", params={"limit": 1})
    assert [q["subject"] for q in r.json["items"]] == ["default"] and r.json["next_cursor"]
    r = await admin.get("admin/quotas", params={"limit": 1, "cursor": r.json["next_cursor"]})
    assert [q["subject"] for q in r.json["items"]] == ["user:alice"]
    assert r.json["next_cursor"] is None and r.json["items"][0]["max_servers"] == 3
    r = await admin.get("admin/quotas", params={"q": "ALI"})
    assert [q["subject"] for q in r.json["items"]] == ["user:alice"]
    assert (await admin.request("DELETE", "admin/quotas/user:alice")).status == 204
    gate = {"X-Workbench-Hub-Token": HUB_TOKEN}
    # users (even admins) cannot call the gate; a wrong token is refused
    assert (await admin.post("hub/spawn", hub("alice", profile="cpu", gpus=0))).status == 403
    for path in ("hub/spawn", "hub/stop"):  # refused before the body is looked at
        r = await admin.post(path, {})
        assert r.status == 403 and r.json["message"] == "only the hub itself calls this endpoint"
        r = await admin.get(path)
        assert r.status == 405 and r.headers["Allow"] == "POST"
    wrong = await api(None).request("POST", "hub/spawn", hub("alice", profile="cpu", gpus=0),
                                    headers={"X-Workbench-Hub-Token": "nope"})  # fmt: skip
    assert wrong.status == 403
    ok = await api(None).request("POST", "hub/spawn", hub("alice", profile="gpu-1", gpus=1),
                                 headers=gate)  # fmt: skip
    assert ok.status == 200, ok
    assert ok.json["environment"] == {"API_KEY": "k-123"}
    refused = await api(None).request(
        "POST", "hub/spawn", hub("alice", server_name="two", profile="gpu-1", gpus=1), headers=gate
    )
    assert refused.status == 403 and refused.json["error"] == "quota_exceeded"
    assert "at most 1 GPU(s)" in refused.json["message"]
    running = (await admin.get("admin/servers")).json["items"]
    assert [(s["user"], s["profile"], s["gpus"]) for s in running] == [("alice", "gpu-1", 1)]
    mine = (await api("alice").get("me/usage")).json
    assert mine["quota"]["gpus_in_use"] == 1 and len(mine["running"]) == 1
    stopped = await api(None).request("POST", "hub/stop", hub("alice"), headers=gate)
    assert stopped.json == {"stopped": 1}
    assert (await admin.get("admin/servers")).json["items"] == []
    # the usage report, as JSON and CSV
    report = (await admin.get("admin/usage", params={"group_by": "profile"})).json
    assert [row["key"] for row in report["items"]] == ["gpu-1"]
    csv = await admin.get("admin/usage", params={"format": "csv"})
    assert csv.status == 200, csv
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.body.decode().splitlines()[1].startswith("alice,")
    series = (await admin.get("admin/usage/series", params={"bucket": "hour"})).json
    assert series["bucket"] == "hour" and series["points"]
    # only administrators see usage and quotas
    assert (await api("alice").get("admin/usage")).status == 403
    assert (await api("alice").get("admin/quotas")).status == 403
    # the audit trail has the starts and stops, and the quota change
    actions = [e["action"] for e in (await admin.get("audit")).json["items"]]
    assert {"server.start", "server.stop", "quota.set", "secret.create"} <= set(actions)


async def test_servers_with_the_longest_names_the_hub_allows_start_and_stop(api: Any) -> None:
    """A hub user's name and a server's name are up to 255 characters each."""
    gate = {"X-Workbench-Hub-Token": HUB_TOKEN}
    user, server = "u" * 255, "s" * 255
    ok = await api(None).request(
        "POST", "hub/spawn", hub(user, server_name=server, profile="cpu", gpus=0), headers=gate
    )
    assert ok.status == 200, ok
    stopped = await api(None).request("POST", "hub/stop", hub(user, server_name=server),
                                      headers=gate)  # fmt: skip
    assert stopped.json == {"stopped": 1}
    events = (await api(OWNER).get("audit", params={"action": "server.*"})).json["items"]
    assert [e["action"] for e in events] == ["server.stop", "server.start"]
    assert all(e["object_id"] == f"{user}/{server}"[:255] for e in events)


async def test_the_usage_csv_keeps_names_that_look_like_formulas_as_text(api: Any) -> None:
    gate = {"X-Workbench-Hub-Token": HUB_TOKEN}
    for user in ("=HYPERLINK(1)", "@sum", "bob"):  # the hub lets people sign up so
        ok = await api(None).request("POST", "hub/spawn", hub(user, profile="cpu", gpus=0),
                                     headers=gate)  # fmt: skip
        assert ok.status == 200, ok
    csv = await api(OWNER).get("admin/usage", params={"format": "csv"})
    names = sorted(line.split(",")[0] for line in csv.body.decode().splitlines()[1:])
    assert names == ["'=HYPERLINK(1)", "'@sum", "bob"]


async def test_bad_usage_windows_are_named(api: Any) -> None:
    admin = api(OWNER)
    r = await admin.get("admin/usage", params={"from": "yesterday"})
    assert r.status == 400 and r.json["message"] == (
        "from: 'yesterday' is not an ISO 8601 date or date-time (e.g. 2026-01-31 or "
        "2026-01-31T12:00:00Z)"
    )
    r = await admin.get("admin/usage/series", params={"bucket": "hour", "from": "2000-01-01"})
    assert r.status == 400 and "narrow it" in r.json["message"]
    # only 'to', before this month: the defaulted 'from' is named as such
    r = await admin.get("admin/usage", params={"to": "2000-01-01"})
    assert r.status == 400 and "from: the default, the first of this month" in r.json["message"]
    # the ends of the calendar: out of range in UTC is named, the last day has its buckets
    for name, value in [("from", "0001-01-01T00:00:00+14:00"), ("to", "9999-12-31T23:59-14:00")]:
        r = await admin.get("admin/usage", params={name: value})
        assert r.status == 400 and r.json["message"] == f"{name}: '{value}' is out of range in UTC"
    for bucket in ("day", "hour"):
        r = await admin.get("admin/usage/series", params={
            "bucket": bucket, "from": "9999-12-31T20:00", "to": "9999-12-31T23:59:59"})  # fmt: skip
        assert r.status == 200, r
        assert r.json["points"][-1]["start"].startswith("9999-12-31T")


async def test_running_servers_and_people_are_read_a_page_at_a_time(api: Any) -> None:
    gate = {"X-Workbench-Hub-Token": HUB_TOKEN}
    for user, server in [("alice", ""), ("bob", ""), ("alice", "two"), ("carol", "")]:
        ok = await api(None).request(
            "POST", "hub/spawn", hub(user, server_name=server, profile="cpu", gpus=0), headers=gate
        )
        assert ok.status == 200, ok
    admin = api(OWNER)
    seen, cursor = [], None
    for _ in range(3):
        r = await admin.get(
            "admin/servers", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert r.status == 200, r
        seen += [(s["user"], s["server_name"]) for s in r.json["items"]]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
    # the longest-running first, each once
    assert seen == [("alice", ""), ("bob", ""), ("alice", "two"), ("carol", "")]
    by_user = await admin.get("admin/servers", params={"sort": "-user", "limit": 1})
    assert [s["user"] for s in by_user.json["items"]] == ["carol"] and by_user.json["next_cursor"]
    bad = await admin.get("admin/servers", params={"sort": "gpus"})
    assert bad.status == 400 and "sort" in bad.json["message"]
    assert (await api("alice").get("admin/servers")).status == 403

    # the people page's totals count every running server, whatever the page holds
    people = await admin.get("admin/people", params={"limit": 1, "sort": "name"})
    assert people.status == 200, people
    assert people.json["totals"]["servers_running"] == 4 and len(people.json["items"]) == 1
