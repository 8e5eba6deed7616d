"""Content-addressed chunks packed into large storage objects, indexed in the database.

Writing: a ``ChunkWriter`` (one per commit or upload session) deduplicates chunks against the
index, appends new ones to a local pack file and, once the pack is big enough, stores it as one
object and indexes its chunks -- all pinned to the session, so garbage collection leaves them
alone until the session publishes a version (or expires). The lookups, the pack writes and the
sealing run on two background threads while the caller goes on chunking. Pack objects are
durable in storage before their chunks are indexed, and a version's row refers to its chunks
through foreign keys, so a published version can never point at a missing chunk.

Reading: chunk locations come from the index; adjacent chunks of one pack are fetched with one
ranged read; every chunk is checked against its BLAKE3 digest.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.bulk import insert_ignore
from ..db.database import Database
from ..db.models import BlobChunk, BlobPack, CommitSession, SessionChunk, SessionPack, utcnow
from .blobstore import BlobCorrupt, BlobStore
from .chunking import MAX_CHUNK, Chunk, FileDigest, blake3_hex, chunk_file, chunk_stream

LOOKUP_BATCH = 500
MAX_COALESCED_READ = 8 * 1024 * 1024
ALIGN = 4096  # of O_DIRECT writes: memory, file offsets and lengths


def _round_up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


class ChunkMissing(IOError):
    """A chunk the index does not know (or whose pack object is gone)."""


@dataclass(frozen=True)
class ChunkLocation:
    pack_key: str
    offset: int
    length: int


def pack_key_for(name: str) -> str:
    return f"packs/{name[:2]}/{name}.pack"


class ChunkStore:
    """The chunk index (database) over the pack objects (blob store)."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        tmp_dir: Path,
        pack_target_bytes: int = 32 * 1024 * 1024,
        verify_reads: bool = True,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.tmp_dir = Path(tmp_dir)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.pack_target_bytes = pack_target_bytes
        self.verify_reads = verify_reads

    # -- writing ----------------------------------------------------------------------
    def writer(self, session_id: str) -> ChunkWriter:
        return ChunkWriter(self, session_id)

    def existing(self, digests: list[str]) -> set[str]:
        """Those of ``digests`` the index holds (a read-only lookup: nothing is pinned)."""
        found: set[str] = set()
        if not digests:
            return found
        with self.db.engine.connect() as conn:  # one short read transaction
            for start in range(0, len(digests), LOOKUP_BATCH):
                batch = digests[start : start + LOOKUP_BATCH]
                found.update(
                    conn.scalars(select(BlobChunk.digest).where(BlobChunk.digest.in_(batch)))
                )
        return found

    # -- reading ----------------------------------------------------------------------
    def locate(self, digests: Iterable[str]) -> dict[str, ChunkLocation]:
        wanted = list(dict.fromkeys(digests))
        found: dict[str, ChunkLocation] = {}
        with self.db.transaction() as s:
            for start in range(0, len(wanted), LOOKUP_BATCH):
                batch = wanted[start : start + LOOKUP_BATCH]
                rows = s.execute(
                    select(BlobChunk.digest, BlobPack.key, BlobChunk.offset, BlobChunk.length)
                    .join(BlobPack, BlobPack.id == BlobChunk.pack_id)
                    .where(BlobChunk.digest.in_(batch))
                )
                for digest, key, offset, length in rows:
                    found[digest] = ChunkLocation(key, offset, length)
        return found

    def iter_chunks(
        self,
        chunks: list[tuple[str, int]],
        *,
        located: dict[str, ChunkLocation] | None = None,
    ) -> Iterator[tuple[str, bytes]]:
        """The bytes of ``chunks`` in order, verified, with adjacent reads coalesced.
        ``located``: their locations, when the caller looked up those of many files at once
        (``locate``); else they are looked up here, a batch at a time."""
        for start in range(0, len(chunks), LOOKUP_BATCH):
            batch = chunks[start : start + LOOKUP_BATCH]
            where = located if located is not None else self.locate(d for d, _ in batch)
            run: list[tuple[str, ChunkLocation]] = []
            for digest, _length in batch:
                loc = where.get(digest)
                if loc is None:
                    raise ChunkMissing(f"chunk {digest} is not in the store")
                if run and not _extends(run, loc):
                    yield from self._read_run(run)
                    run = []
                run.append((digest, loc))
            if run:
                yield from self._read_run(run)

    def _read_run(self, run: list[tuple[str, ChunkLocation]]) -> Iterator[tuple[str, bytes]]:
        first = run[0][1]
        total = run[-1][1].offset + run[-1][1].length - first.offset
        try:
            data = self.blobs.get_range(first.pack_key, first.offset, total)
        except KeyError as exc:
            raise ChunkMissing(f"pack {first.pack_key} is missing") from exc
        view = memoryview(data)
        for digest, loc in run:
            piece = view[loc.offset - first.offset : loc.offset - first.offset + loc.length]
            if self.verify_reads and blake3_hex(piece) != digest:
                raise BlobCorrupt(f"chunk {digest} in {loc.pack_key} does not match its digest")
            yield digest, bytes(piece)

    def read_range(
        self, chunks: list[tuple[str, int]], start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive) of a file made of ``chunks``; only the chunks
        overlapping that range are read."""
        total = sum(length for _, length in chunks)
        end = total if end is None else min(end, total)
        if start >= end:
            return
        selected: list[tuple[str, int]] = []
        first_offset = None
        position = 0
        for digest, length in chunks:
            if position + length > start and position < end:
                if first_offset is None:
                    first_offset = position
                selected.append((digest, length))
            position += length
            if position >= end:
                break
        assert first_offset is not None
        position = first_offset
        for _digest, data in self.iter_chunks(selected):
            lo = max(start - position, 0)
            hi = min(end - position, len(data))
            if lo < hi:
                yield data[lo:hi]
            position += len(data)


def _extends(run: list[tuple[str, ChunkLocation]], loc: ChunkLocation) -> bool:
    last = run[-1][1]
    first = run[0][1]
    return (
        loc.pack_key == last.pack_key
        and loc.offset == last.offset + last.length
        and loc.offset + loc.length - first.offset <= MAX_COALESCED_READ
    )


class ChunkWriter:
    """Adds files' chunks to the store for one session; fed from one thread.

    The caller's thread only chunks, hashes and copies each chunk new to this session into a
    batch buffer (``PENDING_BYTES`` / ``PENDING_CHUNKS``). Three background threads do the rest,
    in order, each on the next pack while the one after it finishes the last:

    - *store*: looks each batch up in the index (read-only), appends the chunks the store lacks
      to a local pack file and hands full packs (``pack_target_bytes``) on;
    - *flush*: fsyncs a pack, gives it a row (``writing``) and moves it into the blob store
      (durable when ``move_in`` returns): the disk's part;
    - *seal*: indexes the pack's chunks, pins the pack (and so every chunk indexed in it) and
      the reused chunks found since the last seal to the session, and refreshes the session's
      heartbeat, all in one transaction: the database's part.

    Memory is bounded: ``QUEUED_BATCHES + 2`` batch buffers in all, and ``QUEUED_PACKS`` full
    packs wait (on disk) besides the one being flushed. ``finish()`` waits for all of it and
    re-raises the first error of either thread (errors also surface at the next batch);
    ``abort()`` stops the threads and removes the pack files not stored (a pack stored but not
    sealed keeps its ``writing`` row: garbage collection removes both, as after a crash).

    Pack files are written with ``O_DIRECT`` where the platform and file system allow it (the
    bytes go to disk without a copy into the page cache, which can cost more CPU than hashing
    them), in ``ALIGN``-aligned pieces. A batch of new chunks only is written from its own
    buffer, so up to ``ALIGN - 1`` bytes of zeros may follow it in the pack (never after the
    last); the new chunks of other batches are copied back to back, without gaps.

    A chunk found in the index is pinned later than it is looked up (with the next seal, every
    ``PIN_BATCH`` reused chunks, or at ``finish()``). If garbage collection deletes it in
    between -- it was then referenced by no version and no open session -- the pin skips it and
    ``publish`` refuses the version (409 missing_chunks): a version never references a missing
    chunk. ``bytes_new``, ``chunks_new`` and ``chunks_reused`` are final after ``finish()``.
    """

    PENDING_BYTES = 8 * 1024 * 1024
    PENDING_CHUNKS = LOOKUP_BATCH
    QUEUED_BATCHES = 2
    QUEUED_PACKS = 1
    PIN_BATCH = 10 * LOOKUP_BATCH
    BATCH_LIMIT = PENDING_BYTES + MAX_CHUNK  # a batch's bytes never exceed this
    BATCH_CAPACITY = _round_up(BATCH_LIMIT) + ALIGN

    def __init__(self, store: ChunkStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id
        self._seen: set[str] = set()
        # The batch being filled (caller's thread):
        self._buf: mmap.mmap | None = None
        self._used = 0
        self._chunks: list[tuple[str, int]] = []
        # Batch buffers: at most QUEUED_BATCHES + 2, recycled by the store thread.
        self._free: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
        self._buffers = 0
        self._storing: _Stage | None = None
        self._flushing: _Stage | None = None
        self._sealing: _Stage | None = None
        # Owned by the store thread while it runs:
        self._pack: _Pack | None = None
        self._reused: list[str] = []
        self._compact: mmap.mmap | None = None
        self.bytes_new = 0  # bytes this session had to store (not deduplicated)
        self.chunks_new = 0
        self.chunks_reused = 0

    # -- input (caller's thread) ------------------------------------------------------
    def add_file(self, path: str | os.PathLike[str], on_bytes: Any = None) -> FileDigest:
        return chunk_file(path, on_chunk=self._on_chunk_cb(on_bytes))

    def add_stream(self, stream: BinaryIO, on_bytes: Any = None) -> FileDigest:
        return chunk_stream(stream, on_chunk=self._on_chunk_cb(on_bytes))

    def _on_chunk_cb(self, on_bytes: Any) -> Any:
        add_chunk = self.add_chunk
        if on_bytes is None:

            def on_chunk(chunk: Chunk) -> None:
                add_chunk(chunk.digest, chunk.data)

            return on_chunk

        def on_chunk_and_bytes(chunk: Chunk) -> None:
            add_chunk(chunk.digest, chunk.data)
            on_bytes(chunk.length)

        return on_chunk_and_bytes

    def add_chunk(self, digest: str, data: bytes | memoryview) -> bool:
        """Queue one chunk whose digest the caller has checked; False if already handled.
        ``data`` is copied: it may change once this returns."""
        if digest in self._seen:
            return False
        self._seen.add(digest)
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if self._used + size > self.BATCH_LIMIT:
            self._send_batch()
        if self._buf is None:
            self._buf = self._take_buffer(size)
        self._buf[self._used : self._used + size] = data
        self._used += size
        self._chunks.append((digest, size))
        if self._used >= self.PENDING_BYTES or len(self._chunks) >= self.PENDING_CHUNKS:
            self._send_batch()
        return True

    def pin_existing(self, digests: list[str]) -> set[str]:
        """Pin those of ``digests`` the store already has; returns them."""
        pinned: set[str] = set()
        with self.store.db.transaction(write=True) as s:
            for start in range(0, len(digests), LOOKUP_BATCH):
                batch = digests[start : start + LOOKUP_BATCH]
                existing = list(
                    s.scalars(select(BlobChunk.digest).where(BlobChunk.digest.in_(batch)))
                )
                insert_ignore(
                    s,
                    SessionChunk.__table__,  # type: ignore[arg-type]
                    [{"session_id": self.session_id, "chunk_digest": d} for d in existing],
                )
                pinned.update(existing)
            self._heartbeat(s)
        return pinned

    def finish(self) -> None:
        """Store and index everything queued; afterwards every chunk added is pinned. Raises
        the first error of the background threads (nothing more is stored then)."""
        try:
            self._send_batch()
            if self._storing is not None:
                self._storing.put(_FINISH)
        except BaseException:
            self._stop(cancel=True)
            raise
        self._stop(cancel=False)

    def abort(self) -> None:
        """Stop storing: queued data is dropped and pack files not yet stored are removed (a
        pack being sealed is finished first). Never raises the background threads' errors."""
        self._drop_batch()
        self._stop(cancel=True)

    def _take_buffer(self, size: int) -> mmap.mmap:
        if size > self.BATCH_LIMIT:  # an outsize chunk: a buffer of its own
            return mmap.mmap(-1, _round_up(size))
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        if self._buffers < self.QUEUED_BATCHES + 2:
            self._buffers += 1
            return mmap.mmap(-1, self.BATCH_CAPACITY)  # page-aligned, as O_DIRECT wants
        return self._free.get()  # the store thread gives each one back, even after an error

    def _drop_batch(self) -> None:
        if self._buf is not None:
            self._give_back(self._buf)
        self._buf, self._used, self._chunks = None, 0, []

    def _give_back(self, buf: mmap.mmap) -> None:
        if len(buf) == self.BATCH_CAPACITY:
            self._free.put(buf)
        else:
            buf.close()

    def _send_batch(self) -> None:
        if not self._chunks or self._buf is None:
            return
        try:
            self._raise_if_failed()
        except BaseException:
            self._drop_batch()
            raise
        batch = _Batch(self._buf, self._used, self._chunks)
        self._buf, self._used, self._chunks = None, 0, []
        if self._storing is None:
            self._sealing = _Stage("chunk-seal", self._seal, _keep, self.QUEUED_PACKS)
            self._flushing = _Stage(
                "chunk-flush", self._flush, _discard_pack_file, self.QUEUED_PACKS
            )
            self._storing = _Stage(
                "chunk-store", self._store, self._discard_storing, self.QUEUED_BATCHES
            )
        self._storing.put(batch)

    def _raise_if_failed(self) -> None:
        error = self._error()
        if error is not None:
            self._stop(cancel=True)
            raise error

    def _error(self) -> BaseException | None:
        # The last stage's error first: the ones before may only have relayed it.
        for stage in (self._sealing, self._flushing, self._storing):
            if stage is not None and stage.error is not None:
                return stage.error
        return None

    def _stop(self, *, cancel: bool) -> None:
        """Wait for (``cancel``: drop) the queued work, stop the threads and remove what was
        left unstored; re-raise a background error unless cancelling."""
        storing, flushing, sealing = self._storing, self._flushing, self._sealing
        if storing is None or flushing is None or sealing is None:
            return
        try:
            storing.stop(cancel=cancel)
            if self._pack is not None:  # the store thread stopped before handing it on
                _discard_pack_file(self._pack)
                self._pack = None
        finally:
            try:
                flushing.stop(cancel=cancel or storing.error is not None)
            finally:
                sealing.stop(
                    cancel=cancel or storing.error is not None or flushing.error is not None
                )
            error = self._error()
            self._storing = self._flushing = self._sealing = None
            self._reused = []
            if self._compact is not None:
                self._compact.close()
                self._compact = None
        if error is not None and not cancel:
            raise error

    # -- the store thread ---------------------------------------------------------------
    def _store(self, item: object) -> None:
        assert self._flushing is not None
        if isinstance(item, _Batch):
            try:
                error = self._error()
                if error is not None:
                    raise error  # stop storing what could not be flushed or sealed
                self._store_batch(item)
            finally:
                self._give_back(item.buf)
            if self._pack is not None and self._pack.size >= self.store.pack_target_bytes:
                self._hand_on_pack()
            elif len(self._reused) >= self.PIN_BATCH:
                self._flushing.put(_Pins(self._reused))
                self._reused = []
        elif item is _FINISH:
            if self._pack is not None:
                self._hand_on_pack()
            elif self._reused:
                self._flushing.put(_Pins(self._reused))
                self._reused = []

    def _discard_storing(self, item: object) -> None:
        if isinstance(item, _Batch):
            self._give_back(item.buf)

    def _store_batch(self, batch: _Batch) -> None:
        existing = self.store.existing([d for d, _ in batch.chunks])
        if not existing:
            self._store_all(batch)
            return
        # Some chunks are stored already: copy the new ones, back to back, after the bytes the
        # pack carries from the last such batch, and carry the unaligned end in turn.
        pack = self._pack
        carried = pack.tail if pack is not None else b""
        if self._compact is None or len(self._compact) < len(batch.buf) + ALIGN:
            if self._compact is not None:
                self._compact.close()
            self._compact = mmap.mmap(-1, len(batch.buf) + ALIGN)
        region = self._compact
        region[: len(carried)] = carried
        used = len(carried)
        new: list[tuple[str, int]] = []
        pos = 0
        with memoryview(batch.buf) as source:
            for digest, length in batch.chunks:
                if digest in existing:
                    self._reused.append(digest)
                    self.chunks_reused += 1
                else:
                    region[used : used + length] = source[pos : pos + length]
                    used += length
                    new.append((digest, length))
                pos += length
        if not new:
            return
        if pack is None:
            pack = self._pack = _Pack.create(self.store.tmp_dir)
        start = pack.written  # the file offset of region[0]
        aligned = used - used % ALIGN
        if aligned:
            with memoryview(region) as view:
                pack.write(view[:aligned])
        pack.tail = region[aligned:used]
        pack.size = start + used
        self._add_entries(pack, start + len(carried), new)

    def _store_all(self, batch: _Batch) -> None:
        """A batch of new chunks only: written from its own buffer, padded to ``ALIGN``."""
        if self._pack is None:
            self._pack = _Pack.create(self.store.tmp_dir)
        pack = self._pack
        pack.write_tail()
        start = pack.written
        end = _round_up(batch.used)
        batch.buf[batch.used : end] = bytes(end - batch.used)
        with memoryview(batch.buf) as view:
            pack.write(view[:end])
        pack.size = start + batch.used
        self._add_entries(pack, start, batch.chunks)

    def _add_entries(self, pack: _Pack, offset: int, chunks: list[tuple[str, int]]) -> None:
        for digest, length in chunks:
            pack.entries.append((digest, offset, length))
            offset += length
            self.bytes_new += length
        self.chunks_new += len(chunks)

    def _hand_on_pack(self) -> None:
        assert self._pack is not None and self._flushing is not None
        pack, self._pack = self._pack, None
        pack.pins, self._reused = self._reused, []
        self._flushing.put(pack)

    # -- the flush thread ---------------------------------------------------------------
    def _flush(self, item: _Pack | _Pins) -> None:
        assert self._sealing is not None
        if isinstance(item, _Pins):
            self._sealing.put(item)
            return
        pack = item
        if self._sealing.error is not None:  # stop storing what could not be sealed
            _discard_pack_file(pack)
            raise self._sealing.error
        db = self.store.db
        try:
            pack.close()  # truncated to its last chunk, fsynced
            key = pack_key_for(uuid.uuid4().hex)
            with db.transaction(write=True) as s:
                row = BlobPack(key=key, size=pack.size, state="writing")
                s.add(row)
                s.flush()
                pack_id = row.id
            # Garbage collection deletes pack objects it has no row for once they are older
            # than its grace period: one that began before this row existed must find the
            # object newer than its start, whatever the file's last write was.
            now = time.time_ns()
            os.utime(pack.path, ns=(now, now))
            self.store.blobs.move_in(key, pack.path)  # durable when it returns
        finally:
            pack.path.unlink(missing_ok=True)
        pack.pack_id = pack_id
        self._sealing.put(pack)

    # -- the seal thread ----------------------------------------------------------------
    def _seal(self, item: _Pack | _Pins) -> None:
        db = self.store.db
        if isinstance(item, _Pins):
            with db.transaction(write=True) as s:
                self._pin_reused(s, item.digests)
                self._heartbeat(s)
            return
        pack, pack_id = item, item.pack_id
        rows = [
            {"digest": d, "pack_id": pack_id, "offset": off, "length": n}
            for d, off, n in pack.entries
        ]
        with db.transaction(write=True) as s:
            # A concurrent session may have stored the same new chunk: its copy wins, ours
            # is dead weight that garbage collection reclaims.
            insert_ignore(s, BlobChunk.__table__, rows)  # type: ignore[arg-type]
            # The chunks indexed in this pack are pinned through it: one row, not one each.
            s.add(SessionPack(session_id=self.session_id, pack_id=pack_id))
            s.flush()
            indexed = s.scalar(
                select(func.count()).select_from(BlobChunk).where(BlobChunk.pack_id == pack_id)
            )
            if indexed != len(rows):  # the other session's copies: pin them
                ours = set(s.scalars(select(BlobChunk.digest).where(BlobChunk.pack_id == pack_id)))
                self._pin_reused(s, [d for d, _, _ in pack.entries if d not in ours])
            self._pin_reused(s, pack.pins)
            s.execute(
                update(BlobPack)
                .where(BlobPack.id == pack_id)
                .values(state="sealed", changed_at=utcnow())
            )
            self._heartbeat(s)

    def _pin_reused(self, s: Session, digests: list[str]) -> None:
        """Pin those of ``digests`` still in the index (garbage collection may have deleted
        one since it was looked up: it is skipped, and ``publish`` then refuses the version)."""
        for start in range(0, len(digests), LOOKUP_BATCH):
            pin = (
                _dialect(s)
                .insert(SessionChunk.__table__)
                .from_select(
                    ["session_id", "chunk_digest"],
                    select(literal(self.session_id), BlobChunk.digest).where(
                        BlobChunk.digest.in_(digests[start : start + LOOKUP_BATCH])
                    ),
                )
                .on_conflict_do_nothing()
            )
            for attempt in range(2):
                try:
                    with s.begin_nested():
                        s.execute(pin)
                    break
                except IntegrityError:
                    # PostgreSQL: a chunk deleted after this statement's snapshot was taken;
                    # the next try no longer sees it.
                    if attempt:
                        raise

    def _heartbeat(self, s: Session) -> None:
        s.execute(
            update(CommitSession)
            .where(CommitSession.id == self.session_id)
            .values(heartbeat_at=utcnow())
        )


