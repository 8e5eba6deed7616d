"""A document's exact size near its limit, measured in a worker process, off the event loop.

Near ``collab_max_document_bytes`` a room measures its document's encoded state exactly, and
the state once an update is applied (on a copy). On a 30 MiB document that is ~85 + 50 ms of
pycrdt, and pycrdt holds the GIL while it encodes or applies: on a thread as on the event loop,
every room of the server would wait. So a large document's room keeps a copy (its *shadow*) in
one worker process the server shares among rooms, sends it each change it makes (in order: the
worker runs what it is sent in order), and asks it the sizes (of an update, or of a restore
tried on a copy); the room awaits the answer before it handles its next message, so its
updates keep their order.

The worker is spawned, never forked from a server holding sockets and threads; as with any
spawned process, Python imports the server's main module in it too (``jupyter lab``'s: a
second or two, tens of MB, the first time a document nears its limit). Where the worker cannot
start or dies, sizes are measured on the event loop, as before it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import uuid
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pycrdt import Doc

log = logging.getLogger("jupyter_workbench.collab")

# -- in the worker process -------------------------------------------------------------------
_shadows: dict[str, Doc] = {}


def _load(key: str, state: bytes) -> None:
    doc: Doc = Doc()
    doc.apply_update(state)
    _shadows[key] = doc


def _apply(key: str, updates: list[bytes]) -> None:
    doc = _shadows.get(key)
    if doc is None:  # dropped (its room closed)
        return
    for update in updates:
        doc.apply_update(update)


def measure(doc: Doc, update: bytes, limit: int, grows: int) -> tuple[int, int | None, str]:
    """``(now, after, error)``: ``doc``'s size, and once ``update`` is applied to a copy of it
    when that must be measured (``now + grows`` past ``limit``, ``now`` within it; else None);
    ``error``: pycrdt's words where ``update`` is no Yjs update. The room calls it on the
    event loop for a small document, the worker on a large one's shadow."""
    state = doc.get_update()
    now = len(state)
    if now > limit or now + grows <= limit:
        return now, None, ""
    trial: Doc = Doc()
    trial.apply_update(state)
    try:
        trial.apply_update(update)
    except BaseException as exc:  # a Rust panic is a BaseException: sent back as words
        if not (isinstance(exc, Exception) or type(exc).__name__ == "PanicException"):
            raise
        return now, None, str(exc) or type(exc).__name__
    return now, len(trial.get_update()), ""


def _with_shadow(key: str, fn: Any, *args: Any) -> Any:
    """``fn(the shadow key, *args)``: ``fn`` must leave the shadow unchanged (work on a copy)."""
    return fn(_shadows[key], *args)


def _drop(key: str) -> None:
    _shadows.pop(key, None)


# -- in the server -----------------------------------------------------------------------------
_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _pool


def shutdown() -> None:
    """Stop the worker process (the server stops; a later shadow starts another)."""
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False)  # what it was sent still runs: nobody waits on a cancel


class SizingFailed(RuntimeError):
    """The worker process could not answer (it died): measure on the loop instead."""


class Shadow:
    """A room's document copied to the worker process: :meth:`apply` each change of the room's
    document to it, in order, and :meth:`measure` asks for the sizes."""

    def __init__(self, state: bytes) -> None:
        self.key = uuid.uuid4().hex
        self.broken = False
        self._submit(_load, self.key, state)

    def _submit(self, fn: Any, *args: Any) -> Future[Any] | None:
        if self.broken:
            return None
        try:
            return _executor().submit(fn, *args)
        except Exception as exc:  # a broken pool (the worker died), one shut down, or a worker
            # that could not start (OSError: a process limit)
            log.warning("collab size worker unavailable (%r): sizes are measured on the event "
                        "loop", exc)  # fmt: skip
            self.broken = True
            shutdown()  # the next shadow starts a worker afresh
            return None

    def apply(self, update: bytes) -> None:
        """A change the room's document made (a transaction's update)."""
        self._submit(_apply, self.key, [update])

    async def measure(self, update: bytes, limit: int, grows: int) -> tuple[int, int | None, str]:
        """What :func:`measure` says of the room's document (as it is after every change sent
        before); ``SizingFailed`` where the worker cannot say."""
        result: tuple[int, int | None, str] = await self.call(measure, update, limit, grows)
        return result

    async def call(self, fn: Any, *args: Any) -> Any:
        """``fn(document, *args)`` in the worker, on the room's document as it is after every
        change sent before; ``fn``, a module-level function (sent by name), must not change the
        document (a trial on a copy). ``SizingFailed`` where the worker cannot say."""
        future = self._submit(_with_shadow, self.key, fn, *args)
        if future is None:
            raise SizingFailed("no size worker")
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:  # the worker died: the next shadow starts another
            self.broken = True
            shutdown()
            raise SizingFailed(str(exc)) from exc
        except Exception as exc:  # the shadow is gone (its worker was replaced), or measuring
            # failed in the worker (a MemoryError): the room drops it, which reaches the worker
            raise SizingFailed(repr(exc)) from exc

    def close(self) -> None:
        self._submit(_drop, self.key)
        self.broken = True
