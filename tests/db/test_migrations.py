"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

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
