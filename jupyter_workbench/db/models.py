"""SQLAlchemy 2 typed ORM models of the workbench database.

The schema only changes through Alembic migrations in ``db/migrations/versions``; a test
checks that these models and the migrated schema never drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    avatar_url: Mapped[str | None] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(String(32))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the hub stopped having this user (deleted there): left out of the people list, the
    # user search and the totals; memberships and history stay, and return with the user.
    left_hub_at: Mapped[datetime | None] = mapped_column()


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    # 'workbench' for teams made here, 'hub' for teams mirrored from JupyterHub groups.
    source: Mapped[str] = mapped_column(String(16), default="workbench")
    # The JupyterHub group a 'hub' team mirrors (its name may differ from the team's).
    hub_group: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    members: Mapped[list[TeamMember]] = relationship(
        back_populates="team", cascade="all, delete-orphan", passive_deletes=True
    )

    __mapper_args__ = {"version_id_col": version}
    # Ids are never reused on SQLite either (audit events keep ids of deleted rows).
    __table_args__ = {"sqlite_autoincrement": True}


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16), default="member")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    team: Mapped[Team] = relationship(back_populates="members")
    user: Mapped[User] = relationship()

    __table_args__ = (CheckConstraint("role IN ('member', 'maintainer')", name="role"),)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column()
    deleted_at: Mapped[datetime | None] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    team: Mapped[Team | None] = relationship()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("visibility IN ('private', 'team', 'public')", name="visibility"),
        Index("ix_projects_name_id", "name", "id"),
        Index("ix_projects_visibility_name", "visibility", "name", "id"),
        # Ids are never reused on SQLite either: audit events keep the ids of purged projects.
        {"sqlite_autoincrement": True},
    )


class ProjectMember(Base):
    """A user's or a team's role on a project; the owner is the one row with role 'owner'."""

    __tablename__ = "project_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, default=1)

    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    team: Mapped[Team | None] = relationship()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (team_id IS NULL)", name="user_xor_team"),
        CheckConstraint("role IN ('viewer', 'editor', 'admin', 'owner')", name="role"),
        CheckConstraint("role <> 'owner' OR user_id IS NOT NULL", name="owner_is_user"),
        UniqueConstraint("project_id", "user_id"),
        UniqueConstraint("project_id", "team_id"),
        Index(
            "uq_project_members_one_owner",
            "project_id",
            unique=True,
            sqlite_where=text("role = 'owner'"),
            postgresql_where=text("role = 'owner'"),
        ),
        Index("ix_project_members_user_id_project_id", "user_id", "project_id"),
        Index("ix_project_members_team_id_project_id", "team_id", "project_id"),
    )


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    invitee_username: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    # pending | accepted | declined | revoked | expired
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    responded_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'editor', 'admin')", name="role"),
        Index(
            "uq_invitations_one_pending",
            "project_id",
            "invitee_username",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )


class AccessRequest(Base):
    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    # pending | approved | denied | withdrawn
    status: Mapped[str] = mapped_column(String(16), default="pending")
    granted_role: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column()

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'editor', 'admin')", name="role"),
        Index(
            "uq_access_requests_one_pending",
            "project_id",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )


class ModelConfig(Base):
    __tablename__ = "model_configs"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    current_revision: Mapped[int] = mapped_column(Integer, default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    revisions: Mapped[list[ModelConfigRevision]] = relationship(
        back_populates="model_config",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ModelConfigRevision.number",
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (UniqueConstraint("project_id", "name"),)


class ModelConfigRevision(Base):
    __tablename__ = "model_config_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_config_id: Mapped[int] = mapped_column(ForeignKey("model_configs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column()
    json_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model_config: Mapped[ModelConfig] = relationship(back_populates="revisions")
    author: Mapped[User | None] = relationship()

    __table_args__ = (UniqueConstraint("model_config_id", "number"),)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    card: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # metadata tags as ",a,b," so that a tag search is one LIKE on every backend
    labels: Mapped[str] = mapped_column(String(2048), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (UniqueConstraint("project_id", "name"),)


class DatasetVersion(Base):
    """An immutable manifest of files; visible once its transaction commits."""

    __tablename__ = "dataset_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL")
    )
    message: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # BLAKE3 of the canonical manifest (sorted path, size, digest lines): one hash per version.
    manifest_digest: Mapped[str] = mapped_column(String(64), default="")
    storage_path: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("dataset_id", "version"),
        {"sqlite_autoincrement": True},
    )


class DatasetFile(Base):
    """One path of a version: its size, whole-file BLAKE3 and chunk count; its ordered chunk
    list is in its ``DatasetFileSpan`` rows (the only copy)."""

    __tablename__ = "dataset_files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    # how many chunks the file's spans hold (a listing shows it without reading them)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (UniqueConstraint("version_id", "path"),)


class DatasetFileSpan(Base):
    """A run of a file's consecutive chunks (at most ``SPAN_CHUNKS``) and the byte it starts at:
    a ranged read fetches only the spans overlapping its range, not the file's whole list.
    Every file with chunks has spans: they are where its chunk list is stored."""

    __tablename__ = "dataset_file_spans"

    file_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("dataset_files.id", ondelete="CASCADE"), primary_key=True
    )
    first_byte: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    nbytes: Mapped[int] = mapped_column(BigInteger)
    # [[chunk digest, length], ...] in file order: the file's chunk list is its spans' lists
    # by ``first_byte``, concatenated
    chunks: Mapped[list[Any]] = mapped_column(JSON)


class DatasetTag(Base):
    __tablename__ = "dataset_tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("dataset_id", "name"),)


class DatasetLineage(Base):
    """A consumer (a run, a job, any id) read or wrote a dataset version."""

    __tablename__ = "dataset_lineage"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True
    )
    consumer: Mapped[str] = mapped_column(String(255))
    direction: Mapped[str] = mapped_column(String(8))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("direction IN ('read', 'write')", name="direction"),
        UniqueConstraint("version_id", "consumer", "direction"),
        Index("ix_dataset_lineage_consumer", "consumer"),
    )


class BlobPack(Base):
    """A storage object holding many chunks back to back."""

    __tablename__ = "blob_packs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    # writing (being uploaded) | sealed (its chunks are indexed) | retired (to delete after grace)
    state: Mapped[str] = mapped_column(String(16), default="writing")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class BlobChunk(Base):
    """Where the bytes of one content-addressed chunk live."""

    __tablename__ = "blob_chunks"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    pack_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("blob_packs.id", ondelete="RESTRICT"), index=True
    )
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VersionChunk(Base):
    """The chunks a version needs: the database refuses to drop a chunk still in use."""

    __tablename__ = "version_chunks"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_digest: Mapped[str] = mapped_column(
        ForeignKey("blob_chunks.digest", ondelete="RESTRICT"), primary_key=True, index=True
    )


class CommitSession(Base):
    """A commit or upload in progress; its pins keep garbage collection off its chunks."""

    __tablename__ = "commit_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="commit")
    # open | published | aborted | expired
    state: Mapped[str] = mapped_column(String(16), default="open")
    # the files an upload session will commit: [{path, size, digest, chunks, media_type}]
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    # once published: the version it produced (or found unchanged), and the commit request that
    # did ({message, parent, strict_parent, mode, delete, unchanged}), so a retry is answered
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL")
    )
    commit_request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # its commit created the dataset (a first commit): ended unpublished, it takes the dataset
    # with it when no version was ever published there
    made_dataset: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # open sessions are few among all there were: counted per project when an upload starts
    __table_args__ = (Index("ix_commit_sessions_state_dataset_id", "state", "dataset_id"),)


class SessionChunk(Base):
    __tablename__ = "session_chunks"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("commit_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_digest: Mapped[str] = mapped_column(
        ForeignKey("blob_chunks.digest", ondelete="RESTRICT"), primary_key=True, index=True
    )


class SessionPack(Base):
    """A pack a session stored: its chunks are pinned to the session without a row each."""

    __tablename__ = "session_packs"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("commit_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    pack_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("blob_packs.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Operation(Base):
    """A long job (commit, upload, verify, gc) and its progress, for polling clients."""

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    project_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    # running | succeeded | failed | cancelled
    state: Mapped[str] = mapped_column(String(16), default="running")
    message: Mapped[str] = mapped_column(Text, default="")
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    files_done: Mapped[int] = mapped_column(Integer, default=0)
    files_total: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_operations_user_id_created_at", "user_id", "created_at"),)


class Experiment(Base):
    """A project's experiment: one MLflow experiment (named '<project slug>/<name>' there)."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    model_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_configs.id", ondelete="SET NULL")
    )
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(32), default="active")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    mlflow_experiment_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    mlflow_name: Mapped[str | None] = mapped_column(String(500), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("project_id", "name"),)


