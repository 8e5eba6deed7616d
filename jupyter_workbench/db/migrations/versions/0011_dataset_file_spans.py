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
PAGE = 200  # files read at a time while filling

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
    while True:  # a page of files at a time: bounded memory, whatever the store holds
        page = conn.execute(
            sa.select(files.c.id, files.c.chunks)
            .where(files.c.id > last)
            .order_by(files.c.id)
            .limit(PAGE)
        ).all()
        if not page:
            break
        rows = []
        for file_id, chunks in page:
            if isinstance(chunks, str):
                chunks = json.loads(chunks)
            rows.extend(_spans(file_id, chunks or []))
        if rows:
            conn.execute(spans.insert(), rows)
        last = page[-1][0]


def downgrade() -> None:
    op.drop_table("dataset_file_spans")
