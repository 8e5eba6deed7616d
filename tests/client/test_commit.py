"""``wb.datasets.commit(name, folder)`` against a real jupyter-server with the workbench: a new
version with the folder's files, only new chunks travel, a progress bar, an interrupted upload
resumes, clear errors."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_workbench.client import Client, errors, uploads

from .conftest import seed


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def chunk_bytes_sent(client: Client) -> list[int]:
    """Sizes of the chunk batches this client sends."""
    sizes: list[int] = []

    def hook(request: httpx.Request) -> None:
        if request.url.path.endswith("/chunks"):
            sizes.append(len(request.content))

    client.http.event_hooks["request"].append(hook)
    return sizes


async def test_commit_a_folder_then_only_what_changed_travels(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    tokens = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    big = os.urandom(3 * 1024 * 1024)
    folder = make_folder(
        tmp_path / "photos",
        {"big.bin": big, "labels/a.csv": b"x,y\n1,2\n", "readme.md": b"# photos\n"},
    )

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        sent = chunk_bytes_sent(client)
        v1 = client.datasets.commit("photos", folder, message="first photos")
        assert v1.version == 1 and v1.data["message"] == "first photos"
        assert {f["path"]: f["size"] for f in v1.files()} == {
            "big.bin": len(big),
            "labels/a.csv": 8,
            "readme.md": 9,
        }
        with v1.open("big.bin") as fh:
            fh.seek(2_000_000)
            assert fh.read(100) == big[2_000_000:2_000_100]
        first = sum(sent)
        assert first >= len(big)
        # change the end of the big file: the unchanged chunks stay at home
        (folder / "big.bin").write_bytes(big[:-1000] + b"!" * 1000)
        sent.clear()
        v2 = client.datasets.commit("photos", folder, message="fix the tail")
        assert v2.version == 2 and 0 < sum(sent) < len(big) // 4
        assert v2.read_bytes("big.bin")[-1000:] == b"!" * 1000
        client.close()

    await asyncio.to_thread(work)
    err = capsys.readouterr().err
    assert "photos: hashing" in err and "photos: uploading" in err  # tqdm bars on stderr


async def test_an_interrupted_commit_resumes_and_bad_input_is_clear(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_folder(
        tmp_path / "data", {"a.bin": os.urandom(600_000), "b.txt": b"bee\n", "empty": b""}
    )

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab", backoff=0.01)
        created: list[str] = []

        def lose_chunks(request: httpx.Request) -> None:
            if request.url.path.endswith("/chunks"):
                raise httpx.ConnectError("network down", request=request)

        def count_uploads(request: httpx.Request) -> None:
            if request.url.path.endswith("/uploads") and request.method == "POST":
                created.append(request.url.path)

        client.http.event_hooks["request"] += [count_uploads, lose_chunks]
        with pytest.raises(errors.ConnectionFailed):
            client.datasets.commit("logs", folder, progress=False)
        assert len(created) == 1
        with pytest.raises(errors.NotFound):  # nothing was published
            client.datasets.get("logs")
        client.http.event_hooks["request"].remove(lose_chunks)
        version = client.datasets.commit("logs", folder, message="resumed", progress=False)
        assert version.version == 1 and len(created) == 1  # the same upload, resumed
        assert version.read_bytes("b.txt") == b"bee\n"
        assert {f["path"]: f["size"] for f in version.files()}["empty"] == 0

        with pytest.raises(FileNotFoundError, match="is not a folder"):
            client.datasets.commit("logs", tmp_path / "missing")
        (tmp_path / "empty").mkdir()
        with pytest.raises(ValueError, match="has no files"):
            client.datasets.commit("logs", tmp_path / "empty")
        bob = Client(server_url, tokens["bob"], project="lab")  # a viewer
        hashed: list[object] = []
        real_manifest = uploads._manifest
        monkeypatch.setattr(uploads, "_manifest", lambda *a: hashed.append(a) or real_manifest(*a))
        with pytest.raises(errors.PermissionDenied):  # told before the folder is hashed
            bob.datasets.commit("logs", folder, progress=False)
        assert hashed == []
        with pytest.raises(errors.BadRequest):
            client.datasets.commit("bad name!", folder, progress=False)
        client.close()
        bob.close()

    await asyncio.to_thread(work)


async def test_a_commit_whose_answer_is_lost_is_asked_again_and_answered(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops after the server published the version, before its answer came:
    the commit failed though the version was made. The client asks again, and the server
    answers with the version that commit made (no second one, no 409)."""
    tokens = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_folder(tmp_path / "data", {"a.txt": b"alpha\n"})

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab", backoff=0.01)
        lost: list[str] = []

        def lose_first_answer(response: httpx.Response) -> None:
            if response.request.url.path.endswith("/commit") and not lost:
                lost.append(response.request.url.path)
                raise httpx.ReadError("connection reset", request=response.request)

        client.http.event_hooks["response"].append(lose_first_answer)
        version = client.datasets.commit("notes", folder, message="once", progress=False)
        assert lost and version.version == 1 and not version.unchanged
        assert [v["version"] for v in client.datasets.versions("notes")] == [1]
        client.close()

    await asyncio.to_thread(work)


