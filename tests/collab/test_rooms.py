"""Co-editing rooms against a real jupyter-server: real pycrdt clients over real WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import shutil
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pycrdt import Awareness, Doc, Text, create_awareness_message
from sqlalchemy import select
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from jupyter_workbench.collab import protocol as P
from jupyter_workbench.collab.room import PROMOTED, READ_ONLY
from jupyter_workbench.core import experiments
from jupyter_workbench.core.context import Identity
from jupyter_workbench.db.models import Project

from ..conftest import TOKEN_OF
from .clients import Collaborator, eventually


@pytest.fixture
def jp_server_config(jp_server_config: Any) -> Any:
    jp_server_config["Workbench"].update(
        {
            "collab_access_check_seconds": 0.5,
            "collab_room_idle_seconds": 0.3,
            "collab_snapshot_minutes": 0.01,  # an automatic snapshot after 0.6 s of editing
        }
    )
    return jp_server_config


@pytest.fixture
def ws_root(jp_http_port: int, jp_base_url: str) -> str:
    return f"ws://127.0.0.1:{jp_http_port}{jp_base_url.rstrip('/')}"


async def _project(api: Any, *, viewers: tuple[str, ...] = ("carol",)) -> str:
    alice = api("alice")
    for user in ("bob", *viewers):
        await api(user).get("me")
    r = await alice.post("projects", {"name": "Docs"})
    slug = r.json["slug"]
    assert (
        await alice.post(f"projects/{slug}/members", {"user": "bob", "role": "editor"})
    ).status == 201
    for viewer in viewers:
        r = await alice.post(f"projects/{slug}/members", {"user": viewer, "role": "viewer"})
        assert r.status == 201
    return str(slug)


async def _document(api: Any, slug: str, ref: str = "plan") -> str:
    r = await api("alice").post(f"projects/{slug}/documents", {"kind": "notes", "ref": ref})
    assert r.status == 201, r
    assert r.json["room"] == f"workbench/api/v1/rooms/{r.json['id']}"
    return str(r.json["id"])


def client(ws_root: str, user: str, document_id: str, doc: Doc | None = None) -> Collaborator:
    return Collaborator(ws_root, TOKEN_OF[user], document_id, doc)


async def test_concurrent_inserts_at_random_positions_converge(api, ws_root) -> None:
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    rng = random.Random(7)
    tokens = []
    for i in range(60):
        who, name = (alice, "a") if i % 2 == 0 else (bob, "b")
        token = f"<{name}{i}>"
        tokens.append(token)
        text = who.text
        text.insert(rng.randint(0, len(text)), token)
        if i % 7 == 0:
            await asyncio.sleep(0)  # let some edits cross in flight, others pile up
    await eventually(lambda: str(alice.text) == str(bob.text) and len(str(alice.text)) ==
                     sum(map(len, tokens)), what="convergence")  # fmt: skip
    final = str(alice.text)
    # inserts land inside each other's tokens, so compare what was typed: nothing lost or doubled
    assert Counter(final) == Counter("".join(tokens))
    r = await api("carol").get(f"documents/{doc_id}")
    assert r.status == 200 and r.json["text"] == final
    assert {p["user"]["username"] for p in r.json["present"]} == {"alice", "bob"}
    await alice.disconnect()
    await bob.disconnect()


async def test_a_viewer_cannot_change_a_byte(api, ws_root, jp_serverapp) -> None:
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    alice.text.insert(0, "the plan")
    carol = await client(ws_root, "carol", doc_id).connect()
    await eventually(lambda: str(carol.text) == "the plan", what="the viewer receiving the doc")
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    rows_before = live.store.usage(doc_id)
    carol.text.insert(0, "HACKED ")  # sent by the stock provider as any client would
    del carol.text[len(str(carol.text)) - 4 :]
    await eventually(lambda: carol.messages(P.AUTH), what="a permission-denied message")
    assert b"read-only" in carol.messages(P.AUTH)[0]
    alice.text.insert(len(str(alice.text)), "!")  # alice still edits; carol still receives
    await eventually(lambda: str(carol.text).endswith("!"), what="carol getting alice's edit")
    await asyncio.sleep(0.2)
    assert str(alice.text) == "the plan!"
    assert live.store.usage(doc_id)[0] == rows_before[0] + 1  # alice's "!" only
    fresh = await client(ws_root, "bob", doc_id).connect()
    await eventually(lambda: str(fresh.text) == "the plan!", what="a fresh client's view")
    r = await api("alice").get(f"documents/{doc_id}")
    assert r.json["text"] == "the plan!"
    present = {p["user"]["username"]: p["can_write"] for p in r.json["present"]}
    assert present == {"alice": True, "bob": True, "carol": False}
    for c in (alice, carol, fresh):
        await c.disconnect()


async def test_removing_a_member_disconnects_them_and_demotion_makes_read_only(
    api, ws_root
) -> None:
    slug = await _project(api, viewers=("carol", "dave"))
    doc_id = await _document(api, slug)
    carol = await client(ws_root, "carol", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    r = await api("alice").delete(f"projects/{slug}/members/carol")
    assert r.status == 200
    assert await carol.closed(timeout=5), "carol is still connected after her removal"
    assert carol.close_code == 4403
    # bob demoted to viewer: he is told at once, before he types; his edit is refused, he
    # stays connected
    r = await api("alice").patch(f"projects/{slug}/members/bob", {"role": "viewer"})
    assert r.status == 200
    await eventually(lambda: bob.messages(P.AUTH), what="bob told of the demotion")
    assert bob.messages(P.AUTH) == [P.permission_denied(READ_ONLY)]
    bob.text.insert(0, "late edit")
    await asyncio.sleep(0.3)
    r = await api("alice").get(f"documents/{doc_id}")
    assert r.json["text"] == ""
    assert len(bob.messages(P.AUTH)) == 1  # told once
    # promoted again: told he may write, and the room asks what it lacks of his (the edit
    # it dropped), so his copy and the room's agree again
    r = await api("alice").patch(f"projects/{slug}/members/bob", {"role": "editor"})
    assert r.status == 200
    await eventually(lambda: len(bob.messages(P.AUTH)) == 2, what="bob told of the promotion")
    assert bob.messages(P.AUTH)[1] == P.permission_granted(PROMOTED)
    for _ in range(100):
        r = await api("alice").get(f"documents/{doc_id}")
        if r.json["text"]:
            break
        await asyncio.sleep(0.05)
    assert r.json["text"] == "late edit"
    # a stranger cannot join at all, and never learns the document exists
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(
            HTTPRequest(carol.url, headers={"Authorization": f"token {TOKEN_OF['carol']}"})
        )
    assert info.value.code == 404
    await bob.disconnect()


async def test_archiving_and_making_private_apply_to_open_rooms_at_once(
    api, ws_root, jp_serverapp
) -> None:
    """Like a membership change: no waiting for the next periodic re-check (an hour here)."""
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    live.rooms.access_check_seconds = 3600
    slug = await _project(api)
    r = await api("alice").patch(f"projects/{slug}", {"visibility": "public"})
    assert r.status == 200, r
    doc_id = await _document(api, slug)
    await api("dave").get("me")
    dave = await client(ws_root, "dave", doc_id).connect()  # a viewer through visibility only
    bob = await client(ws_root, "bob", doc_id).connect()
    bob.text.insert(0, "draft")
    await eventually(lambda: str(dave.text) == "draft", what="dave reading bob's edit")
    r = await api("alice").patch(f"projects/{slug}", {"visibility": "private"})
    assert r.status == 200, r
    assert await dave.closed(timeout=2) and dave.close_code == 4403
    assert (await api("alice").post(f"projects/{slug}/archive")).status == 200
    await asyncio.sleep(0.3)
    bob.text.insert(5, " after the archive")
    await eventually(lambda: bob.messages(P.AUTH), timeout=2, what="bob refused after the archive")
    assert (await api("alice").get(f"documents/{doc_id}")).json["text"] == "draft"
    await bob.disconnect()


async def test_without_periodic_re_checks_a_removed_member_is_still_disconnected(
    api, ws_root, jp_serverapp
) -> None:
    """``collab_access_check_seconds = 0`` turns off the periodic re-check, not the one a
    membership change makes."""
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    live.rooms.access_check_seconds = 0
    slug = await _project(api)
    doc_id = await _document(api, slug)
    carol = await client(ws_root, "carol", doc_id).connect()
    assert (await api("alice").delete(f"projects/{slug}/members/carol")).status == 200
    assert await carol.closed(timeout=2) and carol.close_code == 4403


async def test_awareness_carries_the_real_user_never_anonymous(api, ws_root) -> None:
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    awareness = Awareness(bob.doc)
    awareness.set_local_state({"user": {"name": "Anonymous"}, "cursor": {"anchor": 3}})
    update = awareness.encode_awareness_update([bob.doc.client_id])
    await bob.send_raw(create_awareness_message(update))

    def bobs_state() -> Any:
        return alice.awareness_states().get(bob.doc.client_id)

    await eventually(lambda: bobs_state() is not None, what="bob's awareness at alice")
    state = bobs_state()
    assert state["user"]["username"] == "bob" and state["user"]["name"] == "bob"
    assert state["user"]["color"].startswith("#") and state["cursor"] == {"anchor": 3}
    # speaking for another connection's client is ignored
    forged = P.encode_awareness([P.AwarenessEntry(bob.doc.client_id, 99, {"user": {}})])
    await alice.send_raw(forged)
    r = await api("carol").get(f"documents/{doc_id}/presence")
    assert sorted(u["user"]["username"] for u in r.json["users"]) == ["alice", "bob"]
    # a newcomer gets everyone's states at once
    dave_doc = client(ws_root, "carol", doc_id)
    await dave_doc.connect()
    await eventually(lambda: bob.doc.client_id in dave_doc.awareness_states(), what="newcomer")
    assert dave_doc.awareness_states()[bob.doc.client_id]["user"]["username"] == "bob"
    # leaving removes bob's state for the others
    await bob.disconnect()
    await eventually(lambda: bobs_state() is None, what="bob's state removed")
    for c in (alice, dave_doc):
        await c.disconnect()


async def test_awareness_floods_close_their_sender_and_leave_nothing_behind(
    api, ws_root, jp_serverapp
) -> None:
    """One connection speaks for a client or two (a y-websocket client: one per document) with
    a state of cursors and a name: thousands of client ids, or megabytes of state, would sit in
    the room's memory and go to every newcomer for as long as that connection stays."""
    slug = await _project(api)
    doc_id = await _document(api, slug)
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    alice = await client(ws_root, "alice", doc_id).connect()
    room = live.rooms.rooms[doc_id]
    many = [P.AwarenessEntry(1000 + i, 1, {"cursor": i}) for i in range(2000)]
    huge = [P.AwarenessEntry(7, 1, {"cursor": "x" * (1 << 20)})]
    for entries, needle in ((many, b"client ids"), (huge, b"bytes")):
        carol = await client(ws_root, "carol", doc_id).connect()
        await carol.send_raw(P.encode_awareness(entries))
        assert await carol.closed(timeout=5) and carol.close_code == 4400
        assert needle in (carol.channel.ws.close_reason or "").encode(), (
            carol.channel.ws.close_reason
        )
    await asyncio.sleep(0.2)
    assert room.awareness == {} and alice.awareness_states() == {}
    # a normal state still goes through, with a few ids on one connection
    bob = await client(ws_root, "bob", doc_id).connect()
    await bob.send_raw(P.encode_awareness([P.AwarenessEntry(i, 1, {"cursor": i}) for i in (1, 2)]))
    await eventually(lambda: set(alice.awareness_states()) == {1, 2}, what="bob's states")
    for c in (alice, bob):
        await c.disconnect()


