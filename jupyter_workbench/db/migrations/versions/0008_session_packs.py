"""session pins by pack: the chunks a commit stored are pinned through their pack

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "session_packs",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("pack_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["commit_sessions.id"],
            name=op.f("fk_session_packs_session_id_commit_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pack_id"],
            ["blob_packs.id"],
            name=op.f("fk_session_packs_pack_id_blob_packs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "pack_id", name=op.f("pk_session_packs")),
    )
    with op.batch_alter_table("session_packs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_packs_pack_id"), ["pack_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("session_packs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_packs_pack_id"))
    op.drop_table("session_packs")
