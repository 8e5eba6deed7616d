"""Where documents live: their Yjs updates in the workbench database (SQLite or PostgreSQL).

An update is committed before the room broadcasts it, so what any collaborator has seen survives
a crash. Compaction replaces a document's rows with one row holding the document's encoded
state, so storage stays within the size of the document however busy it is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from pycrdt import Doc, Text
from sqlalchemy import delete, func, insert, select

from ..db.database import Database
from ..db.models import DocumentUpdate, utcnow

CHECKPOINT_EVERY = 1000  # updates stored on the loop between two WAL checkpoints

CONTENT = "content"  # the shared Y.Text of every workbench document (ydoc.getText('content'))


def new_doc() -> Doc:
    doc: Doc = Doc()
    doc[CONTENT] = Text()
    return doc


def text_of(doc: Doc) -> str:
    return str(doc.get(CONTENT, type=Text))


def doc_from_updates(updates: Iterable[bytes]) -> Doc:
    doc = new_doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def initial_update(text: str) -> bytes:
    """The update that makes an empty document hold ``text`` (a seeded card or README)."""
    doc = new_doc()
    doc.get(CONTENT, type=Text).insert(0, text)
    return doc.get_update()


@dataclass(frozen=True)
class Compaction:
    rows_before: int
    bytes_before: int
    bytes_after: int


class DocumentStore:
    """Blocking store calls (rooms run them on a worker thread)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        placeholders = ", ".join([db.param] * 4)
        self._append_sql = (
            f"INSERT INTO {DocumentUpdate.__tablename__} (document_id, data, merged, created_at) "
            f"VALUES ({placeholders})"
        )
        # the column's own conversion (SQLite keeps naive UTC text), as a session would bind it
        self._bind_time = DocumentUpdate.created_at.type.bind_processor(db.engine.dialect) or (
            lambda value: value
        )
        path = db.url.database if db.is_sqlite else None
        self._loop_path = path if path and path != ":memory:" else None
        self._loop_conn: sqlite3.Connection | None = None
        self._since_checkpoint = 0

    # -- storing on the event loop (SQLite) ------------------------------------------------
    def append_now(self, document_id: str, updates: list[bytes]) -> bool:
        """Commit ``updates`` on the calling thread when that cannot wait, as ``append`` does;
        False when it could not, and the caller must use ``append`` on a worker thread.

        Only on an SQLite file: a connection of the loop's own that never waits for the write
        lock (another writer holds it: False) and leaves WAL checkpoints to the pool's
        connections and ``checkpoint`` (its commits then never write the database file):
        ~20 us instead of a round trip through a worker thread for every keystroke."""
        if not updates:
            return True
        connection = self._loop_connection()
        if connection is None:
            return False
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # busy: someone else is writing
            return False
        try:
            now = self._bind_time(utcnow())
            connection.executemany(self._append_sql, [(document_id, u, 1, now) for u in updates])
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        self._since_checkpoint += len(updates)
        return True

    def needs_checkpoint(self) -> bool:
        """True once ``append_now`` has committed enough to checkpoint the WAL (on a worker)."""
        return self._since_checkpoint >= CHECKPOINT_EVERY

    def checkpoint(self) -> None:
        """Copy the WAL into the database file as far as no reader needs it (blocking)."""
        self._since_checkpoint = 0
        with self.db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _loop_connection(self) -> sqlite3.Connection | None:
        if self._loop_conn is None and self._loop_path is not None:
            connection = sqlite3.connect(self._loop_path, isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                           "busy_timeout=0", "wal_autocheckpoint=0"):  # fmt: skip
                connection.execute(f"PRAGMA {pragma}")
            self._loop_conn = connection
        return self._loop_conn

    def close(self) -> None:
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None

    # -- blocking calls ----------------------------------------------------------------------
    def load(self, document_id: str) -> list[bytes]:
        with self.db.transaction() as s:
            rows = s.scalars(
                select(DocumentUpdate.data)
                .where(DocumentUpdate.document_id == document_id)
                .order_by(DocumentUpdate.id)
            )
            return list(rows)

    def append(self, document_id: str, updates: list[bytes]) -> None:
        """Commit ``updates`` (one transaction); returns once they are durable."""
        if not updates:
            return
        now = self._bind_time(utcnow())
        with self.db.raw_write() as cursor:  # on every keystroke: no session
            cursor.executemany(self._append_sql, [(document_id, u, 1, now) for u in updates])

    def usage(self, document_id: str) -> tuple[int, int]:
        """(rows, bytes) a document takes in the store."""
        with self.db.transaction() as s:
            rows, size = s.execute(
                select(
                    func.count(), func.coalesce(func.sum(func.length(DocumentUpdate.data)), 0)
                ).where(DocumentUpdate.document_id == document_id)
            ).one()
            return int(rows), int(size)

    def compact(self, document_id: str) -> Compaction:
        """Merge every stored update of the document into one row (rows written meanwhile stay)."""
        with self.db.transaction(write=True) as s:
            rows = s.execute(
                select(DocumentUpdate.id, DocumentUpdate.data, DocumentUpdate.merged)
                .where(DocumentUpdate.document_id == document_id)
                .order_by(DocumentUpdate.id)
            ).all()
            before = sum(len(r.data) for r in rows)
            if len(rows) <= 1:
                return Compaction(len(rows), before, before)
            merged = doc_from_updates(r.data for r in rows).get_update()
            # exactly the rows merged: one committed meanwhile with a lower id stays
            ids = [r.id for r in rows]
            for i in range(0, len(ids), 1000):
                s.execute(delete(DocumentUpdate).where(DocumentUpdate.id.in_(ids[i : i + 1000])))
            s.execute(
                insert(DocumentUpdate),
                [{"document_id": document_id, "data": merged,
                  "merged": sum(r.merged for r in rows)}],
            )  # fmt: skip
            return Compaction(len(rows), before, len(merged))