async def test_in_a_notebook_the_progress_bar_is_a_widget(
    server_url: str, api: Any, tmp_path: Path
) -> None:
    from .test_magics_kernel import workbench_kernel

    folder = make_folder(tmp_path / "k", {"a.txt": b"alpha\n", "b/c.txt": b"gamma\n"})
    code = (
        "import jupyter_workbench as wb\n"
        f"v = wb.datasets.commit('kernel-data', {str(folder)!r}, message='from a kernel',"
        " project='other')\n"
        "print(v, sorted(f['path'] for f in v.files()))"
    )
    async with workbench_kernel(server_url, api) as kernel:  # bob owns 'other'
        msg_id = kernel.execute(code)
        kinds, printed, widgets = [], [], 0
        while True:
            msg = await kernel.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            kinds.append(kind)
            if kind == "display_data":
                widgets += "application/vnd.jupyter.widget-view+json" in content["data"]
            elif kind == "stream" and content["name"] == "stdout":
                printed.append(content["text"])
            elif kind == "error":
                pytest.fail(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                break
    assert "".join(printed) == "<DatasetVersion other/kernel-data v1> ['a.txt', 'b/c.txt']\n"
    assert widgets == 2 and "comm_open" in kinds  # hashing and uploading bars


async def test_commit_on_top_of_a_parent_and_copy_a_version_out(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path))
    first = make_folder(tmp_path / "first", {"a.txt": b"a1", "b.txt": b"b1"})
    patch = make_folder(tmp_path / "patch", {"b.txt": b"b2"})

    def work() -> None:
        with Client(server_url, tokens["alice"], project="lab") as client:
            v1 = client.datasets.commit("docs", first, progress=False)
            twice = client.datasets.commit("docs", "~/first", progress=False)  # a rerun
            assert (twice.version, twice.unchanged, v1.unchanged) == (1, True, False)
            assert v1.materialize("~/home-out") == tmp_path / "home-out"  # "~" is the home
            assert (tmp_path / "home-out" / "a.txt").read_bytes() == b"a1"
            v2 = client.datasets.commit("docs", patch, mode="update", progress=False)
            assert {f["path"] for f in v2.files()} == {"a.txt", "b.txt"}
            assert v2.read_bytes("b.txt") == b"b2" and v2.read_bytes("a.txt") == b"a1"
            with pytest.raises(errors.Conflict, match="no longer the latest"):
                client.datasets.commit("docs", patch, parent=1, strict_parent=True,
                                       progress=False)  # fmt: skip
            out = v1.materialize(tmp_path / "out")
            (tmp_path / "elsewhere.txt").write_bytes(b"linked")
            assert (out / "a.txt").read_bytes() == b"a1" and (out / "b.txt").read_bytes() == b"b1"
            (out / "a.txt").write_bytes(b"edited")  # a copy: the cache stays as it was
            assert (v1.download() / "a.txt").read_bytes() == b"a1"
            # a file in the way that is a hard link (`datasets get --link`) is replaced, not
            # written into: what it links to keeps its bytes
            (out / "b.txt").unlink()
            os.link(tmp_path / "elsewhere.txt", out / "b.txt")
            v2.materialize(out)
            assert (out / "b.txt").read_bytes() == b"b2"
            assert (tmp_path / "elsewhere.txt").read_bytes() == b"linked"
            assert v2.verify()["ok"] is True
            # a folder where the version has a file: refused before anything is written
            clash = tmp_path / "clash"
            (clash / "b.txt").mkdir(parents=True)
            with pytest.raises(FileExistsError, match=r"b\.txt is a folder where the version"):
                v1.materialize(clash)
            assert [p.name for p in clash.iterdir()] == ["b.txt"]

    await asyncio.to_thread(work)


