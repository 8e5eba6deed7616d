"""``wb.datasets.commit(name, folder)``: a folder as a new dataset version, over the resumable
upload endpoints.

1. Every file is cut into content-defined chunks (the server's own chunking) and hashed.
2. The manifest is declared (``POST .../uploads``); the server answers which chunks it lacks.
3. Only those travel, in framed batches (32-byte BLAKE3 digest, 4-byte big-endian length, bytes).
4. ``POST .../uploads/{id}/commit`` publishes the version.

The upload's id is kept in the cache folder until the commit, so a call interrupted midway
(a lost connection, a stopped kernel) resumes when run again: the server still holds the chunks
it took, and says which are still missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import struct
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from .cache import cache_dir
from .errors import ConnectionFailed, WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    from . import Client

__all__ = ["commit_folder", "progress_bar"]

FRAME = struct.Struct(">32sI")
BATCH_BYTES = 8 * 1024 * 1024
SEND_TRIES = 3


class Bar(Protocol):
    def update(self, n: int) -> Any: ...
    def close(self) -> Any: ...


class _Silent:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where a widget can be displayed)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress_bar(total: int, description: str, enabled: bool = True) -> Bar:
    """An ipywidgets bar in a notebook (when ipywidgets is installed), else tqdm's text bar."""
    if not enabled:
        return _Silent()
    kw: dict[str, Any] = {"total": total, "desc": description, "unit": "B", "unit_scale": True}
    if in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as notebook_tqdm

        bar: Bar = notebook_tqdm(**kw)
        return bar
    from tqdm import tqdm

    text_bar: Bar = tqdm(file=sys.stderr, **kw)
    return text_bar


def _files(folder: Path, ignore: Sequence[str]) -> tuple[list[tuple[str, Path]], list[str]]:
    """The folder's files by their dataset paths, walked by the store's own rules (a symlinked
    folder, a symlink leaving the folder, a name the store refuses or a bad ignore pattern:
    ``ValueError``, before anything is hashed), and the paths its ignore rules left out."""
    from ..core.dataset_ignore import shown
    from ..core.dataset_paths import scan_folder
    from ..core.errors import WorkbenchError as Refused

    if not folder.is_dir():
        raise FileNotFoundError(f"commit: {folder} is not a folder")
    try:
        scan = scan_folder(folder, max_bytes=sys.maxsize, ignore=ignore)
    except Refused as exc:
        raise ValueError(f"commit: {exc.message}") from None
    if not scan.files:
        but = f" but those ignored ({shown(scan.ignored)})" if scan.ignored else ""
        raise ValueError(f"commit: {folder} has no files{but}")
    return [(f.path, Path(f.local)) for f in scan.files], scan.ignored


def _manifest(
    files: list[tuple[str, Path]], bar: Bar
) -> tuple[list[dict[str, Any]], dict[str, tuple[Path, int, int]]]:
    """The declared files and where each chunk lies (file, offset, length)."""
    from ..storage.chunking import Chunk, chunk_file

    declared: list[dict[str, Any]] = []
    where: dict[str, tuple[Path, int, int]] = {}
    for rel, path in files:

        def keep(chunk: Chunk, path: Path = path) -> None:
            where.setdefault(chunk.digest, (path, chunk.offset, chunk.length))
            bar.update(chunk.length)

        digest = chunk_file(path, on_chunk=keep)
        declared.append(
            {
                "path": rel,
                "size": digest.size,
                "digest": digest.digest,
                "chunks": [[d, n] for d, n in digest.chunks],
            }
        )
    return declared, where


class FileChanged(ValueError):
    """A file of the folder was written between its hashing and its upload."""


def _batches(
    missing: list[str], where: dict[str, tuple[Path, int, int]]
) -> Iterator[tuple[bytes, int]]:
    """Framed batches of the missing chunks, read back from the files, with their chunk bytes;
    ``FileChanged`` when a chunk read back is not the one hashed (the server refused the whole
    batch naming only a digest)."""
    from ..storage.chunking import blake3_hex

    out = bytearray()
    payload = 0
    for digest in missing:
        path, offset, length = where[digest]
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
        if len(data) != length or blake3_hex(data) != digest:
            raise FileChanged(
                f"commit: {path} changed while it was being committed (the bytes at {offset} "
                "are not those hashed); commit again once nothing writes to it"
            )
        out += FRAME.pack(bytes.fromhex(digest), len(data))
        out += data
        payload += len(data)
        if len(out) >= BATCH_BYTES:
            yield bytes(out), payload
            out.clear()
            payload = 0
    if out:
        yield bytes(out), payload


