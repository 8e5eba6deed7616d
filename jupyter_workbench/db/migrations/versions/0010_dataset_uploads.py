"""commit_sessions: an index of open sessions (the open uploads a project may have)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

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


def downgrade() -> None:
    with op.batch_alter_table("commit_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_commit_sessions_state_dataset_id")
