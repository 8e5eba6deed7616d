"""Content-defined chunking: deterministic, local to edits, streaming in bounded memory."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from blake3 import blake3

from jupyter_workbench.storage import (
    AVG_CHUNK,
    MAX_CHUNK,
    MIN_CHUNK,
    WHOLE_BELOW,
    Chunk,
    FileDigest,
    blake3_hex,
    chunk_bytes,
    chunk_file,
    chunk_stream,
)

MiB = 1024 * 1024


def noop(chunk: Chunk) -> None:
    pass


def random_bytes(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture(scope="module")
def data20() -> bytes:
    return random_bytes(20 * MiB + 12345, seed=20)


@pytest.fixture(scope="module")
def digest20(data20: bytes) -> FileDigest:
    return chunk_bytes(data20, on_chunk=noop)


def test_blake3_hex() -> None:
    assert blake3_hex(b"") == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert blake3_hex(memoryview(b"abc")) == blake3(b"abc").hexdigest()


def test_deterministic(tmp_path: Path) -> None:
    data = random_bytes(3 * MiB + 5, seed=3)
    first = chunk_bytes(data, on_chunk=noop)
    assert chunk_bytes(bytes(data), on_chunk=noop) == first
    path = tmp_path / "f"
    path.write_bytes(data)
    assert chunk_file(path, on_chunk=noop) == first
    assert chunk_file(path, on_chunk=noop) == first
    assert len(first.chunks) > 10


def test_chunks_cover_the_file(data20: bytes, digest20: FileDigest) -> None:
    seen: list[Chunk] = []
    copies: list[bytes] = []

    def keep(chunk: Chunk) -> None:
        seen.append(chunk)
        copies.append(bytes(chunk.data))
        assert blake3_hex(chunk.data) == chunk.digest
        assert len(chunk.data) == chunk.length

    result = chunk_stream(io.BytesIO(data20), on_chunk=keep)
    assert result == digest20
    assert b"".join(copies) == data20
    assert result.size == len(data20)
    assert result.digest == blake3(data20).hexdigest()
    assert [(c.digest, c.length) for c in seen] == result.chunks
    offset = 0
    for chunk in seen:
        assert chunk.offset == offset
        assert len(chunk.digest) == 64 and int(chunk.digest, 16) >= 0
        offset += chunk.length
    assert offset == len(data20)


def test_chunk_sizes(digest20: FileDigest) -> None:
    lengths = [n for _, n in digest20.chunks]
    assert all(MIN_CHUNK <= n <= MAX_CHUNK for n in lengths[:-1])
    assert 0 < lengths[-1] <= MAX_CHUNK
    mean = sum(lengths) / len(lengths)
    # pyfastcdc's mean is about avg + min (cut-point skipping), ~80 KiB on random data.
    assert AVG_CHUNK * 0.9 < mean < (AVG_CHUNK + MIN_CHUNK) * 1.3


@pytest.mark.parametrize("size", [1, 100, 4096, WHOLE_BELOW - 1])
def test_small_files_stay_whole(size: int, tmp_path: Path) -> None:
    data = random_bytes(size, seed=size)
    chunks: list[Chunk] = []
    result = chunk_bytes(data, on_chunk=chunks.append)
    assert result.chunks == [(blake3_hex(data), size)]
    assert result.digest == blake3_hex(data) and result.size == size
    assert [(c.offset, c.length) for c in chunks] == [(0, size)]
    path = tmp_path / "small"
    path.write_bytes(data)
    assert chunk_file(path, on_chunk=noop) == result
    assert chunk_stream(io.BytesIO(data), on_chunk=noop, buffer_size=7) == result


def test_files_from_whole_below_are_cut(tmp_path: Path) -> None:
    data = random_bytes(WHOLE_BELOW, seed=5) * 4  # 512 KiB
    result = chunk_bytes(data[:WHOLE_BELOW], on_chunk=noop)
    assert result.size == WHOLE_BELOW and sum(n for _, n in result.chunks) == WHOLE_BELOW
    assert len(chunk_bytes(data, on_chunk=noop).chunks) > 1


def test_empty_input_has_no_chunks(tmp_path: Path) -> None:
    calls: list[Chunk] = []
    expected = FileDigest(size=0, digest=blake3_hex(b""), chunks=[])
    assert chunk_bytes(b"", on_chunk=calls.append) == expected
    assert chunk_stream(io.BytesIO(b""), on_chunk=calls.append) == expected
    (tmp_path / "empty").write_bytes(b"")
    assert chunk_file(tmp_path / "empty", on_chunk=calls.append) == expected
    assert calls == []


def test_one_byte_edit_changes_few_chunks(data20: bytes, digest20: FileDigest) -> None:
    edited = bytearray(data20)
    middle = len(edited) // 2
    edited[middle] ^= 0xFF
    after = chunk_bytes(bytes(edited), on_chunk=noop)
    assert after.size == digest20.size and after.digest != digest20.digest
    before_set, after_set = set(digest20.chunks), set(after.chunks)
    changed = after_set - before_set
    assert 1 <= len(changed) <= 3
    assert len(before_set - after_set) <= 3
    # Chunks away from the edit keep their place and digest.
    assert after.chunks[:5] == digest20.chunks[:5]
    assert after.chunks[-5:] == digest20.chunks[-5:]


def test_insertion_near_start_keeps_most_chunks(data20: bytes, digest20: FileDigest) -> None:
    inserted = data20[:1000] + random_bytes(100, seed=99) + data20[1000:]
    after = chunk_bytes(inserted, on_chunk=noop)
    assert after.size == len(data20) + 100
    kept = set(digest20.chunks) & set(after.chunks)
    assert len(kept) >= len(digest20.chunks) - 3
    assert after.chunks[-10:] == digest20.chunks[-10:]  # same chunks, at offsets 100 later


@pytest.mark.parametrize("buffer_size", [1, 1000, MAX_CHUNK - 1, 3 * MiB + 7, 8 * MiB, 64 * MiB])
def test_streaming_matches_whole_buffer(
    data20: bytes, digest20: FileDigest, buffer_size: int
) -> None:
    offsets: list[int] = []
    result = chunk_stream(
        io.BytesIO(data20),
        on_chunk=lambda c: offsets.append(c.offset),
        buffer_size=buffer_size,
    )
    assert result == digest20
    assert offsets[0] == 0 and len(offsets) == len(digest20.chunks)


class Dribble:
    """A stream with only ``read`` that returns at most ``most`` bytes per call."""

    def __init__(self, data: bytes, most: int) -> None:
        self._io = io.BytesIO(data)
        self.most = most

    def read(self, n: int = -1) -> bytes:
        return self._io.read(min(n, self.most) if n >= 0 else self.most)


def test_short_reads_and_read_only_streams(data20: bytes, digest20: FileDigest) -> None:
    for most in (4093, 1 * MiB + 1):
        stream = Dribble(data20, most)
        assert chunk_stream(stream, on_chunk=noop, buffer_size=512 * 1024) == digest20  # type: ignore[arg-type]


def test_size_hint_only_sizes_the_buffer(data20: bytes, digest20: FileDigest) -> None:
    for hint in (0, 10, WHOLE_BELOW, len(data20) - 1, len(data20), 10 * len(data20)):
        assert chunk_stream(io.BytesIO(data20), size_hint=hint, on_chunk=noop) == digest20
    small = random_bytes(5000)
    assert chunk_stream(io.BytesIO(small), size_hint=1 << 30, on_chunk=noop).chunks == [
        (blake3_hex(small), 5000)
    ]


def test_bad_buffer_size() -> None:
    with pytest.raises(ValueError):
        chunk_stream(io.BytesIO(b"x"), on_chunk=noop, buffer_size=0)


PEAK_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    from jupyter_workbench.storage import chunk_file

    def peak_rss_kib():
        # VmHWM: the peak RSS of this program's own memory. (ru_maxrss would also count the
        # parent's pages that the child had between fork and exec: Linux keeps it across exec.)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])

    path = Path(sys.argv[1])
    count = 0
    def on_chunk(chunk):
        global count
        count += 1
    started = time.perf_counter()
    result = chunk_file(path, on_chunk=on_chunk)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "size": result.size,
        "chunks": len(result.chunks),
        "calls": count,
        "seconds": seconds,
        "peak_rss_kib": peak_rss_kib(),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))
    """
)