async def test_snapshots_diff_and_restore_converge_for_everyone(api, ws_root) -> None:
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    alice.text.insert(0, "line one\nline two\n")
    await eventually(lambda: str(bob.text) == "line one\nline two\n")
    r = await api("bob").post(f"documents/{doc_id}/snapshots", {"name": "v1"})
    assert r.status == 201 and r.json["text"] == "line one\nline two\n"
    snap = r.json["id"]
    bob.text.insert(len(str(bob.text)), "line three\n")
    del bob.text[0:9]
    await eventually(lambda: str(alice.text) == "line two\nline three\n")
    r = await api("carol").get(f"documents/{doc_id}/snapshots/{snap}/diff")
    assert r.status == 200
    assert "-line one\n" in r.json["diff"] and "+line three\n" in r.json["diff"]
    assert (await api("carol").post(f"documents/{doc_id}/snapshots/{snap}/restore")).status == 403
    r = await api("alice").post(f"documents/{doc_id}/snapshots/{snap}/restore")
    assert r.status == 200 and r.json["text"] == "line one\nline two\n"
    await eventually(lambda: str(alice.text) == str(bob.text) == "line one\nline two\n")
    r = await api("alice").get(f"documents/{doc_id}/snapshots")
    assert [s["name"] for s in r.json["items"] if not s["automatic"]] == ["v1"]
    # ids that cannot name a snapshot: past 32 bits, not ASCII digits, thousands of digits
    for bad in ("4294967296", "\u0661", "9" * 5000, f"0{snap}x"):
        r = await api("alice").get(f"documents/{doc_id}/snapshots/{bad}")
        assert r.status == 404 and r.json["error"] == "not_found", (bad[:20], r)
    r = await api("alice").get("audit", params={"project": slug})
    actions = {e["action"] for e in r.json["items"]}
    assert {"document.create", "document.snapshot", "document.restore"} <= actions
    for c in (alice, bob):
        await c.disconnect()


async def test_restoring_text_in_any_script_gives_it_back_exactly(api, ws_root) -> None:
    """Yjs text in pycrdt is indexed by UTF-8 bytes, Python strings by characters: a restore
    editing between accents, CJK and emoji must land its edits where the characters are."""
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    before = "Zürich café ✓\n北京 🚀 plan\nend"
    alice.text.insert(0, before)
    await eventually(lambda: str(bob.text) == before)
    r = await api("alice").post(f"documents/{doc_id}/snapshots", {"name": "v1"})
    assert r.status == 201 and r.json["text"] == before
    after = "Zurich cafe ✗\n北京 🛰 plan — done\nend 👍"
    bob.text.clear()
    bob.text.insert(0, after)
    await eventually(lambda: str(alice.text) == after)
    r = await api("alice").post(f"documents/{doc_id}/snapshots/{r.json['id']}/restore")
    assert r.status == 200 and r.json["text"] == before, r
    await eventually(lambda: str(alice.text) == str(bob.text) == before)
    for c in (alice, bob):
        await c.disconnect()


