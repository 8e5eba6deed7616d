"""A structural diff of two JSON values, as a list of changes addressed by JSON pointers."""

from __future__ import annotations

from typing import Any


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """``[{"op": "add"|"remove"|"replace", "path": "/a/0", "old"?: ..., "new"?: ...}]``.

    Objects are compared key by key and lists index by index; values of different types, and
    scalars that differ, are one ``replace``. ``True`` and ``1`` count as different.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[dict[str, Any]] = []
        for key in sorted(old.keys() | new.keys()):
            sub = f"{path}/{_escape(str(key))}"
            if key not in new:
                out.append({"op": "remove", "path": sub, "old": old[key]})
            elif key not in old:
                out.append({"op": "add", "path": sub, "new": new[key]})
            else:
                out.extend(json_diff(old[key], new[key], sub))
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            sub = f"{path}/{i}"
            if i >= len(new):
                out.append({"op": "remove", "path": sub, "old": old[i]})
            elif i >= len(old):
                out.append({"op": "add", "path": sub, "new": new[i]})
            else:
                out.extend(json_diff(old[i], new[i], sub))
        return out
    if type(old) is type(new) and old == new:
        return []
    return [{"op": "replace", "path": path or "/", "old": old, "new": new}]