@pytest.mark.slow
def test_peak_memory_of_a_large_file(tmp_path: Path) -> None:
    """Chunking an 800 MiB file stays far below its size in memory (no mmap, no slurping)."""
    path = tmp_path / "large.bin"
    block = random_bytes(8 * MiB, seed=8)
    try:
        with open(path, "wb") as f:
            for i in range(100):  # 800 MiB, each block a little different
                f.write(i.to_bytes(4, "big"))
                f.write(block[4:])
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS_SCRIPT, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        print("chunk_file on 800 MiB:", report)
        assert report["size"] == 800 * MiB
        assert report["calls"] == report["chunks"] > 800 * MiB // MAX_CHUNK
        assert report["peak_rss_kib"] * 1024 < 200 * 1000 * 1000
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("size", [0, 1, 50, WHOLE_BELOW - 1, WHOLE_BELOW, 300 * 1024])
@pytest.mark.parametrize("told", [0, 10, WHOLE_BELOW - 1])
def test_chunk_file_when_the_size_it_sees_first_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, told: int
) -> None:
    """A file that grows (or shrinks) between fstat and reading is chunked as it is read."""
    import os

    from jupyter_workbench.storage import chunking

    data = random_bytes(size, seed=size)
    path = tmp_path / "f"
    path.write_bytes(data)
    real_fstat = os.fstat

    def lying_fstat(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, *st[1:6], told, *st[7:]))

    monkeypatch.setattr(chunking.os, "fstat", lying_fstat)
    seen: list[tuple[int, int, str, bytes]] = []
    result = chunk_file(
        path, on_chunk=lambda c: seen.append((c.offset, c.length, c.digest, bytes(c.data)))
    )
    assert result == chunk_bytes(data, on_chunk=noop)
    assert b"".join(piece for *_, piece in seen) == data
    assert all(blake3_hex(piece) == digest for _o, _n, digest, piece in seen)


