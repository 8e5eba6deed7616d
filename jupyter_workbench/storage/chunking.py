"""Content-defined chunking (FastCDC) and BLAKE3 digests, streaming in bounded memory.

A file smaller than ``WHOLE_BELOW`` is one chunk. A larger one is cut with FastCDC 2020
(``pyfastcdc``, normalized chunking level 1, the default gear table), so an edit inside a large
file changes only the chunks around it. The parameters are passed explicitly: ``FastCDC(AVG_CHUNK,
min_size=MIN_CHUNK, max_size=MAX_CHUNK)``; pyfastcdc's own defaults for an average of 64 KiB would
be the same (min = avg // 4, max = avg * 4). As pyfastcdc documents, cut-point skipping makes the
real mean chunk size about ``avg + min`` (~80 KiB on random data).

Streaming: bytes are read into one buffer of ``buffer_size`` (+ ``MAX_CHUNK``). FastCDC decides a
cut from at most ``MAX_CHUNK`` bytes after the chunk's start, so every chunk starting at least
``MAX_CHUNK`` bytes before the end of the buffer (or anywhere, at end of input) is cut exactly as
if the whole file were in memory; the rest of the buffer is moved to its front and the next block
is read after it. The whole-file BLAKE3 is updated with each block as it is read, in the same pass
(a block of ``HASH_AHEAD_MIN`` bytes or more on a helper thread, while the caller's thread cuts
and hashes the chunks of the same block).
A file under ``WHOLE_BELOW`` is one chunk whose digest is also the file's: it is hashed once.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from blake3 import blake3
from pyfastcdc import FastCDC

AVG_CHUNK = 64 * 1024
MIN_CHUNK = 16 * 1024
MAX_CHUNK = 256 * 1024
WHOLE_BELOW = 128 * 1024
BUFFER_SIZE = 8 * 1024 * 1024
EMPTY_DIGEST = blake3(b"").hexdigest()
# Blocks at least this large are fed to the whole-file BLAKE3 on a helper thread, overlapping
# the chunking of the same bytes (chunk digests are computed on the caller's thread).
HASH_AHEAD_MIN = 1024 * 1024
_O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_O_BINARY: int = getattr(os, "O_BINARY", 0)

_CDC = FastCDC(AVG_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CHUNK)  # reentrant: config only


@dataclass(frozen=True, slots=True)
class Chunk:
    offset: int  # within the file
    length: int
    digest: str  # BLAKE3 hex of the chunk's bytes (64 hex chars)
    data: bytes | memoryview  # valid only during the on_chunk call


@dataclass
class FileDigest:
    size: int
    digest: str  # BLAKE3 hex of the whole file
    chunks: list[tuple[str, int]] = field(default_factory=list)  # (chunk digest, length)


OnChunk = Callable[[Chunk], None]


def blake3_hex(data: bytes | memoryview) -> str:
    """BLAKE3 hex digest of ``data`` (single-threaded)."""
    return blake3(data, max_threads=1).hexdigest()


def chunk_bytes(data: bytes | bytearray | memoryview, *, on_chunk: OnChunk) -> FileDigest:
    """Chunk an in-memory buffer (the reference for :func:`chunk_stream`: same cuts)."""
    view = memoryview(data).cast("B")
    size = len(view)
    result = FileDigest(size=size, digest=blake3(view, max_threads=1).hexdigest())
    if size == 0:
        return result
    if size < WHOLE_BELOW:
        _emit(result, on_chunk, view, 0, size)
        return result
    for cut in _CDC.cut_buf(view):
        _emit(result, on_chunk, view, cut.offset, cut.length)
    return result


def chunk_file(path: str | os.PathLike[str], *, on_chunk: OnChunk) -> FileDigest:
    """Chunk a local file, streaming (see :func:`chunk_stream`). A regular file smaller than
    ``WHOLE_BELOW`` takes two plain reads (its bytes, then the end of the file)."""
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC | _O_BINARY)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_size < WHOLE_BELOW:
            data = os.read(fd, st.st_size + 1)
            if len(data) <= st.st_size and not os.read(fd, 1):
                return _whole(data, on_chunk)
            os.lseek(fd, 0, os.SEEK_SET)  # it grew (or a short read): stream it after all
        with open(fd, "rb", buffering=0, closefd=False) as f:
            return chunk_stream(f, size_hint=st.st_size, on_chunk=on_chunk)
    finally:
        os.close(fd)


def _whole(data: bytes | memoryview, on_chunk: OnChunk) -> FileDigest:
    """A file under ``WHOLE_BELOW`` bytes: one chunk, whose digest is the file's."""
    result = FileDigest(size=len(data), digest=EMPTY_DIGEST)
    if data:
        result.digest = _emit(result, on_chunk, memoryview(data), 0, len(data))
    return result