async def test_restoring_a_text_that_holds_embeds_gives_back_the_snapshot(api, ws_root) -> None:
    """A Yjs client may insert embeds (an image, a mention) into the text: they take a place in
    its index but none in its string. A restore must still land its edits where the
    characters are."""
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    before = "hello brave world, café ✓"
    alice.text.insert(0, before)
    await eventually(lambda: str(bob.text) == before)
    r = await api("alice").post(f"documents/{doc_id}/snapshots", {"name": "v1"})
    assert r.status == 201 and r.json["text"] == before
    del bob.text[5:11]  # "hello world, café ✓"
    bob.text.insert_embed(5, {"image": "cat.png"})
    bob.text.insert_embed(0, {"mention": "alice"})
    await eventually(lambda: len(alice.text) == len(bob.text), what="the embeds at alice")
    r = await api("alice").post(f"documents/{doc_id}/snapshots/{r.json['id']}/restore")
    assert r.status == 200 and r.json["text"] == before, r.json
    await eventually(lambda: str(alice.text) == str(bob.text) == before, what="restored text")
    for c in (alice, bob):
        await c.disconnect()


async def test_a_restore_as_the_room_closes_lands_in_the_stored_document(
    api, ws_root, jp_serverapp
) -> None:
    """Nobody is in the room and it closes (here: at once) while a restore is on its way: the
    restore once waited forever on the closed room, its edit stored nowhere."""
    slug = await _project(api)
    doc_id = await _document(api, slug)
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    alice = await client(ws_root, "alice", doc_id).connect()
    alice.text.insert(0, "version one")
    await eventually(lambda: live.store.usage(doc_id)[0] >= 1, what="alice's edit stored")
    snap = (await api("alice").post(f"documents/{doc_id}/snapshots", {"name": "v1"})).json["id"]
    del alice.text[8:]
    alice.text.insert(8, "two")
    await eventually(lambda: live.rooms.rooms[doc_id].text == "version two", what="stored")
    await alice.disconnect()
    live.rooms.idle_seconds = 0  # a room nobody is in closes at once
    await eventually(lambda: doc_id not in live.rooms.rooms, what="the room closing")
    v2 = (await api("alice").post(f"documents/{doc_id}/snapshots", {"name": "v2"})).json["id"]
    for snapshot, text in [(snap, "version one"), (v2, "version two")] * 3:
        r = await asyncio.wait_for(
            api("alice").post(f"documents/{doc_id}/snapshots/{snapshot}/restore"), 10
        )
        assert r.status == 200 and r.json["text"] == text, r
        await eventually(lambda: doc_id not in live.rooms.rooms, what="the room closing again")
        r = await api("alice").get(f"documents/{doc_id}")  # from the store
        assert r.json["text"] == text, r.json


