"""The y-protocols wire format (sync, awareness, auth) that y-websocket and pycrdt speak.

Every message is ``varUint(type)`` then its payload: ``SYNC`` (0) carries ``varUint(step)`` and a
length-prefixed state vector or update; ``AWARENESS`` (1) a length-prefixed awareness update
(``varUint(count)`` then ``clientID, clock, varString(JSON state)`` per client); ``AUTH`` (2) is
``varUint(0)`` then a reason -- y-websocket reports it as "permission denied" -- or ``varUint(1)``
then a reason, "you may write now" (ours: y-protocols reads no other kind and a stock client
ignores it); ``QUERY_AWARENESS`` (3) asks for every awareness state.

Messages are read strictly, as lib0 does: a number longer than 53 bits, or a length running
past the end of the message, is a ProtocolError (pycrdt's ``Decoder`` would decode an endless
number in quadratic time and hand back a short slice for a length past the end).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pycrdt import write_message, write_var_uint

from ..core import json_input
from ..core.errors import BadRequest

SYNC = 0
AWARENESS = 1
AUTH = 2
QUERY_AWARENESS = 3

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

EMPTY_UPDATE = b"\x00\x00"

# an awareness state is a name, a colour and cursors: what is bigger is not one, and the room
# would keep it and send it to every newcomer
MAX_AWARENESS_STATE_BYTES = 64 * 1024


class ProtocolError(ValueError):
    """A message that does not follow y-protocols."""


@dataclass(frozen=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: dict[str, Any] | None  # None: the client left


def sync_step1(state_vector: bytes) -> bytes:
    return bytes([SYNC, SYNC_STEP1]) + write_message(state_vector)


def sync_step2(update: bytes) -> bytes:
    return bytes([SYNC, SYNC_STEP2]) + write_message(update)


def sync_update(update: bytes) -> bytes:
    return bytes([SYNC, SYNC_UPDATE]) + write_message(update)


def _var_string(text: str) -> bytes:
    # lib0 counts UTF-8 bytes (pycrdt's Encoder.write_var_string counts characters)
    return write_message(text.encode())


PERMISSION_DENIED = 0
PERMISSION_GRANTED = 1


def permission_denied(reason: str) -> bytes:
    return write_var_uint(AUTH) + write_var_uint(PERMISSION_DENIED) + _var_string(reason)


def permission_granted(reason: str) -> bytes:
    return write_var_uint(AUTH) + write_var_uint(PERMISSION_GRANTED) + _var_string(reason)


class Reader:
    """Reads lib0-encoded numbers and length-prefixed bytes, refusing what lib0 would."""

    MAX_SHIFT = 53  # lib0 refuses integers past Number.MAX_SAFE_INTEGER

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def var_uint(self) -> int:
        value, shift = 0, 0
        while self.pos < len(self.data):
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > self.MAX_SHIFT:
                raise ProtocolError(f"a number longer than {self.MAX_SHIFT} bits")
        raise ProtocolError("truncated message: it ends inside a number")

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        if length > self.left:
            raise ProtocolError(f"truncated message: {length} bytes announced, {self.left} left")
        start, self.pos = self.pos, self.pos + length
        return self.data[start : self.pos]


def parse(message: bytes) -> tuple[int, int | None, bytes]:
    """``(type, sync step or None, payload)`` of one message; ProtocolError if malformed."""
    reader = Reader(message)
    kind = reader.var_uint()
    if kind == SYNC:
        step = reader.var_uint()
        if step not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE) or not reader.left:
            raise ProtocolError(f"bad sync message (step {step})")
        return kind, step, reader.var_bytes()
    if kind == AWARENESS:
        if not reader.left:
            raise ProtocolError("awareness message without payload")
        return kind, None, reader.var_bytes()
    if kind in (AUTH, QUERY_AWARENESS):
        return kind, None, b""
    raise ProtocolError(f"unknown message type {kind}")


def decode_awareness(payload: bytes) -> list[AwarenessEntry]:
    try:
        reader = Reader(payload)
        entries = []
        for _ in range(reader.var_uint()):
            client_id = reader.var_uint()
            clock = reader.var_uint()
            data = reader.var_bytes()
            if len(data) > MAX_AWARENESS_STATE_BYTES:
                raise ProtocolError(f"an awareness state of {len(data)} bytes "
                                    f"(at most {MAX_AWARENESS_STATE_BYTES})")  # fmt: skip
            raw = data.decode("utf-8")
            # strictly: what is passed on must parse in every other client's JSON.parse
            state = json_input.parse(raw, where="awareness state") if raw else None
            if state is not None and not isinstance(state, dict):
                raise ProtocolError("an awareness state must be a JSON object or null")
            entries.append(AwarenessEntry(client_id, clock, state))
        return entries
    except (ProtocolError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad awareness update: {exc}") from None
    except BadRequest as exc:
        raise ProtocolError(f"bad awareness update: {exc.message}") from None


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    """A whole AWARENESS message (type byte included) for ``entries``."""
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        parts.append(write_var_uint(entry.client_id))
        parts.append(write_var_uint(entry.clock))
        parts.append(_var_string(json.dumps(entry.state, separators=(",", ":"))))
    return write_var_uint(AWARENESS) + write_message(b"".join(parts))
