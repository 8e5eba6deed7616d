"""The structural JSON diff (no database needed)."""

from __future__ import annotations

import pytest

from jupyter_workbench.core.json_diff import json_diff


@pytest.mark.parametrize(
    "old, new, changes",
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 2}, [{"op": "replace", "path": "/a", "old": 1, "new": 2}]),
        ({}, {"a": [1]}, [{"op": "add", "path": "/a", "new": [1]}]),
        ({"a": None}, {}, [{"op": "remove", "path": "/a", "old": None}]),
        (
            {"a": {"b": {"c": 1, "d": 2}}},
            {"a": {"b": {"c": 1, "d": 3}}},
            [{"op": "replace", "path": "/a/b/d", "old": 2, "new": 3}],
        ),
        (
            [1, 2, 3],
            [1, 5],
            [
                {"op": "replace", "path": "/1", "old": 2, "new": 5},
                {"op": "remove", "path": "/2", "old": 3},
            ],
        ),
        ([], [{"x": 1}], [{"op": "add", "path": "/0", "new": {"x": 1}}]),
        (
            {"a/b": 1, "m~n": 1},
            {"a/b": 2, "m~n": 2},
            [
                {"op": "replace", "path": "/a~1b", "old": 1, "new": 2},
                {"op": "replace", "path": "/m~0n", "old": 1, "new": 2},
            ],
        ),
        (
            {"a": [1]},
            {"a": {"0": 1}},
            [{"op": "replace", "path": "/a", "old": [1], "new": {"0": 1}}],
        ),
        (1, 2, [{"op": "replace", "path": "/", "old": 1, "new": 2}]),
        (None, {}, [{"op": "replace", "path": "/", "old": None, "new": {}}]),
        (None, None, []),
    ],
)
def test_json_diff(old, new, changes):
    assert json_diff(old, new) == changes


@pytest.mark.parametrize("old, new", [(1, True), (0, False), (1, 1.0), ("1", 1)])
def test_values_of_different_json_types_differ(old, new):
    assert json_diff({"v": old}, {"v": new}) == [
        {"op": "replace", "path": "/v", "old": old, "new": new}
    ]


def test_changes_are_sorted_by_key():
    diff = json_diff({"b": 1, "a": 1, "c": 1}, {"c": 2, "a": 2, "d": 1})
    assert [c["path"] for c in diff] == ["/a", "/b", "/c", "/d"]


def test_diff_then_reverse_diff_mirror_each_other():
    a = {"x": [1, {"y": 2}], "z": "s"}
    b = {"x": [1, {"y": 3}, 4], "w": True}
    forward = json_diff(a, b)
    backward = json_diff(b, a)
    flip = {"add": "remove", "remove": "add", "replace": "replace"}
    assert len(forward) == len(backward)
    for f in forward:
        mirrored = {
            "op": flip[f["op"]],
            "path": f["path"],
            **({"old": f["new"]} if "new" in f else {}),
            **({"new": f["old"]} if "old" in f else {}),
        }
        assert mirrored in backward
