from __future__ import annotations


async def test_create_and_get_project(api):
    alice = api("alice")
    r = await alice.post("projects", {"name": "Churn Model", "description": "q3"})
    assert r.status == 201, r
    assert r.json["slug"] == "churn-model"
    r = await alice.get("projects/churn-model")
    assert r.status == 200, r
    assert r.json["owner"] == "alice"
    r = await api("bob").get("projects/churn-model")
    assert r.status == 404, r
    r = await api(None).get("projects")
    assert r.status == 401, r