def chunk_stream(
    stream: BinaryIO,
    *,
    size_hint: int | None = None,
    on_chunk: OnChunk,
    buffer_size: int = BUFFER_SIZE,
) -> FileDigest:
    """Read ``stream`` to its end, calling ``on_chunk`` for every chunk in order, and return the
    file's size, BLAKE3 digest and chunk list. Memory stays about ``buffer_size + MAX_CHUNK``
    whatever the stream's length. An empty stream has no chunks.

    ``size_hint`` (the expected size, if known) only sizes the buffer for small inputs: a
    buffer found too small grows. The stream needs ``readinto`` (preferred: no copy) or
    ``read``.
    """
    if buffer_size < 1:
        raise ValueError("buffer_size must be positive")
    full = buffer_size + MAX_CHUNK
    capacity = full
    if size_hint is not None and 0 <= size_hint < full:
        capacity = size_hint + 1  # +1: see the end without another read
    buf = bytearray(capacity)
    view = memoryview(buf)
    readinto = _readinto_of(stream)
    hasher = None
    result = FileDigest(size=0, digest="")

    filled = 0  # bytes of buf holding data
    hashed = 0  # bytes of buf already fed to the whole-file hash
    base = 0  # file offset of buf[0]
    total = 0  # bytes read
    eof = False
    while True:
        # Fill the buffer after the carried tail.
        while filled < capacity:
            n = readinto(view[filled:])
            if not n:
                eof = True
                break
            filled += n
        if not eof and capacity < full:
            # The size hint was short: grow to the full buffer and read on.
            view.release()
            buf.extend(bytes(full - capacity))
            view = memoryview(buf)
            capacity = full
            continue

        if hasher is None:
            if eof and filled < WHOLE_BELOW:
                return _whole(view[:filled], on_chunk)
            hasher = blake3(max_threads=1)
        ahead = None
        if filled > hashed:
            total += filled - hashed
            if filled - hashed >= HASH_AHEAD_MIN:
                ahead = _HashAhead(hasher, view[hashed:filled])
            else:
                hasher.update(view[hashed:filled])

        # Cut every chunk whose cut point is already certain.
        pos = 0
        try:
            cuts = _CDC.cut_buf(view[:filled])
            while pos < filled and (eof or pos + MAX_CHUNK <= filled):
                cut = next(cuts)
                _emit(result, on_chunk, view, pos, cut.length, base)
                pos += cut.length
            del cuts
        finally:
            if ahead is not None:
                ahead.join()  # before the buffer changes
        if ahead is not None:
            ahead.check()

        if eof:
            break
        # Carry the unfinished tail (< MAX_CHUNK bytes) to the front.
        tail = filled - pos
        buf[:tail] = buf[pos:filled]
        base += pos
        filled = hashed = tail

    result.size = total
    result.digest = hasher.hexdigest()
    return result


class _HashAhead:
    """Feeds one block to the whole-file hash on another thread, while the caller cuts and
    hashes the chunks of the same (unchanging) bytes: BLAKE3 and FastCDC release the GIL."""

    def __init__(self, hasher: blake3, block: memoryview) -> None:
        self._hasher = hasher
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(block,), daemon=True)
        self._thread.start()

    def _run(self, block: memoryview) -> None:
        try:
            self._hasher.update(block)
        except BaseException as exc:  # pragma: no cover - hashing bytes does not fail
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def check(self) -> None:
        if self._error is not None:  # pragma: no cover
            raise self._error


def _emit(
    result: FileDigest,
    on_chunk: OnChunk,
    view: memoryview,
    pos: int,
    length: int,
    base: int = 0,
) -> str:
    data = view[pos : pos + length]
    digest = blake3(data, max_threads=1).hexdigest()
    result.chunks.append((digest, length))
    on_chunk(Chunk(offset=base + pos, length=length, digest=digest, data=data))
    return digest


def _readinto_of(stream: BinaryIO) -> Callable[[memoryview], int]:
    readinto = getattr(stream, "readinto", None)
    if callable(readinto):

        def via_readinto(target: memoryview) -> int:
            return readinto(target) or 0

        return via_readinto

    def via_read(target: memoryview) -> int:
        data = stream.read(len(target))
        target[: len(data)] = data
        return len(data)

    return via_read
