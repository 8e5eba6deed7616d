"""dataset_file_spans: each file's chunk list in runs of at most 1024 chunks, keyed by the byte
each run starts at, so that a ranged read fetches only the runs overlapping its range; filled
for the files already stored

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SPAN_CHUNKS = 1024  # as core.datasets.SPAN_CHUNKS when this migration was written
PAGE = 500  # files looked at a time while filling
LIST_BUDGET = 200_000  # chunks of whole lists held at once (one bigger file is read alone)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _spans(file_id: int, chunks: list[Any]) -> list[dict[str, Any]]:
    rows, position = [], 0
    for cut in range(0, len(chunks), SPAN_CHUNKS):
        part = [[d, int(n)] for d, n in chunks[cut : cut + SPAN_CHUNKS]]
        nbytes = sum(n for _, n in part)
        rows.append({"file_id": file_id, "first_byte": position, "nbytes": nbytes, "chunks": part})
        position += nbytes
    return rows


def upgrade() -> None:
    spans = op.create_table(
        "dataset_file_spans",
        sa.Column("file_id", BigId, nullable=False),
        sa.Column("first_byte", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nbytes", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["dataset_files.id"],
            name=op.f("fk_dataset_file_spans_file_id_dataset_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("file_id", "first_byte", name=op.f("pk_dataset_file_spans")),
    )
    conn = op.get_bind()
    files = sa.table("dataset_files", sa.column("id", BigId), sa.column("chunks", sa.JSON))
    last = -1
    while True:  # a page of files at a time, their lists read a budget of chunks at a time:
        page = conn.execute(  # bounded memory, whatever the store holds
            sa.select(files.c.id, sa.func.json_array_length(files.c.chunks))
            .where(files.c.id > last)
            .order_by(files.c.id)
            .limit(PAGE)
        ).all()
        if not page:
            break
        for ids in _groups(list(page)):
            rows = []
            for file_id, chunks in conn.execute(
                sa.select(files.c.id, files.c.chunks).where(files.c.id.in_(ids))
            ):
                if isinstance(chunks, str):
                    chunks = json.loads(chunks)
                rows.extend(_spans(file_id, chunks or []))
            if rows:
                conn.execute(spans.insert(), rows)
        last = page[-1][0]


def _groups(page: list[Any]) -> list[list[int]]:
    """The ids of a page's files with chunks, in groups of at most ``LIST_BUDGET`` chunks (a
    bigger file alone)."""
    groups: list[list[int]] = [[]]
    held = 0
    for file_id, count in page:
        if not count:
            continue
        if groups[-1] and held + count > LIST_BUDGET:
            groups.append([])
            held = 0
        groups[-1].append(file_id)
        held += count
    return [group for group in groups if group]


def downgrade() -> None:
    op.drop_table("dataset_file_spans")
