"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, BigInteger, Integer, String, column, inspect, select, table

from jupyter_workbench.db.database import Database
from jupyter_workbench.db.models import Base


def test_models_match_migrations(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        db.dispose()


def test_migrate_is_idempotent_and_at_head(db_url: str) -> None:
    db = Database(db_url)
    try:
        before, after = db.migrate()
        assert before == after == Database.head_revision()
        assert not db.needs_migration()
        tables = set(inspect(db.engine).get_table_names())
        expected = {
            "users", "teams", "team_members", "projects", "project_members", "invitations",
            "access_requests", "model_configs", "model_config_revisions", "datasets",
            "dataset_versions", "experiments", "audit_events",
        }  # fmt: skip
        assert expected <= tables
    finally:
        db.dispose()


def test_migrate_from_empty(tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert db.current_revision() is None
        assert db.needs_migration()
        before, after = db.migrate()
        assert before is None and after == Database.head_revision()
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.dispose()


# dataset_files as it was before 0012 (its chunk list a column of its own)
OLD_FILES = table(
    "dataset_files",
    column("id", Integer),
    column("version_id", Integer),
    column("path", String),
    column("size", BigInteger),
    column("digest", String),
    column("media_type", String),
    column("chunks", JSON),
)


def test_0011_fills_the_spans_of_the_files_already_stored(db_url: str) -> None:
    """Files stored before 0011 are read by ranges through their spans: the migration writes
    them from each file's chunk list, on both backends."""
    from alembic import command

    from jupyter_workbench.core.datasets import SPAN_CHUNKS, chunks_in_range
    from jupyter_workbench.db.database import alembic_config
    from jupyter_workbench.db.models import (
        Dataset,
        DatasetFile,
        DatasetFileSpan,
        DatasetVersion,
        Project,
    )

    db = Database(db_url)
    try:
        db.migrate()
        with db.engine.begin() as conn:
            cfg = alembic_config(db_url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0010")
        chunks = [[f"{i:064x}", 1 + i % 7] for i in range(SPAN_CHUNKS * 2 + 5)]
        with db.transaction(write=True) as s:
            project = Project(slug="p", name="P")
            s.add(project)
            s.flush()
            dataset = Dataset(project_id=project.id, name="d")
            s.add(dataset)
            s.flush()
            version = DatasetVersion(dataset_id=dataset.id, version=1)
            s.add(version)
            s.flush()
            for path, listed in (("big", chunks), ("empty", [])):
                size = sum(n for _, n in listed)
                s.execute(
                    OLD_FILES.insert().values(
                        version_id=version.id, path=path, size=size, digest="0" * 64,
                        media_type="application/octet-stream", chunks=listed,
                    )
                )  # fmt: skip
        db.migrate()
        with db.transaction() as s:
            big = s.scalar(select(DatasetFile.id).where(DatasetFile.path == "big"))
            spans = s.scalars(select(DatasetFileSpan).order_by(DatasetFileSpan.first_byte)).all()
            assert [len(span.chunks) for span in spans] == [SPAN_CHUNKS, SPAN_CHUNKS, 5]
            assert {span.file_id for span in spans} == {big}
            total = sum(n for _, n in chunks)  # every span's chunks, at most 16 spans a read:
            start = spans[1].first_byte - 2
            first, got = chunks_in_range(s, big, start, start + 4)
            whole = [(d, n) for d, n in chunks]
            index = next(i for i in range(len(whole)) if sum(n for _, n in whole[: i + 1]) > start)
            assert first == sum(n for _, n in whole[:index]) and got[0] == whole[index]
            assert chunks_in_range(s, big, 0, total)[1] == whole[: 16 * SPAN_CHUNKS]
    finally:
        db.dispose()
