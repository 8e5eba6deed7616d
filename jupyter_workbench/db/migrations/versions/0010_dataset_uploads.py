"""commit_sessions: an index of open sessions (the open uploads a project may have); the
version a published session produced and the commit request that did (retries are answered)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commit_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_commit_sessions_state_dataset_id", ["state", "dataset_id"], unique=False
        )
        batch_op.add_column(sa.Column("version_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("commit_request", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_commit_sessions_version_id_dataset_versions"),
            "dataset_versions",
            ["version_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("commit_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_commit_sessions_version_id_dataset_versions"), type_="foreignkey"
        )
        batch_op.drop_column("commit_request")
        batch_op.drop_column("version_id")
        batch_op.drop_index("ix_commit_sessions_state_dataset_id")
