"""Speed of content-defined chunking + hashing, beside its anchors, on one core.

On a random file on disk (512 MiB by default, read from the page cache) it prints, in GB/s:

- raw BLAKE3, single-threaded, over the whole file read in 8 MiB blocks (anchor 1),
- raw pyfastcdc cut points (``FastCDC.cut_buf`` over the same blocks, no hashing; anchor 2),
- ``chunk_file`` (cut points + a BLAKE3 per chunk + the whole-file BLAKE3, one pass, no-op
  ``on_chunk``), and its ratio to each anchor.

One pass of chunk_file hashes every byte twice (chunk and file) and scans it once for cut
points, so its ceiling on one core is about 1 / (1/cdc + 2/blake3). Each figure is the best of
``--repeat`` runs.

Run (from the repository root)::

    .venv/bin/python benchmarks/chunking_speed.py [--size-mib 512] [--repeat 3] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from blake3 import blake3
from pyfastcdc import FastCDC

from jupyter_workbench.storage import AVG_CHUNK, MAX_CHUNK, MIN_CHUNK, chunk_file

BLOCK = 8 * 1024 * 1024


def make_file(path: Path, size: int) -> None:
    rng = random.Random(42)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(BLOCK, left)
            f.write(rng.randbytes(n))
            left -= n


def blocks(path: Path) -> Callable[[Callable[[memoryview], None]], None]:
    def each(fn: Callable[[memoryview], None]) -> None:
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(view):
                fn(view[:n])

    return each


def raw_blake3(path: Path) -> None:
    hasher = blake3(max_threads=1)

    def update(view: memoryview) -> None:
        hasher.update(view)

    blocks(path)(update)
    hasher.hexdigest()


def raw_fastcdc(path: Path) -> None:
    cdc = FastCDC(AVG_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CHUNK)

    def cut(view: memoryview) -> None:
        for _ in cdc.cut_buf(view):
            pass

    blocks(path)(cut)


def ours(path: Path) -> None:
    chunk_file(path, on_chunk=lambda chunk: None)


def best_gbps(fn: Callable[[Path], None], path: Path, size: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn(path)
        best = min(best, time.perf_counter() - started)
    return size / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="folder for the test file (default: tmp)")
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "random.bin"
        make_file(path, size)
        raw_blake3(path)  # warm the page cache
        b3 = best_gbps(raw_blake3, path, size, args.repeat)
        cdc = best_gbps(raw_fastcdc, path, size, args.repeat)
        ch = best_gbps(ours, path, size, args.repeat)
        ceiling = 1 / (1 / cdc + 2 / b3)
        print(f"file: {args.size_mib} MiB random, page cache; one core; best of {args.repeat}")
        print(f"  raw BLAKE3 (1 thread)         {b3:6.2f} GB/s")
        print(f"  raw pyfastcdc cut points      {cdc:6.2f} GB/s")
        print(
            f"  chunk_file (cuts + hashes)    {ch:6.2f} GB/s   "
            f"= {ch / b3:.2f} x BLAKE3, {ch / cdc:.2f} x pyfastcdc, "
            f"{ch / ceiling:.2f} x the one-pass ceiling ({ceiling:.2f} GB/s)"
        )
        print(f"  cpus: {os.cpu_count()}")


if __name__ == "__main__":
    main()
