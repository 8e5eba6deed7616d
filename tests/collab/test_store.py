"""The co-editing store on both backends: an update is stored whole with its time, or not at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from jupyter_workbench.collab.store import DocumentStore, doc_from_updates, initial_update, text_of
from jupyter_workbench.core import documents, projects
from jupyter_workbench.db.models import DocumentUpdate
from jupyter_workbench.service import WorkbenchService


def test_appended_updates_are_stored_with_their_time_and_read_back(
    service: WorkbenchService, call: Any
) -> None:
    def make(s: Any, ctx: Any) -> str:
        slug = projects.create(s, ctx, name="Docs").slug
        return documents.open_document(s, ctx, slug, kind="notes", ref="plan")[0].id

    document_id = call("alice", make)
    store = DocumentStore(service.db)
    before = len(store.load(document_id))
    start = datetime.now(UTC) - timedelta(seconds=1)
    store.append(document_id, [initial_update("hello"), b"\x00\x00"])  # the second: empty update
    assert text_of(doc_from_updates(store.load(document_id))).endswith("hello")
    with service.db.transaction() as s:
        rows = s.scalars(
            select(DocumentUpdate)
            .where(DocumentUpdate.document_id == document_id)
            .order_by(DocumentUpdate.id)
        ).all()[before:]
    assert [r.merged for r in rows] == [1, 1] and rows[1].data == b"\x00\x00"
    for row in rows:  # timezone-aware UTC, as a session would have written it
        assert row.created_at.tzinfo is not None
        assert start <= row.created_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert store.usage(document_id)[0] == before + 2


def test_a_failed_append_stores_nothing_and_the_next_one_works(
    service: WorkbenchService, call: Any
) -> None:
    def make(s: Any, ctx: Any) -> str:
        slug = projects.create(s, ctx, name="Docs").slug
        return documents.open_document(s, ctx, slug, kind="notes", ref="plan")[0].id

    document_id = call("alice", make)
    store = DocumentStore(service.db)
    rows = store.usage(document_id)[0]
    with pytest.raises(Exception, match=r"(?i)foreign key|violates"):
        store.append("no-such-document", [initial_update("lost")])
    bad = [initial_update("a"), None]  # the second row cannot be stored: neither is
    with pytest.raises(Exception, match=r"(?i)null"):
        store.append(document_id, bad)  # type: ignore[list-item]
    assert store.usage(document_id)[0] == rows
    store.append(document_id, [initial_update("kept")])
    assert store.usage(document_id)[0] == rows + 1


def test_appending_on_the_loop_never_waits_for_the_write_lock(
    service: WorkbenchService, call: Any
) -> None:
    def make(s: Any, ctx: Any) -> str:
        slug = projects.create(s, ctx, name="Docs").slug
        return documents.open_document(s, ctx, slug, kind="notes", ref="plan")[0].id

    document_id = call("alice", make)
    store = DocumentStore(service.db)
    rows = store.usage(document_id)[0]
    try:
        if not service.db.is_sqlite:  # a network round trip: always on a worker thread
            assert store.append_now(document_id, [initial_update("x")]) is False
            return
        assert store.append_now(document_id, [initial_update("now")]) is True
        assert store.usage(document_id)[0] == rows + 1  # committed: other connections see it
        # another writer holds the lock: no wait, the caller goes through append instead
        with service.db.raw_write():
            assert store.append_now(document_id, [initial_update("later")]) is False
        assert store.usage(document_id)[0] == rows + 1
        assert not store.needs_checkpoint()
        for _ in range(1000):
            store.append_now(document_id, [b"\x00\x00"])
        assert store.needs_checkpoint()
        store.checkpoint()
        assert not store.needs_checkpoint()
        assert store.usage(document_id)[0] == rows + 1001
    finally:
        store.close()