async def test_a_restore_that_fails_partway_says_so_and_everyone_keeps_the_same_text(
    api, ws_root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As before character indexes were converted: pycrdt panics on an edit out of its
    range. The caller gets a clear 500, the audit log has it, and what the edit changed up to
    there is the same in the store and for every peer."""
    from jupyter_workbench.collab import room as room_module

    monkeypatch.setattr(room_module, "index_units", lambda text, _length: range(len(text) + 1))
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    alice.text.insert(0, "Zürich café ✓\n北京 🚀 plan\nend")
    await eventually(lambda: str(bob.text) == str(alice.text))
    snap = (await api("alice").post(f"documents/{doc_id}/snapshots", {"name": "v1"})).json["id"]
    bob.text.clear()
    bob.text.insert(0, "Zurich cafe ✗\n北京 🛰 plan — done\nend 👍")
    await eventually(lambda: str(alice.text) == str(bob.text))
    r = await api("alice").post(f"documents/{doc_id}/snapshots/{snap}/restore")
    assert r.status == 500 and r.json["error"] == "restore_failed", r
    assert "the restore failed partway" in r.json["message"]
    await asyncio.sleep(0.3)
    stored = (await api("alice").get(f"documents/{doc_id}")).json["text"]
    await eventually(lambda: str(alice.text) == str(bob.text) == stored)
    r = await api("alice").get("audit", params={"project": slug})
    restores = [e for e in r.json["items"] if e["action"] == "document.restore"]
    assert len(restores) == 1 and "failed" in restores[0]["summary"], restores
    for c in (alice, bob):
        await c.disconnect()


async def test_restoring_a_long_document_holds_nothing_up(api, ws_root) -> None:
    """A restore diffed the whole text character by character: on a 20 KB README with one
    paragraph changed, ~13 s on the server's event loop, twice (every room and request
    waited). Past the lines both keep, only the changed lines are diffed by character: the
    edit stays small (collaborators' cursors keep their place)."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()[:20_000]
    edited = text[:5_000] + "A new paragraph.\n" + text[5_200:15_000] + text[15_100:]
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()

    async def stored(expected: str) -> None:
        for _ in range(200):  # until the server has it
            if (await api("alice").get(f"documents/{doc_id}")).json["text"] == expected:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the server never had the text")

    alice.text.insert(0, text)
    await stored(text)
    r = await api("alice").post(f"documents/{doc_id}/snapshots", {"name": "v1"})
    assert r.status == 201
    snap = r.json["id"]
    alice.text.clear()
    alice.text.insert(0, edited)
    await stored(edited)
    before = alice.doc.get_state()
    started = time.monotonic()
    r = await api("alice").post(f"documents/{doc_id}/snapshots/{snap}/restore")
    took = time.monotonic() - started
    assert r.status == 200 and r.json["text"] == text, r
    assert took < 5, f"the restore took {took:.1f} s"
    await eventually(lambda: str(alice.text) == text)
    assert len(alice.doc.get_update(before)) < 2_000  # the lines it changed, not the text
    await alice.disconnect()


async def test_snapshots_list_a_page_at_a_time_newest_first(api, ws_root) -> None:
    slug = await _project(api)
    doc_id = await _document(api, slug)
    bob = await client(ws_root, "bob", doc_id).connect()
    alice = await client(ws_root, "alice", doc_id).connect()
    texts = ["plan", "plan: café ✓", "plan: café ✓\nshipped"]
    for n, text in enumerate(texts):
        bob.text.clear()
        bob.text.insert(0, text)
        await eventually(lambda t=text: str(alice.text) == t)  # the server has it
        r = await api("bob").post(f"documents/{doc_id}/snapshots", {"name": f"s{n}"})
        assert r.status == 201 and r.json["text"] == text
    await bob.disconnect()  # no more edits: no more automatic snapshots (this module takes
    await alice.disconnect()  # one after 0.6 s of editing)
    every = await api("carol").get(f"documents/{doc_id}/snapshots", params={"limit": "500"})
    mine = [x for x in every.json["items"] if not x["automatic"]]
    assert [x["name"] for x in mine] == ["s2", "s1", "s0"]
    assert mine[1]["characters"] == len(texts[1])  # characters, not bytes
    assert "text" not in mine[0]
    # a page at a time, newest first: the same snapshots, each once
    pages, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        r = await api("carol").get(f"documents/{doc_id}/snapshots", params=params)
        assert len(r.json["items"]) <= 2
        pages += r.json["items"]
        if not (cursor := r.json["next_cursor"]):
            break
    ids = [x["id"] for x in pages]
    assert ids == sorted(ids, reverse=True) and {x["id"] for x in mine} <= set(ids)
    oldest = await api("carol").get(f"documents/{doc_id}/snapshots", params={"sort": "created"})
    ids = [x["id"] for x in oldest.json["items"]]
    assert ids == sorted(ids) and {x["id"] for x in mine} <= set(ids)
    r = await api("carol").get(f"documents/{doc_id}/snapshots", params={"limit": "0"})
    assert r.status == 400 and "limit" in r.json["message"]


async def test_editing_takes_automatic_snapshots(api, ws_root) -> None:
    slug = await _project(api)
    doc_id = await _document(api, slug)
    bob = await client(ws_root, "bob", doc_id).connect()
    bob.text.insert(0, "draft")
    await asyncio.sleep(0.7)
    bob.text.insert(5, " two")

    async def automatic() -> list[Any]:
        r = await api("carol").get(f"documents/{doc_id}/snapshots")
        return [s for s in r.json["items"] if s["automatic"]]

    for _ in range(50):
        if await automatic():
            break
        await asyncio.sleep(0.1)
    snapshots = await automatic()
    assert len(snapshots) == 1 and snapshots[0]["name"].startswith("auto ")
    r = await api("carol").get(f"documents/{doc_id}/snapshots/{snapshots[0]['id']}")
    assert r.json["text"] == "draft two" and r.json["created_by"] is None
    await bob.disconnect()


async def test_compaction_and_a_reopened_room_keep_the_text(api, ws_root, jp_serverapp) -> None:
    slug = await _project(api)
    doc_id = await _document(api, slug)
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    alice = await client(ws_root, "alice", doc_id).connect()
    for i in range(200):
        alice.text.insert(len(str(alice.text)), f"{i} ")
    await eventually(lambda: live.store.usage(doc_id)[0] >= 200, what="200 stored updates")
    expected = str(alice.text)
    r = await api("bob").post(f"documents/{doc_id}/compact")
    assert r.status == 200 and r.json["rows_before"] >= 200
    rows, size = live.store.usage(doc_id)
    encoded = len(alice.doc.get_update())
    assert rows == 1 and size <= 2 * encoded
    await alice.disconnect()
    await eventually(lambda: doc_id not in live.rooms.rooms, what="the idle room closing")
    # reopened from the store: the same text, for a new client and over REST
    bob = await client(ws_root, "bob", doc_id).connect()
    await eventually(lambda: str(bob.text) == expected)
    assert (await api("carol").get(f"documents/{doc_id}")).json["text"] == expected
    await bob.disconnect()


async def test_cards_and_readme_start_from_their_current_text(api, jp_serverapp) -> None:
    slug = await _project(api)
    alice = api("alice")
    r = await alice.post(f"projects/{slug}/datasets", {"name": "clicks"})
    r = await alice.patch(f"projects/{slug}/datasets/clicks", {"card": "# Clicks\nOne per row."},
                          headers={"If-Match": r.json["etag"]})  # fmt: skip
    assert r.status == 200
    r = await alice.post(f"projects/{slug}/documents", {"kind": "dataset-card", "ref": "clicks"})
    assert r.status == 201
    doc_id = r.json["id"]
    assert (await alice.get(f"documents/{doc_id}")).json["text"] == "# Clicks\nOne per row."
    # the same kind and ref again: the existing document (200), not a second one
    r = await alice.post(f"projects/{slug}/documents", {"kind": "dataset-card", "ref": "clicks"})
    assert r.status == 200 and r.json["id"] == doc_id
    r = await alice.post(f"projects/{slug}/documents", {"kind": "readme"})
    assert (await alice.get(f"documents/{r.json['id']}")).json["text"].startswith("# Docs")
    r = await api("carol").get(f"projects/{slug}/documents", params={"kind": "dataset-card"})
    assert [d["ref"] for d in r.json["items"]] == ["clicks"]
    # an experiment's report: only of an experiment of the project; it starts with its title
    r = await alice.post(f"projects/{slug}/documents", {"kind": "report", "ref": "training"})
    assert r.status == 404 and "experiment 'training' not found" in r.json["message"]
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app

    def record(s: Any, ctx: Any) -> None:
        project = s.scalar(select(Project).where(Project.slug == slug))
        experiments.record_experiment(s, ctx, project, "training", "7", f"{slug}/training")

    live.service.call(Identity("alice", "alice"), record, write=True)
    r = await alice.post(f"projects/{slug}/documents", {"kind": "report", "ref": "training"})
    assert r.status == 201, r.json
    assert (await alice.get(f"documents/{r.json['id']}")).json["text"] == "# Report: training\n"


async def test_publishing_a_card_document_updates_the_card(api, ws_root, jp_serverapp) -> None:
    from sqlalchemy import select

    from jupyter_workbench.core import experiments
    from jupyter_workbench.core.context import Identity
    from jupyter_workbench.db.models import Project

    slug = await _project(api)
    alice = api("alice")
    await alice.post(f"projects/{slug}/datasets", {"name": "clicks"})
    service = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.service

    def record(s: Any, ctx: Any) -> None:
        project = s.scalar(select(Project).where(Project.slug == slug))
        experiments.record_model(s, ctx, project, f"resnet-{slug}")

    await service.acall(Identity("alice", "alice"), record, write=True)
    for kind, ref in (("dataset-card", "clicks"), ("model-card", f"resnet-{slug}")):
        doc_id = (await alice.post(f"projects/{slug}/documents", {"kind": kind, "ref": ref})).json[
            "id"
        ]
        bob = await client(ws_root, "bob", doc_id).connect()
        bob.text.insert(0, f"# {ref}\nWritten together.")
        await asyncio.sleep(0.3)
        assert (await api("carol").post(f"documents/{doc_id}/publish")).status == 403
        r = await api("bob").post(f"documents/{doc_id}/publish")
        assert r.status == 200, r
        await bob.disconnect()
    r = await alice.get(f"projects/{slug}/datasets/clicks")
    assert r.json["card"] == "# clicks\nWritten together."
    from jupyter_workbench.core import registry

    def card(s: Any, ctx: Any) -> str:  # (its REST route also asks MLflow, not running here)
        _card, revision = registry.get_card(s, ctx, slug, f"resnet-{slug}")
        return revision.markdown

    markdown = await service.acall(Identity("carol", "carol"), card, write=False)
    assert markdown == f"# resnet-{slug}\nWritten together."
    notes = await _document(api, slug)
    r = await alice.post(f"documents/{notes}/publish")
    assert r.status == 400 and "no card to publish" in r.json["message"]


async def test_documents_list_a_page_at_a_time(api) -> None:
    slug = await _project(api)
    alice = api("alice")
    for i, title in enumerate(["Echo", "alpha", "Delta", "bravo", "Charlie"]):
        r = await alice.post(f"projects/{slug}/documents",
                             {"kind": "notes", "ref": f"n{i}", "title": title})  # fmt: skip
        assert r.status == 201, r
    assert (await alice.post(f"projects/{slug}/documents", {"kind": "readme"})).status == 201

    async def walk(**params: Any) -> list[list[str]]:
        pages, cursor = [], None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            r = await api("carol").get(f"projects/{slug}/documents", params=query)
            assert r.status == 200, r
            pages.append([d["ref"] or d["kind"] for d in r.json["items"]])
            cursor = r.json["next_cursor"]
            if cursor is None:
                return pages

    # oldest first by default, every document once
    assert await walk(limit=2) == [["n0", "n1"], ["n2", "n3"], ["n4", "readme"]]
    assert await walk(limit=4, sort="-ref") == [["n4", "n3", "n2", "n1"], ["n0", "readme"]]
    notes = await walk(kind="notes", limit=3, sort="ref")
    assert notes == [["n0", "n1", "n2"], ["n3", "n4"]]
    # a document made between two pages shows up on a later page, none twice
    r = await api("carol").get(f"projects/{slug}/documents", params={"limit": 3, "sort": "ref"})
    await alice.post(f"projects/{slug}/documents", {"kind": "notes", "ref": "n9"})
    after = {"limit": 10, "sort": "ref", "cursor": r.json["next_cursor"]}
    r = await api("carol").get(f"projects/{slug}/documents", params=after)
    assert [d["ref"] for d in r.json["items"]] == ["n2", "n3", "n4", "n9"]
    # a cursor is for the order it was made in; a bad sort or limit names itself
    first = (await alice.get(f"projects/{slug}/documents", params={"limit": 1})).json
    r = await alice.get(f"projects/{slug}/documents",
                        params={"sort": "title", "cursor": first["next_cursor"]})  # fmt: skip
    assert r.status == 400 and "made for sort 'created'" in r.json["message"]
    r = await alice.get(f"projects/{slug}/documents", params={"cursor": "not-ours"})
    assert r.status == 400 and "cursor" in r.json["message"]
    r = await alice.get(f"projects/{slug}/documents", params={"sort": "size"})
    assert r.status == 400 and "sort" in r.json["message"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"kind": "poem"}, 400, "kind"),
        ({"kind": "notes"}, 400, "needs ref"),
        ({"kind": "notes", "ref": "../etc"}, 400, "notes name"),
        ({"kind": "readme", "ref": "x"}, 400, "leave ref empty"),
        ({"kind": "model-card", "ref": "nope"}, 404, "model 'nope' not found"),
        ({"kind": "notes", "ref": "ok", "extra": 1}, 400, "extra"),
    ],
)
async def test_bad_documents_are_clear_errors(api, body, status, needle) -> None:
    slug = await _project(api)
    r = await api("alice").post(f"projects/{slug}/documents", body)
    assert r.status == status and needle in r.json["message"], r
    assert (await api("alice").get(f"projects/{slug}/documents")).json["items"] == []


