"""Projects and datasets as Python objects (what ``wb.project(...)``/``wb.datasets`` return)."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from ..files import copy_replacing, first_clash, seal, sealed
from .cache import LAYOUT, cache_dir, made, publish
from .errors import ConnectionFailed, NotFound, WorkbenchError

PROGRESS_BYTES = 32 << 20  # a version this big shows a progress bar while it downloads
# part of a version copy's key: copies made before their files were sealed (read-only, stamped)
# and indexed are not taken (checking one would fetch every file of it again, one by one)
SEALED = "sealed"

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from . import Client

__all__ = ["DatasetVersion", "Datasets", "Project", "RemoteFile"]

READ_BUFFER = 1 << 20  # bytes per range request when reading a remote file
# to_pandas: the compressed forms of the text tables it reads (``.csv.gz``), by suffix
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}
TEXT_TABLES = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson")


def _q(part: str) -> str:
    return quote(part, safe="")


def _text(value: object, what: str) -> str:
    """``value``, a string that is not blank; else ``TypeError``/``ValueError`` naming ``what``
    (rather than an error from deep inside the request)."""
    if not isinstance(value, str):
        raise TypeError(f"{what}: expected a string, got {type(value).__name__} {value!r:.60}")
    if not value.strip():
        raise ValueError(f"{what}: must not be empty")
    return value


def _ref(version: str | int, what: str = "version") -> str:
    """``3`` -> ``"v3"``; strings (``"v3"``, a tag, ``"latest"``) as they are."""
    if isinstance(version, int) and not isinstance(version, bool):
        return f"v{version}"
    if not isinstance(version, str):
        raise TypeError(
            f"{what}: expected a version number, 'v3', a tag or 'latest', got "
            f"{type(version).__name__} {version!r:.60}"
        )
    return _text(version, what)


class Project:
    """One project you can see; its fields are the server's JSON (``.data``)."""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self.client = client
        self.data = data

    @property
    def slug(self) -> str:
        return str(self.data["slug"])

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def role(self) -> str:
        """Your role in the project (``viewer``, ``editor``, ``admin``, ``owner``)."""
        return str(self.data.get("my_role") or "")

    def members(self) -> list[dict[str, Any]]:
        """Members (users and teams) with their roles."""
        return list(self.client.paged(f"projects/{_q(self.slug)}/members"))

    def datasets(self) -> list[dict[str, Any]]:
        """The project's datasets (name, latest version, tags, ...)."""
        return list(self.client.paged(f"projects/{_q(self.slug)}/datasets"))

    def dataset(self, name: str, version: str | int = "latest") -> DatasetVersion:
        return self.client.datasets.get(name, version=version, project=self.slug)

    def __repr__(self) -> str:
        return f"<Project {self.slug!r} ({self.role})>"


