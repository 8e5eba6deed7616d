"""commit_sessions.made_dataset: the session's commit created its dataset (a first commit), so
that an upload ending unpublished leaves no empty dataset behind.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# A native ALTER TABLE (batch ``recreate="never"``): on SQLite a batch copy of commit_sessions
# ends in a DROP TABLE of the old one, which deletes its pins through their ON DELETE CASCADE.


def upgrade() -> None:
    with op.batch_alter_table("commit_sessions", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("made_dataset", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("commit_sessions", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("made_dataset")