def test_small_files_are_read_whole_and_hashed_once(tmp_path: Path) -> None:
    for size in (0, 1, 4096, WHOLE_BELOW - 1):
        data = random_bytes(size, seed=size + 7)
        (tmp_path / "f").write_bytes(data)
        seen: list[Chunk] = []
        result = chunk_file(tmp_path / "f", on_chunk=seen.append)
        assert result == chunk_bytes(data, on_chunk=noop)
        assert result.digest == blake3(data).hexdigest()
        assert [(c.offset, c.length) for c in seen] == ([(0, size)] if size else [])
        assert chunk_file(str(tmp_path / "f"), on_chunk=noop) == result  # str paths too


def test_the_lab_extension_cuts_files_where_we_do() -> None:
    """labextension/src/fastcdc.ts is checked (vitest) against this fixture; this checks the
    fixture against our own chunker, so both sides cut a file alike and share its chunks."""
    fixture = Path(__file__).resolve().parents[2] / "labextension/src/__tests__/fastcdcFixture.json"

    def xorshift(seed: int, n: int) -> bytes:
        x, out = seed & 0xFFFFFFFF, bytearray(n)
        for i in range(n):
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            out[i] = x & 0xFF
        return bytes(out)

    def csv_text(n: int) -> bytes:
        parts, size, i = [], 0, 0
        while size < n:
            line = f"{i},{(i * 7919) % 1000}\n"
            parts.append(line)
            size, i = size + len(line), i + 1
        return "".join(parts).encode()[:n]

    for case in json.loads(fixture.read_text())["cases"]:
        kind, size = case["kind"], case["size"]
        if kind == "xorshift":
            data = xorshift(case["seed"], size)
        else:
            data = bytes(size) if kind == "zeros" else csv_text(size)
        digest = chunk_bytes(data, on_chunk=lambda _c: None)
        assert [n for _, n in digest.chunks] == case["lengths"], (kind, size)
