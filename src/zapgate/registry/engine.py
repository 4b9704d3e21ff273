"""Building the AsyncEngine: the SQLite connection settings live here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000

# Execution option a read-only unit of work sets, so SQLite may start it with a plain
# (deferred) BEGIN instead of BEGIN IMMEDIATE.
READ_ONLY = "zapgate_read_only"
# Execution option of the migrations' connection: SQLite's foreign keys off for the
# transaction (set before it begins: inside one the pragma does nothing), so a table
# Alembic recreates (copy, DROP, rename) does not cascade the DROP to its children's rows.
FOREIGN_KEYS_OFF = "zapgate_foreign_keys_off"


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    # pre_ping: a PostgreSQL restart must not surface as one failed request per pooled
    # connection.
    return create_async_engine(parsed, pool_pre_ping=True)


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_engine(url: URL) -> AsyncEngine:
    path = sqlite_path(url)
    if path is None:
        # Every pooled aiosqlite connection would get its own empty in-memory database.
        raise ValueError("the registry needs a SQLite file, not an in-memory database")
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    _configure_sqlite(engine.sync_engine)
    logger.debug("registry: SQLite database at %s", path)
    return engine


def sqlite_writer_engine(url: URL) -> Engine:
    """A synchronous engine on the same SQLite file, for the group commit
    (`registry/batch.py`): one connection, the same connection settings."""
    if sqlite_path(url) is None:
        raise ValueError("the registry needs a SQLite file, not an in-memory database")
    # Used from the event loop's thread and, when it must wait for the lock, from the
    # writer's thread: one at a time (`SqliteRunner`).
    engine = create_sync_engine(
        url.set(drivername="sqlite"),
        pool_size=1,
        max_overflow=0,
        connect_args={"check_same_thread": False},
    )
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would BEGIN lazily, on
        # the first write) so that the "begin" hook below decides how each one starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers don't block the writer
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")  # off by default: cascades need it
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough with WAL
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with
        # SQLITE_BUSY (busy_timeout does not apply) when another connection wrote in
        # between; taking the write lock up front makes writers queue instead.
        options = conn.get_execution_options()
        if options.get(FOREIGN_KEYS_OFF):
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        if options.get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