class Datasets:
    """``client.datasets``: versioned datasets of the current (or a given) project."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def list(self, project: str | None = None) -> list[dict[str, Any]]:
        slug = self.client.project_slug(project)
        return list(self.client.paged(f"projects/{_q(slug)}/datasets"))

    def get(
        self, name: str, version: str | int = "latest", *, project: str | None = None
    ) -> DatasetVersion:
        """One version (``"v3"``, ``3``, a tag like ``"production"``, or ``"latest"``), pinned:
        later reads see that version even when newer ones are committed. While a run is
        active (``wb.run``), the version is recorded as read by that run."""
        from .runs import active_run

        name, ref = _text(name, "name"), _ref(version)
        slug = self.client.project_slug(project)
        data = self.client.get(f"projects/{_q(slug)}/datasets/{_q(name)}/versions/{_q(ref)}")
        found = DatasetVersion(self.client, slug, name, data)
        run = active_run()
        if run is not None and run.client.url == self.client.url:
            run._read_dataset(slug, name, found.version)
        return found

    def commit(
        self,
        name: str,
        folder: str | os.PathLike[str],
        *,
        message: str = "",
        project: str | None = None,
        progress: bool = True,
        parent: str | int | None = None,
        strict_parent: bool = False,
        mode: str = "replace",
        ignore: str | Iterable[str] = (),
    ) -> DatasetVersion:
        """Upload a folder as a new version of ``name`` (created on first commit), with a
        progress bar; only chunks the workbench lacks travel, and an interrupted upload
        resumes where it stopped when called again. ``mode="update"`` keeps the parent's
        other files (``parent``: a version or tag, default the latest; ``strict_parent``:
        refuse if it is not the latest). Files exactly the latest version's make no new
        version: that one is returned, with ``unchanged`` set (a retried commit never makes a
        twin). Inside a run, the version is recorded as written by that run.

        Left out, in ``.gitignore``'s syntax: ``.ipynb_checkpoints/``, ``__pycache__/``,
        ``.git/``, ``.DS_Store``, ``Thumbs.db``, then the folder's ``.wbignore``, then
        ``ignore`` (``"!__pycache__/"`` takes a default back); the returned version's
        ``ignored`` names what was left out."""
        from .runs import active_run
        from .uploads import commit_folder

        name = _text(name, "name")
        patterns = [ignore] if isinstance(ignore, str) else list(ignore)
        slug = self.client.project_slug(project)
        done = commit_folder(
            self.client, slug, name, Path(folder).expanduser(), message=message, progress=progress,
            parent=None if parent is None else _ref(parent, "parent"), strict_parent=strict_parent,
            mode=mode, ignore=patterns,
        )  # fmt: skip
        version = int(done["version"]["version"])
        data = self.client.get(f"projects/{_q(slug)}/datasets/{_q(name)}/versions/v{version}")
        run = active_run()
        if run is not None and run.client.url == self.client.url:
            ref = {"project": slug, "dataset": name, "version": f"v{version}"}
            run.record_lineage({"datasets_written": [ref]})
        committed = DatasetVersion(self.client, slug, name, data)
        committed.unchanged = bool(done.get("unchanged"))
        committed.ignored = list(done.get("ignored", []))
        return committed

    def _base(self, name: str, project: str | None) -> str:
        slug = self.client.project_slug(project)
        return f"projects/{_q(slug)}/datasets/{_q(_text(name, 'name'))}"

    def versions(self, name: str, *, project: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every version, newest first: ``version``, ``message``, ``author``, ``tags``,
        ``file_count``, ``total_bytes``, ``created_at``."""
        return list(self.client.paged(f"{self._base(name, project)}/versions"))

    def diff(
        self, name: str, a: str | int, b: str | int, *, project: str | None = None
    ) -> dict[str, Any]:
        """What changed from version ``a`` to ``b`` (``2``, ``"v2"`` or a tag): files
        ``added``, ``removed``, ``modified``, and per table (CSV, Parquet ...) its schema and
        row changes."""
        params = {"from": _ref(a, "a"), "to": _ref(b, "b")}
        return dict(self.client.get(f"{self._base(name, project)}/diff", **params))

    def tag(
        self, name: str, tag: str, version: str | int, *, project: str | None = None
    ) -> dict[str, Any]:
        """Point ``tag`` at a version (moving it if it pointed elsewhere); editors only."""
        base, ref = self._base(name, project), _ref(version)
        url = self.client.api_url(f"{base}/tags/{_q(_text(tag, 'tag'))}")
        return dict(self.client.request("PUT", url, json={"version": ref}) or {})

    def untag(self, name: str, tag: str, *, project: str | None = None) -> None:
        url = self.client.api_url(f"{self._base(name, project)}/tags/{_q(_text(tag, 'tag'))}")
        self.client.request("DELETE", url)