async def test_symlinks_follow_the_stores_rules_before_anything_is_sent(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client walks a folder as the store's own commit does: a symlinked folder (whose
    files rglob left out without a word) and a link leaving the folder (which it followed)
    are a ValueError naming the path before any request; a link to a file inside is taken."""
    tokens = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_folder(tmp_path / "linked", {"real/a.txt": b"alpha\n"})
    (tmp_path / "outside.txt").write_text("not mine")

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        sent: list[str] = []
        client.http.event_hooks["request"].append(lambda r: sent.append(r.url.path))
        (folder / "mirror").symlink_to("real", target_is_directory=True)
        with pytest.raises(ValueError, match="'mirror' is a symlinked folder"):
            client.datasets.commit("links", folder, progress=False)
        (folder / "mirror").unlink()
        (folder / "out.txt").symlink_to(tmp_path / "outside.txt")
        with pytest.raises(ValueError, match=r"'out\.txt' is a symlink that leaves the folder"):
            client.datasets.commit("links", folder, progress=False)
        assert sent == []
        (folder / "out.txt").unlink()
        (folder / "b.txt").symlink_to("real/a.txt")
        version = client.datasets.commit("links", folder, progress=False)
        assert sorted(f["path"] for f in version.files()) == ["b.txt", "real/a.txt"]
        client.close()

    await asyncio.to_thread(work)


async def test_a_file_written_during_the_commit_is_named_and_its_upload_ended(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written between its hashing and its upload (a log, a database file in the
    folder) made the server refuse a batch naming only a chunk digest, and left the upload
    open; the client names the file, ends that upload, and the next commit succeeds."""
    tokens = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_folder(tmp_path / "logs", {"a.log": b"one\n" * 1000, "b.txt": b"bee\n"})

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")

        def write_after_declaring(request: httpx.Request) -> None:
            if request.url.path.endswith("/uploads") and request.method == "POST":
                (folder / "a.log").write_bytes(b"two\n" * 1000)  # same size, other bytes

        client.http.event_hooks["request"].append(write_after_declaring)
        with pytest.raises(ValueError, match=r"a\.log changed while it was being committed"):
            client.datasets.commit("logs", folder, progress=False)
        client.http.event_hooks["request"].remove(write_after_declaring)
        assert client.get("projects/lab/datasets-uploads")["items"] == []
        assert list((tmp_path / "cache" / "uploads").iterdir()) == []
        # the dataset that first commit made is gone with it (no empty 'logs' in the lists)
        assert "logs" not in [d["name"] for d in client.project("lab").datasets()]
        version = client.datasets.commit("logs", folder, progress=False)
        assert version.read_bytes("a.log") == b"two\n" * 1000
        client.close()

    await asyncio.to_thread(work)