class RegisteredModel(Base):
    """Which project owns an MLflow registered model (MLflow's names are global)."""

    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """One mutation: who did what to which object, written in the mutation's transaction."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(255))
    # No foreign key: the trail outlives purged projects.
    project_id: Mapped[int | None] = mapped_column(Integer)
    project_slug: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    request_id: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (
        Index("ix_audit_events_project_id_id", "project_id", "id"),
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
    )


class PromotionRequest(Base):
    """A request to point a protected alias (e.g. 'production') at a model version."""

    __tablename__ = "promotion_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    model_name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(32))
    alias: Mapped[str] = mapped_column(String(64), default="production")
    note: Mapped[str] = mapped_column(Text, default="")
    # pending | approved | rejected | withdrawn
    status: Mapped[str] = mapped_column(String(16), default="pending")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()


class ModelCard(Base):
    """The card of a registered model: markdown plus structured fields, every save a revision."""

    __tablename__ = "model_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    model_name: Mapped[str] = mapped_column(String(255), unique=True)
    current_revision: Mapped[int] = mapped_column(Integer, default=1)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __mapper_args__ = {"version_id_col": version}


class ModelCardRevision(Base):
    __tablename__ = "model_card_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("model_cards.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    markdown: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("card_id", "number"),)


class UserSecret(Base):
    """One user's secret (an environment variable for their servers), AES-256-GCM encrypted."""

    __tablename__ = "user_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "name"),)


