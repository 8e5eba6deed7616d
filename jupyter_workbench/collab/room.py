"""Rooms: one live pycrdt document per open workbench document, shared by its connections.

A room speaks the y-websocket server's side of y-protocols: it sends its state vector when a peer
joins, answers a peer's state vector with what the peer lacks, and relays updates and awareness.
What a room adds:

- an update is committed to the store *before* any other peer sees it; a STEP1 answer is given
  only after everything applied before it is committed (so nobody is ever sent an edit a crash
  could lose);
- a peer that may not write (a viewer) has its updates dropped -- never applied, stored or
  relayed -- and is told "permission denied" (y-protocols' auth message); a role that changes
  mid-session is told at once (``Rooms.recheck``): "denied" on a demotion, "granted" (ours,
  ``protocol.permission_granted``) on a promotion;
- awareness states carry the real user: the room writes the connection's identity into the
  ``user`` field of every state a peer announces, whatever the peer claimed;
- only effective changes are stored: a reconnecting client that re-sends what the room already
  has adds nothing (the document's own update event is what gets stored);
- awareness is rate-limited per connection (a token bucket): past the rate, a peer's updates
  are coalesced -- the latest state of each of its client ids is relayed once the rate allows
  -- and a peer sending ``ABUSE_FACTOR`` times the rate is closed with 4429;
- a document has a size limit (its encoded state, ``max_bytes``): an update that would take it
  past the limit is refused -- never applied, stored or relayed -- and its sender closed with
  4413. A document already past it (the limit was lowered) still opens and syncs, read-only:
  peers' updates are refused; a restore that makes it smaller is taken. Near the limit the
  size is measured exactly (never twice while the document is unchanged), that of a document
  past ``OFFLOOP_BYTES`` in a worker process (:mod:`.sizing`), not on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pycrdt import Doc, Text, TransactionEvent

from . import protocol as P
from .sizing import Shadow, SizingFailed, measure
from .store import CONTENT, DocumentStore, doc_from_updates, text_of

log = logging.getLogger("jupyter_workbench.collab")

_BATCH = 256  # messages handled per store commit at most
# bytes of peers' messages queued and not yet handled: past this, senders' connections wait
# (tornado reads their next message later), so a flood fills sockets, not the server's memory
MAX_INBOX_BYTES = 32 * 1024 * 1024
# awareness client ids one connection may speak for (a y-websocket client uses one per document)
MAX_CLIENT_IDS = 8
# between two measures of a document's size, each update it takes counts this many times its
# own size: typing grows the encoded state by about an update's size, deleting single
# characters by up to half as much again (an item split in two)
SIZE_ESTIMATE_FACTOR = 2
# a document past this size is measured near its limit in a worker process (its shadow), not
# on the event loop: pycrdt holds the GIL while it encodes (~85 ms for 30 MiB), so a thread would
# hold up every room as well
OFFLOOP_BYTES = 1024 * 1024
# a connection sending awareness (updates and queries) at this many times the rate, past this
# many times the burst, is closed: no editor moves a cursor that fast
ABUSE_FACTOR = 10
# a restore diffs the characters of changed lines while the product of the lengths compared
# stays within this (~0.3 s at worst); past it, changed lines are replaced whole
CHAR_DIFF_CELLS = 1_000_000


class Refused(Exception):
    """A peer's message the room does not take: its sender is closed with ``code``."""

    code = 4400

    @property
    def reason(self) -> str:
        return str(self)


class DocumentTooLarge(Refused, ValueError):
    """An edit that would take a document past its size limit (it was not applied)."""

    code = 4413  # like HTTP's 413

    def __init__(self, size: int, limit: int, now: int) -> None:
        self.size, self.limit = size, limit
        if now > limit:
            what = f"the document is {now:,} bytes, past its limit of {limit:,}"
        else:
            what = f"this edit would make the document {size:,} bytes, past its limit of {limit:,}"
        super().__init__(what)

    @property
    def reason(self) -> str:
        return f"{self}: edit refused"


