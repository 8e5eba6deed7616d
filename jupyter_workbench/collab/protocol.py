"""The y-protocols wire format (sync, awareness, auth) that y-websocket and pycrdt speak.

Every message is ``varUint(type)`` then its payload: ``SYNC`` (0) carries ``varUint(step)`` and a
length-prefixed state vector or update; ``AWARENESS`` (1) a length-prefixed awareness update
(``varUint(count)`` then ``clientID, clock, varString(JSON state)`` per client); ``AUTH`` (2) is
``varUint(0)`` then a reason -- y-websocket reports it as "permission denied"; ``QUERY_AWARENESS``
(3) asks for every awareness state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pycrdt import Decoder, write_message, write_var_uint

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


def permission_denied(reason: str) -> bytes:
    return write_var_uint(AUTH) + write_var_uint(0) + _var_string(reason)


def parse(message: bytes) -> tuple[int, int | None, bytes]:
    """``(type, sync step or None, payload)`` of one message; ProtocolError if malformed."""
    try:
        decoder = Decoder(message)
        kind = decoder.read_var_uint()
        if kind == SYNC:
            step = decoder.read_var_uint()
            payload = decoder.read_message()
            if step not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE) or payload is None:
                raise ProtocolError(f"bad sync message (step {step})")
            return kind, step, payload
        if kind == AWARENESS:
            payload = decoder.read_message()
            if payload is None:
                raise ProtocolError("awareness message without payload")
            return kind, None, payload
        if kind in (AUTH, QUERY_AWARENESS):
            return kind, None, b""
    except (IndexError, RuntimeError) as exc:
        raise ProtocolError(f"truncated message: {exc}") from None
    raise ProtocolError(f"unknown message type {kind}")


def decode_awareness(payload: bytes) -> list[AwarenessEntry]:
    try:
        decoder = Decoder(payload)
        entries = []
        for _ in range(decoder.read_var_uint()):
            client_id = decoder.read_var_uint()
            clock = decoder.read_var_uint()
            raw = decoder.read_var_string()
            # strictly: what is passed on must parse in every other client's JSON.parse
            state = json_input.parse(raw, where="awareness state") if raw else None
            if state is not None and not isinstance(state, dict):
                raise ProtocolError("an awareness state must be a JSON object or null")
            entries.append(AwarenessEntry(client_id, clock, state))
        return entries
    except (IndexError, RuntimeError, UnicodeDecodeError) as exc:
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