async def test_a_commit_refused_for_its_parent_keeps_its_upload_for_the_next_call(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit naming a parent that is not there (a typo) is a 404; the client took any 404
    for 'the upload is gone' and forgot it, so the next call made a second upload and the
    first stayed open, counting against max_open_uploads_per_user."""
    tokens = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_folder(tmp_path / "photos", {"a.txt": b"alpha\n"})

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        created: list[str] = []

        def count_uploads(request: httpx.Request) -> None:
            if request.url.path.endswith("/uploads") and request.method == "POST":
                created.append(request.url.path)

        client.http.event_hooks["request"].append(count_uploads)
        with pytest.raises(errors.NotFound, match="no version 'v9'"):
            client.datasets.commit("events", folder, parent="v9", mode="update", progress=False)
        version = client.datasets.commit("events", folder, mode="update", progress=False)
        assert version.version == 2 and len(created) == 1
        assert client.get("projects/lab/datasets-uploads")["items"] == []
        client.close()

    await asyncio.to_thread(work)


async def test_notebook_litter_is_left_out_and_wbignore_and_ignore_decide(
    server_url: str, api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder worked on in JupyterLab holds checkpoints and caches: a commit leaves them out
    (``.gitignore`` syntax: defaults, then the folder's ``.wbignore``, then ``ignore``) and
    says what it left out; a pattern that takes a default back wins."""
    tokens = await seed(api)
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_folder(
        tmp_path / "work",
        {
            "train.csv": b"x,y\n1,2\n",
            "notes.ipynb": b"{}",
            ".ipynb_checkpoints/notes-checkpoint.ipynb": b"{}",
            "sub/.ipynb_checkpoints/t-checkpoint.csv": b"x\n",
            "sub/t.csv": b"x\n1\n",
            "sub/scratch.tmp": b"tmp",
            "__pycache__/m.cpython-311.pyc": b"\0",
            ".DS_Store": b"\0\0",
            ".env": b"KEEP=1",
            "cache/big.bin": b"b" * 10,
            ".wbignore": b"# mine\ncache/\n!__pycache__/\n",
        },
    )

    def work() -> None:
        client = Client(server_url, tokens["alice"], project="lab")
        v1 = client.datasets.commit("work", folder, ignore="*.tmp", progress=False)
        assert sorted(f["path"] for f in v1.files()) == [
            ".env",  # a dot-file nobody listed is data
            "__pycache__/m.cpython-311.pyc",  # taken back by .wbignore
            "notes.ipynb",
            "sub/t.csv",
            "train.csv",
        ]
        assert v1.ignored == [
            ".DS_Store",
            ".ipynb_checkpoints/",
            ".wbignore",
            "cache/",
            "sub/.ipynb_checkpoints/",
            "sub/scratch.tmp",
        ]
        # only litter changed: the same files, no new version
        (folder / ".ipynb_checkpoints" / "notes-checkpoint.ipynb").write_bytes(b'{"x": 1}')
        again = client.datasets.commit("work", folder, ignore=["*.tmp"], progress=False)
        assert again.unchanged and again.version == 1
        # the caller's patterns come last: they can take back what .wbignore left out
        v2 = client.datasets.commit("work", folder, ignore=["!cache/"], progress=False)
        assert v2.version == 2 and "cache/big.bin" in {f["path"] for f in v2.files()}
        assert "sub/scratch.tmp" in {f["path"] for f in v2.files()}

        with pytest.raises(ValueError, match=r"has no files but those ignored \(\.DS_Store"):
            client.datasets.commit("work", folder, ignore=["*", "!.DS_Store", ".DS_Store"])
        with pytest.raises(ValueError, match=r"not valid \.gitignore syntax"):
            client.datasets.commit("work", folder, ignore=["[z-a]"])
        (folder / ".wbignore").write_text("[z-a]\n")
        with pytest.raises(ValueError, match=r"\.wbignore: a pattern is not valid"):
            client.datasets.commit("work", folder)
        sent: list[str] = []
        client.http.event_hooks["request"].append(lambda r: sent.append(r.url.path))
        with pytest.raises(ValueError, match="strict_parent needs parent"):  # before any request
            client.datasets.commit("work", folder, strict_parent=True)
        assert sent == []
        client.close()

    await asyncio.to_thread(work)
