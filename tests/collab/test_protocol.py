"""The collaboration wire format: an awareness state another client could not parse is refused."""

from __future__ import annotations

import pytest
from pycrdt import write_var_uint

from jupyter_workbench.collab import protocol as P


def awareness_payload(raw_state: str, client_id: int = 7, clock: int = 1) -> bytes:
    """One awareness entry as ``parse`` hands it over: count, client id, clock, JSON text."""
    data = raw_state.encode("utf-8", "surrogatepass")
    entry = write_var_uint(client_id) + write_var_uint(clock) + write_var_uint(len(data)) + data
    return write_var_uint(1) + entry


def test_a_plain_awareness_state_round_trips():
    state = {"user": {"name": "alice", "color": "#f00"}, "cursor": {"index": 3.5}}
    message = P.encode_awareness([P.AwarenessEntry(7, 1, state)])
    entries = P.decode_awareness(P.parse(message)[2])
    assert [(e.client_id, e.clock, e.state) for e in entries] == [(7, 1, state)]
    assert P.decode_awareness(awareness_payload(""))[0].state is None  # a client leaving


@pytest.mark.parametrize(
    ("state", "needle"),
    [
        ('{"cursor": NaN}', "NaN is not a JSON number"),  # browsers' JSON.parse refuses it
        ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than 64"),
        ('{"name": "\\ud800"}', "lone UTF-16 surrogate"),
        ("[1, 2]", "must be a JSON object or null"),
    ],
)
def test_an_awareness_state_no_client_could_read_is_refused(state, needle):
    with pytest.raises(P.ProtocolError, match=needle):
        P.decode_awareness(awareness_payload(state))


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        # a number that never ends: lib0 stops past 53 bits; decoding it all would take
        # time quadratic in its length (a 1 MB one held the server's event loop for minutes)
        (bytes([P.SYNC, P.SYNC_STEP1]) + b"\xff" * 20_000 + b"\x01", "longer than 53 bits"),
        (b"\x80" * 20_000 + b"\x00", "longer than 53 bits"),
        # lengths past the end of the message
        (bytes([P.SYNC, P.SYNC_UPDATE, 5, 1, 2]), "5 bytes announced, 2 left"),
        (bytes([P.AWARENESS, 9]) + b"\x01", "9 bytes announced, 1 left"),
        (bytes([P.SYNC, P.SYNC_UPDATE, 0x85]), "ends inside a number"),
    ],
)
def test_overlong_numbers_and_lengths_past_the_end_are_refused(message, needle):
    with pytest.raises(P.ProtocolError, match=needle):
        P.parse(message)


def test_an_awareness_entry_running_past_the_end_is_refused():
    entry = awareness_payload('{"cursor": 1}')
    with pytest.raises(P.ProtocolError, match="announced"):
        P.decode_awareness(entry[:-3])
    with pytest.raises(P.ProtocolError, match="longer than 53 bits"):
        P.decode_awareness(write_var_uint(1) + b"\xff" * 100 + b"\x01")
