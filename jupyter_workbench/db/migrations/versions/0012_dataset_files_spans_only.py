"""dataset_files: the chunk list lives only in dataset_file_spans; dataset_files.chunks is
dropped and dataset_files.chunk_count (what listings show) added. Every file's spans are made
sure of first: a file whose spans are missing or do not hold its whole list gets them again.
The downgrade rebuilds dataset_files.chunks from the spans.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SPAN_CHUNKS = 1024  # as core.datasets.SPAN_CHUNKS when this migration was written
PAGE = 500  # files looked at a time
LIST_BUDGET = 200_000  # chunks of whole lists held at once (one bigger file is read alone)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Every change to dataset_files is a native ALTER TABLE (batch ``recreate="never"``; plain
# string defaults): on SQLite a batch copy of the table ends in a DROP TABLE of the old one,
# which, foreign keys being on, deletes every span through their ON DELETE CASCADE.

spans = sa.table(
    "dataset_file_spans",
    sa.column("file_id", BigId),
    sa.column("first_byte", sa.BigInteger),
    sa.column("nbytes", sa.BigInteger),
    sa.column("chunks", sa.JSON),
)


files = sa.table(
    "dataset_files",
    sa.column("id", BigId),
    sa.column("chunks", sa.JSON),
    sa.column("chunk_count", sa.Integer),
)


def _listed(value: Any) -> list[Any]:
    return (json.loads(value) if isinstance(value, str) else value) or []


def _span_rows(file_id: int, chunks: list[Any]) -> list[dict[str, Any]]:
    rows, position = [], 0
    for cut in range(0, len(chunks), SPAN_CHUNKS):
        part = [[d, int(n)] for d, n in chunks[cut : cut + SPAN_CHUNKS]]
        nbytes = sum(n for _, n in part)
        rows.append({"file_id": file_id, "first_byte": position, "nbytes": nbytes, "chunks": part})
        position += nbytes
    return rows


def _pages(conn: sa.Connection, stmt: sa.Select[Any], id_column: Any) -> Iterator[list[Any]]:
    """``stmt``'s rows (their first column: the file id), ``PAGE`` files at a time by id."""
    last = -1
    while True:
        page = list(conn.execute(stmt.where(id_column > last).order_by(id_column).limit(PAGE)))
        if not page:
            return
        yield page
        last = page[-1][0]


def _groups(rows: list[Any], count_of: Any) -> Iterator[list[Any]]:
    """``rows`` in groups of at most ``LIST_BUDGET`` chunks (a bigger one alone)."""
    group: list[Any] = []
    held = 0
    for row in rows:
        count = count_of(row)
        if group and held + count > LIST_BUDGET:
            yield group
            group, held = [], 0
        group.append(row)
        held += count
    if group:
        yield group


def upgrade() -> None:
    with op.batch_alter_table("dataset_files", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("chunk_count", sa.Integer(), server_default="0", nullable=False)
        )
    conn = op.get_bind()
    held = (
        sa.select(sa.func.coalesce(sa.func.sum(sa.func.json_array_length(spans.c.chunks)), 0))
        .where(spans.c.file_id == files.c.id)
        .scalar_subquery()
    )
    listed = sa.func.json_array_length(files.c.chunks)
    for page in _pages(conn, sa.select(files.c.id, listed, held), files.c.id):
        # a file whose spans do not hold as many chunks as its list gets its spans again
        # (0011 wrote them all; a file whose spans went missing or were cut short since is
        # written again from its list, the copy about to be dropped)
        redo = [(file_id, count) for file_id, count, in_spans in page if count != in_spans]
        for group in _groups(redo, lambda row: row[1]):
            ids = [file_id for file_id, _count in group]
            conn.execute(spans.delete().where(spans.c.file_id.in_(ids)))
            rows = []
            for file_id, chunks in conn.execute(
                sa.select(files.c.id, files.c.chunks).where(files.c.id.in_(ids))
            ):
                rows.extend(_span_rows(file_id, _listed(chunks)))
            if rows:
                conn.execute(spans.insert(), rows)
        conn.execute(
            files.update()
            .where(files.c.id.in_([row[0] for row in page]))
            .values(chunk_count=listed)
        )
    with op.batch_alter_table("dataset_files", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("chunks")


def downgrade() -> None:
    with op.batch_alter_table("dataset_files", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("chunks", sa.JSON(), server_default="[]", nullable=False))
    conn = op.get_bind()
    for page in _pages(conn, sa.select(files.c.id, files.c.chunk_count), files.c.id):
        for group in _groups([row for row in page if row[1]], lambda row: row[1]):
            lists: dict[int, list[Any]] = {file_id: [] for file_id, _count in group}
            for file_id, chunks in conn.execute(
                sa.select(spans.c.file_id, spans.c.chunks)
                .where(spans.c.file_id.in_(list(lists)))
                .order_by(spans.c.file_id, spans.c.first_byte)
            ):
                lists[file_id].extend([d, int(n)] for d, n in _listed(chunks))
            conn.execute(
                files.update()
                .where(files.c.id == sa.bindparam("file_id"))
                .values(chunks=sa.bindparam("chunk_list", type_=sa.JSON)),
                [{"file_id": i, "chunk_list": chunks} for i, chunks in lists.items()],
            )
    with op.batch_alter_table("dataset_files", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("chunk_count")
        if conn.dialect.name != "sqlite":  # as 0002 made it (SQLite cannot drop a default)
            batch_op.alter_column("chunks", server_default=None)
