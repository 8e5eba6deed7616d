"""Content-addressed chunks packed into large storage objects, indexed in the database.

Writing: a ``ChunkWriter`` (one per commit or upload session) deduplicates chunks against the
index, appends new ones to a local pack file and, once the pack is big enough, stores it as one
object and indexes its chunks -- all pinned to the session, so garbage collection leaves them
alone until the session publishes a version (or expires). Pack objects are durable in storage
before their chunks are indexed, and a version's row refers to its chunks through foreign keys,
so a published version can never point at a missing chunk.

Reading: chunk locations come from the index; adjacent chunks of one pack are fetched with one
ranged read; every chunk is checked against its BLAKE3 digest.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select, update

from ..db.bulk import insert_ignore
from ..db.database import Database
from ..db.models import BlobChunk, BlobPack, CommitSession, SessionChunk, utcnow
from .blobstore import BlobCorrupt, BlobStore
from .chunking import Chunk, FileDigest, blake3_hex, chunk_file, chunk_stream

LOOKUP_BATCH = 500
MAX_COALESCED_READ = 8 * 1024 * 1024


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

    def iter_chunks(self, chunks: list[tuple[str, int]]) -> Iterator[tuple[str, bytes]]:
        """The bytes of ``chunks`` in order, verified, with adjacent reads coalesced."""
        for start in range(0, len(chunks), LOOKUP_BATCH):
            batch = chunks[start : start + LOOKUP_BATCH]
            where = self.locate(d for d, _ in batch)
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
    """Adds files' chunks to the store for one session (single-threaded use)."""

    PENDING_BYTES = 4 * 1024 * 1024
    PENDING_CHUNKS = 512

    def __init__(self, store: ChunkStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id
        self._seen: set[str] = set()
        self._pending: list[tuple[str, bytes]] = []
        self._pending_bytes = 0
        self._pack: BinaryIO | None = None
        self._pack_path: Path | None = None
        self._pack_entries: list[tuple[str, int, int]] = []
        self._pack_size = 0
        self.bytes_new = 0  # bytes this session had to store (not deduplicated)
        self.chunks_new = 0
        self.chunks_reused = 0

    # -- input ------------------------------------------------------------------------
    def add_file(self, path: Path, on_bytes: Any = None) -> FileDigest:
        return chunk_file(path, on_chunk=self._on_chunk_cb(on_bytes))

    def add_stream(self, stream: BinaryIO, on_bytes: Any = None) -> FileDigest:
        return chunk_stream(stream, on_chunk=self._on_chunk_cb(on_bytes))

    def _on_chunk_cb(self, on_bytes: Any) -> Any:
        def on_chunk(chunk: Chunk) -> None:
            self.add_chunk(chunk.digest, chunk.data)
            if on_bytes is not None:
                on_bytes(chunk.length)

        return on_chunk

    def add_chunk(self, digest: str, data: bytes | memoryview) -> bool:
        """Queue one chunk whose digest the caller has checked; False if already handled."""
        if digest in self._seen:
            return False
        self._seen.add(digest)
        self._pending.append((digest, bytes(data)))
        self._pending_bytes += len(data)
        if self._pending_bytes >= self.PENDING_BYTES or len(self._pending) >= self.PENDING_CHUNKS:
            self._flush_pending()
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
            s.execute(
                update(CommitSession)
                .where(CommitSession.id == self.session_id)
                .values(heartbeat_at=utcnow())
            )
        return pinned

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        existing = self.pin_existing([d for d, _ in pending])
        for digest, data in pending:
            if digest in existing:
                self.chunks_reused += 1
                continue
            self._append_to_pack(digest, data)
        if self._pack_size >= self.store.pack_target_bytes:
            self._seal_pack()

    def _append_to_pack(self, digest: str, data: bytes) -> None:
        if self._pack is None:
            fd, name = tempfile.mkstemp(prefix="pack-", suffix=".tmp", dir=self.store.tmp_dir)
            self._pack = os.fdopen(fd, "wb")
            self._pack_path = Path(name)
            self._pack_entries, self._pack_size = [], 0
        self._pack.write(data)
        self._pack_entries.append((digest, self._pack_size, len(data)))
        self._pack_size += len(data)
        self.bytes_new += len(data)
        self.chunks_new += 1

    def _seal_pack(self) -> None:
        if self._pack is None or self._pack_path is None:
            return
        self._pack.flush()
        os.fsync(self._pack.fileno())
        self._pack.close()
        key = pack_key_for(uuid.uuid4().hex)
        db = self.store.db
        with db.transaction(write=True) as s:
            pack = BlobPack(key=key, size=self._pack_size, state="writing")
            s.add(pack)
            s.flush()
            pack_id = pack.id
        try:
            self.store.blobs.move_in(key, self._pack_path)  # durable when it returns
        finally:
            self._pack_path.unlink(missing_ok=True)
        rows = [
            {"digest": d, "pack_id": pack_id, "offset": off, "length": n}
            for d, off, n in self._pack_entries
        ]
        with db.transaction(write=True) as s:
            # A concurrent session may have stored the same new chunk: its copy wins, ours
            # is dead weight that garbage collection reclaims.
            insert_ignore(s, BlobChunk.__table__, rows)  # type: ignore[arg-type]
            insert_ignore(
                s,
                SessionChunk.__table__,  # type: ignore[arg-type]
                [{"session_id": self.session_id, "chunk_digest": r["digest"]} for r in rows],
            )
            s.execute(
                update(BlobPack)
                .where(BlobPack.id == pack_id)
                .values(state="sealed", changed_at=utcnow())
            )
            s.execute(
                update(CommitSession)
                .where(CommitSession.id == self.session_id)
                .values(heartbeat_at=utcnow())
            )
        self._pack, self._pack_path, self._pack_entries, self._pack_size = None, None, [], 0

    def finish(self) -> None:
        """Store and index everything queued; afterwards every chunk added is pinned."""
        self._flush_pending()
        self._seal_pack()

    def abort(self) -> None:
        if self._pack is not None:
            self._pack.close()
        if self._pack_path is not None:
            self._pack_path.unlink(missing_ok=True)
        self._pack, self._pack_path = None, None