async def test_unknown_rooms_strangers_and_malformed_messages(api, ws_root) -> None:
    slug = await _project(api)
    doc_id = await _document(api, slug)
    for url, user, code in [
        (f"{ws_root}/workbench/api/v1/rooms/{'0' * 32}", "alice", 404),
        (f"{ws_root}/workbench/api/v1/rooms/{doc_id}", "judy", 404),
    ]:
        with pytest.raises(HTTPClientError) as info:
            await websocket_connect(
                HTTPRequest(url, headers={"Authorization": f"token {TOKEN_OF[user]}"})
            )
        assert info.value.code == code
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(HTTPRequest(f"{ws_root}/workbench/api/v1/rooms/{doc_id}"))
    assert info.value.code in (401, 403)
    bob = await client(ws_root, "bob", doc_id).connect()
    await bob.send_raw(bytes([0, 2, 200]))  # an update whose length runs past the message
    assert await bob.closed(timeout=5) and bob.close_code == 4400
    alice = await client(ws_root, "alice", doc_id).connect()
    alice.text.insert(0, "still fine")
    await eventually(lambda: len(alice.messages(P.SYNC)) >= 2)
    await asyncio.sleep(0.2)
    r = await api("alice").get(f"documents/{doc_id}")
    assert r.json["text"] == "still fine"
    # a well-formed sync step 1 whose state vector does not decode: that peer is closed, the
    # room goes on for the others
    bob = await client(ws_root, "bob", doc_id).connect()
    await bob.send_raw(P.sync_step1(b"\xff\xff\xff"))
    assert await bob.closed(timeout=5) and bob.close_code == 4400
    assert not await alice.closed(timeout=0.5)
    alice.text.insert(len(str(alice.text)), ", on")
    for _ in range(250):  # saved (10 s at most)
        if (await api("alice").get(f"documents/{doc_id}")).json["text"] == "still fine, on":
            break
        await asyncio.sleep(0.04)
    else:
        raise AssertionError("alice's edit after bob's bad message was not saved")
    await alice.disconnect()


async def test_an_endless_number_closes_its_sender_at_once_and_the_others_go_on(
    api, ws_root
) -> None:
    """A 400 KB varint: decoded naively (quadratic time) it held the server's event loop,
    every room of every user, for over ten seconds. (The server shares this test's loop: a
    stall shows as time gone by, not as a timeout.)"""
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    carol = await client(ws_root, "carol", doc_id).connect()  # a viewer is enough
    started = time.monotonic()
    await carol.send_raw(bytes([P.SYNC, P.SYNC_STEP1]) + b"\xff" * 400_000 + b"\x01")
    assert await carol.closed(timeout=10) and carol.close_code == 4400
    assert time.monotonic() - started < 3, "the server stalled on one message"
    alice.text.insert(0, "still here")
    r = await asyncio.wait_for(api("bob").get(f"documents/{doc_id}"), 3)
    assert r.status == 200
    await eventually(lambda: "still here" in str(alice.text), timeout=3)
    await alice.disconnect()


async def test_a_close_reason_past_a_close_frame_closes_only_its_sender(api, ws_root) -> None:
    """A WebSocket close reason is 123 bytes at most: a reason quoting the client's own keys
    (120 characters of 'é') once failed to close, and the room closed everyone instead."""
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    alice.text.insert(0, "kept")
    carol = await client(ws_root, "carol", doc_id).connect()
    raw = ('{"' + "é" * 200 + '": "\\ud800"}').encode()
    payload = b"\x01\x07\x01" + bytes([len(raw) & 0x7F | 0x80, len(raw) >> 7]) + raw
    await carol.send_raw(
        bytes([P.AWARENESS]) + bytes([len(payload) & 0x7F | 0x80, len(payload) >> 7]) + payload
    )
    assert await carol.closed(timeout=5) and carol.close_code == 4400
    reason = carol.channel.ws.close_reason or ""
    assert "lone UTF-16 surrogate" in reason or "é" in reason, reason
    assert not await alice.closed(timeout=0.5), alice.close_code
    alice.text.insert(4, " and saved")
    for _ in range(100):
        if (await api("bob").get(f"documents/{doc_id}")).json["text"] == "kept and saved":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("alice's edit was not saved")
    await alice.disconnect()


