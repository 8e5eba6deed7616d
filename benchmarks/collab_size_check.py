"""Co-editing: how long a room's size check near ``collab_max_document_bytes`` holds up the
event loop (every room of the server), on a ~30 MiB document, beside the same check made on
the loop (the anchor: the room as it was before the size worker).

A room (in this process, an in-memory store) holds a ~30 MiB document within a few bytes of
its limit, so that every update is measured exactly: the document's size, and its size once the
update is applied to a copy. ``--updates`` (8) writers each send one small edit (the first few
fit, the rest are refused with 4413), one at a time; a ticker on the loop (asleep 1 ms at a time)
records the loop's longest stall while each is handled. Figures: the median and worst stall and
the median time until the room has handled the update (its latency for the writer), for
``ours`` (a document past ``OFFLOOP_BYTES``: measured by its shadow in the size worker process;
the shadow is made, the document encoded here once, before the timed updates) and ``on-loop``
(``OFFLOOP_BYTES`` raised past the document: measured on the loop as before).

    python benchmarks/collab_size_check.py [--mib 30] [--updates 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from pycrdt import Doc, Text

from jupyter_workbench.collab import protocol as P
from jupyter_workbench.collab import room as room_module
from jupyter_workbench.collab import sizing
from jupyter_workbench.collab.room import Peer, Room
from jupyter_workbench.collab.store import CONTENT, new_doc


class MemoryStore:
    def append_now(self, _document_id: str, _updates: list[bytes]) -> bool:
        return True

    def needs_checkpoint(self) -> bool:
        return False


class Connection:
    close_code: int | None = None

    def send(self, message: bytes) -> None:
        pass

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.close_code = code


async def run_blocking(fn: Any, *args: Any) -> Any:
    return fn(*args)


def document(mib: int) -> Doc:
    doc = new_doc()
    line = "lorem ipsum dolor sit amet, consectetur adipiscing elit\n"
    doc.get(CONTENT, type=Text).insert(0, line * (mib * 1024 * 1024 // len(line)))
    return doc


def edit(doc: Doc, text: str) -> bytes:
    client: Doc = Doc()
    client.apply_update(doc.get_update())
    before = client.get_state()
    client.get(CONTENT, type=Text).insert(7, text)
    return client.get_update(before)


async def ticker(gaps: list[float], done: asyncio.Event) -> None:
    """How much later than asked the loop wakes it, 1 ms at a time, until ``done``."""
    while not done.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        gaps.append(time.perf_counter() - before - 0.001)


async def idle_stalls(seconds: float, times: int) -> list[float]:
    """The loop's longest stall in ``seconds`` with nothing to do, ``times`` times: what the
    machine's load adds to every figure."""
    stalls = []
    for _ in range(times):
        gaps: list[float] = []
        done = asyncio.Event()
        task = asyncio.ensure_future(ticker(gaps, done))
        await asyncio.sleep(seconds)
        done.set()
        await task
        stalls.append(max(gaps))
    return stalls


async def measure(mib: int, updates: int, off_loop: bool) -> dict[str, Any]:
    room_module.OFFLOOP_BYTES = 1024 * 1024 if off_loop else 1 << 40
    doc = document(mib)
    size = len(doc.get_update())
    edits = [edit(doc, f"<{i}>") for i in range(updates)]
    room = Room("bench", doc, MemoryStore(), run_blocking, stored_rows=0, size=size,  # type: ignore[arg-type]
                max_bytes=size + 2 * len(edits[0]) + 40)  # fmt: skip
    stalls: list[float] = []
    latencies: list[float] = []
    codes: list[int | None] = []
    try:
        if off_loop:  # the shadow made (once per room) before the timed updates
            room.size_exact = False
            await room._measure_off_loop(edits[0], room.max_bytes, 0)
        for update in edits:
            conn = Connection()
            peer = Peer(conn, "alice", {"name": "alice"}, True)
            room.join(peer)
            gaps: list[float] = []
            done = asyncio.Event()
            task = asyncio.ensure_future(ticker(gaps, done))
            await asyncio.sleep(0.01)
            started = time.perf_counter()
            room.receive(peer, P.sync_update(update))
            await room.drained()
            latencies.append(time.perf_counter() - started)
            done.set()
            await task
            stalls.append(max(gaps))
            codes.append(conn.close_code)
            room.leave(peer)
    finally:
        await room.close()
    return {"size": size, "stalls": stalls, "latencies": latencies, "codes": codes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=30)
    parser.add_argument("--updates", type=int, default=8)
    args = parser.parse_args()
    rows = {}
    for name, off_loop in (("on-loop (anchor)", False), ("ours (size worker)", True)):
        rows[name] = asyncio.run(measure(args.mib, args.updates, off_loop))
    sizing.shutdown()
    size = next(iter(rows.values()))["size"]
    print(f"document {size / 2**20:.1f} MiB, {args.updates} updates near its limit")
    print(f"{'':22} {'loop stall p50':>15} {'worst':>9} {'latency p50':>12}  taken/refused")
    for name, r in rows.items():
        taken = sum(c is None for c in r["codes"])
        stall, worst = statistics.median(r["stalls"]) * 1000, max(r["stalls"]) * 1000
        latency = statistics.median(r["latencies"]) * 1000
        print(f"{name:22} {stall:12.1f} ms {worst:6.1f} ms {latency:9.1f} ms"
              f"  {taken}/{len(r['codes']) - taken}")  # fmt: skip
    idle = asyncio.run(idle_stalls(0.3, args.updates))
    print(f"{'idle loop (no update)':22} {statistics.median(idle) * 1000:12.1f} ms "
          f"{max(idle) * 1000:6.1f} ms")  # fmt: skip
    anchor, ours = rows["on-loop (anchor)"], rows["ours (size worker)"]
    ratio = statistics.median(ours["stalls"]) / max(statistics.median(anchor["stalls"]), 1e-9)
    print(f"loop stall p50, ours / on-loop: {ratio:.3f}")


if __name__ == "__main__":
    main()
