"""Transaction-scoped named locks, for check-then-insert sequences under concurrency."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def lock_name(s: Session, name: str) -> None:
    """Hold a lock on ``name`` until the transaction ends.

    PostgreSQL: an advisory transaction lock. SQLite: nothing to do, because every write
    transaction already holds the database's write lock from its start (BEGIN IMMEDIATE).
    """
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name})