class Quota(Base):
    """Limits for a user, a team (its members together), or everyone ('default').

    A null limit means: for a user, the default's; for the default or a team, no limit.
    """

    __tablename__ = "quotas"

    id: Mapped[int] = mapped_column(primary_key=True)
    # 'default' | 'user:<user id>' | 'team:<team id>'
    subject: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    max_servers: Mapped[int | None] = mapped_column(Integer)
    max_gpus: Mapped[int | None] = mapped_column(Integer)
    gpu_hours_per_month: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ServerUsage(Base):
    """One run of a server, from its start to its stop: the unit of usage accounting."""

    __tablename__ = "server_usage"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(255))
    server_name: Mapped[str] = mapped_column(String(255), default="")
    profile: Mapped[str] = mapped_column(String(64))
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    # The project a project server belongs to (no foreign key: usage outlives projects).
    project_id: Mapped[int | None] = mapped_column(Integer)
    project_slug: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_server_usage_started_at", "started_at"),
        Index("ix_server_usage_user_id_started_at", "user_id", "started_at"),
        # at most one open run per server
        Index(
            "uq_server_usage_open",
            "username",
            "server_name",
            unique=True,
            sqlite_where=text("stopped_at IS NULL"),
            postgresql_where=text("stopped_at IS NULL"),
        ),
        {"sqlite_autoincrement": True},
    )


class ProjectServer(Base):
    """A project's shared JupyterHub server: the named server ``server_name`` of ``owner``,
    shared with the project's editors and above."""

    __tablename__ = "project_servers"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), unique=True
    )
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    server_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()

    project: Mapped[Project] = relationship()
    owner: Mapped[User] = relationship()


class Document(Base):
    """A collaborative document of a project (README, notes, a dataset/model card, an experiment
    report): a pycrdt (Yjs) document whose content lives in ``document_updates``."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(255), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship()

    __table_args__ = (UniqueConstraint("project_id", "kind", "ref"),)


class DocumentUpdate(Base):
    """One Yjs update of a document, stored before it is broadcast; compaction merges a
    document's rows into one."""

    __tablename__ = "document_updates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # how many client updates this row holds (1, or more once compacted)
    merged: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentSnapshot(Base):
    """A named point in a document's history: its full state and its text then."""

    __tablename__ = "document_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    text: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
