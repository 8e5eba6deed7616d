"""Keyset (cursor) pagination: pages stay stable while rows are inserted concurrently."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from .context import Ctx
from .errors import BadRequest
from .text_search import folded

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass
class SortSpec:
    """The sort keys a list accepts (``name`` or ``-name``), each broken by ``id_column``."""

    columns: dict[str, InstrumentedAttribute[Any]]
    id_column: InstrumentedAttribute[Any]
    default: str
    # keys of names people type: ordered in any case ("lab" beside "Lab", before "Quickstart")
    any_case: frozenset[str] = frozenset()
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = [n for key in self.columns for n in (key, f"-{key}")]

    def parse(self, sort: str | None) -> tuple[str, bool]:
        sort = sort or self.default
        key = sort.removeprefix("-")
        if key not in self.columns:
            raise BadRequest(
                f"sort: '{sort}' is not one of {', '.join(self.names)}", code="invalid_parameter"
            )
        return key, sort.startswith("-")


def _encode(sort: str, value: Any, row_id: Any) -> str:
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    raw = json.dumps([sort, value, row_id], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_NOT_OURS = "cursor: not a cursor this API returned"
# the longest cursor a list accepts: a sort value of up to 1,024 characters (a dataset path)
# of up to 3 bytes each in UTF-8, base64-encoded; small enough that the URL stays within
# tornado's 64 KiB header limit even when a client percent-encodes 4-byte characters
CURSOR_MAX = 4_500


def _decode(cursor: str, sort: str, value_type: type, id_type: type) -> tuple[Any, Any]:
    """The (sort value, row id) a cursor holds; anything this API did not issue is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, value, row_id = json.loads(raw)
    except (ValueError, binascii.Error, TypeError):
        raise BadRequest(_NOT_OURS, code="invalid_parameter") from None
    if made_for != sort:
        raise BadRequest(
            f"cursor: it was made for sort '{made_for}', not '{sort}'", code="invalid_parameter"
        )
    if type(row_id) is not id_type or (isinstance(row_id, int) and not -(2**63) <= row_id < 2**63):
        raise BadRequest(_NOT_OURS, code="invalid_parameter")
    if value_type is datetime:
        try:
            value = datetime.fromisoformat(value["t"])
            if value.tzinfo is None:
                raise ValueError("a naive time")
            value = value.astimezone(UTC)  # OverflowError past the years 1-9999 in UTC
        except (TypeError, KeyError, ValueError, OverflowError):
            raise BadRequest(_NOT_OURS, code="invalid_parameter") from None
    elif not isinstance(value, value_type) or isinstance(value, bool):
        raise BadRequest(_NOT_OURS, code="invalid_parameter")
    return value, row_id


def page_limit(ctx: Ctx, limit: int | None) -> int:
    if limit is None:
        return ctx.policy.page_size
    if limit < 1 or limit > ctx.policy.max_page_size:
        raise BadRequest(
            f"limit: must be between 1 and {ctx.policy.max_page_size} (got {limit})",
            code="invalid_parameter",
        )
    return limit


def paginate(
    s: Session,
    stmt: Select[Any],
    spec: SortSpec,
    ctx: Ctx,
    *,
    sort: str | None,
    limit: int | None,
    cursor: str | None,
) -> Page[Any]:
    """One page of ``stmt`` (a select of one ORM entity) in the requested order."""
    key, descending = spec.parse(sort)
    sort_name = f"-{key}" if descending else key
    size = page_limit(ctx, limit)
    column, id_column = spec.columns[key], spec.id_column
    same = column is id_column
    # the cursor keeps the row's own value: the database folds both sides alike
    fold: Any = folded if key in spec.any_case else (lambda x: x)
    if cursor:
        value, row_id = _decode(
            cursor, sort_name, column.type.python_type, id_column.type.python_type
        )
        if same:
            stmt = stmt.where(id_column < row_id if descending else id_column > row_id)
        else:
            after = tuple_(fold(literal(value, column.type)), literal(row_id, id_column.type))
            keys = tuple_(fold(column), id_column)
            stmt = stmt.where(keys < after if descending else keys > after)
    if same:
        order = [id_column.desc() if descending else id_column.asc()]
    elif descending:
        order = [fold(column).desc(), id_column.desc()]
    else:
        order = [fold(column).asc(), id_column.asc()]
    rows = list(s.scalars(stmt.order_by(*order).limit(size + 1)))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = _encode(sort_name, getattr(last, column.key), getattr(last, id_column.key))
    return Page(rows, next_cursor)