class DatasetVersion:
    """One committed version of a dataset: list, open, load or materialize its files."""

    def __init__(self, client: Client, project: str, name: str, data: dict[str, Any]) -> None:
        self.client, self.project, self.name, self.data = client, project, name, data
        self.version = int(data["version"])
        self._files: list[dict[str, Any]] | None = None
        self._checked: Path | None = None  # the cached copy found whole (``download``)
        # set by ``commit``: the files were exactly this latest version's, no new one was made
        self.unchanged = False
        # set by ``commit``: the folder's paths its ignore rules left out (a folder once)
        self.ignored: list[str] = []

    @property
    def base(self) -> str:
        return f"projects/{_q(self.project)}/datasets/{_q(self.name)}/versions/v{self.version}"

    def files(self) -> list[dict[str, Any]]:
        """Every file: ``path``, ``size``, ``digest``, ``media_type``, ``chunk_count``."""
        if self._files is None:
            self._files = list(self.client.paged(f"{self.base}/files"))
        return self._files

    def file(self, path: str) -> dict[str, Any]:
        """One file's entry; asked of the server by its path (``?prefix=``), not found in the
        whole list of a version's files (pages of 500: seconds for 100,000 files)."""
        path = self._path(path)
        found: Iterable[dict[str, Any]] = (
            self._files if self._files is not None
            else self.client.paged(f"{self.base}/files", prefix=path)
        )  # fmt: skip
        for entry in found:
            if entry["path"] == path:
                return entry
        raise NotFound(f"{self.name} v{self.version} has no file {path!r}", status=404)

    def _path(self, path: str) -> str:
        """``path`` as the version names its files (a leading ``/`` dropped); one with ``.`` or
        ``..`` parts is no file of it (in a URL, ``../../v2/files/x`` read another version)."""
        rel = _text(path, "path").lstrip("/")
        if any(part in ("", ".", "..") for part in rel.split("/")):
            raise NotFound(f"{self.name} v{self.version} has no file {path!r}", status=404)
        return rel

    def _file_url(self, path: str) -> str:
        return self.client.api_url(f"{self.base}/files/{quote(self._path(path), safe='/')}")

    def open(self, path: str, mode: str = "rb", encoding: str | None = None) -> IO[Any]:
        """A seekable file object reading ``path`` with HTTP range requests (``"rb"`` or
        ``"r"``): only the parts you read are downloaded."""
        if mode not in ("r", "rt", "rb"):
            raise ValueError(f"mode: 'r', 'rt' or 'rb', not {mode!r} (datasets are read-only)")
        raw = RemoteFile(self.client, self._file_url(path), int(self.file(path)["size"]))
        buffered = _Buffered(raw, buffer_size=READ_BUFFER)
        if mode == "rb":
            return buffered
        return io.TextIOWrapper(buffered, encoding=encoding or "utf-8")

    def read_bytes(self, path: str) -> bytes:
        return self.client.send("GET", self._file_url(path)).content

    def to_pandas(self, path: str, **kwargs: Any) -> pandas.DataFrame:
        """Load a CSV/TSV, Parquet, JSON (lines) or Feather file into a DataFrame; CSV/TSV and
        JSON may be compressed (``.csv.gz``, ``.jsonl.zst`` ...: pandas' compressions)."""
        try:
            return self._to_pandas(path, **kwargs)
        except ValueError as exc:  # pandas' or pyarrow's, naming neither the file nor the form
            if str(exc).startswith(f"{path}: "):
                raise
            raise ValueError(f"{path} ({self.name} v{self.version}): cannot be read as a "
                             f"table: {type(exc).__name__}: {exc}") from exc  # fmt: skip

    def _to_pandas(self, path: str, **kwargs: Any) -> pandas.DataFrame:
        import pandas as pd

        suffixes = [s.lower() for s in Path(path).suffixes] or [""]
        suffix = suffixes[-1]
        if suffix in COMPRESSIONS and len(suffixes) > 1 and suffixes[-2] in TEXT_TABLES:
            kwargs.setdefault("compression", COMPRESSIONS[suffix])
            suffix = suffixes[-2]
        if suffix in (".csv", ".tsv", ".txt"):
            kwargs.setdefault("sep", "\t" if suffix == ".tsv" else ",")
            with self.open(path) as fh:
                return pd.read_csv(fh, **kwargs)
        readers: dict[str, Callable[..., pandas.DataFrame]] = {
            ".parquet": pd.read_parquet, ".pq": pd.read_parquet, ".feather": pd.read_feather,
            ".json": pd.read_json, ".jsonl": pd.read_json, ".ndjson": pd.read_json,
        }  # fmt: skip
        if suffix not in readers:  # said before the file is fetched (it may be gigabytes)
            raise ValueError(f"{path}: cannot tell how to load {suffix or 'a file without suffix'}")
        if readers[suffix] is pd.read_json:
            kwargs.setdefault("lines", suffix != ".json")
        return readers[suffix](io.BytesIO(self.read_bytes(path)), **kwargs)

    @property
    def path(self) -> Path:
        """A local copy of the whole version (downloaded once, then cached; ``download``)."""
        return self.download()

    def download(self, progress: bool | None = None) -> Path:
        """The local copy of the whole version, downloaded if it is not cached yet, with a
        progress bar (``None``: for versions of ``PROGRESS_BYTES`` or more)."""
        root = cache_dir("datasets")
        made_of = f"{LAYOUT} {SEALED} {self.client.url} {self.data['manifest_digest']}"
        key = hashlib.sha256(made_of.encode())
        target = root / self.project / self.name / f"v{self.version}-{key.hexdigest()[:12]}"
        if target.is_dir():
            if self._checked != target:  # once per object: a stat of each file
                self._mend(target)
                self._checked = target
            return target
        from .uploads import progress_bar

        total = int(self.data.get("total_bytes") or 0)
        shown = progress if progress is not None else total >= PROGRESS_BYTES
        bar = progress_bar(total, f"download {self.name} v{self.version}", enabled=shown)
        made(root)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".download-"))
        try:
            self._unpack(staging, bar.update)
            publish(staging, target)
        finally:
            bar.close()
            shutil.rmtree(staging, ignore_errors=True)
        self._index(target)
        self._checked = target
        return target

    def _index(self, copy: Path) -> list[dict[str, Any]]:
        """The files of a cached copy (path, size, digest), kept beside it (``{copy}.json``)
        when it is made: checking a copy of 100,000 files needs no listing from the server."""
        index = copy.with_name(f"{copy.name}.json")
        try:
            return list(json.loads(index.read_text()))
        except (OSError, ValueError):  # a copy made before indexes, or one cut short
            entries = [{k: e[k] for k in ("path", "size", "digest")} for e in self.files()]
            tmp = index.with_name(f".{index.name}.{uuid.uuid4().hex[:16]}.tmp")
            tmp.write_text(json.dumps(entries))
            os.replace(tmp, index)
            return entries

    def _unpack(self, staging: Path, done: Callable[[int], Any]) -> None:
        """The version's files into ``staging``, read-only and stamped, from its tar: one
        request (one a file took minutes for thousands of small files)."""
        wanted = {entry["path"]: entry for entry in self.files()}
        url = self.client.api_url(f"{self.base}/archive")
        stream = io.BufferedReader(_Pieces(self.client.stream_bytes(url)), READ_BUFFER)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    path = member.name.partition("/")[2]  # under the folder '{name}-v{n}'
                    entry = wanted.pop(path, None)
                    source = tar.extractfile(member) if entry is not None else None
                    if entry is None or source is None:
                        raise WorkbenchError(
                            f"the archive of {self} holds {member.name!r}, not a file of it",
                            code="bad_archive",
                        )
                    dest = staging / path
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with dest.open("wb") as out:
                        while piece := source.read(READ_BUFFER):
                            out.write(piece)
                            done(len(piece))
                    seal(dest, entry["digest"])
        except tarfile.TarError as exc:  # cut short by the server
            raise ConnectionFailed(f"the download of {url} broke off: {exc}") from exc
        if wanted:
            raise ConnectionFailed(f"the download of {url} broke off before {min(wanted)!r}")

    def _fetch(self, entry: dict[str, Any], dest: Path, done: Callable[[int], Any]) -> None:
        """Download one file to ``dest``, read-only and stamped (``files.seal``)."""
        with dest.open("wb") as out:
            for piece in self.client.stream_bytes(self._file_url(entry["path"])):
                out.write(piece)
                done(len(piece))
        seal(dest, entry["digest"])

    def _mend(self, copy: Path) -> None:
        """Download again, each into place, the files of a cached copy that were deleted or
        written to since (a user's edit of ``ds.path``): later copies out of it would carry
        the edit, or fail on the missing file, for good."""
        for entry in self._index(copy):
            path = copy / entry["path"]
            if sealed(path, int(entry["size"]), entry["digest"]):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".wb-{uuid.uuid4().hex[:16]}.tmp")
            try:
                self._fetch(entry, tmp, lambda _n: None)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)

    def materialize(self, dest: str | os.PathLike[str], progress: bool | None = None) -> Path:
        """Copy the whole version into the folder ``dest`` (made if missing; files of the same
        paths are replaced, others left alone), from the local cache (``download``)."""
        target = Path(dest).expanduser()
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(f"materialize: {target} is not a folder")
        entries = list(self.files())
        clash = first_clash(target, [entry["path"] for entry in entries])
        if clash:  # refused before anything is fetched or written
            raise FileExistsError(f"materialize: {clash}")
        # each file is checked again (a stat each, beside a copy each): one edited through
        # ``ds.path`` since this object last looked would be copied as edited
        self._checked = None
        source = self.download(progress)
        for entry in entries:
            path = target / entry["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            copy_replacing(source / entry["path"], path)  # (a `get --link` may have left links)
        return target

    def verify(
        self,
        *,
        timeout: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Have the workbench re-read every chunk of this version and check its hashes (an
        operation on the server, followed until it ends; editors): the report, ``ok`` and
        what is missing or corrupt. ``TimeoutError`` after ``timeout`` seconds."""
        operation = self.client.post(f"{self.base}/verify")
        return self.client.wait_operation(operation, timeout=timeout, on_progress=on_progress)

    def lineage(self) -> list[dict[str, Any]]:
        """Who used this version: ``consumer`` (``run:<id>``), ``direction`` (read/written),
        ``recorded_by``, ``time``."""
        return list(self.client.paged(f"{self.base}/lineage"))

    def __repr__(self) -> str:
        return f"<DatasetVersion {self.project}/{self.name} v{self.version}>"


class _Pieces(io.RawIOBase):
    """A read-only stream of the byte strings ``pieces`` yields (a download, as ``tarfile``
    reads it)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        super().__init__()
        self.pieces, self.left = pieces, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self.left:
            self.left = next(self.pieces, b"")
            if not self.left:
                return 0
        n = min(len(view), len(self.left))
        view[:n], self.left = self.left[:n], self.left[n:]
        return n


class _Buffered(io.BufferedReader):
    """``io.BufferedReader`` whose ``read1`` fills its buffer first: io's reads just the bytes
    asked of the raw file when none are buffered, and text mode reads 8 KiB at a time that
    way (each a range request: 37 for a 300 kB text file)."""

    def read1(self, size: int = -1) -> bytes:
        self.peek(1)
        return super().read1(size)


class RemoteFile(io.RawIOBase):
    """A read-only, seekable view of a remote file; every read is one HTTP range request."""

    def __init__(self, client: Client, url: str, size: int) -> None:
        super().__init__()
        self.client, self.url, self.size = client, url, size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, start + offset)
        return self.position

    def readall(self) -> bytes:
        """The rest of the file in one request (``io.RawIOBase.readall`` asks 8 KiB at a time:
        ``read()`` of a 2 MB file made 250 requests)."""
        parts = []
        while self.position < self.size and (piece := self.read(self.size - self.position)):
            parts.append(piece)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.position >= self.size or not len(view):
            return 0
        end = min(self.position + len(view), self.size) - 1
        data = self.client.send(
            "GET", self.url, headers={"Range": f"bytes={self.position}-{end}"}
        ).content
        view[: len(data)] = data
        self.position += len(data)
        return len(data)