def _dialect(s: Session) -> Any:
    """The dialect module whose ``insert`` has ``on_conflict_do_nothing``."""
    return postgresql if s.get_bind().dialect.name == "postgresql" else sqlite


@dataclass(slots=True)
class _Batch:
    buf: mmap.mmap  # the chunks' bytes, back to back from offset 0
    used: int
    chunks: list[tuple[str, int]]  # (digest, length) in that order


@dataclass(slots=True)
class _Pins:
    digests: list[str]


@dataclass(slots=True)
class _Pack:
    """A local pack file being written (by the store thread), then sealed."""

    fd: int
    path: Path
    direct: bool  # opened with O_DIRECT
    entries: list[tuple[str, int, int]] = field(default_factory=list)  # digest, offset, length
    size: int = 0  # end of the last chunk
    written: int = 0  # bytes written (a multiple of ALIGN until closed)
    tail: bytes = b""  # bytes after ``written`` not written yet (fewer than ALIGN)
    pins: list[str] = field(default_factory=list)  # reused chunks to pin with its seal
    pack_id: int | None = None  # its row, once stored

    @classmethod
    def create(cls, tmp_dir: Path) -> _Pack:
        path = tmp_dir / f"pack-{uuid.uuid4().hex}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        if _O_DIRECT:
            try:
                return cls(os.open(path, flags | _O_DIRECT, 0o600), path, True)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # a file system without O_DIRECT
                    raise
        return cls(os.open(path, flags, 0o600), path, False)

    def write(self, view: memoryview) -> None:
        """Append ``view``: page-aligned memory, a multiple of ``ALIGN`` bytes."""
        while view:
            try:
                written = os.write(self.fd, view)
            except OSError as exc:
                if not (self.direct and exc.errno == errno.EINVAL):
                    raise
                self._reopen_buffered()  # alignment the device refuses: write through the cache
                continue
            view = view[written:]
            self.written += written

    def write_tail(self) -> None:
        """Write the carried bytes, padded to ``ALIGN`` with zeros."""
        if not self.tail:
            return
        with mmap.mmap(-1, ALIGN) as block, memoryview(block) as view:
            block[: len(self.tail)] = self.tail
            self.write(view)
        self.tail = b""

    def _reopen_buffered(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        os.lseek(fd, self.written, os.SEEK_SET)
        os.close(self.fd)
        self.fd, self.direct = fd, False

    def close(self) -> None:
        """Write what is carried, cut the padding after the last chunk, make the file durable
        and close it."""
        try:
            self.write_tail()
            if self.written > self.size:
                os.ftruncate(self.fd, self.size)
            os.fsync(self.fd)
        finally:
            os.close(self.fd)


_O_DIRECT: int = getattr(os, "O_DIRECT", 0)
_FINISH = object()
_STOP = object()


def _discard_pack_file(item: object) -> None:
    """Remove a pack file that will not be stored."""
    if isinstance(item, _Pack):
        with contextlib.suppress(OSError):
            os.close(item.fd)
        item.path.unlink(missing_ok=True)


def _keep(item: object) -> None:
    """A pack stored but not to be sealed: its ``writing`` row and object stay for garbage
    collection (as after a crash between the two)."""


class _Stage:
    """A daemon thread handling the items of a bounded queue in order.

    Once its handler has failed (``error``) or it is cancelled, it keeps taking items and
    passes them to ``discard`` instead, until stopped: a producer never waits on it forever.
    """

    def __init__(
        self,
        name: str,
        handle: Callable[[Any], None],
        discard: Callable[[Any], None],
        maxsize: int,
    ) -> None:
        self._handle = handle
        self._discard = discard
        self._queue: queue.Queue[Any] = queue.Queue(maxsize)
        self._cancelled = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: object) -> None:
        self._queue.put(item)

    def stop(self, *, cancel: bool = False) -> None:
        """Wait until everything queued is handled (``cancel``: discarded) and stop."""
        if cancel:
            self._cancelled = True
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self.error is not None or self._cancelled:
                self._discard(item)
                continue
            try:
                self._handle(item)
            except BaseException as exc:
                self.error = exc