def _state_file(client: Client, slug: str, name: str, declared: list[dict[str, Any]]) -> Path:
    key = hashlib.sha256(
        json.dumps([client.url, slug, name, declared], sort_keys=True).encode()
    ).hexdigest()
    return cache_dir("uploads") / f"{key[:32]}.json"


def commit_folder(
    client: Client,
    slug: str,
    name: str,
    folder: Path,
    *,
    message: str = "",
    progress: bool = True,
    parent: str | None = None,
    strict_parent: bool = False,
    mode: str = "replace",
    ignore: Sequence[str] = (),
) -> dict[str, Any]:
    """Upload ``folder`` as a new version of dataset ``name`` (``mode='update'``: on top of the
    parent's files); answers the commit (``version``, ``stored``, ``seconds``), what this
    call ``uploaded`` (``chunks``, ``bytes``; ``chunks_present``: those the server had) and
    the paths ``ignored`` (``core.dataset_ignore``: defaults, ``.wbignore``, ``ignore``)."""
    if strict_parent and parent is None:  # (the server's refusal came after the upload)
        raise ValueError(
            "commit: strict_parent needs parent, the version you expect to be the latest "
            "(e.g. parent='v3'); without one the commit is on the latest anyway"
        )
    files, ignored = _files(folder, ignore)
    # may we write here at all? (a viewer learned it after hashing the whole folder)
    client.get(f"projects/{quote(slug, safe='')}/datasets-uploads", limit=1)
    total = sum(path.stat().st_size for _, path in files)
    hashing = progress_bar(total, f"{name}: hashing", progress)
    try:
        declared, where = _manifest(files, hashing)
    finally:
        hashing.close()
    base = f"projects/{quote(slug, safe='')}/datasets/{quote(name, safe='')}/uploads"
    state = _state_file(client, slug, name, declared)
    upload: dict[str, Any] | None = None
    if state.exists():
        try:
            upload_id = json.loads(state.read_text())["id"]
            upload = client.get(f"{base}/{quote(upload_id, safe='')}")
        except (WorkbenchError, ValueError, KeyError):
            upload = None  # gone or finished: start over
    if upload is None or upload.get("state") != "open":
        upload = client.post(base, {"files": declared})
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"id": upload["id"], "folder": str(folder)}))
    assert upload is not None
    upload_id = quote(str(upload["id"]), safe="")
    missing = list(upload["missing"])
    sizes = {d: where[d][2] for d in where}
    uploaded = {
        "chunks": len(missing),
        "bytes": sum(sizes[d] for d in missing),
        "chunks_present": len(where) - len(missing),
    }
    sending = progress_bar(uploaded["bytes"], f"{name}: uploading", progress and bool(missing))
    try:
        for attempt in range(SEND_TRIES):
            try:
                for body, payload in _batches(missing, where):
                    client.send(
                        "POST",
                        client.api_url(f"{base}/{upload_id}/chunks"),
                        content=body,
                        headers={"Content-Type": "application/octet-stream"},
                    )
                    sending.update(payload)
                break
            except ConnectionFailed:
                if attempt == SEND_TRIES - 1:
                    raise
                missing = list(client.get(f"{base}/{upload_id}")["missing"])
    except FileChanged:  # its manifest is out of date: the next call hashes and declares anew
        state.unlink(missing_ok=True)
        with contextlib.suppress(WorkbenchError):
            client.request("DELETE", client.api_url(f"{base}/{upload_id}"))
        raise
    finally:
        sending.close()
    publish: dict[str, Any] = {"message": message, "mode": mode, "strict_parent": strict_parent}
    if parent is not None:
        publish["parent"] = parent
    for attempt in range(SEND_TRIES):
        try:  # (refused, e.g. a parent that is not there: the upload stays, for the next call)
            done = client.post(f"{base}/{upload_id}/commit", publish)
            break
        except ConnectionFailed:  # the answer lost? the same commit again answers it
            if attempt == SEND_TRIES - 1:
                raise
    state.unlink(missing_ok=True)
    return {**done, "uploaded": uploaded, "ignored": ignored}
