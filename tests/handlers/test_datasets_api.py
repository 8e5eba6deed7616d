"""Datasets over REST: upload, list, download (ranges, tar), diff, tags, lineage, errors."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from jupyter_workbench import dataset_jobs
from jupyter_workbench.core import operations, users
from jupyter_workbench.core.context import Identity
from jupyter_workbench.dataset_jobs import frame_chunks
from jupyter_workbench.db.database import Database
from jupyter_workbench.db.models import Dataset, Operation
from jupyter_workbench.storage import chunk_bytes

from ..conftest import OWNER


@contextlib.contextmanager
def sql_seen(jp_serverapp: Any) -> Iterator[list[tuple[str, list[str]]]]:
    """Every query the server runs inside the block: (statement, the result's column names)."""
    from sqlalchemy import event

    engine = jp_serverapp.web_app.settings["workbench_service"].db.engine
    seen: list[tuple[str, list[str]]] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append((statement, [d[0] for d in cursor.description or ()]))

    event.listen(engine, "after_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "after_cursor_execute", note)


def declare(files: dict[str, bytes]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    declared, chunks = [], {}
    for path, data in files.items():
        pieces: list[list[Any]] = []

        def keep(chunk: Any, pieces: list[list[Any]] = pieces) -> None:
            pieces.append([chunk.digest, chunk.length])
            chunks[chunk.digest] = bytes(chunk.data)

        digest = chunk_bytes(data, on_chunk=keep)
        declared.append(
            {"path": path, "size": digest.size, "digest": digest.digest, "chunks": pieces}
        )
    return declared, chunks


async def upload(client, slug: str, name: str, files: dict[str, bytes], **commit: Any):
    declared, chunks = declare(files)
    base = f"projects/{slug}/datasets/{name}/uploads"
    r = await client.post(base, {"files": declared})
    assert r.status == 201, r
    upload_id = r.json["id"]
    missing = r.json["missing"]
    if missing:
        r = await client.post(
            f"{base}/{upload_id}/chunks",
            raw=frame_chunks([(d, chunks[d]) for d in missing]),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status == 200, r
    r = await client.post(f"{base}/{upload_id}/commit", commit or {"message": "upload"})
    return r


async def test_upload_list_download_and_archive(api) -> None:
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    big = os.urandom(900_000)
    files = {"data/big.bin": big, "notes.txt": b"hello", "t.csv": b"a,b\n1,2\n"}
    r = await upload(alice, "lab", "events", files, message="first")
    assert r.status == 201, r
    assert r.json["version"]["version"] == 1 and r.json["version"]["file_count"] == 3

    r = await alice.get("projects/lab/datasets")
    assert [(d["name"], d["latest_version"]) for d in r.json["items"]] == [("events", 1)]
    r = await alice.get("projects/lab/datasets/events/versions/latest/files")
    assert [(f["path"], f["size"]) for f in r.json["items"]] == [
        ("data/big.bin", len(big)),
        ("notes.txt", 5),
        ("t.csv", 8),
    ]
    r = await alice.get("projects/lab/datasets/events/versions/v1/files/data/big.bin")
    assert r.status == 200 and r.body == big
    assert r.headers["Accept-Ranges"] == "bytes" and r.headers["ETag"].startswith('"blake3-')
    r = await alice.get(
        "projects/lab/datasets/events/versions/v1/files/data/big.bin",
        headers={"Range": "bytes=100000-100099"},
    )
    assert r.status == 206 and r.body == big[100000:100100]
    assert r.headers["Content-Range"] == f"bytes 100000-100099/{len(big)}"
    r = await alice.get(
        "projects/lab/datasets/events/versions/v1/files/notes.txt", headers={"Range": "bytes=-2"}
    )
    assert r.status == 206 and r.body == b"lo"
    r = await alice.get(
        "projects/lab/datasets/events/versions/v1/files/notes.txt", headers={"Range": "bytes=10-"}
    )
    assert r.status == 416 and r.headers["Content-Range"] == "bytes */5"
    # positions past any file, however many digits, are ranges like any other
    notes = "projects/lab/datasets/events/versions/v1/files/notes.txt"
    r = await alice.get(notes, headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert r.status == 416 and r.headers["Content-Range"] == "bytes */5"
    r = await alice.get(notes, headers={"Range": "bytes=1-" + "9" * 5000})
    assert r.status == 206 and r.body == b"ello"
    r = await alice.get(notes, headers={"Range": "bytes=-" + "9" * 5000})
    assert r.status == 206 and r.body == b"hello"
    r = await alice.get("projects/lab/datasets/events/versions/v1/files/nope.txt")
    assert r.status == 404 and r.json["error"] == "not_found"

    r = await alice.get("projects/lab/datasets/events/versions/v1/archive")
    assert r.status == 200 and r.headers["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert got == {f"events-v1/{p}": data for p, data in files.items()}


async def test_files_with_long_non_ascii_paths_page_through(api) -> None:
    """A cursor holds the last path of its page: long paths (1,000 characters of accents
    here) still make a cursor the next request accepts."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    deep = "/".join(["é" * 199] * 5)  # 999 characters
    files = {f"{deep}{n}": str(n).encode() for n in range(3)}
    assert (await upload(alice, "lab", "events", files)).status == 201
    seen, cursor = [], None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        r = await alice.get("projects/lab/datasets/events/versions/v1/files", params=params)
        assert r.status == 200, r
        seen += [f["path"] for f in r.json["items"]]
        if not (cursor := r.json["next_cursor"]):
            break
    assert seen == sorted(files)


async def test_a_path_longer_than_its_index_holds_is_a_400(api) -> None:
    """1,024 characters of Chinese are 3,072 bytes of UTF-8, more than PostgreSQL's index of a
    version's paths holds: the commit was a 500 there. A path is at most 2,048 bytes."""
    import random

    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    rng = random.Random(7)  # varied characters: PostgreSQL compresses repeated ones
    long_path = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(683))  # 2,049 bytes
    declared, _chunks = declare({long_path: b"x"})
    r = await alice.post("projects/lab/datasets/d/uploads", {"files": declared})
    assert r.status == 400 and r.json["error"] == "invalid_path", r
    assert r.json["message"] == "files[0].path: longer than 2048 bytes in UTF-8"
    fits = long_path[:682]  # 2,046 bytes
    assert (await upload(alice, "lab", "d", {fits: b"x"})).status == 201
    r = await alice.get(f"projects/lab/datasets/d/versions/v1/files/{fits}")
    assert r.status == 200 and r.body == b"x"


async def test_a_file_downloads_under_its_own_name_whatever_its_letters(api) -> None:
    """HTTP header values are Latin-1: a name in another script gave a 500. The exact name is
    sent as UTF-8 (RFC 6266 ``filename*``) beside an ASCII one for old clients."""
    from urllib.parse import unquote

    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    files = {'数据/表 "q".csv': b"a\n1\n", "données.txt": b"x", "plain.txt": b"y"}
    assert (await upload(alice, "lab", "events", files)).status == 201
    for path, data in files.items():
        r = await alice.get(f"projects/lab/datasets/events/versions/v1/files/{path}")
        assert r.status == 200 and r.body == data, r
        ascii_name, exact = r.headers["Content-Disposition"].split("; filename*=UTF-8''")
        assert unquote(exact) == path.rsplit("/", 1)[-1]
        assert ascii_name.isascii() and ascii_name.count('"') == 2
    r = await alice.get("projects/lab/datasets/events/versions/v1/files/plain.txt")
    assert r.headers["Content-Disposition"].startswith('attachment; filename="plain.txt"; ')


async def test_second_version_diff_tags_and_lineage(api) -> None:
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    header = b"id,v\n"
    v1 = header + b"".join(f"{i},{i}\n".encode() for i in range(1000))
    await upload(alice, "lab", "t", {"t.csv": v1, "gone.txt": b"bye"})
    v2 = v1.replace(b"\n5,5\n", b"\n5,55\n") + b"1000,1000\n"
    r = await upload(alice, "lab", "t", {"t.csv": v2, "new.txt": b"hi"}, message="second")
    assert r.status == 201 and r.json["version"]["parent"] == 1
    r = await alice.get("projects/lab/datasets/t/diff", params={"from": "v1", "to": "v2"})
    assert r.status == 200, r
    diff = r.json
    assert [f["path"] for f in diff["added"]] == ["new.txt"]
    assert [f["path"] for f in diff["removed"]] == ["gone.txt"]
    assert diff["tables"][0]["rows"] == {"old": 1000, "new": 1001, "added": 2, "removed": 1}

    r = await alice.request("PUT", "projects/lab/datasets/t/tags/production", {"version": "v1"})
    assert r.status == 200 and r.json == {"tag": "production", "version": 1}
    r = await alice.get("projects/lab/datasets/t/versions/production")
    assert r.json["version"] == 1 and "production" in r.json["tags"]
    r = await alice.request("PUT", "projects/lab/datasets/t/tags/latest", {"version": "v1"})
    assert r.status == 400 and r.json["error"] == "reserved_tag"
    for bad in ("v1\n", "v\u0661", "prod\u0000", "\u0007"):
        r = await alice.request("PUT", "projects/lab/datasets/t/tags/qa", {"version": bad})
        assert r.status == 400 and r.json["message"].startswith("version: "), (bad, r)
    assert (await alice.get("projects/lab/datasets/t/versions/qa")).status == 404

    # the tags, a page at a time: by name, or the last moved first
    for tag in ("stable", "audit-2026"):
        await alice.request("PUT", f"projects/lab/datasets/t/tags/{tag}", {"version": "v2"})
    r = await alice.get("projects/lab/datasets/t/tags", params={"limit": 2})
    assert r.json["items"] == [{"tag": "audit-2026", "version": 2}, {"tag": "latest", "version": 2}]
    r = await alice.get(
        "projects/lab/datasets/t/tags", params={"limit": 2, "cursor": r.json["next_cursor"]}
    )
    assert [t["tag"] for t in r.json["items"]] == ["production", "stable"]
    assert r.json["next_cursor"] is None
    r = await alice.get("projects/lab/datasets/t/tags", params={"sort": "-updated", "limit": 1})
    assert r.json["items"] == [{"tag": "audit-2026", "version": 2}]

    r = await alice.post("projects/lab/datasets/t/versions/v1/lineage", {"consumer": "run:42"})
    assert r.status == 201 and r.json["direction"] == "read"
    r = await alice.get("lineage", params={"consumer": "run:42"})
    assert [(x["dataset"], x["version"]) for x in r.json["items"]] == [("t", 1)]
    r = await alice.get("projects/lab/datasets/t/versions/v1/lineage")
    assert [x["consumer"] for x in r.json["items"]] == ["run:42"]


async def test_access_rules_on_datasets(api) -> None:
    alice, bob, carol = api("alice"), api("bob"), api("carol")
    await bob.get("me")
    await alice.post("projects", {"name": "Lab"})
    await upload(alice, "lab", "d", {"f": b"1"})
    assert (await carol.get("projects/lab/datasets/d")).status == 404
    assert (await carol.get("projects/lab/datasets/d/versions/v1/files/f")).status == 404
    await alice.post("projects/lab/members", {"user": "bob", "role": "viewer"})
    assert (await bob.get("projects/lab/datasets/d/versions/v1/files/f")).body == b"1"
    r = await bob.post("projects/lab/datasets/d/uploads", {"files": declare({"g": b"2"})[0]})
    assert r.status == 403
    assert (await bob.delete("projects/lab/datasets/d")).status == 403
    # carol finds nothing, bob finds the dataset, through search
    assert (await carol.get("datasets", params={"q": "d"})).json["items"] == []
    assert [d["name"] for d in (await bob.get("datasets")).json["items"]] == ["d"]


async def test_bad_uploads_are_clear_4xx(api) -> None:
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    # (made by hand: one a first upload made goes with that upload, ended below)
    assert (await alice.post("projects/lab/datasets", {"name": "d"})).status == 201
    declared, chunks = declare({"ok.txt": b"fine"})
    bad = [dict(declared[0], path="../escape")]
    r = await alice.post("projects/lab/datasets/d/uploads", {"files": bad})
    assert r.status == 400 and "'..'" in r.json["message"]
    r = await alice.post("projects/lab/datasets/d/uploads", {"files": declared + declared})
    assert r.status == 400 and r.json["error"] == "duplicate_path"
    r = await alice.post("projects/lab/datasets/d/uploads", {"files": declared})
    upload_id = r.json["id"]
    digest, data = next(iter(chunks.items()))
    r = await alice.post(
        f"projects/lab/datasets/d/uploads/{upload_id}/chunks",
        raw=frame_chunks([(digest, b"evil!!")]),
    )
    assert r.status == 400 and r.json["error"] == "chunk_length_mismatch"
    r = await alice.post(
        f"projects/lab/datasets/d/uploads/{upload_id}/chunks", raw=frame_chunks([(digest, b"EVIL")])
    )
    assert r.status == 400 and r.json["error"] == "chunk_digest_mismatch"
    r = await alice.post(f"projects/lab/datasets/d/uploads/{upload_id}/commit", {})
    assert r.status == 409 and r.json["error"] == "incomplete_upload"
    r = await alice.get(f"projects/lab/datasets/d/uploads/{upload_id}")
    assert r.json["missing"] == [digest]
    assert (await alice.delete(f"projects/lab/datasets/d/uploads/{upload_id}")).status == 204
    r = await alice.post(
        f"projects/lab/datasets/d/uploads/{upload_id}/chunks", raw=frame_chunks([(digest, data)])
    )
    assert r.status == 409 and r.json["error"] == "aborted"
    r = await alice.post("projects/lab/datasets", {"name": "Bad Name"})
    assert r.status == 400 and "name" in r.json["message"]
    # a 'replace' commit of no files is refused (a wrong folder, not an intent); an 'update'
    # with nothing new may delete files
    assert (await upload(alice, "lab", "d", {"a.txt": b"a", "b.txt": b"b"})).status == 201
    r = await upload(alice, "lab", "d", {})
    assert r.status == 400 and r.json["message"].startswith("files: a 'replace' commit of no")
    r = await alice.get("projects/lab/datasets/d")
    assert r.json["latest_version"] == 1
    r = await upload(alice, "lab", "d", {}, mode="update", delete=["b.txt"], message="rm")
    assert r.status == 201 and r.json["version"]["file_count"] == 1
    # a path listed twice is deleted once, not "not in the parent version" (it is)
    assert (await upload(alice, "lab", "d", {"c.txt": b"c"}, mode="update")).status == 201
    r = await upload(alice, "lab", "d", {}, mode="update", delete=["c.txt", "c.txt"])
    assert r.status == 201 and r.json["version"]["file_count"] == 1, r
    # strict_parent guards a named parent; alone it guarded nothing, without a word
    r = await upload(alice, "lab", "d", {"e.txt": b"e"}, strict_parent=True)
    assert r.status == 400 and r.json["message"].startswith("strict_parent: needs parent"), r


async def test_card_metadata_and_search(api) -> None:
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    r = await alice.post(
        "projects/lab/datasets",
        {"name": "clicks", "metadata": {"license": "CC-BY-4.0", "tags": ["web", "events"]}},
    )
    assert r.status == 201, r
    etag = r.json["etag"]
    r = await alice.patch(
        "projects/lab/datasets/clicks",
        {"card": "# Clicks\nOne row per click."},
        headers={"If-Match": etag},
    )
    assert r.status == 200 and r.json["card"].startswith("# Clicks")
    r = await alice.patch(
        "projects/lab/datasets/clicks", {"card": "stale"}, headers={"If-Match": etag}
    )
    assert r.status == 412
    for raw, needle in [
        (b'{"name": "nan", "metadata": {"score": NaN}}', "NaN is not a JSON number"),
        (b'{"name": "big", "metadata": {"score": 1e999}}', "1e999 is too large"),
        (b'{"name": "nul", "metadata": {"note": "a\\u0000b"}}', "metadata.note: must not"),
    ]:
        r = await alice.post("projects/lab/datasets", raw=raw)
        assert r.status == 400 and needle in r.json["message"], r
    await alice.post("projects/lab/datasets", {"name": "other", "metadata": {"license": "MIT"}})
    # '_' in a tag is that character, not LIKE's any-character wildcard
    r = await alice.post("projects/lab/datasets", {"name": "v2", "metadata": {"tags": ["web-v2"]}})
    assert r.status == 201, r
    for tag, found in (("web_v2", []), ("web-v2", ["v2"])):
        r = await alice.get("datasets", params={"tag": tag})
        assert [d["name"] for d in r.json["items"]] == found, tag
    assert [
        d["name"] for d in (await alice.get("datasets", params={"tag": "web"})).json["items"]
    ] == ["clicks"]
    assert [
        d["name"] for d in (await alice.get("datasets", params={"license": "MIT"})).json["items"]
    ] == ["other"]
    assert [
        d["name"] for d in (await alice.get("datasets", params={"q": "row per"})).json["items"]
    ] == ["clicks"]


async def test_gc_runs_as_an_operation(api) -> None:
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    await upload(alice, "lab", "d", {"f": os.urandom(10_000)})
    assert (await alice.delete("projects/lab/datasets/d")).status == 204
    r = await alice.post("projects/lab/datasets-gc", {"dry_run": True})
    assert r.status == 202, r
    op = r.json
    for _ in range(100):
        op = (await alice.get(f"operations/{op['id']}")).json
        if op["state"] != "running":
            break
        await asyncio.sleep(0.05)
    assert op["state"] == "succeeded", op
    assert op["result"]["bytes_freed"] == 10_000 and op["result"]["dry_run"] is True
    mine = (await alice.get("operations")).json["items"]
    assert [o["id"] for o in mine] == [op["id"]]
    assert (await api("bob").get(f"operations/{op['id']}")).status == 404
    assert json.dumps(op)  # serialisable


async def test_verifying_a_version_is_one_shared_operation_for_editors(
    api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verifying a version re-reads all its bytes: it ran inside the request (a big version
    held it for minutes) and any viewer could ask it again and again. It is an operation now
    (202; progress; the report as its result), for editors; asking while one runs for the
    version answers that one, whoever started it."""
    alice, bob, carol = api("alice"), api("bob"), api("carol")
    for user in (bob, carol):
        await user.get("me")
    await alice.post("projects", {"name": "Lab"})
    await alice.post("projects/lab/members", {"user": "bob", "role": "editor"})
    await alice.post("projects/lab/members", {"user": "carol", "role": "viewer"})
    await upload(alice, "lab", "d", {"a.bin": os.urandom(300_000), "b.txt": b"b"})
    gate = threading.Event()  # holds the verify's hashing until the test lets it go
    real = dataset_jobs.blake3.blake3

    class Held:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.hasher = real(*args, **kwargs)

        def update(self, data: Any) -> None:
            assert gate.wait(60)
            self.hasher.update(data)

        def hexdigest(self) -> str:
            return self.hasher.hexdigest()

    monkeypatch.setattr(dataset_jobs.blake3, "blake3", Held)
    url = "projects/lab/datasets/d/versions/{}/verify"
    try:
        r = await alice.post(url.format("v1"))
        assert r.status == 202 and r.json["state"] == "running", r
        assert r.json["kind"] == "verify_version" and r.headers["Location"].endswith(r.json["id"])
        op_id = r.json["id"]
        for user, ref in ((bob, "latest"), (alice, "1")):
            r = await user.post(url.format(ref))
            assert r.status == 202 and r.json["id"] == op_id, r
        assert (await bob.get(f"operations/{op_id}")).json["state"] == "running"
        r = await carol.post(url.format("v1"))
        assert r.status == 403 and "editor" in r.json["message"], r
        assert (await carol.get(f"operations/{op_id}")).status == 404
    finally:
        gate.set()
    for _ in range(200):
        op = (await alice.get(f"operations/{op_id}")).json
        if op["state"] != "running":
            break
        await asyncio.sleep(0.05)
    assert op["state"] == "succeeded", op
    assert op["result"] == {"version": 1, "files": 2, "ok": True, "problems": []}, op
    assert op["bytes_done"] == op["bytes_total"] == 300_001 and op["files_done"] == 2, op
    r = await bob.post(url.format("v1"))  # none running: a new one
    assert r.status == 202 and r.json["id"] != op_id, r
    assert (await alice.post(url.format("v9"))).status == 404


@pytest.fixture
def leftover_operation(db_url: str) -> str:
    """An operation a killed workbench left 'running' in its database (before the server here
    starts on it)."""
    db = Database(db_url)
    with db.transaction(write=True) as s:
        user = users.ensure_user(s, Identity("alice", "Alice"))
        op = Operation(id=operations.time_ordered_id(), user_id=user.id, kind="gc", message="")
        s.add(op)
        s.flush()
        op_id = op.id
    db.dispose()
    return op_id


async def test_operations_can_be_cancelled_and_none_is_left_running_by_a_restart(
    leftover_operation: str, api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /operations/{id}/cancel stops a running operation at its next step; an operation
    the previous run left 'running' reads as failed, not as running forever."""
    alice, owner = api("alice"), api(OWNER)
    op = (await alice.get(f"operations/{leftover_operation}")).json
    assert op["state"] == "failed" and op["error"] == operations.INTERRUPTED
    assert (await alice.post(f"operations/{leftover_operation}/cancel")).status == 409
    await alice.post("projects", {"name": "Lab"})
    await upload(alice, "lab", "d", {"f": os.urandom(600_000)})
    check = dataset_jobs.blake3_hex
    # a big store: a verify takes a while (here 0.3 s a chunk)
    monkeypatch.setattr(dataset_jobs, "blake3_hex", lambda b: (time.sleep(0.3), check(b))[1])
    r = await owner.post("storage/verify")
    assert r.status == 202, r
    op_id = r.json["id"]
    await asyncio.sleep(0.5)
    asked = await owner.post(f"operations/{op_id}/cancel")
    assert asked.status == 200 and asked.json["cancel_requested"], asked
    for _ in range(100):
        op = (await owner.get(f"operations/{op_id}")).json
        if op["state"] != "running":
            break
        await asyncio.sleep(0.1)
    assert op["state"] == "cancelled" and op["error"] == "cancelled", op
    assert op["bytes_done"] < 600_000 and op["result"] == {}


async def test_an_upload_committed_twice_at_once_is_one_version(api, db_url: str) -> None:
    """A client that retries a commit whose answer was slow: both requests wait while another
    writer holds the dataset; one publishes the upload, the other answers that version
    ('replayed'), never a second version of the same files."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    await alice.post("projects/lab/datasets", {"name": "d"})
    declared, chunks = declare({"x.txt": b"once"})
    base = "projects/lab/datasets/d/uploads"
    r = await alice.post(base, {"files": declared})
    upload_id = r.json["id"]
    await alice.post(f"{base}/{upload_id}/chunks", raw=frame_chunks(list(chunks.items())))
    db = Database(db_url)
    try:
        with db.transaction(write=True) as s:  # another commit of this dataset, in progress
            s.execute(select(Dataset.id).where(Dataset.name == "d").with_for_update())
            commits = [
                asyncio.ensure_future(alice.post(f"{base}/{upload_id}/commit", {}))
                for _ in range(2)
            ]
            await asyncio.sleep(1.5)
        answers = await asyncio.gather(*commits)
    finally:
        db.dispose()
    assert [r.status for r in answers] == [201, 201], answers
    assert sorted(r.json["replayed"] for r in answers) == [False, True], answers
    assert {r.json["version"]["version"] for r in answers} == {1}
    r = await alice.get("projects/lab/datasets/d/versions")
    assert [v["version"] for v in r.json["items"]] == [1]


async def test_a_commit_retried_after_its_answer_was_lost_answers_its_version(api) -> None:
    """The answer to a commit was lost (a dropped connection) and the client asks again: the
    retry was a 409 'published', so the client could not tell which version it had made. The
    same request now answers that version again (201 or 200 'unchanged', as the first did,
    'replayed'); another request for a published upload is a 409 naming the version."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    base = "projects/lab/datasets/d/uploads"

    async def uploaded(files: dict[str, bytes]) -> str:
        declared, chunks = declare(files)
        upload_id = (await alice.post(base, {"files": declared})).json["id"]
        await alice.post(f"{base}/{upload_id}/chunks", raw=frame_chunks(list(chunks.items())))
        return upload_id

    first = await uploaded({"a.txt": b"one"})
    ask = {"message": "first", "mode": "replace"}
    r = await alice.post(f"{base}/{first}/commit", ask)
    assert r.status == 201 and not r.json["replayed"], r
    made = r.json["version"]
    second = await uploaded({"a.txt": b"two"})
    ask2 = {"message": "second", "parent": "v1", "mode": "update"}
    assert (await alice.post(f"{base}/{second}/commit", ask2)).status == 201
    for _ in range(2):
        r = await alice.post(f"{base}/{first}/commit", ask)
        assert r.status == 201 and r.json["replayed"] and not r.json["unchanged"], r
        assert r.json["version"] == {**made, "tags": []}  # 'latest' moved on to v2 since
    for other in ({"message": "other"}, {"message": "first", "mode": "update"}, {}):
        r = await alice.post(f"{base}/{first}/commit", other)
        assert r.status == 409 and r.json["error"] == "published", (other, r)
        assert "published already, as v1" in r.json["message"], r
    # an upload of the latest version's files made no version: its retry says so again
    same = await uploaded({"a.txt": b"two"})
    for replayed in (False, True):
        r = await alice.post(f"{base}/{same}/commit", {"message": "again"})
        assert r.status == 200 and r.json["unchanged"] and r.json["replayed"] is replayed, r
        assert r.json["version"]["version"] == 2
    # someone else's upload stays theirs
    bob = api("bob")
    await bob.get("me")
    await alice.post("projects/lab/members", {"user": "bob", "role": "editor"})
    r = await bob.post(f"{base}/{first}/commit", ask)
    assert r.status == 403 and "belongs to someone else" in r.json["message"], r
    r = await alice.get("projects/lab/datasets/d/versions")
    assert [v["version"] for v in r.json["items"]] == [2, 1]


async def test_a_declared_media_type_must_be_one(api) -> None:
    """A file's media type becomes its download's Content-Type: one with a line break (a header
    of its own) was stored and made every download of the file a 500."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    base = "projects/lab/datasets/d/uploads"
    for bad in ("text/plain\r\nX-Evil: 1", "text/plain\n", "csv", "text/ csv", "a/b; c", "é/x"):
        declared, _chunks = declare({"a.txt": b"hello"})
        declared[0]["media_type"] = bad
        r = await alice.post(base, {"files": declared})
        assert r.status == 400 and r.json["error"] == "invalid_manifest", (bad, r)
        assert r.json["message"].startswith("files[0].media_type: "), r
    good = ["text/csv", 'text/csv; charset="utf-8"', "application/vnd.apache.parquet"]
    declared, chunks = declare({f"{n}.txt": b"hello" for n in range(len(good))})
    for entry, media_type in zip(declared, good, strict=True):
        entry["media_type"] = media_type
    r = await alice.post(base, {"files": declared})
    assert r.status == 201, r
    upload_id = r.json["id"]
    await alice.post(f"{base}/{upload_id}/chunks", raw=frame_chunks(list(chunks.items())))
    assert (await alice.post(f"{base}/{upload_id}/commit", {})).status == 201
    for n, media_type in enumerate(good):
        r = await alice.get(f"projects/lab/datasets/d/versions/v1/files/{n}.txt")
        assert r.status == 200 and r.headers["Content-Type"] == media_type, r


async def test_a_file_stored_with_a_bad_media_type_still_downloads(api, db_url: str) -> None:
    """Files stored before media types were checked may have one with a line break: every
    download (and HEAD) of such a file was a 500. It is served as application/octet-stream,
    and no header carries a control character."""
    from jupyter_workbench.db.models import DatasetFile

    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    await upload(alice, "lab", "d", {"a.txt": b"hello", "b.txt": b"world"})
    db = Database(db_url)
    try:
        with db.transaction(write=True) as s:
            for row in s.scalars(select(DatasetFile)):
                row.media_type = {"a.txt": "text/plain\r\nX-Evil: 1", "b.txt": "é/x"}[row.path]
    finally:
        db.dispose()
    for path, body in (("a.txt", b"hello"), ("b.txt", b"world")):
        url = f"projects/lab/datasets/d/versions/v1/files/{path}"
        r = await alice.get(url)
        assert r.status == 200 and r.body == body, (path, r)
        assert r.headers["Content-Type"] == "application/octet-stream" and "X-Evil" not in r.headers
        r = await alice.request("HEAD", url)
        assert r.status == 200 and r.headers["Content-Type"] == "application/octet-stream", r
        r = await alice.get(url, headers={"Range": "bytes=1-2"})
        assert r.status == 206 and r.body == body[1:3], r
    r = await alice.get("projects/lab/datasets/d/versions/v1/archive")
    assert r.status == 200, r


async def test_first_commits_racing_on_a_new_dataset_both_land(api, db_url: str) -> None:
    """Two clients commit to a dataset nobody created yet (a commit creates it) at the same
    time: both land, as v1 and v2, rather than one being told the dataset 'already exists'."""
    from jupyter_workbench.db.models import Project

    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    base = "projects/lab/datasets/d/uploads"
    db = Database(db_url)
    try:
        with db.transaction(write=True) as s:  # the project busy: both creations queue
            s.execute(select(Project.id).where(Project.slug == "lab").with_for_update())
            starts = [
                asyncio.ensure_future(alice.post(base, {"files": declare({f"{n}.txt": b"x"})[0]}))
                for n in range(2)
            ]
            await asyncio.sleep(1.5)
        answers = await asyncio.gather(*starts)
    finally:
        db.dispose()
    assert [r.status for r in answers] == [201, 201], answers
    for n, r in enumerate(answers):
        chunks = declare({f"{n}.txt": b"x"})[1]
        await alice.post(f"{base}/{r.json['id']}/chunks", raw=frame_chunks(list(chunks.items())))
        assert (await alice.post(f"{base}/{r.json['id']}/commit", {})).status == 201
    r = await alice.get("projects/lab/datasets/d/versions")
    assert [v["version"] for v in r.json["items"]] == [2, 1]


async def test_a_resumed_download_of_a_moved_tag_restarts_with_if_range(api) -> None:
    """A download of 'latest' resumed after a new commit asks for the rest of the file it had
    (If-Range: its ETag); it got the rest of the new file, spliced onto the old one's start.
    A changed file is sent whole (200), as RFC 9110 asks; an unchanged one resumes (206)."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    await upload(alice, "lab", "d", {"f.txt": b"0123456789"})
    url = "projects/lab/datasets/d/versions/latest/files/f.txt"
    old = (await alice.get(url)).headers["ETag"]
    r = await alice.get(url, headers={"Range": "bytes=5-", "If-Range": old})
    assert r.status == 206 and r.body == b"56789"
    await upload(alice, "lab", "d", {"f.txt": b"ABCDEFGHIJKLMNOP"})
    for validator in (old, f"W/{old}", "Sun, 29 Nov 2026 04:55:37 GMT"):
        r = await alice.get(url, headers={"Range": "bytes=5-", "If-Range": validator})
        assert r.status == 200 and r.body == b"ABCDEFGHIJKLMNOP", (validator, r)
        assert "Content-Range" not in r.headers
    r = await alice.get(url, headers={"Range": "bytes=5-", "If-Range": r.headers["ETag"]})
    assert r.status == 206 and r.body == b"FGHIJKLMNOP"


async def test_a_garbage_collection_is_audited(api) -> None:
    """A garbage collection deletes stored bytes for good: the audit trail names who asked for
    it, through which project (a dry run, which changes nothing, is not an event)."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    for dry_run in (True, False):
        r = await alice.post("projects/lab/datasets-gc", {"dry_run": dry_run})
        assert r.status == 202, r
        op_id = r.json["id"]
    events = (await alice.get("audit", params={"action": "dataset.gc"})).json["items"]
    assert [(e["actor"], e["project"], e["object_id"]) for e in events] == [
        ("alice", "lab", op_id)
    ], events
    assert events[0]["summary"] == {"dry_run": False}


async def test_abandoning_an_upload_is_audited(api) -> None:
    """DELETE of an open upload frees what it stored (its chunks become collectable): the audit
    trail names who abandoned which upload, like every other dataset mutation."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    assert (await alice.post("projects/lab/datasets", {"name": "d"})).status == 201
    declared, _chunks = declare({"a.txt": b"abandoned"})
    r = await alice.post("projects/lab/datasets/d/uploads", {"files": declared})
    upload_id = r.json["id"]
    assert (await alice.delete(f"projects/lab/datasets/d/uploads/{upload_id}")).status == 204
    assert (await alice.delete(f"projects/lab/datasets/d/uploads/{upload_id}")).status == 409
    r = await alice.get("audit", params={"action": "dataset.upload_abandon"})
    assert [(e["actor"], e["project"], e["object_id"], e["summary"]) for e in r.json["items"]] == [
        ("alice", "lab", "d", {"upload": upload_id})
    ], r.json
    assert (await alice.get("projects/lab/datasets/d")).status == 200  # made by its owner
    # its latest: none yet, said so (was "has no version 'latest'", as if a tag were missing)
    r = await alice.get("projects/lab/datasets/d/versions/latest")
    assert r.status == 404 and r.json["error"] == "no_versions", r
    assert r.json["message"] == "dataset 'd' has no versions yet: commit files to it first"


async def test_a_first_upload_ended_unpublished_leaves_no_empty_dataset(api) -> None:
    """The first upload to a new name makes its dataset; abandoned, refused or expired before
    anything was published, it left a dataset with no version in every list. The dataset
    goes with the last such upload (audited as a delete), and the next upload makes it anew;
    a dataset that has a version, an open upload or a description stays."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    base = "projects/lab/datasets/fresh/uploads"
    declared, chunks = declare({"a.txt": b"first try"})
    first = (await alice.post(base, {"files": declared})).json["id"]
    second = (await alice.post(base, {"files": declared})).json["id"]  # another kernel's
    assert (await alice.delete(f"{base}/{first}")).status == 204
    assert (await alice.get("projects/lab/datasets/fresh")).status == 200  # second is open
    assert (await alice.delete(f"{base}/{second}")).status == 204
    r = await alice.get("projects/lab/datasets/fresh")
    assert r.status == 404, r
    assert (await alice.get(f"{base}/{second}")).status == 404
    r = await alice.get("audit", params={"action": "dataset.delete"})
    assert [(e["actor"], e["object_id"], e["summary"]) for e in r.json["items"]] == [
        ("alice", "fresh", {"versions": 0, "reason": "first_upload_ended"})
    ], r.json
    # a commit refused for its files ends the upload the same way
    lie = [dict(declared[0], digest="0" * 64)]
    refused = (await alice.post(base, {"files": lie})).json
    frames = frame_chunks([(d, chunks[d]) for d in refused["missing"]])
    r = await alice.post(f"{base}/{refused['id']}/chunks", raw=frames,
                         headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert r.status == 200, r
    r = await alice.post(f"{base}/{refused['id']}/commit", {})
    assert r.status == 400 and r.json["error"] == "digest_mismatch", r
    assert (await alice.get("projects/lab/datasets/fresh")).status == 404
    # a description given meanwhile is someone's intent: kept
    third = (await alice.post(base, {"files": declared})).json["id"]
    r = await alice.patch("projects/lab/datasets/fresh", {"description": "raw events"})
    assert r.status == 200, r
    assert (await alice.delete(f"{base}/{third}")).status == 204
    assert (await alice.get("projects/lab/datasets/fresh")).status == 200
    # one published version: later uploads ending unpublished change nothing
    assert (await upload(alice, "lab", "once", {"a.txt": b"v1"})).status == 201
    later = (await alice.post("projects/lab/datasets/once/uploads", {"files": declared})).json
    assert (await alice.delete(f"projects/lab/datasets/once/uploads/{later['id']}")).status == 204
    assert (await alice.get("projects/lab/datasets/once")).json["latest_version"] == 1


async def test_an_upload_ended_by_a_refused_commit_is_audited(api) -> None:
    """A commit refused for a file digest or chunk length that does not match, or a 'replace'
    of no files, ends the upload (its chunks become collectable) but left no audit event: the
    trail did not say where the upload went. Each is audited as an abandon, with the reason."""
    from jupyter_workbench.storage.chunking import blake3_hex

    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    assert (await upload(alice, "lab", "d", {"a.txt": b"hello"})).status == 201
    base = "projects/lab/datasets/d/uploads"
    known = blake3_hex(b"hello")
    bad_digest, chunks = declare({"b.txt": b"other bytes"})
    bad_digest[0]["digest"] = "0" * 64
    lie = {"path": "c.txt", "size": 7, "digest": known, "chunks": [[known, 7]]}
    ids = []
    for files in ([lie], bad_digest, []):
        r = await alice.post(base, {"files": files})
        assert r.status == 201, r
        ids.append(r.json["id"])
        if r.json["missing"]:
            frames = frame_chunks([(d, chunks[d]) for d in r.json["missing"]])
            r = await alice.post(
                f"{base}/{ids[-1]}/chunks",
                raw=frames,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert r.status == 200, r
        r = await alice.post(f"{base}/{ids[-1]}/commit", {"mode": "replace"})
        assert r.status == 400, r
        assert (await alice.get(f"{base}/{ids[-1]}")).json["state"] == "aborted"
    r = await alice.get("audit", params={"action": "dataset.upload_abandon"})
    got = [(e["actor"], e["project"], e["object_id"], e["summary"]) for e in r.json["items"]]
    assert sorted(got, key=lambda e: ids.index(e[3]["upload"])) == [
        ("alice", "lab", "d", {"upload": ids[0], "reason": "chunk_length_mismatch"}),
        ("alice", "lab", "d", {"upload": ids[1], "reason": "digest_mismatch"}),
        ("alice", "lab", "d", {"upload": ids[2], "reason": "empty_replace"}),
    ], r.json


async def test_open_uploads_are_limited_per_user_and_per_project(api, jp_serverapp) -> None:
    """Each open upload holds its manifest and pins chunks until it is committed, abandoned or
    expires: a client in a loop opened them without end. Past the limits a new one is a 409
    that says how many are open and which to abandon; abandoning one frees a place."""
    service = jp_serverapp.web_app.settings["workbench_service"]
    service.policy = dataclasses.replace(
        service.policy, max_open_uploads_per_user=2, max_open_uploads_per_project=3
    )
    alice, bob = api("alice"), api("bob")
    await bob.get("me")
    await alice.post("projects", {"name": "Lab"})
    await alice.post("projects/lab/members", {"user": "bob", "role": "editor"})
    base = "projects/lab/datasets/{}/uploads"
    ids = []
    for name in ("d", "e"):
        r = await alice.post(base.format(name), {"files": declare({"a": name.encode()})[0]})
        assert r.status == 201, r
        ids.append(r.json["id"])
    r = await alice.post(base.format("d"), {"files": declare({"a": b"3"})[0]})
    assert r.status == 409 and r.json["error"] == "too_many_uploads", r
    assert r.json["message"].startswith(
        "uploads: you have 2 open uploads in project 'lab', the most allowed "
        "(Workbench.max_open_uploads_per_user); commit or abandon one first (DELETE "
    ), r
    assert r.json["message"].endswith(f"your oldest: d/uploads/{ids[0]}, e/uploads/{ids[1]}")
    r = await bob.post(base.format("d"), {"files": declare({"a": b"b"})[0]})
    assert r.status == 201, r  # his own place
    r = await bob.post(base.format("d"), {"files": declare({"a": b"c"})[0]})
    assert r.status == 409 and "the project has 3 open uploads" in r.json["message"], r
    assert (await alice.delete(f"{base.format('d')}/{ids[0]}")).status == 204
    r = await bob.post(base.format("d"), {"files": declare({"a": b"c"})[0]})
    assert r.status == 201, r
    # a committed upload is no longer open
    r = await alice.post(base.format("e"), {"files": declare({"a": b"x"})[0]})
    assert r.status == 409, r
    _declared, chunks = declare({"a": b"e"})
    await alice.post(f"{base.format('e')}/{ids[1]}/chunks", raw=frame_chunks(list(chunks.items())))
    assert (await alice.post(f"{base.format('e')}/{ids[1]}/commit", {})).status == 201
    r = await alice.post(base.format("e"), {"files": declare({"a": b"x"})[0]})
    assert r.status == 201, r


async def test_open_uploads_are_listed_to_their_owner(api, jp_serverapp) -> None:
    """The ids of one's open uploads appeared only in the 409 of one upload too many, so a
    client that lost them could not free a place. GET .../datasets-uploads lists the caller's
    open uploads in the project (everyone's, for an administrator), oldest first, a page at a
    time; committed and abandoned ones are not open."""
    alice, bob = api("alice"), api("bob")
    await bob.get("me")
    await alice.post("projects", {"name": "Lab"})
    await alice.post("projects/lab/members", {"user": "bob", "role": "editor"})
    base = "projects/lab/datasets/{}/uploads"
    ids = []
    for name, who in (("d", alice), ("e", alice), ("d", bob), ("d", alice)):
        r = await who.post(base.format(name), {"files": declare({"a": name.encode()})[0]})
        assert r.status == 201, r
        ids.append(r.json["id"])
    assert (await alice.delete(f"{base.format('d')}/{ids[3]}")).status == 204
    r = await alice.get("projects/lab/datasets-uploads")
    assert r.status == 200, r
    assert [(u["id"], u["dataset"], u["owner"], u["state"]) for u in r.json["items"]] == [
        (ids[0], "d", "alice", "open"),
        (ids[1], "e", "alice", "open"),
    ]
    r = await alice.get("projects/lab/datasets-uploads", params={"limit": 1})
    assert [u["id"] for u in r.json["items"]] == [ids[0]] and r.json["next_cursor"]
    r = await alice.get(
        "projects/lab/datasets-uploads", params={"limit": 1, "cursor": r.json["next_cursor"]}
    )
    assert [u["id"] for u in r.json["items"]] == [ids[1]] and r.json["next_cursor"] is None
    r = await alice.get("projects/lab/datasets-uploads", params={"dataset": "e"})
    assert [u["id"] for u in r.json["items"]] == [ids[1]]
    r = await bob.get("projects/lab/datasets-uploads")
    assert [(u["id"], u["owner"]) for u in r.json["items"]] == [(ids[2], "bob")]
    r = await api(OWNER).get("projects/lab/datasets-uploads", params={"sort": "-created"})
    assert [u["id"] for u in r.json["items"]] == [ids[2], ids[1], ids[0]], r
    r = await alice.get("projects/lab/datasets-uploads", params={"dataset": "nope"})
    assert r.status == 404, r
    r = await alice.get("projects/lab/datasets-uploads", params={"sort": "size"})
    assert r.status == 400 and "sort" in r.json["message"], r
    carol = api("carol")
    await carol.get("me")
    await alice.post("projects/lab/members", {"user": "carol", "role": "viewer"})
    assert (await carol.get("projects/lab/datasets-uploads")).status == 403


async def test_paths_that_differ_only_in_unicode_normalization_are_one_path(api) -> None:
    """'café.txt' typed on Linux (NFC) and read from a Mac's disk (NFD) look the same and are
    one file wherever names are normalized (macOS): a version holding both lost one of them
    at `get` or when its tar was unpacked there. Both in one version are refused."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    composed, decomposed = "caf\u00e9.txt", "cafe\u0301.txt"
    declared = declare({composed: b"1", decomposed: b"2"})[0]
    r = await alice.post("projects/lab/datasets/d/uploads", {"files": declared})
    assert r.status == 400 and r.json["error"] == "duplicate_path", r
    assert "Unicode normalization" in r.json["message"]
    kelvin = {"\u212a.txt": b"1", "K.txt": b"2"}  # KELVIN SIGN is 'K' once normalized
    r = await alice.post("projects/lab/datasets/d/uploads", {"files": declare(kelvin)[0]})
    assert r.status == 400 and r.json["error"] == "duplicate_path", r
    assert (await upload(alice, "lab", "d", {composed: b"1"})).status == 201
    r = await upload(alice, "lab", "d", {decomposed: b"2"}, mode="update")
    assert r.status == 400 and r.json["error"] == "duplicate_path", r
    r = await upload(alice, "lab", "d", {decomposed: b"2"}, mode="update", delete=[composed])
    assert r.status == 201, r  # renamed: one of them only


async def test_a_file_listing_counts_chunks_without_loading_their_lists(api, jp_serverapp) -> None:
    """A page of 500 files of 1 GB each holds 500 lists of 16,000 chunks (550 MB of JSON): the
    listing read them all from the database only to count them, seconds a page. The database
    counts them; the lists themselves come with ``?chunks=true``."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    files = {"big.bin": os.urandom(900_000), "small.txt": b"x"}
    assert (await upload(alice, "lab", "d", files)).status == 201
    with sql_seen(jp_serverapp) as seen:
        r = await alice.get("projects/lab/datasets/d/versions/v1/files")
    columns = [c for _, names in seen for c in names]
    assert r.status == 200, r
    counts = {f["path"]: f["chunk_count"] for f in r.json["items"]}
    assert counts["small.txt"] == 1 and counts["big.bin"] > 3
    assert "chunks" not in columns and "digest" in columns
    r = await alice.get("projects/lab/datasets/d/versions/v1/files", params={"chunks": "true"})
    assert {f["path"]: len(f["chunks"]) for f in r.json["items"]} == counts
    assert all(f["chunk_count"] == len(f["chunks"]) for f in r.json["items"])


async def test_the_same_lineage_recorded_twice_at_once_is_one_record(api, db_url: str) -> None:
    """A run that logs its input twice at once (a retry of a slow request): both answers are
    the one record, not a 500 for the second one's unique-key violation."""
    from jupyter_workbench.db.models import DatasetVersion

    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    await upload(alice, "lab", "d", {"f": b"1"})
    url = "projects/lab/datasets/d/versions/v1/lineage"
    db = Database(db_url)
    try:
        with db.transaction(write=True) as s:  # the version busy: both records queue
            s.execute(select(DatasetVersion.id).with_for_update())
            posts = [
                asyncio.ensure_future(alice.post(url, {"consumer": "run:7"})) for _ in range(2)
            ]
            await asyncio.sleep(1.5)
        answers = await asyncio.gather(*posts)
    finally:
        db.dispose()
    assert [r.status for r in answers] == [201, 201], answers
    r = await alice.get(url)
    assert [x["consumer"] for x in r.json["items"]] == ["run:7"]
    events = (await alice.get("audit", params={"action": "dataset.lineage"})).json["items"]
    assert len(events) == 1


async def test_a_declared_chunk_length_must_be_the_chunks_own(api) -> None:
    """An upload may name a chunk the store already has without sending it: declared with
    a longer length than its bytes (and a file size to match), the commit passed every check,
    and the version's file said 7 bytes but held 5, so its downloads came short and every tar
    of the version was corrupt. Two lengths for one chunk are refused too."""
    from jupyter_workbench.storage.chunking import blake3_hex

    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    assert (await upload(alice, "lab", "d", {"a.txt": b"hello"})).status == 201
    known = blake3_hex(b"hello")
    base = "projects/lab/datasets/d/uploads"
    lie = {"path": "b.txt", "size": 7, "digest": known, "chunks": [[known, 7]]}
    r = await alice.post(base, {"files": [lie]})
    assert r.status == 201 and r.json["missing"] == [], r
    r = await alice.post(f"{base}/{r.json['id']}/commit", {})
    assert r.status == 400 and r.json["error"] == "chunk_length_mismatch", r
    assert r.json["message"].startswith("files[b.txt]: chunk "), r
    assert (await alice.get("projects/lab/datasets/d")).json["latest_version"] == 1
    truth = {"path": "c.txt", "size": 5, "digest": known, "chunks": [[known, 5]]}
    r = await alice.post(base, {"files": [truth, lie]})
    assert r.status == 400 and r.json["error"] == "invalid_manifest", r
    assert "declared with two lengths" in r.json["message"]


async def test_a_batch_of_chunks_does_not_reread_the_uploads_manifest(api, jp_serverapp) -> None:
    """Each batch of chunks read the upload's whole manifest to learn the declared lengths:
    0.35 s a batch for 200,000 chunks (13 GB), so that a big upload spent most of its time, and
    ever more of it, rereading what it declared. A manifest does not change: it is read once."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    declared, chunks = declare({f"{n}.txt": str(n).encode() for n in range(3)})
    base = "projects/lab/datasets/d/uploads"
    r = await alice.post(base, {"files": declared})
    upload_id, digests = r.json["id"], r.json["missing"]

    async def send(digest: str) -> None:
        r = await alice.post(
            f"{base}/{upload_id}/chunks", raw=frame_chunks([(digest, chunks[digest])])
        )
        assert r.status == 200 and r.json["stored"] == 1, r

    await send(digests[0])  # the first batch reads the manifest
    with sql_seen(jp_serverapp) as seen:
        for digest in digests[1:]:
            await send(digest)
    columns = [c for _, names in seen for c in names]
    assert "files" not in columns and "state" in columns
    r = await alice.post(f"{base}/{upload_id}/chunks", raw=frame_chunks([(digests[0], b"xy")]))
    assert r.status == 400 and r.json["error"] == "chunk_length_mismatch", r
    r = await alice.post(f"{base}/{upload_id}/chunks", raw=frame_chunks([("ab" * 32, b"x")]))
    assert r.status == 400 and r.json["error"] == "unknown_chunk", r
    assert (await alice.post(f"{base}/{upload_id}/commit", {})).status == 201


async def test_an_empty_file_downloads_with_its_own_media_type(api) -> None:
    """With no byte to send, the download ended with the JSON API's own Content-Type: an empty
    CSV came as application/json."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    await upload(alice, "lab", "d", {"empty.csv": b"", "full.csv": b"a\n"})
    for path in ("empty.csv", "full.csv"):
        r = await alice.get(f"projects/lab/datasets/d/versions/v1/files/{path}")
        assert r.status == 200 and r.headers["Content-Type"] == "text/csv", (path, r)


async def test_a_file_answers_head_requests(api) -> None:
    """Tools that read a file over HTTP by ranges ask its size with HEAD first (DuckDB's httpfs,
    Polars, curl -I): the answer was 405, so they could not read a dataset's Parquet files."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    await upload(alice, "lab", "d", {"t.parquet": b"PAR1" + b"x" * 100 + b"PAR1"})
    url = "projects/lab/datasets/d/versions/v1/files/t.parquet"
    full = await alice.get(url)
    r = await alice.request("HEAD", url)
    assert r.status == 200 and r.body == b"", r
    for name in ("Content-Length", "ETag", "Accept-Ranges", "Content-Type", "X-Dataset-Version"):
        assert r.headers[name] == full.headers[name], name
    assert r.headers["Content-Length"] == "108"
    r = await alice.request("HEAD", url, headers={"Range": "bytes=-8"})
    assert r.status == 206 and r.body == b"" and r.headers["Content-Range"] == "bytes 100-107/108"
    assert r.headers["Content-Length"] == "8"
    r = await alice.request("HEAD", url, headers={"If-None-Match": full.headers["ETag"]})
    assert r.status == 304
    assert (await alice.request("HEAD", url.replace("t.parquet", "nope"))).status == 404
    assert (await api(None).request("HEAD", url)).status == 401


async def upload_in_small_chunks(client, slug: str, name: str, path: str, data: bytes) -> None:
    """Upload ``data`` declared as chunks of 5-13 bytes: a file of thousands of chunks (many
    spans) in a few kilobytes."""
    from jupyter_workbench.storage.chunking import blake3_hex

    pieces, position, size = [], 0, 5
    while position < len(data):
        pieces.append(data[position : position + size])
        position += size
        size = 5 + (size * 7) % 9
    declared = [
        {
            "path": path,
            "size": len(data),
            "digest": blake3_hex(data),
            "chunks": [[blake3_hex(p), len(p)] for p in pieces],
        }
    ]
    base = f"projects/{slug}/datasets/{name}/uploads"
    r = await client.post(base, {"files": declared})
    assert r.status == 201, r
    upload_id, chunks = r.json["id"], {blake3_hex(p): p for p in pieces}
    r = await client.post(
        f"{base}/{upload_id}/chunks",
        raw=frame_chunks([(d, chunks[d]) for d in r.json["missing"]]),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status == 200, r
    r = await client.post(f"{base}/{upload_id}/commit", {"message": "small chunks"})
    assert r.status == 201, r


async def test_ranges_of_a_file_of_many_chunks_read_only_their_part_of_its_list(
    api, jp_serverapp
) -> None:
    """A ranged GET of a 100 GB file (1.5M chunks) read the file's whole chunk list from the
    database, a second a request, and a seekable reader makes many. It reads the spans of the
    list that overlap the range; the bytes are the same across chunk and span boundaries."""
    from jupyter_workbench.core.datasets import SPAN_CHUNKS

    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    data = os.urandom(40_000)  # about 4,400 chunks: 5 spans
    await upload_in_small_chunks(alice, "lab", "d", "many.bin", data)
    url = "projects/lab/datasets/d/versions/v1/files/many.bin"
    r = await alice.get("projects/lab/datasets/d/versions/v1/files", params={"chunks": "true"})
    chunks = r.json["items"][0]["chunks"]
    assert len(chunks) > 4 * SPAN_CHUNKS
    span_start = sum(n for _, n in chunks[:SPAN_CHUNKS])  # where the second span starts
    cases = [
        (0, 0), (0, 4), (3, 11), (span_start - 1, span_start), (span_start, span_start),
        (span_start - 7, span_start + 30), (span_start * 2 - 3, span_start * 3 + 5),
        (1000, 39_000), (len(data) - 1, len(data) - 1), (len(data) - 9, len(data) + 50),
    ]  # fmt: skip
    for start, last in cases:
        with sql_seen(jp_serverapp) as seen:
            r = await alice.get(url, headers={"Range": f"bytes={start}-{last}"})
        assert r.status == 206 and r.body == data[start : last + 1], (start, last)
        lists = [sql for sql, names in seen if "chunks" in names]
        assert lists and all("dataset_file_spans" in sql and "LIMIT" in sql for sql in lists)
        assert not any("dataset_files.chunks" in sql for sql, _ in seen)
    r = await alice.get(url)
    assert r.status == 200 and r.body == data
    r = await alice.request("HEAD", url, headers={"Range": f"bytes={span_start}-"})
    assert r.status == 206 and r.headers["Content-Length"] == str(len(data) - span_start)


async def test_migration_0012_keeps_every_answer_and_its_downgrade_restores_the_column(
    api, jp_serverapp, tmp_path
) -> None:
    """0012 drops ``dataset_files.chunks`` (the spans hold the lists) and fills the new
    ``chunk_count``: file listings with and without chunks, diffs, verification, materialized
    folders and ranged reads answer as before, for a file of many spans copied into a second
    version, on both backends. The downgrade rebuilds the column from the spans; a file whose
    spans went missing gets them again from it on the way back up."""
    from alembic import command
    from sqlalchemy import JSON, Integer, String, column, table

    from jupyter_workbench.core.datasets import SPAN_CHUNKS
    from jupyter_workbench.db.database import alembic_config

    service = jp_serverapp.web_app.settings["workbench_service"]
    alice, who = api("alice"), Identity("alice")
    await alice.post("projects", {"name": "Lab"})
    many = os.urandom(40_000)  # about 4,400 chunks: 5 spans
    await upload_in_small_chunks(alice, "lab", "d", "many.bin", many)
    r = await upload(alice, "lab", "d", {"t.csv": b"id\n1\n", "empty": b""}, mode="update")
    assert r.status == 201, r
    r = await upload(alice, "lab", "d", {"t.csv": b"id\n1\n2\n", "x": b"x"}, mode="update")
    assert r.status == 201, r
    base, url = "projects/lab/datasets/d", "projects/lab/datasets/d/versions/v3/files/many.bin"
    cases = [(0, 4), (SPAN_CHUNKS * 9 - 3, SPAN_CHUNKS * 9 + 20), (1000, 39_000), (39_990, 50_000)]

    async def answers(run: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for v in ("v1", "v2", "v3"):
            r = await alice.get(f"{base}/versions/{v}/files", params={"chunks": "true"})
            out[f"chunks {v}"] = r.json
            out[f"files {v}"] = (await alice.get(f"{base}/versions/{v}/files")).json
        out["diff"] = (await alice.get(f"{base}/diff", params={"from": "v2", "to": "v3"})).json
        for start, last in cases:
            r = await alice.get(url, headers={"Range": f"bytes={start}-{last}"})
            out[f"range {start}"] = (r.status, r.headers["Content-Range"], r.body)
        out["whole"] = (await alice.get(url)).body
        out["verify"] = service.datasets.verify_version(who, "lab", "d", "v3")
        shutil.rmtree(service.datasets.cache_dir, ignore_errors=True)  # read the chunks again
        done = service.datasets.materialize(who, "lab", "d", "v3", tmp_path / run)
        out["materialize"] = {k: v for k, v in done.items() if k != "path"}
        out["materialized"] = {p.name: p.read_bytes() for p in (tmp_path / run).iterdir()}
        return out

    before = await answers("before")
    listed = before["chunks v3"]["items"]
    assert [f["chunk_count"] for f in listed] == [len(f["chunks"]) for f in listed]
    assert listed[1]["path"] == "many.bin" and listed[1]["chunk_count"] > 4 * SPAN_CHUNKS
    assert before["verify"]["ok"] and before["materialized"]["many.bin"] == many
    assert before["materialize"]["fetched"] == 4

    old_files = table(
        "dataset_files",
        column("id", Integer),
        column("version_id", Integer),
        column("path", String),
        column("chunks", JSON),
    )
    db_url = service.db.url.render_as_string(hide_password=False)
    db = Database(db_url)
    try:
        service.db.engine.dispose()  # the server's connections, as a restart would
        with db.engine.begin() as conn:
            cfg = alembic_config(db_url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0011")
        with db.engine.begin() as conn:
            got = {
                (v, path): chunks
                for v, path, chunks in conn.execute(
                    select(old_files.c.version_id, old_files.c.path, old_files.c.chunks)
                )
            }
            versions = sorted({v for v, _path in got})
            for number, version_id in enumerate(versions, 1):
                for item in before[f"chunks v{number}"]["items"]:
                    assert got[(version_id, item["path"])] == item["chunks"], item["path"]
            # a file stored by a server that never wrote its spans (0011 is defensive too)
            many_v1 = conn.execute(
                select(old_files.c.id).where(
                    old_files.c.version_id == versions[0], old_files.c.path == "many.bin"
                )
            ).scalar_one()
            conn.execute(text("DELETE FROM dataset_file_spans WHERE file_id = :f"), {"f": many_v1})
        db.migrate()
        with db.engine.connect() as conn:
            assert "chunks" not in {c["name"] for c in inspect(conn).get_columns("dataset_files")}
    finally:
        db.dispose()
    service.db.engine.dispose()
    after = await answers("after")
    assert after == before


async def _archive_is(
    alice: Any, jp_serverapp: Any, files: dict[str, bytes]
) -> list[tuple[str, list[str]]]:
    """Dataset d v1's tar holds exactly ``files``; the SQL its reading ran."""
    with sql_seen(jp_serverapp) as seen:
        r = await alice.get("projects/lab/datasets/d/versions/v1/archive")
    assert r.status == 200, r
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert got == {f"d-v1/{path}": data for path, data in files.items()}
    return seen


async def test_a_versions_tar_reads_its_files_a_page_at_a_time(
    api, jp_serverapp, monkeypatch
) -> None:
    """The tar of a version read all its files' rows, chunk lists and all, before its first
    byte: a version of a million files took gigabytes. It reads them a page at a time, each
    file's chunks by spans; the archive is the same."""
    monkeypatch.setattr(dataset_jobs, "FILE_PAGE", 2)
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    files = {f"f{i}.bin": os.urandom(1000 * i) for i in range(5)} | {"big": os.urandom(300_000)}
    assert (await upload(alice, "lab", "d", files)).status == 201
    seen = await _archive_is(alice, jp_serverapp, files)
    pages = [sql for sql, names in seen if "FROM dataset_files" in sql and "path" in names]
    assert len(pages) == 4 and all("LIMIT" in sql for sql in pages), pages  # 2+2+2+0
    assert not any("dataset_files.chunks" in sql for sql, _ in seen)


async def test_a_versions_tar_reads_a_pages_small_files_chunks_at_once(
    api, jp_serverapp, monkeypatch
) -> None:
    """The tar read each file's chunk list, then located its chunks, in two queries of their
    own: a version of 5,000 small files took 40 seconds. A page's small files are read in two
    queries in all; a large file still a few spans at a time. The archive is the same."""
    monkeypatch.setattr(dataset_jobs, "FILE_PAGE", 10)
    monkeypatch.setattr(dataset_jobs, "TAR_PAGE_FILE_BYTES", 100_000)
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    files = {f"rows/{i:02d}.csv": f"n\n{i}\n".encode() * (i + 1) for i in range(25)}
    files |= {"empty.txt": b"", "big.bin": os.urandom(300_000)}
    assert (await upload(alice, "lab", "d", files)).status == 201
    seen = await _archive_is(alice, jp_serverapp, files)
    spans = [sql for sql, _ in seen if "FROM dataset_file_spans" in sql]
    located = [sql for sql, _ in seen if "FROM blob_chunks" in sql]
    # 3 pages of files: one query of chunk lists and one of locations each, and big.bin's own
    assert len(spans) == 3 + 1, spans
    assert len(located) == 3 + 1, located


async def test_an_update_commit_copies_the_kept_files_without_reading_them(
    api, jp_serverapp
) -> None:
    """A commit that updates a version of a million files read every file's row, chunk list
    and all, into memory first. The files it keeps are copied inside the database: their
    chunk lists are never read, and the new version is the same as before."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    files = {f"keep/{i}.bin": os.urandom(500 * i + 1) for i in range(4)}
    files |= {"big.bin": os.urandom(400_000), "gone.txt": b"bye", "old.txt": b"v1"}
    assert (await upload(alice, "lab", "d", files)).status == 201
    with sql_seen(jp_serverapp) as seen:
        r = await upload(
            alice, "lab", "d", {"old.txt": b"v2", "new.txt": b"new"}, mode="update",
            delete=["gone.txt"], message="update",
        )  # fmt: skip
    assert r.status == 201 and r.json["version"]["version"] == 2, r
    assert not any("dataset_files.chunks" in sql for sql, names in seen if "SELECT" in sql[:7])
    want = {p: d for p, d in files.items() if p != "gone.txt"} | {
        "old.txt": b"v2",
        "new.txt": b"new",
    }
    r = await alice.get("projects/lab/datasets/d/versions/v2/files", params={"chunks": "true"})
    v2 = {f["path"]: f for f in r.json["items"]}
    assert {p: f["size"] for p, f in v2.items()} == {p: len(d) for p, d in want.items()}
    r = await alice.get("projects/lab/datasets/d/versions/v1/files", params={"chunks": "true"})
    v1 = {f["path"]: f for f in r.json["items"]}
    assert all(v2[p] == v1[p] for p in v2 if p in v1 and p != "old.txt")
    for path, data in want.items():
        url = f"projects/lab/datasets/d/versions/v2/files/{path}"
        assert (await alice.get(url)).body == data, path
        r = await alice.get(url, headers={"Range": f"bytes={len(data) // 2}-"})
        assert r.body == data[len(data) // 2 :], path
    service = jp_serverapp.web_app.settings["workbench_service"]
    with service.db.transaction() as s:
        from jupyter_workbench.db.models import DatasetVersion, VersionChunk

        v2_id = s.scalar(select(DatasetVersion.id).where(DatasetVersion.version == 2))
        kept = set(
            s.scalars(select(VersionChunk.chunk_digest).where(VersionChunk.version_id == v2_id))
        )
    assert kept == {d for f in v2.values() for d, _n in f["chunks"]}


async def test_if_none_match_takes_lists_weak_tags_and_a_star(api) -> None:
    """A browser or cache revalidates with the tags it holds: a list, weak forms ('W/"..."'),
    or '*'. Only the exact tag was honoured, so each of those downloaded the file again."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    await upload(alice, "lab", "d", {"f.txt": b"0123456789"})
    url = "projects/lab/datasets/d/versions/v1/files/f.txt"
    tag = (await alice.get(url)).headers["ETag"]
    for header in (
        tag,
        f"W/{tag}",
        f'"blake3-{"0" * 64}", {tag}',
        f'W/"other", W/{tag}',
        f'"with,comma",{tag}',
        "*",
    ):
        for method in ("GET", "HEAD"):
            r = await alice.request(method, url, headers={"If-None-Match": header})
            assert r.status == 304 and r.body == b"" and r.headers["ETag"] == tag, (header, r)
    for header in ('"other"', 'W/"other", "blake3-"', tag[1:-1], tag + "x", f'"{tag}'):
        r = await alice.get(url, headers={"If-None-Match": header})
        assert r.status == 200 and r.body == b"0123456789", (header, r)


async def test_a_table_declared_with_media_type_parameters_is_diffed_as_a_table(api) -> None:
    """'text/csv; charset=utf-8' (or 'Text/CSV') is a CSV: the diff compared such files by
    digest only, as if they were not tables."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    base = "projects/lab/datasets/d/uploads"
    for data in (b"id\n1\n2\n", b"id\n1\n3\n4\n"):
        declared, chunks = declare({"t.csv": data, "u.csv": data})
        declared[0]["media_type"] = "text/csv; charset=utf-8"
        declared[1]["media_type"] = "Text/CSV"
        r = await alice.post(base, {"files": declared})
        await alice.post(f"{base}/{r.json['id']}/chunks", raw=frame_chunks(list(chunks.items())))
        assert (await alice.post(f"{base}/{r.json['id']}/commit", {})).status == 201
    r = await alice.get("projects/lab/datasets/d/diff", params={"from": "v1", "to": "v2"})
    assert [(t["path"], t.get("rows")) for t in r.json["tables"]] == [
        (path, {"old": 2, "new": 3, "added": 2, "removed": 1}) for path in ("t.csv", "u.csv")
    ], r.json


async def test_listing_tags_reads_their_versions_at_once(api, jp_serverapp) -> None:
    """Each tag of a page read its version in a query of its own: 500 for a full page."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    for n in range(6):
        await upload(alice, "lab", "d", {"f": str(n).encode()})
        await alice.request("PUT", f"projects/lab/datasets/d/tags/t{n}", {"version": f"v{n + 1}"})
    with sql_seen(jp_serverapp) as seen:
        r = await alice.get("projects/lab/datasets/d/tags", params={"limit": 100})
    statements = [q for q, _ in seen]
    assert r.json["items"][-1] == {"tag": "t5", "version": 6}
    assert [t["version"] for t in r.json["items"]] == [6, 1, 2, 3, 4, 5, 6]
    assert sum("FROM dataset_versions" in q for q in statements) <= 1, statements


async def test_listing_datasets_takes_a_few_queries_whatever_the_page_size(
    api, jp_serverapp
) -> None:
    """Each dataset of a page took four or five queries of its own (its latest version, its
    version count, its tags, the caller's role): 2,000 and more for a page of 500."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    await alice.post("projects", {"name": "Other"})
    for n in range(4):
        await upload(alice, "lab" if n % 2 else "other", f"d{n}", {"f": b"1"})
        await upload(alice, "lab" if n % 2 else "other", f"d{n}", {"f": b"2"})
    await alice.post("projects/lab/datasets", {"name": "empty"})
    await alice.request("PUT", "projects/lab/datasets/d1/tags/prod", {"version": "v1"})
    with sql_seen(jp_serverapp) as seen:
        r = await alice.get("datasets", params={"limit": 100})
    statements = [q for q, _ in seen]
    got = {(d["project"], d["name"]): d for d in r.json["items"]}
    assert len(got) == 5
    d1, empty = got[("lab", "d1")], got[("lab", "empty")]
    assert (d1["latest_version"], d1["version_count"], d1["can_write"]) == (2, 2, True)
    assert d1["tags"] == {"latest": "v2", "prod": "v1"}
    assert (empty["latest_version"], empty["version_count"], empty["tags"]) == (None, 0, {})
    assert len(statements) <= 12, statements
    one = await alice.get("projects/lab/datasets/d1")
    assert {k: one.json[k] for k in d1} == d1


async def test_listing_versions_reads_their_authors_and_parents_at_once(api, jp_serverapp) -> None:
    """Each version of a page read its author and its parent in queries of their own (a
    version's author is seldom the caller): up to 1,000 for a page of 500."""
    alice, bob = api("alice"), api("bob")
    await bob.get("me")
    await alice.post("projects", {"name": "Lab"})
    await alice.post("projects/lab/members", {"user": "bob", "role": "editor"})
    for n in range(5):
        await upload(bob, "lab", "d", {"f": str(n).encode()})
    with sql_seen(jp_serverapp) as seen:
        r = await alice.get("projects/lab/datasets/d/versions", params={"limit": 4})
    statements = [q for q, _ in seen]
    items = r.json["items"]
    assert [(v["version"], v["parent"], v["author"]) for v in items] == [
        (5, 4, "bob"),
        (4, 3, "bob"),
        (3, 2, "bob"),
        (2, 1, "bob"),
    ]
    assert items[0]["tags"] == ["latest"]
    # the caller and the page, then the authors and the parents: each in one query
    assert sum("FROM users" in q for q in statements) <= 2, statements
    assert sum("FROM dataset_versions" in q for q in statements) <= 2, statements


async def test_listing_lineage_reads_what_it_names_at_once(api, jp_serverapp) -> None:
    """Each lineage record read its version, dataset, project and recorder one query each."""
    alice, bob = api("alice"), api("bob")
    await bob.get("me")
    await alice.post("projects", {"name": "Lab"})
    await alice.post("projects/lab/members", {"user": "bob", "role": "editor"})
    for n in range(3):
        await upload(alice, "lab", f"d{n}", {"f": b"1"})
        await upload(alice, "lab", f"d{n}", {"f": b"2"})
        for version in ("v1", "v2"):
            url = f"projects/lab/datasets/d{n}/versions/{version}/lineage"
            assert (await bob.post(url, {"consumer": "run:7"})).status == 201
    with sql_seen(jp_serverapp) as seen:
        r = await alice.get("lineage", params={"consumer": "run:7"})
    statements = [q for q, _ in seen]
    assert sorted((x["dataset"], x["version"], x["recorded_by"]) for x in r.json["items"]) == [
        (f"d{n}", v, "bob") for n in range(3) for v in (1, 2)
    ]
    assert all(x["project"] == "lab" for x in r.json["items"])
    for table in ("users", "dataset_versions", "datasets", "projects"):
        assert sum(f"FROM {table} " in q for q in statements) <= 3, (table, statements)


async def test_a_diff_reads_chunk_lists_only_of_the_tables_it_compares(api, jp_serverapp) -> None:
    """A diff read every file's chunk list of both versions (16,000 entries a GB: a gigabyte
    of JSON for a 1 TB version) though it compares files by digest; only the changed tables
    it compares row by row need theirs."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    big = os.urandom(600_000)
    await upload(alice, "lab", "d", {"big.bin": big, "t.csv": b"id\n1\n", "same.csv": b"a\n"})
    files = {"big.bin": big + b"!", "t.csv": b"id\n1\n2\n", "same.csv": b"a\n"}
    await upload(alice, "lab", "d", files)
    with sql_seen(jp_serverapp) as seen:
        r = await alice.get("projects/lab/datasets/d/diff", params={"from": "v1", "to": "v2"})
    loaded = [q for q, columns in seen if "chunks" in columns]
    assert [f["path"] for f in r.json["modified"]] == ["big.bin", "t.csv"]
    assert r.json["tables"] == [
        {
            "path": "t.csv",
            "format": "csv",
            "schema": {"added": [], "removed": [], "changed": [], "columns": ["id"]},
            "rows": {"old": 1, "new": 2, "added": 1, "removed": 0},
        }
    ]
    # the chunk lists read are those of t.csv, in each version
    assert loaded and all("dataset_files.path IN" in q for q in loaded), loaded


async def test_files_exactly_the_latest_versions_make_no_new_version(api) -> None:
    """A folder committed again unchanged (a notebook run twice, a retried commit) answers 200
    with the latest version and 'unchanged'; a changed media type is a change."""
    alice = api("alice")
    await alice.post("projects", {"name": "Lab"})
    base = "projects/lab/datasets/d/uploads"

    async def commit(files: dict[str, bytes], **body: Any) -> Any:
        declared, chunks = declare(files)
        for entry in declared:
            entry.update(body.pop("declared", {}))
        upload = (await alice.post(base, {"files": declared})).json
        await alice.post(f"{base}/{upload['id']}/chunks", raw=frame_chunks(list(chunks.items())))
        return await alice.post(f"{base}/{upload['id']}/commit", body)

    first = await commit({"a.txt": b"one", "b.txt": b"two"}, message="first")
    assert first.status == 201 and first.json["unchanged"] is False
    again = await commit({"b.txt": b"two", "a.txt": b"one"}, message="again")
    assert again.status == 200, again
    assert again.json["unchanged"] is True and again.json["version"]["version"] == 1
    assert again.json["version"]["message"] == "first"
    same = await commit({"b.txt": b"two"}, mode="update")  # b.txt as it was: nothing changes
    assert (same.status, same.json["version"]["version"]) == (200, 1)
    typed = await commit({"a.txt": b"one", "b.txt": b"two"},
                         declared={"media_type": "text/csv"})  # fmt: skip
    assert typed.status == 201 and typed.json["version"]["version"] == 2
    r = await alice.get("projects/lab/datasets/d/versions")
    assert [v["version"] for v in r.json["items"]] == [2, 1]
    commits = (await alice.get("audit", params={"action": "dataset.commit"})).json["items"]
    assert len(commits) == 2
