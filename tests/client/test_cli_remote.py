"""``jupyter workbench datasets ...`` through a workbench server's REST API (``WORKBENCH_URL``,
or a hub user server's ``JUPYTERHUB_SERVICE_URL``): the commands act as the token's user on the
server's store, never on a store of the machine they run on."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import FILES, seed
from .test_commit import make_folder


async def cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command in a child process (the server answers from this test's event loop)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "JUPYTERHUB_"))}
    full = {
        **clean,
        # a store of this machine that the command must leave alone
        "WORKBENCH_DATA_DIR": str(tmp_path / "local-store"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'local.db'}",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "WORKBENCH_CACHE_DIR": str(tmp_path / "cache"),
        **env,
    }
    command = [sys.executable, "-m", "jupyter_workbench.cli", "datasets", *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=full, timeout=120
    )


async def test_the_datasets_commands_go_through_the_server_as_the_token_user(
    server_url: str, api: Any, tmp_path: Path, jp_serverapp: Any
) -> None:
    tokens = await seed(api)
    alice = {"WORKBENCH_URL": server_url, "WORKBENCH_TOKEN": tokens["alice"]}
    folder = make_folder(tmp_path / "photos", {"a.csv": b"x\n1\n2\n", "b.bin": os.urandom(5000)})
    done = await cli(tmp_path, alice, "commit", "lab/photos", str(folder), "-m", "first", "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "lab/photos@v1: 2 files, 5006 bytes (5006 bytes uploaded, 0 of 2 chunks already there)"
    )
    # on the server, by alice; the machine's own store was never opened
    version = (await api("bob").get("projects/lab/datasets/photos/versions/v1")).json
    assert version["author"] == "alice" and version["message"] == "first"
    assert not (tmp_path / "local.db").exists() and not (tmp_path / "local-store").exists()

    # --update keeps the parent's other files; a stale --strict-parent is the server's 409
    more = make_folder(tmp_path / "more", {"a.csv": b"x\n1\n2\n3\n"})
    done = await cli(tmp_path, alice, "commit", "lab/photos", str(more), "--update", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "lab/photos@v2: 2 files, 5008 bytes (8 bytes uploaded, 0 of 1 chunks" in done.stdout
    done = await cli(tmp_path, alice, "commit", "lab/photos", str(more), "--parent", "v1",
                     "--strict-parent", "--quiet")  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr

    tagged = await cli(tmp_path, alice, "tag", "lab/photos@v1", "baseline")
    assert tagged.stdout.strip() == "lab/photos@baseline -> v1", tagged.stderr
    r = await api("bob").get("projects/lab/datasets/photos/versions/baseline")
    assert r.json["version"] == 1
    assert (await cli(tmp_path, alice, "untag", "lab/photos", "baseline")).returncode == 0
    r = await api("bob").get("projects/lab/datasets/photos/versions/baseline")
    assert r.status == 404

    listed = await cli(tmp_path, alice, "list", "lab")
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["events", "photos"]
    versions = await cli(tmp_path, alice, "list", "lab/photos")
    assert [line.split()[0] for line in versions.stdout.splitlines()] == ["v2", "v1"]
    diff = await cli(tmp_path, alice, "diff", "lab/photos", "v1", "v2")
    assert diff.stdout.splitlines()[:2] == ["v1 -> v2", "  ~ a.csv (6 -> 8 bytes)"], diff.stdout
    assert diff.stdout.splitlines()[2] == "    a.csv: rows 2 -> 3 (+1 -0)"

    # get: the version's files in a folder; bob, a viewer, may read
    bob = {"WORKBENCH_URL": server_url, "WORKBENCH_TOKEN": tokens["bob"]}
    got = await cli(tmp_path, bob, "get", "lab/events@v1", str(tmp_path / "out"), "--quiet")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == f"v1: 3 files in {tmp_path / 'out'}"
    for rel, data in FILES.items():
        assert (tmp_path / "out" / rel).read_bytes() == data
    # ... and may not write: the server's message, no traceback
    denied = await cli(tmp_path, bob, "commit", "lab/photos", str(more), "--quiet")
    assert denied.returncode == 2 and "Traceback" not in denied.stderr
    assert denied.stderr.startswith("error: ") and "editor" in denied.stderr, denied.stderr

    # verifying a version re-reads all of it (an operation on the server): editors may ask
    verify = await cli(tmp_path, alice, "verify", "lab/photos@v2")
    assert verify.returncode == 0 and verify.stdout.strip() == "OK", verify.stderr
    verify = await cli(tmp_path, bob, "verify", "lab/photos@v2")
    assert verify.returncode == 2 and "editor" in verify.stderr, verify.stderr
    # the whole store is the administrators'; gc is asked through a project one administers
    store = await cli(tmp_path, alice, "verify")
    assert store.returncode == 2 and "administrators" in store.stderr, store.stderr
    admin = {"WORKBENCH_URL": server_url, "WORKBENCH_TOKEN": jp_serverapp.identity_provider.token}
    store = await cli(tmp_path, admin, "verify")  # a background operation, followed to its end
    assert store.returncode == 0 and store.stdout.strip() == "OK", store.stderr
    report = json.loads((await cli(tmp_path, admin, "verify", "--json")).stdout)
    assert report["ok"] is True and report["chunks_checked"] >= 4, report
    gc = await cli(tmp_path, alice, "gc", "lab", "--dry-run")
    assert gc.returncode == 0, gc.stderr
    assert gc.stdout.startswith("would free 0 chunks"), gc.stdout
    usage = await cli(tmp_path, alice, "gc")
    assert usage.returncode != 0 and "gc PROJECT" in usage.stderr


async def test_a_hub_user_server_is_found_and_local_still_opens_the_machine_store(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)
    # what a JupyterHub user server's terminal has: its own URL and the user's API token
    hub = {"JUPYTERHUB_SERVICE_URL": server_url + "/", "JUPYTERHUB_API_TOKEN": tokens["bob"]}
    listed = await cli(tmp_path, hub, "list", "lab")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[0] == "events"
    # --local: this machine's store (empty, migrated on first use): no such project there
    local = await cli(tmp_path, hub, "list", "lab", "--local")
    assert local.returncode == 2 and "project 'lab' not found" in local.stderr, local.stderr
    # ... and so does a store named on the command line; --as is for this machine's store only
    named = await cli(tmp_path, hub, "list", "lab", f"--database-url=sqlite:///{tmp_path}/x.db")
    assert named.returncode == 2 and "project 'lab' not found" in named.stderr, named.stderr
    acting = await cli(tmp_path, hub, "list", "lab", "--as=alice")
    assert acting.returncode != 0 and "--as acts on this machine's store" in acting.stderr
    # a server that does not answer: said plainly, after the client's retries
    gone = await cli(tmp_path, {"WORKBENCH_URL": "http://127.0.0.1:9", "WORKBENCH_TOKEN": "x"},
                     "list", "lab")  # fmt: skip
    assert gone.returncode == 2 and "cannot reach the workbench" in gone.stderr, gone.stderr


async def test_a_missing_or_empty_folder_is_one_error_line_and_a_pipe_gets_no_bar(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)
    alice = {"WORKBENCH_URL": server_url, "WORKBENCH_TOKEN": tokens["alice"]}
    (tmp_path / "empty").mkdir()
    for folder, said in (("missing", "is not a folder"), ("empty", "has no files")):
        done = await cli(tmp_path, alice, "commit", "lab/photos", str(tmp_path / folder), "-m", "x")
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: commit: ") and said in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    # stderr is a pipe here, not a terminal: no progress bar, as on this machine's store
    folder = make_folder(tmp_path / "photos", {"a.csv": b"x\n1\n"})
    done = await cli(tmp_path, alice, "commit", "lab/photos", str(folder), "-m", "first")
    assert done.returncode == 0 and done.stderr == "", done.stderr


async def test_an_empty_part_of_a_target_or_a_file_as_dest_is_one_error_line(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    tokens = await seed(api)
    bob = {"WORKBENCH_URL": server_url, "WORKBENCH_TOKEN": tokens["bob"]}
    for target in ("lab/events@", "/events", "lab/"):  # 'lab/events@' read the versions list
        done = await cli(tmp_path, bob, "get", target, str(tmp_path / "out"))
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert f"expected PROJECT/DATASET[@VERSION], got {target!r}" in done.stderr
    listed = await cli(tmp_path, bob, "list", "")  # not "no current project: call wb.use(...)"
    assert listed.returncode != 0 and "usage: jupyter workbench datasets list" in listed.stderr
    # DEST is a file: said before anything is downloaded, not a FileExistsError traceback
    (tmp_path / "file.txt").write_text("mine")
    done = await cli(tmp_path, bob, "get", "lab/events@v1", str(tmp_path / "file.txt"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr == f"error: materialize: {tmp_path / 'file.txt'} is not a folder\n"
    assert (tmp_path / "file.txt").read_text() == "mine"
