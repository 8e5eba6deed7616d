"""The ``q`` filter of the lists: text anywhere in some columns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_


def holds_text(q: str, *columns: Any) -> ColumnElement[bool]:
    """Rows where one of ``columns`` holds ``q`` in any case. ``%`` and ``_`` are plain
    characters. SQLite's ``lower()`` folds ASCII letters only: there, other letters match as
    typed (and in either case on PostgreSQL)."""
    needle = q.lower()
    clauses = [func.lower(column).contains(needle, autoescape=True) for column in columns]
    if needle != q:
        clauses += [column.contains(q, autoescape=True) for column in columns]
    return or_(*clauses)
