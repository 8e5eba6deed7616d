"""hub: user secrets, quotas, server usage

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "quotas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("max_servers", sa.Integer(), nullable=True),
        sa.Column("max_gpus", sa.Integer(), nullable=True),
        sa.Column("gpu_hours_per_month", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_quotas_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_quotas_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_quotas_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotas")),
        sa.UniqueConstraint("subject", name=op.f("uq_quotas_subject")),
    )
    op.create_table(
        "server_usage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("server_name", sa.String(length=255), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("project_slug", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_server_usage_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_usage")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("server_usage", schema=None) as batch_op:
        batch_op.create_index("ix_server_usage_started_at", ["started_at"], unique=False)
        batch_op.create_index(
            "ix_server_usage_user_id_started_at", ["user_id", "started_at"], unique=False
        )
        batch_op.create_index(
            "uq_server_usage_open",
            ["username", "server_name"],
            unique=True,
            sqlite_where=sa.text("stopped_at IS NULL"),
            postgresql_where=sa.text("stopped_at IS NULL"),
        )

    op.create_table(
        "user_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_secrets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_secrets")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_user_secrets_user_id_name")),
    )
    with op.batch_alter_table("user_secrets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_secrets_key_id"), ["key_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("user_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_secrets_key_id"))

    op.drop_table("user_secrets")
    with op.batch_alter_table("server_usage", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_server_usage_open",
            sqlite_where=sa.text("stopped_at IS NULL"),
            postgresql_where=sa.text("stopped_at IS NULL"),
        )
        batch_op.drop_index("ix_server_usage_user_id_started_at")
        batch_op.drop_index("ix_server_usage_started_at")

    op.drop_table("server_usage")
    op.drop_table("quotas")
