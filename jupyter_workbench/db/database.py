"""Engine, sessions and migrations for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("jupyter_workbench.db")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Arbitrary constant: the PostgreSQL advisory lock that serialises concurrent migrations.
_MIGRATION_LOCK_ID = 0x576F726B


# SQLite's lower() folds ASCII letters only: searches call this one (Python's str.lower, as
# PostgreSQL's lower() folds every letter), see core/text_search.py
SQLITE_LOWER = "wb_lower"


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # The driver's own transaction handling is switched off: we emit BEGIN ourselves, so that
    # write transactions take the write lock up front (BEGIN IMMEDIATE) instead of failing
    # with "database is locked" when a read transaction tries to upgrade.
    dbapi_connection.isolation_level = None
    dbapi_connection.create_function(SQLITE_LOWER, 1, _lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("workbench_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def alembic_config(url: str | URL) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option(
        "sqlalchemy.url", make_url(url).render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


class Database:
    """One engine and its session factories; ``transaction()`` is the unit of work."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = max(pool_size, 5)
            kwargs["max_overflow"] = 20
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            bind=self.engine.execution_options(workbench_write=True), expire_on_commit=False
        )

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        maker = self._write if write else self._read
        with maker() as session, session.begin():
            yield session

    @contextmanager
    def raw_write(self) -> Iterator[Any]:
        """A DB-API cursor inside one write transaction, committed on success and rolled back
        on error: for the hot paths where a session's per-call cost shows (a co-editing update
        is stored before it is relayed: ~0.3 ms through a session, ~0.02 ms so). Statements use
        the driver's parameter style (``param``)."""
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            if self.is_sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                if self.is_sqlite:
                    cursor.execute("ROLLBACK")
                else:
                    connection.rollback()
                raise
            if self.is_sqlite:
                cursor.execute("COMMIT")
            else:
                connection.commit()
        finally:
            connection.close()

    @property
    def param(self) -> str:
        """The placeholder of one parameter in a raw statement (``?`` or ``%s``)."""
        return "?" if self.engine.dialect.paramstyle == "qmark" else "%s"

    # -- migrations ---------------------------------------------------------------------
    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()

    def migrate(self, revision: str = "head") -> tuple[str | None, str | None]:
        """Apply migrations up to ``revision``; returns (before, after)."""
        before = self.current_revision()
        target = self.head_revision() if revision == "head" else revision
        cfg = alembic_config(self.url)
        with self.engine.connect() as conn, self._foreign_keys_deferred(conn), conn.begin():
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
            check = self.is_sqlite and before != target  # nothing to apply: nothing to check
            broken_before = self._broken_references(conn) if check else Counter()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            if check:
                after = MigrationContext.configure(conn).get_current_revision()
                self._check_foreign_keys(conn, broken_before, before, after)
        return before, self.current_revision()

    @contextmanager
    def _foreign_keys_deferred(self, conn: Connection) -> Iterator[None]:
        """SQLite's foreign keys off while a migration runs on ``conn``: a batch migration
        copies a table and drops the old one, and with them on, that drop deletes every row
        that refers to it through ON DELETE CASCADE (an upgrade through 0010 emptied the open
        uploads' chunk lists). SQLite ignores the pragma inside a transaction: it is set on the
        driver's connection before SQLAlchemy begins one, and set back after."""
        if not self.is_sqlite:
            yield
            return
        driver = conn.connection.dbapi_connection
        assert driver is not None
        driver.execute("PRAGMA foreign_keys=OFF")
        try:
            yield
        finally:
            driver.execute("PRAGMA foreign_keys=ON")

    @staticmethod
    def _broken_references(conn: Connection) -> Counter[tuple[Any, ...]]:
        """SQLite's rows that refer to a missing row: (table, rowid, parent) of each."""
        rows = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        return Counter(tuple(row[:3]) for row in rows)

    @classmethod
    def _check_foreign_keys(
        cls,
        conn: Connection,
        broken_before: Counter[tuple[Any, ...]],
        before: str | None,
        after: str | None,
    ) -> None:
        """Refuse (roll back) a migration that left rows referring to missing ones; rows that
        did before it (deleted by hand with the sqlite3 shell, where foreign keys are off) are
        only logged: the migration did not break them."""
        broken = cls._broken_references(conn)
        if broken_before:
            log.warning(
                "%d rows of the database refer to missing rows (table, rowid, parent): %s; "
                "`PRAGMA foreign_key_check` in the sqlite3 shell lists them",
                sum(broken_before.values()), list(broken_before)[:5],
            )  # fmt: skip
        new = broken - broken_before
        if new:
            raise RuntimeError(
                f"migrating the database from {before or 'empty'} to {after} would leave "
                f"{sum(new.values())} rows referring to missing rows (table, rowid, parent): "
                f"{list(new)[:5]}; nothing was changed (a bug of that migration: report it)"
            )

    def needs_migration(self) -> bool:
        return self.current_revision() != self.head_revision()

    def dispose(self) -> None:
        self.engine.dispose()
