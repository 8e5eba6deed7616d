"""Co-editing on a real JupyterHub: each user joins a document's room through their own server
(client mode forwards it to the workbench service) and is seen under their hub name."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests

from jupyter_workbench.collab import protocol as P

from ..collab.clients import Collaborator, eventually
from .conftest import Hub, auth, start_server

pytestmark = pytest.mark.slow

SERVICE = "/services/workbench/workbench/api/v1"


def test_two_hub_users_co_edit_through_their_own_servers(hub: Hub, new_user: Any) -> None:
    alice, _, _, alice_token = new_user("alice")
    bob, _, _, bob_token = new_user("bob")
    for name, token in ((alice, alice_token), (bob, bob_token)):
        start_server(hub, name, token)
        assert requests.get(f"{hub.url}{SERVICE}/me", headers=auth(token), timeout=30).ok

    def post(path: str, body: dict[str, Any]) -> requests.Response:
        url = f"{hub.url}{SERVICE}/{path}"
        r = requests.post(url, json=body, headers=auth(alice_token), timeout=30)
        assert r.status_code == 201, r.text
        return r

    slug = post("projects", {"name": f"Docs {alice}"}).json()["slug"]
    post(f"projects/{slug}/members", {"user": bob, "role": "editor"})
    r = post(f"projects/{slug}/documents", {"kind": "readme"})
    doc_id = r.json()["id"]
    ws = hub.url.replace("http://", "ws://")

    async def scenario() -> str:
        a = await Collaborator(f"{ws}/user/{alice}", alice_token, doc_id).connect()
        b = await Collaborator(f"{ws}/user/{bob}", bob_token, doc_id).connect()
        await eventually(lambda: str(b.text).startswith("# Docs"), what="bob gets the README")
        a.text.insert(len(a.text), "alice was here\n")
        b.text.insert(len(b.text), "bob too\n")
        await eventually(lambda: str(a.text) == str(b.text) and "bob too" in str(a.text)
                         and "alice was here" in str(b.text), what="convergence")  # fmt: skip
        # bob's awareness reaches alice under his hub name, whatever his client says
        await b.send_raw(P.encode_awareness([P.AwarenessEntry(b.doc.client_id, 1, {
            "user": {"name": "Anonymous"}})]))  # fmt: skip

        def bobs_user() -> Any:
            state = a.awareness_states().get(b.doc.client_id)
            return state and state["user"]

        await eventually(lambda: bool(bobs_user()), what="bob's presence at alice")
        assert bobs_user()["username"] == bob and bobs_user()["name"] == bob
        text = str(a.text)
        for c in (a, b):
            await c.disconnect()
        return text

    text = asyncio.run(scenario())
    r = requests.get(f"{hub.url}{SERVICE}/documents/{doc_id}", headers=auth(bob_token), timeout=30)
    assert r.status_code == 200 and r.json()["text"] == text
