"""Reading JSON that callers send: what the databases can store, or a clear error.

Python's ``json`` accepts more than JSON (``NaN``, ``Infinity``), more than text can hold (a lone
UTF-16 surrogate such as ``"\\ud800"``: it cannot be written as UTF-8) and more than PostgreSQL
stores (``"\\u0000"``); nesting past the interpreter's stack raises ``RecursionError``. Each of
these would fail later, half-way through a write, as an internal error. ``parse`` refuses them at
the door with a message naming what is wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import BadRequest

MAX_DEPTH = 64  # arrays and objects inside each other; no API body nests half as deep
# the escapes a walk must look at: a surrogate (lone or paired) or NUL
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")
_INF = float("inf")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789E", b"000000000e")
_BIG_EXPONENT = re.compile(rb"e\+?000")  # starts with a literal: scans at C speed
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels of arrays and objects"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (_INF, -_INF):
        shown = text if len(text) <= 24 else f"{text[:20]}..."
        raise ValueError(f"{shown} is too large for a number")
    return value


def _problem(text: str) -> str | None:
    found = _BAD_CHAR.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain the NUL character (\\u0000)"
    return "must not contain a lone UTF-16 surrogate (such as \\ud800): it is not Unicode text"


def _fault(value: Any) -> tuple[tuple[Any, ...], str] | None:
    """The first thing wrong in ``value``, and the path to it."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict | list) and len(path) >= MAX_DEPTH:
            return path, _TOO_DEEP
        if isinstance(item, dict):
            for key, inner in item.items():
                if problem := _problem(key):
                    return path, f"a key {problem}"
                stack.append((inner, (*path, key)))
        elif isinstance(item, list):
            stack.extend((inner, (*path, index)) for index, inner in enumerate(item))
        elif isinstance(item, str):
            if problem := _problem(item):
                return path, problem
        elif isinstance(item, float) and (item != item or item in (_INF, -_INF)):
            return path, f"{item} is not a JSON number"
    return None


def check_value(value: Any, *, where: str = "body") -> None:
    """Raise ``BadRequest`` naming the field when ``value`` (decoded JSON) nests deeper than
    ``MAX_DEPTH``, holds a float that is not a number, or text no database can store."""
    found = _fault(value)
    if found is None:
        return
    path, problem = found
    field = ".".join(map(str, path)) if path and problem != _TOO_DEEP else where
    raise BadRequest(f"{field}: {problem}", code="invalid_json")


def _past_max_depth(brackets: bytes) -> bool:
    for _ in range(MAX_DEPTH):  # one level of innermost pairs goes per pass
        if not brackets:
            return False
        brackets = _INNERMOST.sub(b"", brackets)
    return bool(brackets)


def _nests_too_deep(raw: bytes) -> bool:
    """Whether the document nests past ``MAX_DEPTH``, read from its brackets alone (before
    ``json.loads``, whose recursion such a document would exhaust). Brackets inside strings
    are counted at first; only a document that then looks too deep is read without them."""
    if not _past_max_depth(raw.translate(None, _NOT_BRACKETS)):
        return False
    return _past_max_depth(_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS))


def _may_overflow(raw: bytes) -> bool:
    """Whether a number may be past a float's range (1.8e308): a three-digit exponent or a
    run of 300 digits; strings that look alike only cost a second, careful read."""
    zeros = raw.translate(_DIGITS_AS_ZERO)  # and 'E' as 'e'
    return b"0" * 300 in zeros or _BIG_EXPONENT.search(zeros) is not None


def parse(raw: bytes | str, *, where: str = "body") -> Any:
    """Decode a JSON document strictly; ``BadRequest`` (code ``invalid_json``) names the fault.

    Ordinary documents cost what ``json.loads`` costs plus a few scans in C: only a document
    the scans flag (deep brackets, a surrogate or NUL escape, a number that may overflow) is
    looked at more closely."""
    data_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data_bytes.count(b"[") + data_bytes.count(b"{") > MAX_DEPTH and _nests_too_deep(data_bytes):
        raise BadRequest(f"{where}: {_TOO_DEEP}", code="invalid_json")
    try:
        data = json.loads(raw, parse_constant=_no_constants)
        if _may_overflow(data_bytes):  # read again to name the float that overflows
            data = json.loads(raw, parse_constant=_no_constants, parse_float=_finite)
    except RecursionError:  # pragma: no cover - the brackets were counted first
        raise BadRequest(f"{where}: {_TOO_DEEP}", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"{where}: not valid JSON ({exc})", code="invalid_json") from None
    suspect = _SUSPECT_ESCAPE.search(data_bytes) is not None or (
        isinstance(raw, str) and _BAD_CHAR.search(raw) is not None
    )
    if suspect:
        check_value(data, where=where)
    return data
