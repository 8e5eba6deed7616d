"""The ``q`` filter of the lists: text anywhere in some columns, in any case."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ..db.database import SQLITE_LOWER
from .errors import BadRequest


class folded(FunctionElement[str]):
    """A text in lower case, every letter folded (SQLite's own ``lower()`` folds ASCII only)."""

    type = String()
    inherit_cache = True


@compiles(folded)
def _lower(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "sqlite")
def _sqlite_lower(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


MAX_Q = 200  # characters of a search text


def holds_text(q: str, *columns: Any) -> ColumnElement[bool]:
    """Rows where one of ``columns`` holds ``q`` in any case; ``%`` and ``_`` are plain
    characters. A ``q`` longer than ``MAX_Q`` is a ``BadRequest``."""
    if len(q) > MAX_Q:
        raise BadRequest(f"q: at most {MAX_Q} characters", code="invalid_parameter")
    needle = q.lower()
    return or_(*(folded(column).contains(needle, autoescape=True) for column in columns))
