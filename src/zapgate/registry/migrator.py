"""Alembic, run in-process against the registry's engine."""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.registry.engine import FOREIGN_KEYS_OFF, READ_ONLY

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Alembic publishes the running migration through module globals (`alembic.context`,
# `alembic.op`), so two upgrades interleaving in one process (greenlets yield on every
# database round trip) would tear down each other's proxies. One lock per event loop,
# since an asyncio.Lock must not be shared across loops.
_upgrade_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    # set_main_option goes through configparser interpolation: escape '%'.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts in {MIGRATIONS_DIR}")
    return head


async def upgrade(engine: AsyncEngine) -> None:
    # One transaction: a failed migration leaves nothing half-applied (both SQLite and
    # PostgreSQL have transactional DDL), and on SQLite BEGIN IMMEDIATE makes a second
    # process wait, then find the schema already at head.
    loop = asyncio.get_running_loop()
    lock = _upgrade_locks.get(loop)
    if lock is None:
        lock = _upgrade_locks[loop] = asyncio.Lock()
    sqlite = engine.dialect.name == "sqlite"
    async with lock, engine.connect() as conn:
        if sqlite:
            conn = await conn.execution_options(**{FOREIGN_KEYS_OFF: True})
        try:
            async with conn.begin():
                await conn.run_sync(_upgrade_to_head, sqlite)
        finally:
            if sqlite:
                # Never back in the pool with its foreign keys off.
                await conn.invalidate()


def _upgrade_to_head(conn: Connection, sqlite: bool) -> None:
    command.upgrade(alembic_config(conn), "head")
    if sqlite:
        # With foreign keys off, check by hand that no row lost its parent.
        orphans = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if orphans:
            raise RuntimeError(f"the migration left rows without their parent: {orphans[:5]}")


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        conn = await conn.execution_options(**{READ_ONLY: True})
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
