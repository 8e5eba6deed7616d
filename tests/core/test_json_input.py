"""Strict JSON input: what no database can store is refused with the field named."""

from __future__ import annotations

import json

import pytest

from jupyter_workbench.core import json_input
from jupyter_workbench.core.errors import BadRequest


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"name": "bad\\u0000name"}', "name: must not contain the NUL character"),
        (b'{"a": [1, {"b": "\\ud800"}]}', "a.1.b: must not contain a lone UTF-16 surrogate"),
        (b'{"a": "\\udc00x"}', "a: must not contain a lone UTF-16 surrogate"),
        (b'{"\\u0000": 1}', "body: a key must not contain the NUL character"),
        (b'{"lr": NaN}', "body: not valid JSON (NaN is not a JSON number)"),
        (b'{"lr": -Infinity}', "body: not valid JSON (-Infinity is not a JSON number)"),
        (b'{"lr": 1e400}', "body: not valid JSON (1e400 is too large for a number)"),
        (b'{"lr": -2E+308}', "body: not valid JSON (-2E+308 is too large for a number)"),
        (b'{"lr": ' + b"9" * 400 + b".5}", "body: not valid JSON (99999999999999999999..."),
        (b"[" * 65 + b"]" * 65, "body: nested deeper than 64 levels"),
        (b"[" * 200_000 + b"]" * 200_000, "body: nested deeper than 64 levels"),
        (b'"\xff"', "body: not valid JSON ('utf-8' codec can't decode"),
        (b'{"a": 1', "body: not valid JSON (Expecting"),
    ],
)
def test_what_cannot_be_stored_is_refused_naming_the_field(raw, message):
    with pytest.raises(BadRequest) as err:
        json_input.parse(raw)
    assert err.value.message.startswith(message), err.value.message
    assert err.value.code == "invalid_json"
    assert err.value.status == 400


@pytest.mark.parametrize(
    "value",
    [
        {"emoji": "\U0001f600", "escaped": "\\u0000 is text here", "n": 1.5, "big": 10**30},
        [[[[{"deep": "but not too deep"}]]]] * 100,
        {"brackets in text are text": "[" * 100 + "{" * 100, "e+0001": "1e+999 as text"},
        {"small": 1e-400, "near the edge": 1.7e308, "digits": "9" * 400},
        {"metrics": [{"key": "loss", "value": 0.1 * i, "step": i} for i in range(1000)]},
        "",
    ],
)
def test_ordinary_json_is_read_as_it_was_sent(value):
    raw = json.dumps(value).encode()
    assert json_input.parse(raw) == value
    assert json_input.parse(json.dumps(value, ensure_ascii=False)) == value
    # a pair of surrogate escapes is one character, not two lone halves
    assert json_input.parse(b'"\\ud83d\\ude00"') == "\U0001f600"


def test_values_built_in_python_are_checked_alike():
    json_input.check_value({"a": [1.0, "ok"]})
    with pytest.raises(BadRequest, match=r"^a\.1: nan is not a JSON number"):
        json_input.check_value({"a": [1.0, float("nan")]})
    with pytest.raises(BadRequest, match=r"^metadata: nested deeper"):
        deep: list = []
        for _ in range(70):
            deep = [deep]
        json_input.check_value(deep, where="metadata")
