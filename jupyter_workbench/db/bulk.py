"""Bulk inserts that skip rows whose key already exists, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

BATCH = 1000


def insert_ignore(s: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, in batches."""
    if not rows:
        return
    dialect = s.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    for start in range(0, len(rows), BATCH):
        stmt = module.insert(table).on_conflict_do_nothing()
        s.execute(stmt, list(rows[start : start + BATCH]))


def insert_many(s: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Plain executemany INSERT, in batches (fast path for rows known to be new)."""
    for start in range(0, len(rows), BATCH):
        s.execute(table.insert(), list(rows[start : start + BATCH]))