class TooManyMessages(Refused):
    """Awareness far past the rate: a client that floods its peers, not one moving a cursor."""

    code = 4429  # like HTTP's 429


class TokenBucket:
    """``rate`` tokens a second, ``burst`` at most (full to begin with)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.at = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def take(self) -> bool:
        """Take a token if there is one."""
        self._refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def wait(self) -> float:
        """Seconds until there is a token."""
        self._refill()
        return max(0.0, (1 - self.tokens) / self.rate)


class EditFailed(RuntimeError):
    """A server-side edit (a restore) failed; what it changed before is kept by everyone."""


class RoomClosed(RuntimeError):
    """The room closed before a server-side edit was done: open the document's room again."""


def is_crdt_failure(exc: BaseException) -> bool:
    """An error of pycrdt: an exception, or a Rust panic (pyo3's ``PanicException`` is a
    ``BaseException``: left alone it would end the room's loop and hang everyone in it)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def index_units(text: str, length: int) -> list[int]:
    """``units[i]``: where character ``i`` of ``text`` starts in the index of a pycrdt
    ``Text`` holding it, whose ``len()`` is ``length``. pycrdt counts UTF-8 bytes (a Yjs
    peer, UTF-16 code units); the count that gives ``length`` is the one used."""
    if length == len(text):
        return list(range(len(text) + 1))
    if length == len(text.encode("utf-8", "surrogatepass")):
        sizes = (
            1 if c < "\x80" else 2 if c < "\u0800" else 3 if c < "\U00010000" else 4 for c in text
        )
    else:
        sizes = (2 if c >= "\U00010000" else 1 for c in text)
    return list(itertools.accumulate(sizes, initial=0))


# what a connection is told when it may not write (a viewer's edit; a demotion or an archived
# project, on the spot), and when it may again (a promotion, the project out of the archive)
READ_ONLY = "read-only: you can view this document, not edit it"
PROMOTED = "you can edit this document now"
MAX_CLOSE_REASON = 123  # bytes: a close frame's payload is 125 at most, the code takes 2


def close_reason(reason: str) -> str:
    """``reason`` cut to ``MAX_CLOSE_REASON`` bytes of UTF-8, never inside a character."""
    data = reason.encode("utf-8", "replace")
    if len(data) <= MAX_CLOSE_REASON:
        return reason
    return data[: MAX_CLOSE_REASON - 3].decode("utf-8", "ignore") + "..."


def text_units(ytext: Text) -> tuple[str, list[int]]:
    """The string of ``ytext`` and ``units[i]``: where its character ``i`` starts in
    ``ytext``'s index. An embed a Yjs client inserted (an image, a mention) takes one place in
    that index and none in the string; ``units[i]`` is past the embeds before character ``i``."""
    parts: list[str] = []
    embeds_before: list[int] = []  # for each embed: how many characters come before it
    chars = 0
    for content, _attributes in ytext.diff():
        if isinstance(content, str):
            parts.append(content)
            chars += len(content)
        else:
            embeds_before.append(chars)
    text = "".join(parts)
    units = index_units(text, len(ytext) - len(embeds_before))
    passed = 0  # embeds before character i (embeds_before is in text order)
    for i in range(len(units)):
        while passed < len(embeds_before) and embeds_before[passed] <= i:
            passed += 1
        units[i] += passed
    return text, units


def _common_prefix(a: str, b: str) -> int:
    """The length of ``a`` and ``b``'s common prefix (a binary search of slice comparisons)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def text_opcodes(a: str, b: str) -> list[tuple[str, int, int, int, int]]:
    """The changes (SequenceMatcher's opcodes but ``equal``, in character offsets, in order)
    that turn ``a`` into ``b``: past their common prefix and suffix, a diff of lines, then of
    the characters of each changed run of lines while those compared stay within
    ``CHAR_DIFF_CELLS`` (the rest is replaced whole). SequenceMatcher's cost grows with the
    product of the lengths it compares: on the characters of a whole 20 KB document it took
    13 s, holding up the event loop."""
    prefix = _common_prefix(a, b)
    suffix = _common_prefix(a[prefix:][::-1], b[prefix:][::-1])
    a_mid, b_mid = a[prefix : len(a) - suffix], b[prefix : len(b) - suffix]
    a_lines, b_lines = a_mid.splitlines(keepends=True), b_mid.splitlines(keepends=True)
    a_at = list(itertools.accumulate(map(len, a_lines), initial=prefix))  # where lines start
    b_at = list(itertools.accumulate(map(len, b_lines), initial=prefix))
    ops: list[tuple[str, int, int, int, int]] = []
    budget = CHAR_DIFF_CELLS
    # popular lines are junk here (autojunk): without it, a document of many equal lines took
    # minutes; the characters' diff below keeps a changed run's edit small all the same
    lines = difflib.SequenceMatcher(a=a_lines, b=b_lines).get_opcodes()
    for tag, i1, i2, j1, j2 in lines:
        x1, x2, y1, y2 = a_at[i1], a_at[i2], b_at[j1], b_at[j2]
        cells = (x2 - x1) * (y2 - y1)
        if tag == "equal":
            continue
        if tag != "replace" or cells > budget:
            ops.append((tag, x1, x2, y1, y2))
            continue
        budget -= cells
        chars = difflib.SequenceMatcher(a=a[x1:x2], b=b[y1:y2], autojunk=False)
        ops.extend((t, x1 + c1, x1 + c2, y1 + d1, y1 + d2)
                   for t, c1, c2, d1, d2 in chars.get_opcodes() if t != "equal")  # fmt: skip
    return ops


