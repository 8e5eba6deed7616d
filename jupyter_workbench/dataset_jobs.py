"""The long dataset jobs: commits, uploads, reads, diffs, verification, garbage collection.

Each job runs its short database steps through ``WorkbenchService.call`` (one transaction each,
access checked by ``core``) and its long byte-moving steps outside any transaction, through the
chunk store. Progress goes to an ``Operation`` row (polled by clients) and/or a callback (the
CLI's progress bar); a cancelled operation stops at the next chunk boundary.
"""

from __future__ import annotations

import bisect
import dataclasses
import io
import logging
import os
import struct
import tarfile
import threading
import time
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

import blake3
from sqlalchemy import and_, delete, exists, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from .core import datasets as ds
from .core import operations
from .core.access import require_project
from .core.context import Ctx, Identity
from .core.dataset_diff import diff_versions
from .core.dataset_ignore import shown
from .core.dataset_paths import check_media_type, check_path, media_type, scan_folder
from .core.errors import BadRequest, Conflict, PayloadTooLarge, WorkbenchError
from .core.validation import check_text
from .db.models import (
    BlobChunk,
    BlobPack,
    CommitSession,
    Dataset,
    DatasetVersion,
    Operation,
    SessionChunk,
    SessionPack,
    VersionChunk,
    utcnow,
)
from .files import copy_replacing, first_clash, seal, sealed
from .service import WorkbenchService
from .storage.blobstore import BlobCorrupt, BlobNotFound, BlobStore
from .storage.chunking import MAX_CHUNK, blake3_hex
from .storage.chunkstore import ChunkLocation, ChunkMissing, ChunkStore, pack_key_for

log = logging.getLogger("jupyter_workbench")

FRAME_HEADER = struct.Struct(">32sI")  # raw BLAKE3 digest, chunk length
PROGRESS_INTERVAL = 0.5
VERIFY_GROUP = 1000  # chunks of declared files looked up at once when an upload is verified


class Cancelled(WorkbenchError):
    status = 409
    code = "cancelled"


# -- progress ------------------------------------------------------------------------
class Progress:
    """Counts bytes and files; writes them to an Operation row at most twice a second."""

    def __init__(
        self,
        service: WorkbenchService | None = None,
        op_id: str | None = None,
        callback: Callable[[Progress], None] | None = None,
    ) -> None:
        self.service = service
        self.op_id = op_id
        self.callback = callback
        self.bytes_done = 0
        self.files_done = 0
        self.bytes_total: int | None = None
        self.files_total: int | None = None
        self.message = ""
        self._last = 0.0

    def totals(self, *, bytes_total: int | None = None, files_total: int | None = None) -> None:
        self.bytes_total, self.files_total = bytes_total, files_total
        self._push(force=True)

    def add(self, nbytes: int = 0, files: int = 0) -> None:
        self.bytes_done += nbytes
        self.files_done += files
        self._push()

    def say(self, message: str) -> None:
        self.message = message
        self._push(force=True)

    def _push(self, force: bool = False) -> None:
        if self.service is not None and self.service.stopping.is_set():
            raise Cancelled("the workbench is stopping")
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        if self.callback is not None:
            self.callback(self)
        if self.service is None or self.op_id is None:
            return
        with self.service.db.transaction(write=True) as s:
            op = s.get(Operation, self.op_id)
            if op is None:
                return
            op.bytes_done, op.files_done = self.bytes_done, self.files_done
            op.bytes_total, op.files_total = self.bytes_total, self.files_total
            op.message = self.message
            op.updated_at = utcnow()
            cancel = op.cancel_requested
        if cancel:
            raise Cancelled("the operation was cancelled")

    def finish(self, state: str, *, result: dict[str, Any] | None = None, error: str = "") -> None:
        if self.callback is not None:
            self.callback(self)
        if self.service is None or self.op_id is None:
            return
        with self.service.db.transaction(write=True) as s:
            s.execute(
                update(Operation)
                .where(Operation.id == self.op_id)
                .values(
                    state=state,
                    result=result or {},
                    error=error[:5000],
                    bytes_done=self.bytes_done,
                    files_done=self.files_done,
                    bytes_total=self.bytes_total,
                    files_total=self.files_total,
                    updated_at=utcnow(),
                )
            )


# -- reading files -------------------------------------------------------------------
class ChunkFile(io.RawIOBase):
    """A seekable, read-only file over a stored file's chunks (reads only what is asked)."""

    def __init__(self, store: ChunkStore, entry: ds.FileEntry) -> None:
        super().__init__()
        self.store, self.entry, self.pos = store, entry, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.entry.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self.pos + len(view), self.entry.size)
        written = 0
        for piece in self.store.read_range(self.entry.chunks, self.pos, end):
            view[written : written + len(piece)] = piece
            written += len(piece)
        self.pos += written
        return written


def open_entry(store: ChunkStore, entry: ds.FileEntry) -> BinaryIO:
    return io.BufferedReader(ChunkFile(store, entry), buffer_size=1024 * 1024)


def tar_stream(store: ChunkStore, entries: list[ds.FileEntry], root: str) -> Iterator[bytes]:
    """A POSIX tar of ``entries`` (with their chunk lists) under folder ``root``."""
    return tar_of(entries, root, lambda e: (data for _d, data in store.iter_chunks(e.chunks)))


def tar_of(
    entries: Iterable[ds.FileEntry], root: str, read: Callable[[ds.FileEntry], Iterator[bytes]]
) -> Iterator[bytes]:
    """A POSIX tar of ``entries`` under folder ``root``, each file's bytes from ``read``,
    produced piece by piece."""
    mtime = int(time.time())
    for entry in entries:
        info = tarfile.TarInfo(f"{root}/{entry.path}")
        info.size, info.mtime, info.mode = entry.size, mtime, 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        yield from read(entry)
        if entry.size % tarfile.BLOCKSIZE:
            yield b"\0" * (tarfile.BLOCKSIZE - entry.size % tarfile.BLOCKSIZE)
    yield b"\0" * (tarfile.BLOCKSIZE * 2)


