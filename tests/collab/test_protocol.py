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