def replace_text(doc: Doc, target: str) -> None:
    """Edit ``doc``'s text into ``target`` with a small diff (:func:`text_opcodes`), in one
    transaction."""
    ytext = doc.get(CONTENT, type=Text)
    current, at = text_units(ytext)  # character index -> pycrdt's index
    ops = text_opcodes(current, target)
    with doc.transaction(origin="restore"):
        for tag, i1, i2, j1, j2 in reversed(ops):  # from the end: `at` stays right
            if tag in ("replace", "delete"):
                del ytext[at[i1] : at[i2]]
            if tag in ("replace", "insert"):
                ytext.insert(at[i1], target[j1:j2])


def replaced_size(doc: Doc, target: str) -> tuple[int, int]:
    """``doc``'s encoded size now and once :func:`replace_text` made it ``target`` (tried on a
    copy; one that fails is measured as far as it got). The room calls it on the event loop
    for a small document, the size worker on a large one's shadow."""
    state = doc.get_update()
    trial = doc_from_updates([state])
    try:
        replace_text(trial, target)
    except BaseException as exc:
        if not is_crdt_failure(exc):
            raise
    return len(state), len(trial.get_update())


class Connection(Protocol):
    """The transport of one peer (the WebSocket handler)."""

    def send(self, message: bytes) -> None: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


@dataclass(eq=False)
class Peer:
    """One connection in a room."""

    conn: Connection
    username: str
    user: dict[str, Any]  # the awareness ``user`` field: who this really is
    can_write: bool
    identity: Any = None  # what the access re-check runs as
    joined_at: float = field(default_factory=time.time)
    client_ids: set[int] = field(default_factory=set)
    denied: bool = False  # told once that its writes are refused
    # awareness past the rate (set by the room that it joins): coalesced, relayed by a timer
    awareness_bucket: TokenBucket | None = None
    abuse_bucket: TokenBucket | None = None
    pending: dict[int, P.AwarenessEntry] = field(default_factory=dict)  # client id -> latest
    flush: asyncio.TimerHandle | None = None

    def send(self, message: bytes) -> None:
        with contextlib.suppress(Exception):  # closed under us: on_close removes it
            self.conn.send(message)

    def close(self, code: int, reason: str) -> None:
        """Close the connection; ``reason`` cut to what a close frame holds."""
        with contextlib.suppress(Exception):  # already closed: on_close removes it
            self.conn.close(code, close_reason(reason))


