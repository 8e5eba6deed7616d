"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, BigInteger, Integer, String, column, inspect, select, table, text

from jupyter_workbench.db.database import Database
from jupyter_workbench.db.models import Base


def downgrade(db: Database, url: str, revision: str) -> None:
    """Take a migrated database back down to ``revision`` (to test what migrates from it)."""
    from alembic import command

    from jupyter_workbench.db.database import alembic_config

    with db.engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


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

    from jupyter_workbench.core.datasets import SPAN_CHUNKS, chunks_in_range
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
        downgrade(db, db_url, "0010")
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


def test_an_upgrade_keeps_the_rows_that_refer_to_a_table_it_copies(db_url: str) -> None:
    """On SQLite a batch migration copies a table and drops the old one: 0010 copies
    commit_sessions, and with foreign keys on, dropping it deleted every open upload's chunk and
    pack pins (ON DELETE CASCADE). Both survive the upgrade now, on both backends."""

    db = Database(db_url)
    try:
        downgrade(db, db_url, "0009")
        now = "2026-01-01 00:00:00"
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO blob_packs (id, key, size, state, created_at, changed_at) "
                    "VALUES (1, 'packs/1', 3, 'stored', :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    'INSERT INTO blob_chunks (digest, pack_id, "offset", length, created_at) '
                    "VALUES (:d, 1, 0, 3, :now)"
                ),
                {"d": "a" * 64, "now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO commit_sessions (id, kind, state, files, created_at, "
                    "heartbeat_at) VALUES ('s1', 'upload', 'open', '[]', :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(text("INSERT INTO session_chunks VALUES ('s1', :d)"), {"d": "a" * 64})
            conn.execute(text("INSERT INTO session_packs VALUES ('s1', 1)"))
        db.migrate()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT session_id FROM session_chunks")).all() == [("s1",)]
            assert conn.execute(text("SELECT session_id FROM session_packs")).all() == [("s1",)]
            if db.is_sqlite:  # and the foreign keys are back on for the connection after
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.dispose()


def _orphan_span(db: Database) -> None:
    """A span whose file is gone, as deleting by hand in the sqlite3 shell (foreign keys off
    there) leaves one."""
    driver = db.engine.raw_connection()
    try:
        driver.execute("PRAGMA foreign_keys=OFF")
        driver.execute(
            "INSERT INTO dataset_file_spans (file_id, first_byte, nbytes, chunks) "
            "VALUES (999, 0, 1, '[]')"
        )
        driver.execute("PRAGMA foreign_keys=ON")
    finally:
        driver.close()


def test_a_sqlite_migration_that_breaks_a_reference_is_rolled_back(tmp_path, monkeypatch) -> None:
    """With foreign keys off while it runs, an upgrade is checked before it commits: one that
    leaves a row referring to a missing one is rolled back, naming the table and revisions."""
    from alembic import command

    from jupyter_workbench.db import database

    url = f"sqlite:///{tmp_path / 'broken.db'}"
    db = Database(url)
    try:
        db.migrate()
        downgrade(db, url, "0011")
        upgrade = command.upgrade

        def breaking_upgrade(cfg, revision):  # a migration with a bug: it orphans a span
            upgrade(cfg, revision)
            cfg.attributes["connection"].exec_driver_sql(
                "INSERT INTO dataset_file_spans (file_id, first_byte, nbytes, chunks) "
                "VALUES (999, 0, 1, '[]')"
            )

        monkeypatch.setattr(database.command, "upgrade", breaking_upgrade)
        with pytest.raises(RuntimeError, match=r"from 0011 to [0-9]{4} .*dataset_file_spans"):
            db.migrate()
        assert db.current_revision() == "0011"  # rolled back, the migration's work too
        with db.engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("dataset_files")}
            assert "chunks" in columns
            assert conn.exec_driver_sql("SELECT count(*) FROM dataset_file_spans").scalar() == 0
    finally:
        db.dispose()


def test_rows_orphaned_before_a_migration_do_not_stop_it_or_the_server(tmp_path, caplog) -> None:
    """An orphan left by hand is not the migration's doing: the upgrade runs (and says so in
    the log), and a database at head is not checked at all (a server start stays quick)."""

    url = f"sqlite:///{tmp_path / 'orphan.db'}"
    db = Database(url)
    try:
        db.migrate()
        downgrade(db, url, "0011")
        _orphan_span(db)
        with caplog.at_level("WARNING", logger="jupyter_workbench.db"):
            assert db.migrate() == ("0011", Database.head_revision())
        assert "1 rows of the database refer to missing rows" in caplog.text
        caplog.clear()
        with caplog.at_level("WARNING", logger="jupyter_workbench.db"):
            assert db.migrate() == (Database.head_revision(), Database.head_revision())
        assert caplog.text == ""
    finally:
        db.dispose()
