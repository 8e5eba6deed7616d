"""The admin panel's API on a real hub, as an administrator's script would call it: sign-ups,
people, quotas, usage."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import pytest
import requests

from .conftest import Browser, Hub, auth

pytestmark = pytest.mark.slow

API = "/services/workbench/workbench/api/v1"


def wb(hub: Hub, method: str, path: str, token: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{hub.url}{API}{path}", headers=auth(token), timeout=60,
                            **kw)  # fmt: skip


def pending(hub: Hub, token: str) -> set[str]:
    r = wb(hub, "GET", "/admin/signups", token)
    assert r.status_code == 200, r.text
    return {s["name"] for s in r.json()["items"]}


def test_sign_ups_with_url_characters_in_their_names_are_approved(hub: Hub, admin: Browser) -> None:
    token = admin.token(hub.admin)
    stem = "odd" + os.urandom(3).hex()
    odd = [f"{stem}?x", f"{stem}#x", f"{stem}%41"]
    for name in [stem, *odd]:  # the hub lets these sign up
        hub.browser().sign_up(name, "Pa55-word-" + os.urandom(4).hex())
    assert {stem, *odd} <= pending(hub, token)
    for name, action in zip(odd, ["approve", "discard", "approve"], strict=True):
        r = wb(hub, "POST", f"/admin/signups/{quote(name, safe='')}", token,
               json={"action": action})  # fmt: skip
        assert r.status_code == 200, (name, r.text)
        assert r.json() == {"name": name, "action": action}
    # each one, not the sign-up named like the start of it
    assert pending(hub, token) & {stem, *odd} == {stem}


def test_a_token_the_service_refuses_is_told_apart_from_no_token(hub: Hub, admin: Browser) -> None:
    r = admin.api("POST", f"/hub/api/users/{hub.admin}/tokens",
                  json={"note": "narrow", "scopes": ["read:users:name!user"]})  # fmt: skip
    assert r.status_code == 201, r.text
    for token in (r.json()["token"], "no-such-token"):
        r = wb(hub, "GET", "/me", token)
        assert r.status_code == 401
        assert "access:services!service=workbench" in r.json()["message"], r.text
    r = requests.get(f"{hub.url}{API}/me", timeout=30)
    assert r.status_code == 401 and r.json()["message"].startswith("sign in first")
