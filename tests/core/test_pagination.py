"""Keyset pagination: complete, stable under concurrent inserts, strict about its input."""

from __future__ import annotations

import base64
import json

import pytest

from jupyter_workbench.core import audit, members, projects
from jupyter_workbench.core.errors import BadRequest

NAMES = [f"p{i:02d}" for i in range(1, 11)]  # p01 .. p10


def make_many(call, names, owner="alice"):
    call(owner, lambda s, ctx: [projects.create(s, ctx, name=n) for n in names])


def page(call, user="alice", **kw):
    def fn(s, ctx):
        result = projects.list_projects(s, ctx, **kw)
        return [p.name for p, _ in result.items], result.next_cursor

    return call(user, fn)


def walk(call, **kw):
    """Every item, following next_cursor to the end; returns the names and the page count."""
    names, cursor, pages = [], None, 0
    while True:
        items, cursor = page(call, cursor=cursor, **kw)
        names += items
        pages += 1
        if cursor is None:
            return names, pages


def forge(payload):
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_pages_cover_every_item_exactly_once_in_order(call):
    make_many(call, NAMES)
    for sort, expected in [
        ("name", NAMES),
        ("-name", NAMES[::-1]),
        ("created", NAMES),
        ("-created", NAMES[::-1]),
        ("updated", NAMES),
    ]:
        names, pages = walk(call, sort=sort, limit=3)
        assert names == expected, sort
        assert pages == 4  # 3 + 3 + 3 + 1
    # a last page that is exactly full has no next cursor
    items, cursor = page(call, limit=5)
    items, cursor = page(call, limit=5, cursor=cursor)
    assert items == NAMES[5:] and cursor is None


def test_names_are_ordered_in_any_case_page_after_page(call):
    """As people read them: "lab" and "Lab" side by side, before "Quickstart"; a page
    boundary inside a run of names equal in any case holds."""
    make_many(call, ["Quickstart", "lab", "Beta", "Lab", "alpha", "LAB", "zeta", "Alpha2"])
    expected = ["alpha", "Alpha2", "Beta", "lab", "Lab", "LAB", "Quickstart", "zeta"]
    for limit in (1, 2, 3, 8):
        names, _ = walk(call, sort="name", limit=limit)
        assert names == expected, limit
        names, _ = walk(call, sort="-name", limit=limit)
        assert names == expected[::-1], limit


def test_ties_in_the_sort_key_are_broken_by_id(call):
    make_many(call, ["same"] * 7)
    names, pages = walk(call, sort="name", limit=2)
    assert names == ["same"] * 7 and pages == 4
    slugs = []
    cursor = None
    while True:
        result = call(
            "alice",
            lambda s, ctx, c=cursor: projects.list_projects(s, ctx, limit=2, cursor=c),
        )
        slugs += [p.slug for p, _ in result.items]
        cursor = result.next_cursor
        if cursor is None:
            break
    assert sorted(slugs) == sorted(set(slugs)) and len(slugs) == 7


def test_pages_are_stable_under_concurrent_inserts(call):
    make_many(call, NAMES)
    first, cursor = page(call, sort="name", limit=3)
    assert first == ["p01", "p02", "p03"]
    # someone inserts rows before the cursor position and after it
    make_many(call, ["p00", "p025", "p075"], owner="alice")
    rest = []
    while cursor:
        items, cursor = page(call, sort="name", limit=3, cursor=cursor)
        rest += items
    seen = first + rest
    assert len(seen) == len(set(seen))  # no duplicates
    assert set(NAMES) <= set(seen)  # nothing skipped
    assert "p00" not in seen and "p025" not in seen  # rows before the cursor stay behind it
    assert "p075" in seen  # rows after it show up


def test_newest_first_pages_do_not_repeat_after_new_rows(call):
    make_many(call, NAMES)
    first, cursor = page(call, sort="-created", limit=4)
    make_many(call, ["new1", "new2"])
    rest = []
    while cursor:
        items, cursor = page(call, sort="-created", limit=4, cursor=cursor)
        rest += items
    assert first + rest == NAMES[::-1]


def test_datetime_cursors_work_for_member_lists(make_project, add_member, call):
    slug = make_project("alice", "P")
    for user in ("bob", "carol", "dave", "erin"):
        add_member(slug, user, "viewer")

    def keys(s, ctx, cursor):
        result = members.list_members(s, ctx, slug, sort="-added", limit=2, cursor=cursor)
        return [members.member_key(m) for m in result.items], result.next_cursor

    seen, cursor = [], None
    while True:
        items, cursor = call("alice", lambda s, ctx, c=cursor: keys(s, ctx, c))
        seen += items
        if cursor is None:
            break
    assert seen == ["erin", "dave", "carol", "bob", "alice"]


def test_default_and_maximum_page_sizes(call):
    make_many(call, [f"n{i:03d}" for i in range(51)])
    items, cursor = page(call)  # Policy.page_size = 50
    assert len(items) == 50 and cursor is not None
    items, cursor = page(call, limit=500)
    assert len(items) == 51 and cursor is None


def test_bad_paging_input_is_a_bad_request(call):
    make_many(call, NAMES[:3])
    for limit in (0, -1, 501):
        with pytest.raises(BadRequest, match=rf"^limit: must be between 1 and 500 \(got {limit}\)"):
            page(call, limit=limit)
    with pytest.raises(BadRequest, match=r"^sort: 'size' is not one of name, -name, created"):
        page(call, sort="size")
    with pytest.raises(BadRequest, match=r"^sort: "):
        page(call, sort="--name")
    # a cursor only works for the sort it was made for
    _, cursor = page(call, sort="name", limit=1)
    with pytest.raises(BadRequest, match=r"^cursor: it was made for sort 'name', not '-name'"):
        page(call, sort="-name", cursor=cursor)
    with pytest.raises(BadRequest, match=r"^cursor: "):
        page(call, sort="created", cursor=cursor)
    garbage = ["abc", "%%%", "not a cursor", forge([1, 2]), forge({"sort": "name"}), forge(7)]
    for bad in [*garbage, forge("xyz")]:
        with pytest.raises(BadRequest, match=r"^cursor: "):
            page(call, cursor=bad)


def test_forged_cursor_values_are_a_bad_request(call):
    make_many(call, NAMES[:2])
    for payload in [
        ["created", {"t": "yesterday"}, 1],
        ["created", {"t": "2024-01-01T00:00:00"}, 1],  # a naive time
        ["created", {"t": "0001-01-01T00:00:00+14:00"}, 1],  # the year 0 in UTC
        ["created", {"t": "9999-12-31T23:59:59-14:00"}, 1],  # the year 10000 in UTC
        ["name", {"a": 1}, 1],
    ]:
        with pytest.raises(BadRequest, match=r"^cursor: "):
            page(call, sort=payload[0], cursor=forge(payload))


def test_audit_pages_newest_first(call):
    make_many(call, NAMES[:5])

    def actions(s, ctx, cursor):
        result = audit.list_events(s, ctx, limit=2, cursor=cursor)
        return [e.object_id for e in result.items], result.next_cursor

    seen, cursor = [], None
    while True:
        items, cursor = call("alice", lambda s, ctx, c=cursor: actions(s, ctx, c))
        seen += items
        if cursor is None:
            break
    assert seen == [n for n in NAMES[:5]][::-1]
