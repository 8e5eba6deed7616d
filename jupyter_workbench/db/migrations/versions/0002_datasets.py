"""datasets: versions, files, tags, lineage, chunk store, sessions, operations

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "blob_packs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blob_packs")),
        sa.UniqueConstraint("key", name=op.f("uq_blob_packs_key")),
    )
    op.create_table(
        "blob_chunks",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("pack_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pack_id"],
            ["blob_packs.id"],
            name=op.f("fk_blob_chunks_pack_id_blob_packs"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_blob_chunks")),
    )
    with op.batch_alter_table("blob_chunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blob_chunks_pack_id"), ["pack_id"], unique=False)

    op.create_table(
        "operations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False, server_default=""),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=True),
        sa.Column("files_done", sa.Integer(), nullable=False),
        sa.Column("files_total", sa.Integer(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_operations_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations")),
    )
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_operations_user_id_created_at", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "commit_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_commit_sessions_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_commit_sessions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commit_sessions")),
    )
    op.create_table(
        "dataset_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=False),
        sa.Column("chunks", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_dataset_files_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_files")),
        sa.UniqueConstraint("version_id", "path", name=op.f("uq_dataset_files_version_id_path")),
    )
    op.create_table(
        "dataset_lineage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("consumer", sa.String(length=255), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "direction IN ('read', 'write')", name=op.f("ck_dataset_lineage_direction")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_dataset_lineage_recorded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_dataset_lineage_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_lineage")),
        sa.UniqueConstraint(
            "version_id",
            "consumer",
            "direction",
            name=op.f("uq_dataset_lineage_version_id_consumer_direction"),
        ),
    )
    with op.batch_alter_table("dataset_lineage", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_lineage_consumer", ["consumer"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_dataset_lineage_version_id"), ["version_id"], unique=False
        )

    op.create_table(
        "dataset_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_tags_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_dataset_tags_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_dataset_tags_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_tags")),
        sa.UniqueConstraint("dataset_id", "name", name=op.f("uq_dataset_tags_dataset_id_name")),
    )
    op.create_table(
        "session_chunks",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("chunk_digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["chunk_digest"],
            ["blob_chunks.digest"],
            name=op.f("fk_session_chunks_chunk_digest_blob_chunks"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["commit_sessions.id"],
            name=op.f("fk_session_chunks_session_id_commit_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "chunk_digest", name=op.f("pk_session_chunks")),
    )
    with op.batch_alter_table("session_chunks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_chunks_chunk_digest"), ["chunk_digest"], unique=False
        )

    op.create_table(
        "version_chunks",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("chunk_digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["chunk_digest"],
            ["blob_chunks.digest"],
            name=op.f("fk_version_chunks_chunk_digest_blob_chunks"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_version_chunks_version_id_dataset_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "chunk_digest", name=op.f("pk_version_chunks")),
    )
    with op.batch_alter_table("version_chunks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_version_chunks_chunk_digest"), ["chunk_digest"], unique=False
        )

    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "dataset_versions",
        schema=None,
        # ids are never reused on SQLite either (lineage and audit keep version ids)
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True} if sqlite else {},
    ) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("message", sa.Text(), nullable=False))
        batch_op.add_column(sa.Column("author_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("file_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("total_bytes", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("manifest_digest", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_dataset_versions_author_id_users"),
            "users",
            ["author_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_dataset_versions_parent_id_dataset_versions"),
            "dataset_versions",
            ["parent_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("card", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("labels", sa.String(length=2048), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("metadata", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("created_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.create_foreign_key(
            batch_op.f("fk_datasets_created_by_id_users"),
            "users",
            ["created_by_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:

    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_datasets_created_by_id_users"), type_="foreignkey")
        batch_op.drop_column("version")
        batch_op.drop_column("created_by_id")
        batch_op.drop_column("metadata")
        batch_op.drop_column("labels")
        batch_op.drop_column("card")

    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_dataset_versions_parent_id_dataset_versions"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_dataset_versions_author_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("manifest_digest")
        batch_op.drop_column("total_bytes")
        batch_op.drop_column("file_count")
        batch_op.drop_column("author_id")
        batch_op.drop_column("message")
        batch_op.drop_column("parent_id")

    with op.batch_alter_table("version_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_version_chunks_chunk_digest"))

    op.drop_table("version_chunks")
    with op.batch_alter_table("session_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_chunks_chunk_digest"))

    op.drop_table("session_chunks")
    op.drop_table("dataset_tags")
    with op.batch_alter_table("dataset_lineage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_lineage_version_id"))
        batch_op.drop_index("ix_dataset_lineage_consumer")

    op.drop_table("dataset_lineage")
    op.drop_table("dataset_files")
    op.drop_table("commit_sessions")
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_index("ix_operations_user_id_created_at")

    op.drop_table("operations")
    with op.batch_alter_table("blob_chunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blob_chunks_pack_id"))

    op.drop_table("blob_chunks")
    op.drop_table("blob_packs")