async def _stalled_client(
    ws_root: str, user: str, document_id: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client that joins a room and reads nothing more until told (a frozen tab)."""
    url = urlsplit(f"{ws_root}/workbench/api/v1/rooms/{document_id}")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    writer.write(
        f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: token {TOKEN_OF[user]}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def test_a_client_that_never_reads_is_dropped_before_it_costs_unbounded_memory(
    api, ws_root, jp_serverapp
) -> None:
    """What a room sends a peer that does not read piles up in the server's memory: past a
    bound (a few times the largest message, at least 16 MiB) that peer leaves the room and is
    closed (a y-websocket client reconnects and gets what it lacks from its state vector)."""
    slug = await _project(api)
    doc_id = await _document(api, slug)
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    alice = await client(ws_root, "alice", doc_id).connect()
    _reader, stalled = await _stalled_client(ws_root, "carol", doc_id)
    room = live.rooms.rooms[doc_id]
    await eventually(lambda: len(room.peers) == 2, what="the stalled client joining")
    chunk = "x" * 1_000_000
    for i in range(40):  # 40 MB sent to a peer that reads none of it
        alice.text.insert(len(alice.text), chunk)
        await eventually(lambda i=i: len(room.text) == (i + 1) * len(chunk), what=f"edit {i}")
        if len(room.peers) == 1:
            break
    await eventually(lambda: len(room.peers) == 1, what="the stalled client dropped")
    assert {p["user"]["username"] for p in room.presence()} == {"alice"}
    stalled.close()
    await alice.disconnect()


async def test_a_client_that_stops_reading_for_a_while_and_catches_up_stays(
    api, ws_root, jp_serverapp
) -> None:
    """What a peer has read no longer counts against it: a tab frozen while 10 MB went by,
    that then reads it all, is not dropped when 20 MB more go by (30 MB sent in all, past
    the 16 MiB a peer may leave unread)."""
    slug = await _project(api)
    doc_id = await _document(api, slug)
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    alice = await client(ws_root, "alice", doc_id).connect()
    reader, writer = await _stalled_client(ws_root, "carol", doc_id)
    room = live.rooms.rooms[doc_id]
    await eventually(lambda: len(room.peers) == 2, what="the stalled client joining")
    chunk = "x" * 1_000_000

    async def edit(i: int) -> None:
        alice.text.insert(len(alice.text), chunk)
        await eventually(lambda: len(room.text) == (i + 1) * len(chunk), what=f"edit {i}")

    for i in range(10):  # while it reads nothing
        await edit(i)
    received = 0

    async def read_all() -> None:
        nonlocal received
        while data := await reader.read(1 << 20):
            received += len(data)

    reading = asyncio.ensure_future(read_all())
    await eventually(lambda: received >= 10 * len(chunk), what="the client catching up")
    for i in range(10, 30):
        await edit(i)
        assert len(room.peers) == 2, f"dropped at edit {i}"
    await eventually(lambda: received >= 30 * len(chunk), what="the client reading the rest")
    assert {p["user"]["username"] for p in room.presence()} == {"alice", "carol"}
    reading.cancel()
    writer.close()
    await alice.disconnect()


async def test_deleting_a_document_closes_its_room(api, ws_root) -> None:
    slug = await _project(api)
    doc_id = await _document(api, slug)
    bob = await client(ws_root, "bob", doc_id).connect()
    assert (await api("bob").delete(f"documents/{doc_id}")).status == 403
    assert (await api("alice").delete(f"documents/{doc_id}")).status == 204
    assert await bob.closed(timeout=5) and bob.close_code == 4404
    assert (await api("alice").get(f"documents/{doc_id}")).status == 404


def test_document_text_is_a_ytext_named_content() -> None:
    """What JavaScript clients bind to: ``ydoc.getText('content')``."""
    from jupyter_workbench.collab.store import doc_from_updates, initial_update

    doc = doc_from_updates([initial_update("héllo ✓")])
    assert str(doc.get("content", type=Text)) == "héllo ✓"


JS_CLIENT = Path(__file__).parent / "js" / "client.mjs"


async def test_a_javascript_yjs_client_and_a_python_client_converge(api, ws_root) -> None:
    """Proof of Yjs compatibility: the stock ``yjs`` + ``y-websocket`` client (node) edits the
    same document as pycrdt's provider; both end with the same text, and see each other's
    real names."""
    if not (JS_CLIENT.parent / "node_modules" / "y-websocket").exists():
        pytest.fail("the JavaScript client is not installed: run `make install`")
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    awareness = Awareness(alice.doc)
    awareness.set_local_state({"user": {"name": "Anonymous"}, "cursor": {"index": 1}})
    await alice.send_raw(
        create_awareness_message(awareness.encode_awareness_update([alice.doc.client_id]))
    )
    node = await asyncio.create_subprocess_exec(
        shutil.which("node") or "node", str(JS_CLIENT), f"{ws_root}/workbench/api/v1/rooms",
        doc_id, TOKEN_OF["bob"], "40",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    rng = random.Random(3)
    for i in range(40):
        alice.text.insert(rng.randint(0, len(alice.text)), f"<py{i}>")
        await asyncio.sleep(0.003)
    await eventually(lambda: "<js-done>" in str(alice.text), timeout=20, what="the js edits")
    alice.text.insert(len(alice.text), "<py-done>")
    out, err = await asyncio.wait_for(node.communicate(), 30)
    assert node.returncode == 0, err.decode()
    result = json.loads(out)
    await eventually(lambda: str(alice.text) == result["text"], what="python == js")
    typed = "".join(f"<py{i}>" for i in range(40)) + "".join(f"<js{i}>" for i in range(40))
    assert Counter(result["text"]) == Counter(typed + "<js-done><py-done>")
    r = await api("alice").get(f"documents/{doc_id}")
    assert r.json["text"] == result["text"]
    # the js client saw alice under her real name, not the "Anonymous" her client claimed
    users = [state.get("user", {}) for state in result["others"].values()]
    assert [u.get("username") for u in users] == ["alice"]
    seen = set()
    for message in alice.messages(P.AWARENESS):
        for entry in P.decode_awareness(P.parse(message)[2]):
            if entry.state and entry.client_id != alice.doc.client_id:
                seen.add((entry.state["user"]["username"], entry.state["user"]["name"]))
    assert seen == {("bob", "bob")}  # the js client claimed "Anonymous"
    await alice.disconnect()


async def test_a_client_closed_for_a_bad_message_has_nothing_after_it_applied(api, ws_root) -> None:
    """After a 4400 the sender is out of the room at once: an edit it had already sent behind
    the bad message (before the close reached it) is not applied, nor passed on."""
    slug = await _project(api)
    doc_id = await _document(api, slug)
    bob = await client(ws_root, "bob", doc_id).connect()
    alice = await client(ws_root, "alice", doc_id).connect()
    await alice.send_raw(bytes([P.SYNC, P.SYNC_STEP1]) + b"\xff" * 20)  # a number past 53 bits
    alice.text.insert(0, "sneaky")  # on the wire behind it
    assert await alice.closed(timeout=5) and alice.close_code == 4400
    bob.text.insert(0, "fair")
    await asyncio.sleep(0.5)  # let anything still in flight land
    r = await api("bob").get(f"documents/{doc_id}")
    assert r.json["text"] == "fair", r.json["text"]
    assert str(bob.text) == "fair"
    # a text frame is a 4400 too, with the same effect
    assert bob.channel is not None
    await bob.channel.ws.write_message("hello")
    bob.text.insert(0, "late ")
    assert await bob.closed(timeout=5) and bob.close_code == 4400
    await asyncio.sleep(0.5)
    assert (await api("alice").get(f"documents/{doc_id}")).json["text"] == "fair"


async def test_a_flood_of_edits_waits_in_its_socket_not_in_the_servers_memory(
    api, ws_root, jp_serverapp, monkeypatch
) -> None:
    """While the store is slow, a room queues at most about MAX_INBOX_BYTES of messages: the
    sender's connection is not read meanwhile. Nothing is lost: once the store answers, every
    edit lands, in order."""
    import threading

    from jupyter_workbench.collab import room as room_module

    monkeypatch.setattr(room_module, "MAX_INBOX_BYTES", 64 * 1024)
    slug = await _project(api)
    doc_id = await _document(api, slug)
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    alice = await client(ws_root, "alice", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    room = live.rooms.rooms[doc_id]
    store, gate = room.store, threading.Event()
    append = store.append

    def slow_append(*args: Any) -> Any:
        gate.wait(30)
        return append(*args)

    monkeypatch.setattr(store, "append_now", lambda *args: False)
    monkeypatch.setattr(store, "append", slow_append)
    largest = 0
    for i in range(40):  # 40 edits of 8 KiB: 320 KiB, five times the limit
        alice.text.insert(len(str(alice.text)), f"{i:03d}" + "x" * 8189)
        await asyncio.sleep(0.01)
        largest = max(largest, room._inbox_bytes)
    await asyncio.sleep(0.3)
    largest = max(largest, room._inbox_bytes)
    assert largest <= 64 * 1024 + 2 * 8300, largest
    gate.set()
    expected = "".join(f"{i:03d}" + "x" * 8189 for i in range(40))
    await eventually(lambda: str(bob.text) == expected, timeout=20, what="every edit, in order")
    for c in (alice, bob):
        await c.disconnect()


async def test_a_failed_save_gives_clients_an_error_id_and_the_log_the_database_error(
    api, ws_root, jp_serverapp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database's own words (hosts, users, SQL) stay in the server's log: every client of
    the room is closed with 1011 and an error id, which the log line carries too."""
    from sqlalchemy.exc import OperationalError

    slug = await _project(api)
    doc_id = await _document(api, slug)
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    alice = await client(ws_root, "alice", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    store = live.rooms.rooms[doc_id].store
    secret = 'password authentication failed for user "wb" at db.internal:5432'

    def broken(*_args: Any) -> bool:
        raise OperationalError("INSERT INTO document_updates", {}, Exception(secret))

    monkeypatch.setattr(store, "append_now", broken)
    monkeypatch.setattr(store, "append", broken)
    alice.text.insert(0, "never saved")
    for peer in (alice, bob):
        assert await peer.closed(timeout=5) and peer.close_code == 1011
    reason = alice.channel.ws.close_reason or ""
    assert bob.channel.ws.close_reason == reason
    found = re.fullmatch(r"the document could not be saved \(error ([0-9a-f]{12})\); "
                         r"reconnect to retry", reason)  # fmt: skip
    assert found, reason
    assert "db.internal" not in reason and "INSERT" not in reason
    logged = [r for r in caplog.records if found.group(1) in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert secret in str(logged[0].exc_info[1])
    monkeypatch.undo()  # the database is back: a reconnect opens the room from the store
    again = await client(ws_root, "alice", doc_id).connect()
    again.text.insert(0, "saved")
    await eventually(lambda: live.rooms.rooms[doc_id].text == "saved", what="the new edit")
    await again.disconnect()


@pytest.mark.parametrize("off_loop", [False, True], ids=["on-loop", "size-worker"])
async def test_an_edit_past_the_size_limit_closes_its_sender_and_reaches_nobody(
    api, ws_root, jp_serverapp, monkeypatch: pytest.MonkeyPatch, off_loop: bool
) -> None:
    """``collab_max_document_bytes`` (here 64 KiB): a paste that would take the document past
    it is refused (4413), never stored or relayed, and the others go on; a document filled a
    chunk at a time takes every chunk that fits and none past the limit. The same where the
    document is measured by its shadow in the size worker (as one past 1 MiB is)."""
    from jupyter_workbench.collab import room as room_module

    if off_loop:
        monkeypatch.setattr(room_module, "OFFLOOP_BYTES", 0)
    limit = 64 * 1024
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    live.rooms.max_document_bytes = limit
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    carol = await client(ws_root, "carol", doc_id).connect()
    room = live.rooms.rooms[doc_id]
    alice.text.insert(0, "plan\n")
    await eventually(lambda: str(carol.text) == "plan\n", what="alice's edit at carol")
    bob.text.insert(5, "y" * 100_000)
    assert await bob.closed(timeout=5) and bob.close_code == 4413
    reason = bob.channel.ws.close_reason or ""
    assert "past its limit of 65,536" in reason and "edit refused" in reason, reason
    alice.text.insert(5, "still here")
    await eventually(lambda: str(carol.text) == "plan\nstill here", what="alice's next edit")
    assert (await api("carol").get(f"documents/{doc_id}")).json["text"] == "plan\nstill here"
    assert not await alice.closed(timeout=0.2)
    # a chunk at a time: every one that fits lands, the one that would not closes its sender
    chunk = "z" * 4000
    for i in range(20):
        alice.text.insert(len(alice.text), chunk)
        await eventually(lambda i=i: room.text.count("z") == (i + 1) * len(chunk)
                         or alice.close_code is not None, what=f"chunk {i}")  # fmt: skip
        if alice.close_code is not None:
            break
    assert alice.close_code == 4413, "the document grew past its limit"
    size = len(room.doc.get_update())
    assert limit - len(chunk) - 100 < size <= limit, size
    text = (await api("carol").get(f"documents/{doc_id}")).json["text"]
    assert text == room.text and not text.count("y")
    await eventually(lambda: str(carol.text) == text, what="carol's copy")
    assert (room._shadow is not None) is off_loop  # measured by its shadow, or here
    await carol.disconnect()


async def test_a_document_past_a_lowered_limit_opens_read_only_and_a_restore_shrinks_it(
    api, ws_root, jp_serverapp
) -> None:
    """Lowering ``collab_max_document_bytes`` below a document's size leaves it readable by
    everyone; edits are refused until a restore brings it back (a restore that would take a
    document past the limit is a 413 that changes nothing)."""
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    alice.text.insert(0, "short plan")
    await eventually(lambda: live.rooms.rooms[doc_id].text == "short plan", what="stored")
    short = (await api("alice").post(f"documents/{doc_id}/snapshots", {"name": "short"})).json
    alice.text.insert(10, "\n" + "w" * 50_000)
    await eventually(lambda: len(live.rooms.rooms[doc_id].text) == 50_011, what="stored")
    big = (await api("alice").post(f"documents/{doc_id}/snapshots", {"name": "big"})).json
    await alice.disconnect()
    live.rooms.idle_seconds = 0
    await eventually(lambda: doc_id not in live.rooms.rooms, what="the room closing")
    live.rooms.max_document_bytes = 20_000  # the limit lowered (a restart with a new config)
    carol = await client(ws_root, "carol", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    assert len(str(bob.text)) == len(str(carol.text)) == 50_011  # it opens, whole
    bob.text.insert(0, "x")
    assert await bob.closed(timeout=5) and bob.close_code == 4413
    assert "the document is " in (bob.channel.ws.close_reason or "")
    assert "past its limit of 20,000" in (bob.channel.ws.close_reason or "")
    r = await api("alice").get(f"documents/{doc_id}")
    assert len(r.json["text"]) == 50_011 and not r.json["text"].startswith("x")
    r = await api("alice").post(f"documents/{doc_id}/snapshots/{short['id']}/restore")
    assert r.status == 200 and r.json["text"] == "short plan", r
    await eventually(lambda: str(carol.text) == "short plan", what="the restore at carol")
    bob = await client(ws_root, "bob", doc_id).connect()
    bob.text.insert(10, "!")  # back within the limit: edits are taken again
    await eventually(lambda: str(carol.text) == "short plan!", what="bob's edit at carol")
    r = await api("alice").post(f"documents/{doc_id}/snapshots/{big['id']}/restore")
    assert r.status == 413 and r.json["error"] == "payload_too_large", r
    assert "past its limit of 20,000" in r.json["message"], r.json
    assert (await api("alice").get(f"documents/{doc_id}")).json["text"] == "short plan!"
    # the refused restore is on the record (by whom, of what, why), as the one taken
    r = await api("alice").get("audit", params={"project": slug})
    restores = [e for e in r.json["items"] if e["action"] == "document.restore"]
    assert [e["summary"]["name"] for e in restores] == ["big", "short"], restores
    refused = restores[0]["summary"]["refused"]
    assert restores[0]["actor"] == "alice" and "refused" not in restores[1]["summary"]
    assert refused["reason"] == "payload_too_large" and refused["limit"] == 20_000, refused
    assert refused["size"] > 20_000, refused
    assert not await bob.closed(timeout=0.2)
    for c in (bob, carol):
        await c.disconnect()


async def test_single_character_deletions_do_not_take_a_document_past_its_limit(
    api, ws_root, jp_serverapp
) -> None:
    """Deleting one character from the middle of a run splits it: the encoded state grows by
    more than the deletion's own update. Thousands of them still stop at the limit."""
    limit = 40 * 1024
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    live.rooms.max_document_bytes = limit
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    room = live.rooms.rooms[doc_id]
    alice.text.insert(0, "q" * 30_000)
    await eventually(lambda: len(room.text) == 30_000, what="the text stored")
    rng = random.Random(5)
    for _batch in range(40):
        for _ in range(100):
            del alice.text[rng.randrange(len(alice.text) - 1)]
        await eventually(lambda: len(room.text) == len(alice.text)
                         or alice.close_code is not None, what="the deletions")  # fmt: skip
        assert len(room.doc.get_update()) <= limit
        if alice.close_code is not None:
            break
    assert alice.close_code == 4413, "4,000 deletions fit: the test needs a lower limit"
    assert len(room.doc.get_update()) <= limit


def _cursor_states(collaborator: Collaborator, client_id: int) -> list[Any]:
    """Every state of ``client_id`` that ``collaborator`` was sent, in order."""
    states = []
    for message in collaborator.messages(P.AWARENESS):
        for entry in P.decode_awareness(P.parse(message)[2]):
            if entry.client_id == client_id:
                states.append(entry.state)
    return states


async def test_awareness_past_the_rate_is_coalesced_to_the_latest_state(
    api, ws_root, jp_serverapp
) -> None:
    """A cursor moving faster than ``collab_awareness_per_second`` (here 2, bursts of 2) is
    not relayed move by move: the others get fewer updates, and always the latest one."""
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    live.rooms.awareness_per_second, live.rooms.awareness_burst = 2.0, 2
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    bob = await client(ws_root, "bob", doc_id).connect()
    for i in range(15):  # 15 moves at once: 2 relayed now, the rest coalesced
        await bob.send_raw(P.encode_awareness([P.AwarenessEntry(77, i + 1, {"cursor": i})]))
    await eventually(lambda: (_cursor_states(alice, 77) or [{}])[-1].get("cursor") == 14,
                     what="bob's last cursor at alice")  # fmt: skip
    cursors = [state["cursor"] for state in _cursor_states(alice, 77)]
    assert len(cursors) < 15 and cursors == sorted(cursors), cursors
    assert _cursor_states(alice, 77)[-1]["user"]["username"] == "bob"
    room = live.rooms.rooms[doc_id]
    assert room.awareness[77].state is not None and room.awareness[77].state["cursor"] == 14
    # leaving goes through at once with what was pending dropped: bob's state is removed
    await bob.send_raw(P.encode_awareness([P.AwarenessEntry(77, 99, {"cursor": 99})]))
    await bob.disconnect()
    await eventually(lambda: _cursor_states(alice, 77)[-1] is None, what="bob's state removed")
    assert 77 not in room.awareness
    await alice.disconnect()


async def test_a_connection_flooding_awareness_is_closed_and_the_others_go_on(
    api, ws_root, jp_serverapp
) -> None:
    """Ten times the rate, past ten times the burst (here 20 a second after 20 at once): no
    cursor moves like that. The sender is closed with 4429, its state removed; the others go
    on, their own awareness still relayed."""
    live = jp_serverapp.extension_manager.extension_points["jupyter_workbench"].app.documents
    live.rooms.awareness_per_second, live.rooms.awareness_burst = 2.0, 2
    slug = await _project(api)
    doc_id = await _document(api, slug)
    alice = await client(ws_root, "alice", doc_id).connect()
    carol = await client(ws_root, "carol", doc_id).connect()
    for i in range(500):
        if carol.close_code is not None:
            break
        with contextlib.suppress(Exception):  # closed under us
            await carol.send_raw(P.encode_awareness([P.AwarenessEntry(5, i + 1, {"n": i})]))
    assert await carol.closed(timeout=5) and carol.close_code == 4429
    assert "too many awareness messages" in (carol.channel.ws.close_reason or "")
    await eventually(lambda: 5 not in live.rooms.rooms[doc_id].awareness, what="state removed")
    assert len(_cursor_states(alice, 5)) < 10  # coalesced, then removed
    await alice.send_raw(P.encode_awareness([P.AwarenessEntry(6, 1, {"cursor": 1})]))
    bob = await client(ws_root, "bob", doc_id).connect()
    await eventually(lambda: 6 in bob.awareness_states(), what="alice's state at bob")
    assert not await alice.closed(timeout=0.2)
    for c in (alice, bob):
        await c.disconnect()