# -- the jobs ------------------------------------------------------------------------
@dataclass
class CommitResult:
    version: dict[str, Any]
    bytes_new: int = 0
    chunks_new: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def unchanged(self) -> bool:
        """No new version: the files were exactly the latest version's (``version`` is it)."""
        return bool(self.version.get("unchanged"))

    @property
    def replayed(self) -> bool:
        """The upload was published already, by a commit like this one: this is its answer."""
        return bool(self.version.get("replayed"))

    def as_json(self) -> dict[str, Any]:
        version = {k: v for k, v in self.version.items() if k not in ("unchanged", "replayed")}
        return {
            "version": version,
            "unchanged": self.unchanged,
            "replayed": self.replayed,
            "stored": {
                "bytes_new": self.bytes_new,
                "chunks_new": self.chunks_new,
                "chunks_reused": self.chunks_reused,
            },
            "seconds": round(self.seconds, 3),
            **self.extra,
        }


FILE_PAGE = 500  # files of a version read at a time (a tar of the version)
# a tar reads the chunk lists of a page's files up to this size at once (a page's lists are then
# at most FILE_PAGE * 256 chunks, of 16 KiB at least); a larger file's a few spans at a time
TAR_PAGE_FILE_BYTES = 4 << 20


class DatasetJobs:
    """Dataset operations that move bytes, over one service and one chunk store."""

    def __init__(
        self,
        service: WorkbenchService,
        store: ChunkStore,
        *,
        max_commit_bytes: int,
        session_ttl: timedelta,
        gc_grace: timedelta,
        table_diff_limit: int,
        table_diff_files: int,
        cache_dir: Path,
        verify_uploads: bool = True,
    ) -> None:
        self.service = service
        self.store = store
        self.max_commit_bytes = max_commit_bytes
        self.session_ttl = session_ttl
        self.gc_grace = gc_grace
        self.table_diff_limit = table_diff_limit
        self.table_diff_files = table_diff_files
        self.cache_dir = cache_dir
        self.verify_uploads = verify_uploads
        self._declared_cache = DeclaredCache(DECLARED_CACHE_BYTES)

    @property
    def blobs(self) -> BlobStore:
        return self.store.blobs

    # -- operations ----------------------------------------------------------------
    def start_operation(
        self, identity: Identity, kind: str, slug: str | None = None, message: str = ""
    ) -> str:
        def work(s: Any, ctx: Ctx) -> str:
            project = require_project(s, ctx, slug, "datasets.read")[0] if slug else None
            return operations.start(s, ctx, kind, project=project, message=message).id

        return self.service.call(identity, work, write=True)

    def run_operation(
        self, op_id: str, job: Callable[[Progress], dict[str, Any]]
    ) -> dict[str, Any]:
        """Run ``job`` reporting to operation ``op_id``; its outcome lands on the row."""
        progress = Progress(self.service, op_id)
        try:
            result = job(progress)
        except Cancelled:
            stopping = self.service.stopping.is_set()
            progress.finish("cancelled", error=operations.INTERRUPTED if stopping else "cancelled")
            raise
        except WorkbenchError as exc:
            progress.finish("failed", error=exc.message)
            raise
        except Exception as exc:
            progress.finish("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        progress.finish("succeeded", result=result)
        return result

    # -- commit a server-side folder ------------------------------------------------
    def commit_folder(
        self,
        identity: Identity,
        slug: str,
        name: str,
        source: Path,
        *,
        message: str = "",
        parent: str | None = None,
        strict_parent: bool = False,
        mode: str = "replace",
        ignore: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> CommitResult:
        """Commit every file under ``source`` as a new version (``mode='replace'``), or on top
        of the parent's files (``mode='update'``: same paths are replaced, others kept); files
        the ignore rules leave out (defaults, ``.wbignore``, ``ignore``) are named in the
        result's ``ignored``."""
        if mode not in ("replace", "update"):
            raise BadRequest("mode: must be 'replace' or 'update'", code="invalid_field")
        ds.check_strict_parent(parent, strict_parent)
        started = time.monotonic()
        progress = progress or Progress()
        files, ignored = scan_folder(source, max_bytes=self.max_commit_bytes, ignore=ignore)
        if not files:  # as the client refuses one: an empty version is never an accident
            but = f" but those ignored ({shown(ignored)})" if ignored else ""
            raise BadRequest(f"source: {str(source)!r} has no files{but}", code="invalid_source")
        progress.totals(bytes_total=sum(f.size for f in files), files_total=len(files))
        session_id = uuid.uuid4().hex
        self.service.call(
            identity, lambda s, ctx: ds.begin_session(s, ctx, slug, name, session_id), write=True
        )
        writer = self.store.writer(session_id)
        entries: list[ds.FileEntry] = []
        try:
            for source_file in files:
                digest = writer.add_file(source_file.local, on_bytes=progress.add)
                if digest.size != source_file.size:
                    raise Conflict(
                        f"path: {source_file.path!r} changed while it was being committed",
                        code="source_changed",
                    )
                entries.append(
                    ds.FileEntry(
                        source_file.path,
                        digest.size,
                        digest.digest,
                        digest.chunks,
                        media_type(source_file.path),
                    )
                )
                progress.add(files=1)
            writer.finish()
            progress.say("publishing")
            changes = ds.Changes(put=entries, replace_all=mode == "replace")
            version = self._publish(
                identity, slug, name, session_id, changes, message, parent, strict_parent
            )
        except BaseException as exc:
            writer.abort()
            self._end_failed_commit(identity, session_id, exc)
            raise
        return CommitResult(
            version,
            writer.bytes_new,
            writer.chunks_new,
            writer.chunks_reused,
            time.monotonic() - started,
            {"ignored": ignored},
        )

    def _publish(
        self,
        identity: Identity,
        slug: str,
        name: str,
        session_id: str,
        changes: ds.Changes,
        message: str,
        parent: str | None,
        strict_parent: bool,
    ) -> dict[str, Any]:
        def work(s: Any, ctx: Ctx) -> dict[str, Any]:
            return _published_json(
                s,
                ds.publish(
                    s,
                    ctx,
                    slug,
                    name,
                    session_id,
                    changes,
                    message=message,
                    parent=parent,
                    strict_parent=strict_parent,
                ),
            )

        return self.service.call(identity, work, write=True)

    def _end_failed_commit(self, identity: Identity, session_id: str, exc: BaseException) -> None:
        """End the session of a folder commit that failed with ``exc``, audited as an abandoned
        upload with the error's code (or type) as its reason; ended unaudited if that fails."""
        reason = exc.code if isinstance(exc, WorkbenchError) else type(exc).__name__
        try:
            self.service.call(
                identity,
                lambda s, ctx: ds.end_failed_commit(s, ctx, session_id, reason),
                write=True,
            )
        except Exception:
            log.warning("could not audit the end of failed commit %s", session_id, exc_info=True)
            with self.service.db.transaction(write=True) as s:
                session = s.get(CommitSession, session_id)
                if session is not None and session.state == "open":
                    ds.end_session(s, session_id, "aborted")

    # -- resumable uploads ----------------------------------------------------------
    def start_upload(
        self, identity: Identity, slug: str, name: str, files: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Declare the files (paths, sizes, digests, chunk lists) of an upload; answers which
        chunks the store lacks -- only those need sending."""
        entries = [self._declared(f, i) for i, f in enumerate(files)]
        ds.check_manifest(entries)
        total = sum(e.size for e in entries)
        if total > self.max_commit_bytes:
            raise PayloadTooLarge(
                f"files: {total} bytes is more than the {self.max_commit_bytes} bytes a commit "
                "may hold (Workbench.max_dataset_commit_bytes)",
                code="too_large",
            )
        session_id = uuid.uuid4().hex
        self.service.call(
            identity,
            lambda s, ctx: ds.begin_session(
                s, ctx, slug, name, session_id, kind="upload", files=entries
            ),
            write=True,
        )
        digests = sorted({d for e in entries for d, _ in e.chunks})
        self.store.writer(session_id).pin_existing(digests)
        return self.upload_status(identity, slug, name, session_id)

    @staticmethod
    def _declared(data: dict[str, Any], index: int) -> ds.FileEntry:
        where = f"files[{index}]"
        try:
            path = check_path(data["path"], f"{where}.path")
            chunks = [(str(d), int(n)) for d, n in data["chunks"]]
            entry = ds.FileEntry(
                path,
                int(data["size"]),
                str(data["digest"]),
                chunks,
                str(data.get("media_type") or media_type(path)),
            )
        except (KeyError, TypeError, ValueError):
            raise BadRequest(
                f"{where}: needs path, size, digest and chunks [[digest, length], ...]",
                code="invalid_manifest",
            ) from None
        check_media_type(entry.media_type, f"{where}.media_type")
        for digest, length in chunks:
            if not 0 < length <= MAX_CHUNK:
                raise BadRequest(
                    f"{where}: chunk {digest[:16]}... is {length} bytes; chunks are 1-{MAX_CHUNK}",
                    code="invalid_manifest",
                )
        return entry

    def upload_status(
        self, identity: Identity, slug: str, name: str, upload_id: str
    ) -> dict[str, Any]:
        def work(s: Any, ctx: Ctx) -> dict[str, Any]:
            _p, _d, session = ds.load_session(s, ctx, slug, name, upload_id)
            entries = ds.session_files(session)
            sizes = {d: n for e in entries for d, n in e.chunks}
            pinned = ds.pinned_digests(s, upload_id, sorted(sizes))
            missing = sorted(d for d in sizes if d not in pinned)
            return {
                "id": upload_id,
                "state": session.state,
                "files": len(entries),
                "bytes_total": sum(e.size for e in entries),
                "chunks_total": len(sizes),
                "missing": missing,
                "missing_bytes": sum(sizes[d] for d in missing),
                "created_at": session.created_at.isoformat(),
            }

        return self.service.call(identity, work, write=False)

    def receive_chunks(
        self, identity: Identity, slug: str, name: str, upload_id: str, body: bytes
    ) -> dict[str, Any]:
        """Store a batch of framed chunks (``>32sI`` digest+length, then the bytes), each checked
        against its BLAKE3 digest; a bad batch is refused whole, nothing of it stored."""

        def load(s: Any, ctx: Ctx) -> DeclaredChunks:
            _p, _d, session = ds.load_session(s, ctx, slug, name, upload_id)
            if session.state != "open":
                raise Conflict(f"upload {upload_id} is {session.state}", code=session.state)
            known = self._declared_cache.get(upload_id)
            if known is not None:  # the manifest (its own column) is left unread
                return known
            sizes = {d: n for e in ds.session_files(session) for d, n in e.chunks}
            return self._declared_cache.put(upload_id, DeclaredChunks(sizes))

        declared = self.service.call(identity, load, write=False)
        frames = list(_parse_frames(body, declared))
        writer = self.store.writer(upload_id)
        with self.service.db.transaction() as s:
            already = ds.pinned_digests(s, upload_id, [d for d, _ in frames])
        stored = 0
        try:
            for digest, data in frames:
                if digest not in already and writer.add_chunk(digest, data):
                    stored += 1
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        return {"received": len(frames), "stored": stored, "bytes_new": writer.bytes_new}

    def finish_upload(
        self,
        identity: Identity,
        slug: str,
        name: str,
        upload_id: str,
        *,
        message: str = "",
        parent: str | None = None,
        strict_parent: bool = False,
        mode: str = "replace",
        delete_paths: list[str] | None = None,
    ) -> CommitResult:
        """Publish an upload whose chunks have all arrived, checking every file's digest."""
        started = time.monotonic()
        if mode not in ("replace", "update"):
            raise BadRequest("mode: must be 'replace' or 'update'", code="invalid_field")
        if delete_paths and mode == "replace":
            raise BadRequest("delete: only an 'update' commit deletes paths", code="invalid_field")
        ds.check_strict_parent(parent, strict_parent)  # (before every file is read again)
        status = self.upload_status(identity, slug, name, upload_id)
        if status["state"] == "published":  # a retry whose first answer was lost?
            request = ds.commit_request(
                message=check_text(message, "message", max_length=10_000, allow_empty=True),
                parent=parent,
                strict_parent=strict_parent,
                mode=mode,
                delete=list(delete_paths or []),
            )

            def replay(s: Any, ctx: Ctx) -> dict[str, Any]:
                return _published_json(s, ds.replay_commit(s, ctx, slug, name, upload_id, request))

            version = self.service.call(identity, replay, write=False)
            return CommitResult(version, seconds=time.monotonic() - started)
        if status["state"] != "open":
            raise Conflict(f"upload {upload_id} is {status['state']}", code=status["state"])
        if status["missing"]:
            raise Conflict(
                f"upload {upload_id} is incomplete: {len(status['missing'])} chunks "
                f"({status['missing_bytes']} bytes) still missing",
                code="incomplete_upload",
            )

        def files(s: Any, ctx: Ctx) -> list[ds.FileEntry]:
            return ds.session_files(ds.load_session(s, ctx, slug, name, upload_id)[2])

        entries = self.service.call(identity, files, write=False)
        if mode == "replace" and not entries:
            self._refuse_upload(identity, slug, name, upload_id, "empty_replace")
            raise BadRequest(
                "files: a 'replace' commit of no files would publish an empty version (declare "
                "files, or commit with mode 'update' to delete some)",
                code="invalid_field",
            )
        self._check_chunk_lengths(identity, slug, name, upload_id, entries)
        if self.verify_uploads:
            self._verify_declared(identity, slug, name, upload_id, entries)
        changes = ds.Changes(
            put=entries, delete=list(delete_paths or []), replace_all=mode == "replace"
        )
        version = self._publish(
            identity, slug, name, upload_id, changes, message, parent, strict_parent
        )
        return CommitResult(version, seconds=time.monotonic() - started)

    def _verify_declared(
        self, identity: Identity, slug: str, name: str, upload_id: str, entries: list[ds.FileEntry]
    ) -> None:
        """Every file's chunks add up to its declared digest: its bytes read back and hashed,
        the chunks of many small files located at once (``VERIFY_GROUP`` chunks a lookup, not
        one transaction a file). A 400 (the upload ended) at the first that does not."""
        for group, located in self._located_groups(entries):
            for entry in group:
                hasher = blake3.blake3(max_threads=1)
                for _d, data in self.store.iter_chunks(entry.chunks, located=located):
                    hasher.update(data)
                if hasher.hexdigest() != entry.digest:
                    self._refuse_upload(identity, slug, name, upload_id, "digest_mismatch")
                    raise BadRequest(
                        f"files[{entry.path}]: its chunks do not add up to the declared BLAKE3 "
                        "digest of the file",
                        code="digest_mismatch",
                    )

    def _located_groups(
        self, entries: list[ds.FileEntry]
    ) -> Iterator[tuple[list[ds.FileEntry], dict[str, Any] | None]]:
        """``entries`` in runs of at most ``VERIFY_GROUP`` chunks, each with its chunks'
        locations (looked up at once); a file of more chunks alone, without (``iter_chunks``
        looks its chunks up a batch at a time)."""
        group: list[ds.FileEntry] = []
        count = 0
        for entry in entries:
            if len(entry.chunks) > VERIFY_GROUP:
                yield [entry], None
                continue
            if count + len(entry.chunks) > VERIFY_GROUP:
                yield group, self.store.locate(d for e in group for d, _ in e.chunks)
                group, count = [], 0
            group.append(entry)
            count += len(entry.chunks)
        if group:
            yield group, self.store.locate(d for e in group for d, _ in e.chunks)

    def _refuse_upload(
        self, identity: Identity, slug: str, name: str, upload_id: str, reason: str
    ) -> None:
        """End an upload whose commit is refused (``reason``: the refusal's code), audited."""
        self.service.call(
            identity,
            lambda s, ctx: ds.end_refused_upload(s, ctx, slug, name, upload_id, reason),
            write=True,
        )

    def _check_chunk_lengths(
        self, identity: Identity, slug: str, name: str, upload_id: str, entries: list[ds.FileEntry]
    ) -> None:
        """Every declared chunk length is the stored chunk's: a chunk the store already had
        was never sent, so its declared length was never compared with its bytes."""
        declared = {d: (e.path, n) for e in entries for d, n in e.chunks}
        stored = self.store.locate(declared)
        for digest, (path, length) in declared.items():
            actual = stored[digest].length if digest in stored else length
            if actual != length:
                self._refuse_upload(identity, slug, name, upload_id, "chunk_length_mismatch")
                raise BadRequest(
                    f"files[{path}]: chunk {digest} is {actual} bytes, not the {length} declared",
                    code="chunk_length_mismatch",
                )

    def abort_upload(self, identity: Identity, slug: str, name: str, upload_id: str) -> None:
        self.service.call(
            identity, lambda s, ctx: ds.abandon_upload(s, ctx, slug, name, upload_id), write=True
        )

    # -- reading --------------------------------------------------------------------
    def file_entry(
        self, identity: Identity, slug: str, name: str, ref: str, path: str
    ) -> tuple[int, ds.FileEntry]:
        def work(s: Any, ctx: Ctx) -> tuple[int, ds.FileEntry]:
            version, entry = ds.get_file(s, ctx, slug, name, ref, path)
            return version.version, entry

        return self.service.call(identity, work, write=False)

    def file_head(
        self, identity: Identity, slug: str, name: str, ref: str, path: str
    ) -> tuple[int, ds.FileEntry]:
        """A file's number, size, digest, type and row, not its chunk list (``read_file``)."""

        def work(s: Any, ctx: Ctx) -> tuple[int, ds.FileEntry]:
            version, entry = ds.file_head(s, ctx, slug, name, ref, path)
            return version.version, entry

        return self.service.call(identity, work, write=False)

    def read_file(
        self, entry: ds.FileEntry, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive) of a stored file (from ``file_head``),
        reading its chunk list a few spans at a time: only the part overlapping the range."""
        assert entry.file_id is not None
        end = entry.size if end is None else min(end, entry.size)
        position = start
        while position < end:
            with self.service.db.transaction() as s:
                first, chunks = ds.chunks_in_range(s, entry.file_id, position, end)
            if not chunks:
                raise ChunkMissing(f"{entry.path}: no chunks hold byte {position} (deleted?)")
            upto = first + sum(n for _, n in chunks)
            yield from self.store.read_range(chunks, position - first, min(end, upto) - first)
            position = upto

    def archive(
        self, identity: Identity, slug: str, name: str, ref: str
    ) -> tuple[int, Iterator[bytes]]:
        """A version's number and its tar (folder ``{name}-v{n}``), streamed: its files read a
        page at a time and each file's chunk list a few spans at a time, so that memory stays
        bounded whatever the version holds."""

        def work(s: Any, ctx: Ctx) -> tuple[int, int]:
            _p, _d, version = ds.get_version(s, ctx, slug, name, ref)
            return version.id, version.version

        version_id, number = self.service.call(identity, work, write=False)
        located: dict[str, ChunkLocation] = {}  # where the chunks of the current page's files lie

        def entries() -> Iterator[ds.FileEntry]:
            """The version's files a page at a time; the small ones with their chunk lists,
            read (and their chunks located) for the whole page in two queries: two per file
            made a version of thousands of small files take minutes."""
            for page in self._file_head_pages(version_id):
                small = [
                    e.file_id
                    for e in page
                    if e.file_id is not None and 0 < e.size <= TAR_PAGE_FILE_BYTES
                ]
                lists: dict[int, list[tuple[str, int]]] = {}
                located.clear()
                if small:
                    with self.service.db.transaction() as s:
                        lists = ds.chunk_lists(s, small)
                    located.update(self.store.locate(d for c in lists.values() for d, _ in c))
                for entry in page:
                    chunks = lists.get(entry.file_id or 0)
                    yield entry if chunks is None else dataclasses.replace(entry, chunks=chunks)

        def read(entry: ds.FileEntry) -> Iterator[bytes]:
            if not entry.chunks:  # a large (or empty) file: its chunk list a few spans at a time
                return self.read_file(entry)
            return (data for _d, data in self.store.iter_chunks(entry.chunks, located=located))

        return number, tar_of(entries(), f"{name}-v{number}", read)

    def _file_head_pages(self, version_id: int) -> Iterator[list[ds.FileEntry]]:
        after = None
        while True:
            with self.service.db.transaction() as s:
                page = ds.file_heads(s, version_id, after=after, limit=FILE_PAGE)
            yield page
            if len(page) < FILE_PAGE:
                return
            after = page[-1].path

    def version_entries(
        self, identity: Identity, slug: str, name: str, ref: str
    ) -> tuple[int, list[ds.FileEntry]]:
        def work(s: Any, ctx: Ctx) -> tuple[int, list[ds.FileEntry]]:
            _p, _d, version = ds.get_version(s, ctx, slug, name, ref)
            return version.version, ds.files_of(s, version.id)

        return self.service.call(identity, work, write=False)

    def diff(
        self, identity: Identity, slug: str, name: str, old_ref: str, new_ref: str
    ) -> dict[str, Any]:
        old_id, old_number, old = self._summaries(identity, slug, name, old_ref)
        new_id, new_number, new = self._summaries(identity, slug, name, new_ref)
        version_of = {id(e): old_id for e in old} | {id(e): new_id for e in new}

        def open_table(entry: ds.FileEntry) -> BinaryIO:
            with self.service.db.transaction() as s:
                chunks = ds.chunks_of(s, version_of[id(entry)], [entry.path])[entry.path]
            return open_entry(self.store, dataclasses.replace(entry, chunks=chunks))

        result = diff_versions(
            old,
            new,
            open_table,
            table_limit_bytes=self.table_diff_limit,
            max_tables=self.table_diff_files,
        )
        return {"from": old_number, "to": new_number, **result}

    def _summaries(
        self, identity: Identity, slug: str, name: str, ref: str
    ) -> tuple[int, int, list[ds.FileEntry]]:
        """A version's id, number and files without their chunk lists."""

        def work(s: Any, ctx: Ctx) -> tuple[int, int, list[ds.FileEntry]]:
            _p, _d, version = ds.get_version(s, ctx, slug, name, ref)
            return version.id, version.version, ds.summaries_of(s, version.id)

        return self.service.call(identity, work, write=False)

    def materialize(
        self,
        identity: Identity,
        slug: str,
        name: str,
        ref: str,
        dest: Path,
        *,
        link: bool = False,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """A local folder with the version's files, copied from a local cache of file contents
        (files already cached are not fetched again).

        With ``link``, the files are hard links to the cache instead (no second copy on disk,
        where DEST is on the cache's file system): they are read-only and must not be edited in
        place; a cached file that was written to anyway is noticed and fetched afresh.
        A ``dest`` that is a file is refused before anything is read or written."""
        dest = Path(dest)
        if dest.exists() and not dest.is_dir():
            raise BadRequest(f"materialize: {dest} is not a folder", code="invalid_dest")
        number, entries = self.version_entries(identity, slug, name, ref)
        clash = first_clash(dest, [e.path for e in entries])
        if clash:
            raise BadRequest(f"materialize: {clash}", code="invalid_dest")
        progress = progress or Progress()
        progress.totals(bytes_total=sum(e.size for e in entries), files_total=len(entries))
        dest.mkdir(parents=True, exist_ok=True)
        fetched = linked = 0
        for entry in entries:
            cached = self._cached(entry)
            if cached is None:
                cached = self._fetch_to_cache(entry)
                fetched += 1
            target = dest / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            if link and _try_link(cached, target):
                linked += 1
            else:
                copy_replacing(cached, target)
            progress.add(entry.size, files=1)
        return {
            "path": str(dest),
            "version": number,
            "files": len(entries),
            "fetched": fetched,
            "linked": linked,
        }

    def _cache_path(self, entry: ds.FileEntry) -> Path:
        return self.cache_dir / entry.digest[:2] / entry.digest

    def _cached(self, entry: ds.FileEntry) -> Path | None:
        path = self._cache_path(entry)
        # A cached file someone made writable or wrote to (through a hard link: a write sets
        # its modification time, losing the stamp) is not trusted again.
        if not sealed(path, entry.size, entry.digest):
            path.unlink(missing_ok=True)
            return None
        return path

    def _fetch_to_cache(self, entry: ds.FileEntry) -> Path:
        path = self._cache_path(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        hasher = blake3.blake3(max_threads=1)
        with open(tmp, "wb") as out:
            for _d, data in self.store.iter_chunks(entry.chunks):
                hasher.update(data)
                out.write(data)
        if hasher.hexdigest() != entry.digest:  # pragma: no cover - chunks are verified
            tmp.unlink()
            raise BlobCorrupt(f"{entry.path}: content does not match its digest")
        seal(tmp, entry.digest)
        os.replace(tmp, path)
        return path

    # -- integrity ------------------------------------------------------------------
    def verify_version(
        self,
        identity: Identity,
        slug: str,
        name: str,
        ref: str,
        *,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Re-read every chunk of a version and recompute every file's BLAKE3."""
        number, entries = self.version_entries(identity, slug, name, ref)
        progress = progress or Progress()
        progress.totals(bytes_total=sum(e.size for e in entries), files_total=len(entries))
        problems: list[dict[str, Any]] = []
        for entry in entries:
            hasher = blake3.blake3(max_threads=1)
            try:
                for _d, data in self.store.iter_chunks(entry.chunks):
                    hasher.update(data)
                    progress.add(len(data))
                if hasher.hexdigest() != entry.digest:
                    problems.append({"path": entry.path, "problem": "file digest mismatch"})
            except ChunkMissing as exc:
                problems.append(
                    {"path": entry.path, "problem": "missing chunk", "detail": str(exc)}
                )
            except BlobCorrupt as exc:
                problems.append(
                    {"path": entry.path, "problem": "corrupt chunk", "detail": str(exc)}
                )
            progress.add(files=1)
        return {"version": number, "files": len(entries), "ok": not problems, "problems": problems}

    def verify_store(self, *, progress: Progress | None = None) -> dict[str, Any]:
        """Re-read every pack and check every indexed chunk; name the versions affected."""
        progress = progress or Progress()
        with self.service.db.transaction() as s:
            packs = list(
                s.execute(
                    select(BlobPack.id, BlobPack.key, BlobPack.size).where(
                        BlobPack.state == "sealed"
                    )
                )
            )
        progress.totals(bytes_total=sum(p.size for p in packs), files_total=len(packs))
        missing: list[str] = []
        corrupt: list[str] = []
        chunks_checked = 0
        for pack_id, key, _size in packs:
            with self.service.db.transaction() as s:
                rows = list(
                    s.execute(
                        select(BlobChunk.digest, BlobChunk.offset, BlobChunk.length)
                        .where(BlobChunk.pack_id == pack_id)
                        .order_by(BlobChunk.offset)
                    )
                )
            if not rows:
                progress.add(files=1)
                continue
            for digest, length, piece in _read_chunks(self.blobs, key, rows):
                if piece is None:
                    missing.append(digest)
                    continue
                chunks_checked += 1
                if blake3_hex(piece) != digest:
                    corrupt.append(digest)
                progress.add(length)  # and a cancel is seen within a pack
            progress.add(files=1)
        affected = self._versions_using(missing + corrupt)
        return {
            "packs": len(packs),
            "chunks_checked": chunks_checked,
            "missing_chunks": missing,
            "corrupt_chunks": corrupt,
            "affected_versions": affected,
            "ok": not missing and not corrupt,
        }

    def _versions_using(self, digests: list[str]) -> list[dict[str, Any]]:
        if not digests:
            return []
        from .db.models import Project

        with self.service.db.transaction() as s:
            rows = s.execute(
                select(Project.slug, Dataset.name, DatasetVersion.version)
                .join(VersionChunk, VersionChunk.version_id == DatasetVersion.id)
                .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                .join(Project, Project.id == Dataset.project_id)
                .where(VersionChunk.chunk_digest.in_(digests[:5000]))
                .distinct()
            )
            return [{"project": p, "dataset": d, "version": v} for p, d, v in rows]

    # -- garbage collection ---------------------------------------------------------
    def gc(self, *, dry_run: bool = True, progress: Progress | None = None) -> dict[str, Any]:
        """Free chunks no version and no live session references, and the storage behind them.

        Safe while commits run: a chunk pinned by a session or referenced by a version is never
        deleted (foreign keys refuse it even in a race), packs being written are left alone, and
        retired packs are only removed after ``gc_grace`` so that readers that just looked up a
        chunk's old location still find it.
        """
        progress = progress or Progress()
        now = utcnow()
        report: dict[str, Any] = {"dry_run": dry_run}
        stale_cutoff = now - self.session_ttl
        if dry_run:
            with self.service.db.transaction() as s:
                stale = list(
                    s.scalars(
                        select(CommitSession.id).where(
                            CommitSession.state == "open",
                            CommitSession.heartbeat_at < stale_cutoff,
                        )
                    )
                )
        else:  # audited as the system, as other background jobs are
            stale = self.service.call(
                self.service.system_identity(),
                lambda s, ctx: ds.expire_sessions(s, ctx, stale_cutoff),
                write=True,
            )
        report["sessions_expired"] = len(stale)
        live = select(CommitSession.id).where(
            CommitSession.state == "open", CommitSession.id.not_in(stale)
        )
        unreferenced = and_(
            ~exists().where(VersionChunk.chunk_digest == BlobChunk.digest),
            ~exists().where(
                SessionChunk.chunk_digest == BlobChunk.digest, SessionChunk.session_id.in_(live)
            ),
            ~exists().where(
                SessionPack.pack_id == BlobChunk.pack_id, SessionPack.session_id.in_(live)
            ),
        )
        with self.service.db.transaction() as s:
            doomed = list(s.execute(select(BlobChunk.digest, BlobChunk.length).where(unreferenced)))
        report["chunks_freed"] = len(doomed)
        report["bytes_freed"] = sum(n for _, n in doomed)
        progress.say(f"{len(doomed)} unreferenced chunks")
        if not dry_run:
            for start in range(0, len(doomed), 500):
                batch = [d for d, _ in doomed[start : start + 500]]
                try:
                    with self.service.db.transaction(write=True) as s:
                        s.execute(
                            delete(BlobChunk).where(BlobChunk.digest.in_(batch), unreferenced)
                        )
                except IntegrityError:  # a commit started using one of them meanwhile
                    continue
        report.update(self._collect_packs(now, dry_run))
        report["temp_files_removed"] = self._sweep_temp(dry_run)
        return report

    def _sweep_temp(self, dry_run: bool) -> int:
        """Local pack files of writers that died (a killed commit) once their session expired."""
        cutoff = time.time() - self.session_ttl.total_seconds()
        stale = [p for p in self.store.tmp_dir.glob("pack-*.tmp") if _older_than(p, cutoff)]
        if not dry_run:
            for path in stale:
                path.unlink(missing_ok=True)
        return len(stale)

    def _collect_packs(self, now: Any, dry_run: bool) -> dict[str, Any]:
        grace_cutoff = now - self.gc_grace
        writing_cutoff = now - self.session_ttl
        live = (
            select(
                BlobChunk.pack_id,
                func.count().label("n"),
                func.sum(BlobChunk.length).label("bytes"),
            )
            .group_by(BlobChunk.pack_id)
            .subquery()
        )
        with self.service.db.transaction() as s:
            packs = list(
                s.execute(
                    select(
                        BlobPack.id,
                        BlobPack.key,
                        BlobPack.size,
                        BlobPack.state,
                        BlobPack.changed_at,
                        live.c.n,
                        live.c.bytes,
                    ).outerjoin(live, live.c.pack_id == BlobPack.id)
                )
            )
        to_retire = [
            p
            for p in packs
            if not p.n
            and (p.state == "sealed" or (p.state == "writing" and p.changed_at < writing_cutoff))
        ]
        sparse = [
            p
            for p in packs
            if p.state == "sealed" and p.n and p.size and (p.bytes or 0) < p.size / 2
        ]
        to_delete = [p for p in packs if p.state == "retired" and p.changed_at < grace_cutoff]
        known = {p.key for p in packs}
        orphans = [
            o for o in self.blobs.list("packs/") if o.key not in known and o.modified < grace_cutoff
        ]
        report = {
            "packs_retired": len(to_retire),
            "packs_repacked": len(sparse),
            "packs_deleted": len(to_delete),
            "orphan_objects": len(orphans),
            "storage_bytes_freed": sum(p.size for p in to_delete) + sum(o.size for o in orphans),
        }
        if dry_run:
            report["storage_bytes_freed"] += sum(p.size for p in to_retire)
            return report
        with self.service.db.transaction(write=True) as s:
            for pack in to_retire:
                s.execute(
                    update(BlobPack)
                    .where(BlobPack.id == pack.id)
                    .values(state="retired", changed_at=now)
                )
        for pack in sparse:
            self._repack(pack.id, pack.key)
        for pack in to_delete:
            try:
                with self.service.db.transaction(write=True) as s:
                    s.execute(delete(BlobPack).where(BlobPack.id == pack.id))
            except IntegrityError:  # pragma: no cover - chunks still point at it
                continue
            self.blobs.delete(pack.key)
        self.blobs.delete_many(o.key for o in orphans)
        return report

    def _repack(self, pack_id: int, key: str) -> None:
        """Copy a mostly-dead pack's live chunks into a new pack; retire the old one."""
        with self.service.db.transaction() as s:
            rows = list(
                s.execute(
                    select(BlobChunk.digest, BlobChunk.offset, BlobChunk.length)
                    .where(BlobChunk.pack_id == pack_id)
                    .order_by(BlobChunk.offset)
                )
            )
        if not rows:
            return
        new_key = pack_key_for(uuid.uuid4().hex)
        tmp = self.store.tmp_dir / f"pack-{uuid.uuid4().hex}.tmp"  # swept if we die
        try:
            placed = []
            with open(tmp, "xb") as out:
                for digest, length, piece in _read_chunks(self.blobs, key, rows):
                    if piece is None or blake3_hex(piece) != digest:
                        continue  # missing or corrupt: left for verify to report
                    placed.append((digest, out.tell(), length))
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            if not placed:
                return
            with self.service.db.transaction(write=True) as s:
                pack = BlobPack(key=new_key, size=tmp.stat().st_size, state="writing")
                s.add(pack)
                s.flush()
                new_id = pack.id
            self.blobs.move_in(new_key, tmp)
        finally:
            tmp.unlink(missing_ok=True)
        with self.service.db.transaction(write=True) as s:
            for digest, offset, length in placed:
                s.execute(
                    update(BlobChunk)
                    .where(BlobChunk.digest == digest, BlobChunk.pack_id == pack_id)
                    .values(pack_id=new_id, offset=offset, length=length)
                )
            # Sessions that pinned the old pack pin the chunks moved with it in the new one.
            s.execute(
                insert(SessionPack).from_select(
                    ["session_id", "pack_id"],
                    select(SessionPack.session_id, literal(new_id)).where(
                        SessionPack.pack_id == pack_id
                    ),
                )
            )
            s.execute(
                update(BlobPack)
                .where(BlobPack.id == new_id)
                .values(state="sealed", changed_at=utcnow())
            )
            still = s.scalar(select(func.count()).where(BlobChunk.pack_id == pack_id))
            if not still:
                s.execute(
                    update(BlobPack)
                    .where(BlobPack.id == pack_id)
                    .values(state="retired", changed_at=utcnow())
                )


def _published_json(s: Any, published: ds.Published) -> dict[str, Any]:
    """The version a commit published, as ``CommitResult.version`` holds it."""
    return {
        **ds.version_json(s, published.version),
        "unchanged": not published.created,
        "replayed": published.replayed,
    }


def _try_link(cached: Path, target: Path) -> bool:
    try:
        os.link(cached, target)
    except OSError:  # another file system, or one without hard links
        return False
    return True


def _older_than(path: Path, cutoff: float) -> bool:
    """Whether ``path`` was last modified before ``cutoff``; False if it is gone (a live
    writer's pack file renamed into the store since it was listed)."""
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


READ_WINDOW = 8 * 1024 * 1024  # bytes of a pack read at once by verify and repack


def _read_chunks(
    blobs: BlobStore, key: str, rows: list[Any]
) -> Iterator[tuple[str, int, memoryview | None]]:
    """(digest, length, bytes) of each chunk of pack ``key`` (``rows``: digest, offset, length,
    by offset), read in ranges of about ``READ_WINDOW`` so a pack is never in memory whole;
    bytes are None for a chunk the pack does not hold (the pack is missing or cut short)."""
    start_at = 0
    while start_at < len(rows):
        start = rows[start_at].offset
        stop_at = start_at + 1
        while stop_at < len(rows) and rows[stop_at].offset + rows[stop_at].length - start <= (
            READ_WINDOW
        ):
            stop_at += 1
        batch = rows[start_at:stop_at]
        end = batch[-1].offset + batch[-1].length
        try:
            data: memoryview | None = memoryview(blobs.get_range(key, start, end - start))
        except BlobNotFound:  # the whole pack is gone: no need to ask for each window
            for digest, _offset, length in rows[start_at:]:
                yield digest, length, None
            return
        except BlobCorrupt:
            data = None
        for digest, offset, length in batch:
            yield digest, length, None if data is None else data[offset - start :][:length]
        start_at = stop_at


DECLARED_CACHE_BYTES = 128 * 1024 * 1024  # of uploads' declared chunks kept in memory


class DeclaredChunks:
    """An upload's declared chunks, digest -> length, in 36 bytes each (sorted raw digests and
    their lengths): what a batch of chunks is checked against."""

    def __init__(self, sizes: dict[str, int]) -> None:
        pairs = sorted((bytes.fromhex(d), n) for d, n in sizes.items())
        self._digests = b"".join(d for d, _ in pairs)
        self._lengths = array("I", [n for _, n in pairs])

    @property
    def nbytes(self) -> int:
        return len(self._digests) + len(self._lengths) * self._lengths.itemsize

    def _digest(self, index: int) -> bytes:
        return self._digests[index * 32 : index * 32 + 32]

    def length(self, raw: bytes) -> int | None:
        """The declared length of the chunk of raw digest ``raw``; None if not declared."""
        at = bisect.bisect_left(range(len(self._lengths)), raw, key=self._digest)
        return self._lengths[at] if at < len(self._lengths) and self._digest(at) == raw else None


class DeclaredCache:
    """The declared chunks of recent uploads, least recently used dropped past ``budget``
    bytes. An upload's manifest never changes, so an entry is never stale."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._entries: OrderedDict[str, DeclaredChunks] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, upload_id: str) -> DeclaredChunks | None:
        with self._lock:
            entry = self._entries.get(upload_id)
            if entry is not None:
                self._entries.move_to_end(upload_id)
            return entry

    def put(self, upload_id: str, entry: DeclaredChunks) -> DeclaredChunks:
        with self._lock:
            self._entries[upload_id] = entry
            total = sum(e.nbytes for e in self._entries.values())
            while total > self.budget and self._entries:
                _id, dropped = self._entries.popitem(last=False)
                total -= dropped.nbytes
        return entry


def _parse_frames(body: bytes, declared: DeclaredChunks) -> Iterator[tuple[str, memoryview]]:
    """Split and check a chunk batch; raises BadRequest before anything is stored."""
    view = memoryview(body)
    position = 0
    frames = []
    while position < len(view):
        if position + FRAME_HEADER.size > len(view):
            raise BadRequest("body: truncated chunk frame header", code="invalid_frame")
        raw, length = FRAME_HEADER.unpack_from(view, position)
        digest = raw.hex()
        position += FRAME_HEADER.size
        if position + length > len(view):
            raise BadRequest(
                f"chunk {digest}: body ends before its {length} bytes", code="invalid_frame"
            )
        data = view[position : position + length]
        position += length
        expected = declared.length(raw)
        if expected is None:
            raise BadRequest(f"chunk {digest}: not declared by this upload", code="unknown_chunk")
        if length != expected:
            raise BadRequest(
                f"chunk {digest}: {length} bytes sent, {expected} declared",
                code="chunk_length_mismatch",
            )
        if blake3_hex(data) != digest:
            raise BadRequest(
                f"chunk {digest}: content does not match its BLAKE3 digest; nothing stored",
                code="chunk_digest_mismatch",
            )
        frames.append((digest, data))
    yield from frames


def frame_chunks(chunks: list[tuple[str, bytes]]) -> bytes:
    """The body of a chunk batch (what ``receive_chunks`` parses)."""
    out = bytearray()
    for digest, data in chunks:
        out += FRAME_HEADER.pack(bytes.fromhex(digest), len(data))
        out += data
    return bytes(out)


def build_jobs(service: WorkbenchService) -> DatasetJobs:
    """The dataset jobs of a service, on the blob store its settings choose."""
    from .storage import make_blob_store

    settings = service.settings
    blobs = make_blob_store(
        settings.storage_backend,
        root=Path(settings.storage_dir),
        bucket=settings.s3_bucket,
        prefix=settings.s3_prefix,
        endpoint_url=settings.s3_endpoint_url or None,
        access_key=settings.s3_access_key or None,
        secret_key=settings.s3_secret_key or None,
        region=settings.s3_region or None,
    )
    store = ChunkStore(
        service.db,
        blobs,
        tmp_dir=Path(settings.data_dir) / "tmp",
        pack_target_bytes=settings.pack_target_mib * 1024 * 1024,
    )
    return DatasetJobs(
        service,
        store,
        max_commit_bytes=settings.max_dataset_commit_bytes,
        session_ttl=timedelta(hours=settings.dataset_session_hours),
        gc_grace=timedelta(minutes=settings.gc_grace_minutes),
        table_diff_limit=settings.table_diff_max_bytes,
        table_diff_files=settings.table_diff_max_files,
        cache_dir=Path(settings.dataset_cache_dir),
        verify_uploads=settings.verify_uploads,
    )