class Room:
    """A document's live state and peers. All methods run on the event loop."""

    def __init__(
        self,
        document_id: str,
        doc: Doc,
        store: DocumentStore,
        run_blocking: Callable[..., Awaitable[Any]],
        *,
        stored_rows: int,
        size: int | None = None,
        max_bytes: int = 0,
        awareness_per_second: float = 0.0,
        awareness_burst: int = 1,
        on_stored: Callable[[Room], None] | None = None,
    ) -> None:
        self.document_id = document_id
        self.doc = doc
        self.store = store
        self._run = run_blocking
        self.stored_rows = stored_rows
        self.max_bytes = max_bytes  # the document's size limit (its encoded state); 0: none
        # its encoded size: measured near the limit, in between grown by each effective
        # update's size times SIZE_ESTIMATE_FACTOR (an estimate that errs high)
        self.size = size if size is not None else len(doc.get_update())
        self.size_exact = True  # self.size is the document's as it is (measured, unchanged since)
        self._shadow: Shadow | None = None  # the document's copy in the size worker
        self.awareness_per_second = awareness_per_second  # per connection; 0: no limit
        self.awareness_burst = max(1, awareness_burst)
        self.peers: set[Peer] = set()
        self.awareness: dict[int, P.AwarenessEntry] = {}
        self._owners: dict[
            int, Peer
        ] = {}  # awareness client id -> the connection that speaks for it
        self.on_stored = on_stored
        self.last_snapshot_at = time.time()
        self.broken: str | None = None
        # peers' messages, and local edits (a function and the future told once it is stored)
        self._inbox: asyncio.Queue[tuple[Peer | None, Any]] = asyncio.Queue()
        self._inbox_bytes = 0
        self._has_room = asyncio.Event()  # the inbox is below MAX_INBOX_BYTES
        self._has_room.set()
        self._effective: list[bytes] = []
        self._subscription = doc.observe(self._on_transaction)
        self._task = asyncio.ensure_future(self._serve())
        self._idle = asyncio.Event()
        self._idle.set()
        self._edits: set[asyncio.Future[None]] = set()  # server-side edits not yet done
        self.closed = False

    @classmethod
    async def open(
        cls,
        document_id: str,
        store: DocumentStore,
        run_blocking: Callable[..., Awaitable[Any]],
        **kwargs: Any,
    ) -> Room:
        rows = await run_blocking(store.load, document_id)

        def load() -> tuple[Doc, int]:
            doc = doc_from_updates(rows)
            return doc, len(doc.get_update())

        doc, size = await run_blocking(load)
        limit = kwargs.get("max_bytes", 0)
        if limit and size > limit:
            log.warning("Room %s: the document is %d bytes, past the limit of %d: it opens "
                        "read-only until a restore makes it smaller", document_id, size,
                        limit)  # fmt: skip
        return cls(document_id, doc, store, run_blocking, stored_rows=len(rows), size=size,
                   **kwargs)  # fmt: skip

    # -- peers --------------------------------------------------------------------------
    def join(self, peer: Peer) -> None:
        rate, burst = self.awareness_per_second, self.awareness_burst
        if rate > 0:
            peer.awareness_bucket = TokenBucket(rate, burst)
            peer.abuse_bucket = TokenBucket(ABUSE_FACTOR * rate, ABUSE_FACTOR * burst)
        self.peers.add(peer)
        peer.send(P.sync_step1(self.doc.get_state()))
        if self.awareness:
            peer.send(P.encode_awareness(list(self.awareness.values())))

    def leave(self, peer: Peer) -> None:
        self.peers.discard(peer)
        self._drop_pending(peer)
        gone = []
        for client_id in peer.client_ids:
            self._owners.pop(client_id, None)
            entry = self.awareness.pop(client_id, None)
            if entry is not None:
                gone.append(P.AwarenessEntry(client_id, entry.clock + 1, None))
        if gone:
            self._broadcast(P.encode_awareness(gone), exclude=peer)

    def receive(self, peer: Peer, message: bytes) -> Awaitable[None] | None:
        """Queue a peer's message; the room handles messages in arrival order. Past
        ``MAX_INBOX_BYTES`` queued, returns what to await before reading the sender's next
        message."""
        self._idle.clear()
        self._inbox.put_nowait((peer, message))
        self._inbox_bytes += len(message)
        if self._inbox_bytes <= MAX_INBOX_BYTES:
            return None
        self._has_room.clear()
        return self._caught_up()

    async def _caught_up(self) -> None:
        await self._has_room.wait()

    def _handled(self, batch: list[tuple[Peer | None, Any]]) -> None:
        self._inbox_bytes -= sum(len(m) for p, m in batch if p is not None)
        if self._inbox_bytes <= MAX_INBOX_BYTES // 2:
            self._has_room.set()

    def presence(self) -> list[dict[str, Any]]:
        """Who is here: one entry per user, with their connection count."""
        users: dict[str, dict[str, Any]] = {}
        for peer in sorted(self.peers, key=lambda p: p.joined_at):
            entry = users.setdefault(
                peer.username,
                {"user": dict(peer.user), "can_write": peer.can_write, "connections": 0,
                 "joined_at": peer.joined_at},
            )  # fmt: skip
            entry["connections"] += 1
            entry["can_write"] = entry["can_write"] or peer.can_write
        return list(users.values())

    # -- the document -------------------------------------------------------------------
    @property
    def text(self) -> str:
        return text_of(self.doc)

    async def replace_text(self, target: str) -> None:
        """Edit the document into ``target`` with a small diff (a restore): a normal edit,
        stored and sent to everyone, that collaborators converge on."""

        async def edit() -> None:
            if self.max_bytes:  # made on a copy first: refused if it ends past the limit
                # a large document's copy is its shadow's, in the size worker (as for updates)
                shadow = self._large_shadow()
                sizes: tuple[int, int] | None = None
                if shadow is not None:
                    try:
                        sizes = await shadow.call(replaced_size, target)
                    except SizingFailed as exc:
                        self._sizing_failed(exc)
                before, after = sizes or replaced_size(self.doc, target)
                self.size, self.size_exact = before, True
                self._check_size(after, before)  # a failing edit fails again below
            replace_text(self.doc, target)

        if self.closed:
            raise RoomClosed(f"the room of {self.document_id} closed")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._edits.add(done)
        done.add_done_callback(self._edits.discard)
        self._idle.clear()
        self._inbox.put_nowait((None, (edit, done)))
        await done

    @property
    def idle(self) -> bool:
        """Nothing queued: every message and edit is handled and stored."""
        return self._idle.is_set()

    async def drained(self) -> None:
        """Wait until every queued message is handled and stored."""
        await self._idle.wait()

    def _on_transaction(self, event: TransactionEvent) -> None:
        self._effective.append(event.update)
        self.size_exact = False
        if self._shadow is not None:  # in order, before anything measured after it
            self._shadow.apply(event.update)

    # -- the loop -----------------------------------------------------------------------
    async def _serve(self) -> None:
        while True:
            item = await self._inbox.get()
            batch = [item]
            while len(batch) < _BATCH and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            try:
                await self._handle(batch)
            except Exception:  # the store failed: nothing more may be acknowledged
                # the database's words stay in the server's log, under an id the client gets
                error_id = uuid.uuid4().hex[:12]
                log.exception("Room %s: storing updates failed (error %s)", self.document_id,
                              error_id)  # fmt: skip
                self.fail(f"the document could not be saved (error {error_id}); "
                          "reconnect to retry")  # fmt: skip
                return
            finally:
                self._handled(batch)
            if self._inbox.empty():
                self._idle.set()

    async def _handle(self, batch: list[tuple[Peer | None, Any]]) -> None:
        pending: list[tuple[Peer | None, bytes]] = []  # applied, not yet stored
        waiting: list[asyncio.Future[None]] = []
        for peer, message in batch:
            if peer is None:
                edit, done = message
                self._effective.clear()
                try:
                    await edit()
                except DocumentTooLarge as exc:  # refused before it changed anything
                    done.set_exception(exc)
                    continue
                except BaseException as exc:
                    if not is_crdt_failure(exc):
                        raise
                    done.set_exception(EditFailed(f"the edit failed: {exc}"))
                else:
                    waiting.append(done)
                self.size += SIZE_ESTIMATE_FACTOR * sum(len(u) for u in self._effective)
                # what it changed (all of it, or up to a failure) is stored and sent to all:
                # the room never holds text the store and the peers do not
                pending.extend((None, u) for u in self._effective)
                self._effective.clear()
                continue
            if peer not in self.peers:
                continue
            try:
                kind, step, payload = P.parse(message)
                if kind == P.SYNC:
                    if step == P.SYNC_STEP1:
                        await self._store(pending)  # the answer may hold them
                        pending = []
                        peer.send(P.sync_step2(self._update_since(payload)))
                    else:
                        pending.extend(await self._apply(peer, payload))
                elif kind == P.AWARENESS:
                    self._awareness(peer, payload)
                elif kind == P.QUERY_AWARENESS:
                    self._check_flood(peer)
                    peer.send(P.encode_awareness(list(self.awareness.values())))
            except Refused as exc:  # nothing of it applied
                log.info("Room %s: closing %s: %s", self.document_id, peer.username, exc)
                peer.close(exc.code, exc.reason)
                self.leave(peer)
            except P.ProtocolError as exc:
                log.info("Room %s: closing %s: %s", self.document_id, peer.username, exc)
                peer.close(4400, str(exc))
                self.leave(peer)  # what it sent behind the bad message is not applied
                # what a failed update changed all the same (a pycrdt panic midway) is stored
                # and sent to all: the room never holds text the store and the peers do not
                pending.extend((None, u) for u in self._effective)
                self._effective.clear()
        try:
            await self._store(pending)
        except Exception as exc:
            for done in waiting:
                done.set_exception(exc)
            raise
        for done in waiting:
            done.set_result(None)

    def _update_since(self, state_vector: bytes) -> bytes:
        try:
            return self.doc.get_update(state_vector)
        except BaseException as exc:
            if not is_crdt_failure(exc):
                raise
            raise P.ProtocolError(f"not a Yjs state vector: {exc}") from None

    async def _apply(self, peer: Peer, update: bytes) -> list[tuple[Peer | None, bytes]]:
        if update == P.EMPTY_UPDATE or not self._may_write(peer):
            return []
        measured = await self._size_with(update)
        if not self._may_write(peer):  # demoted or revoked while it was measured
            return []
        self._effective.clear()
        try:
            self.doc.apply_update(update)
        except BaseException as exc:  # what it changed before failing stays in _effective
            if not is_crdt_failure(exc):
                raise
            raise P.ProtocolError(f"not a Yjs update: {exc}") from None
        effective, self._effective = self._effective, []
        if measured is not None:
            self.size, self.size_exact = measured, True
        else:
            self.size += SIZE_ESTIMATE_FACTOR * sum(len(u) for u in effective)
        return [(peer, u) for u in effective]

    def follow_role(self, peer: Peer, can_write: bool) -> None:
        """Take a role that changed mid-session, and tell the peer at once: demoted, that it
        is read-only (before it types); promoted, that it may write, with the room's state
        vector, whose answer brings in what of its own the room lacks (edits it dropped)."""
        was, peer.can_write = peer.can_write, can_write
        if can_write and not was:
            peer.denied = False
            peer.send(P.permission_granted(PROMOTED))
            peer.send(P.sync_step1(self.doc.get_state()))
        elif was and not can_write and not peer.denied:
            peer.denied = True
            peer.send(P.permission_denied(READ_ONLY))

    def _may_write(self, peer: Peer) -> bool:
        """Whether ``peer`` may change the document (an update it sent before it left is
        still taken; not once its access was revoked); a viewer is told once that it may not."""
        if not peer.can_write:
            if not peer.denied:
                peer.denied = True
                peer.send(P.permission_denied(READ_ONLY))
            return False
        return True

    async def _size_with(self, update: bytes) -> int | None:
        """The document's size once ``update`` is applied when it had to be measured (near
        or past the limit; None: well within it). DocumentTooLarge if it may not be applied.
        A document measured and unchanged since is not measured again; one past
        ``OFFLOOP_BYTES`` is measured by its shadow in the size worker, off the event loop."""
        limit, grows = self.max_bytes, SIZE_ESTIMATE_FACTOR * len(update)
        if not limit or self.size + grows <= limit:
            return None
        if self.size_exact and self.size > limit:  # opened past a lowered limit: read-only
            raise DocumentTooLarge(self.size + len(update), limit, self.size)
        measured = await self._measure_off_loop(update, limit, grows)
        if measured is None:  # a small document (or no worker): measured here
            measured = measure(self.doc, update, limit, grows)
        now, after, error = measured
        self.size, self.size_exact = now, True  # the estimate errs high: measured
        if now > limit:
            raise DocumentTooLarge(now + len(update), limit, now)
        if error:
            raise P.ProtocolError(f"not a Yjs update: {error}")
        if after is None:  # within the limit once measured
            return None
        self._check_size(after, now)
        return after

    async def _measure_off_loop(
        self, update: bytes, limit: int, grows: int
    ) -> tuple[int, int | None, str] | None:
        """What the document's shadow in the size worker measures (made the first time: the
        document encoded here once); None for a document within ``OFFLOOP_BYTES`` or where the
        worker cannot say (measured on the loop then, and a new shadow made next time)."""
        shadow = self._large_shadow()
        if shadow is None:
            return None
        try:
            return await shadow.measure(update, limit, grows)
        except SizingFailed as exc:
            self._sizing_failed(exc)
            return None

    def _large_shadow(self) -> Shadow | None:
        """The document's shadow in the size worker (made the first time: the document encoded
        here once); None for a document within ``OFFLOOP_BYTES``."""
        if self._shadow is None:
            if self.size <= OFFLOOP_BYTES:
                return None
            state = self.doc.get_update()
            if len(state) <= OFFLOOP_BYTES:  # the estimate erred high: a small document
                return None
            self._shadow = Shadow(state)
        return self._shadow

    def _sizing_failed(self, exc: SizingFailed) -> None:
        """The worker could not say: measured on the event loop, a new shadow made next time."""
        log.warning("Room %s: measuring in the size worker failed (%s): measured on the "
                    "event loop", self.document_id, exc)  # fmt: skip
        self._drop_shadow()

    def _check_size(self, after: int, before: int) -> None:
        """DocumentTooLarge unless a document of ``before`` bytes may become ``after``: within
        the limit, or (one already past it) smaller."""
        if after > self.max_bytes and after >= before:
            raise DocumentTooLarge(after, self.max_bytes, before)

    async def _store(self, pending: list[tuple[Peer | None, bytes]]) -> None:
        if not pending:
            return
        updates = [u for _, u in pending]
        # committed before anyone sees them: on the loop when SQLite's write lock is free
        if not self.store.append_now(self.document_id, updates):
            await self._run(self.store.append, self.document_id, updates)
        self.stored_rows += len(pending)
        for origin, update in pending:
            self._broadcast(P.sync_update(update), exclude=origin)
        if self.on_stored is not None:
            self.on_stored(self)
        if self.store.needs_checkpoint():
            await self._run(self.store.checkpoint)

    def _awareness(self, peer: Peer, payload: bytes) -> None:
        entries = P.decode_awareness(payload)
        pending = {i for i, e in peer.pending.items() if e.state is not None}
        claimed = peer.client_ids | pending | {e.client_id for e in entries if e.state is not None}
        if len(claimed) > MAX_CLIENT_IDS:
            raise P.ProtocolError(f"awareness for {len(claimed)} client ids on one connection "
                                  f"(at most {MAX_CLIENT_IDS})")  # fmt: skip
        self._check_flood(peer)
        bucket = peer.awareness_bucket
        if bucket is not None and (peer.pending or not bucket.take()):
            for entry in entries:  # past the rate: the latest of each is relayed later
                held = peer.pending.get(entry.client_id)
                if held is None or entry.clock >= held.clock:
                    peer.pending[entry.client_id] = entry
            if peer.flush is None:
                loop = asyncio.get_running_loop()
                peer.flush = loop.call_later(bucket.wait(), self._flush, peer)
            return
        self._relay_awareness(peer, entries)

    def _check_flood(self, peer: Peer) -> None:
        if peer.abuse_bucket is not None and not peer.abuse_bucket.take():
            most = ABUSE_FACTOR * self.awareness_per_second
            raise TooManyMessages(f"too many awareness messages (over {most:g} a second): "
                                  "this connection is closed")  # fmt: skip

    def _flush(self, peer: Peer) -> None:
        """Relay what a peer's awareness past the rate left pending, once the rate allows."""
        peer.flush = None
        if peer not in self.peers or not peer.pending:
            return
        bucket = peer.awareness_bucket
        if bucket is not None and not bucket.take():  # woken early: wait again
            peer.flush = asyncio.get_running_loop().call_later(bucket.wait(), self._flush, peer)
            return
        entries = list(peer.pending.values())
        peer.pending.clear()
        self._relay_awareness(peer, entries)

    def _drop_pending(self, peer: Peer) -> None:
        peer.pending.clear()
        if peer.flush is not None:
            peer.flush.cancel()
            peer.flush = None

    def _relay_awareness(self, peer: Peer, entries: list[P.AwarenessEntry]) -> None:
        """Take a peer's awareness entries (stamped with its real user) and pass them on."""
        out = []
        for entry in entries:
            owner = self._owners.get(entry.client_id)
            if owner is not None and owner is not peer:
                continue  # nobody speaks for another connection's client
            current = self.awareness.get(entry.client_id)
            if current is not None and entry.clock < current.clock:
                continue
            if entry.state is None:
                self.awareness.pop(entry.client_id, None)
                self._owners.pop(entry.client_id, None)
                peer.client_ids.discard(entry.client_id)
                out.append(entry)
                continue
            state = dict(entry.state)
            state["user"] = dict(peer.user)  # the real user, whatever the client claimed
            fixed = P.AwarenessEntry(entry.client_id, entry.clock, state)
            self.awareness[entry.client_id] = fixed
            self._owners[entry.client_id] = peer
            peer.client_ids.add(entry.client_id)
            out.append(fixed)
        if out:
            self._broadcast(P.encode_awareness(out))

    def _broadcast(self, message: bytes, *, exclude: Peer | None = None) -> None:
        for peer in list(self.peers):
            if peer is not exclude:
                peer.send(message)

    # -- end ----------------------------------------------------------------------------
    def _drop_shadow(self) -> None:
        if self._shadow is not None:
            self._shadow.close()
            self._shadow = None

    def fail(self, reason: str) -> None:
        """Close every connection: clients reconnect and resync from the store."""
        self.broken = reason
        self._drop_shadow()
        while not self._inbox.empty():
            peer_or_none, item = self._inbox.get_nowait()
            if peer_or_none is None and not item[1].done():
                item[1].set_exception(RuntimeError(reason))
        for peer in list(self.peers):
            self._drop_pending(peer)
            peer.close(1011, reason)
        self.peers.clear()
        self._idle.set()
        self._has_room.set()  # no sender waits on a room that is gone

    async def close(self, code: int = 1001, reason: str = "the room closed") -> None:
        self.closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for done in list(self._edits):  # queued or cut short: the caller opens it again
            if not done.done():
                done.set_exception(RoomClosed(f"the room of {self.document_id} closed"))
        self._idle.set()
        with contextlib.suppress(Exception):
            self.doc.unobserve(self._subscription)
        self._drop_shadow()
        for peer in list(self.peers):
            self._drop_pending(peer)
            peer.close(code, reason)
        self.peers.clear()
        self._has_room.set()
