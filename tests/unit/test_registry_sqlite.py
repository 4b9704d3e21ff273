"""SQLite-specific behaviour of the registry: file, pragmas, transactions."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from zapgate.domain.models import Route
from zapgate.registry import Registry, migrator
from zapgate.registry.engine import FOREIGN_KEYS_OFF, SQLITE_BUSY_TIMEOUT_MS

ROUTE = Route(worker_id="embedded", worker_url=None, port=None)


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def test_open_creates_the_data_directory(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "zapgate.db"
    reg = await Registry.open(_url(db))
    try:
        assert db.exists()
        assert reg.dialect == "sqlite"
    finally:
        await reg.close()


async def test_wal_is_on(tmp_path: Path) -> None:
    db = tmp_path / "zapgate.db"
    reg = await Registry.open(_url(db))
    await reg.close()
    # journal_mode=WAL is stored in the file: any later connection sees it.
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_connection_pragmas(tmp_path: Path) -> None:
    reg = await Registry.open(_url(tmp_path / "zapgate.db"))
    try:
        async with reg._db.engine.connect() as conn:
            fk = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        assert (fk, busy, mode) == (1, SQLITE_BUSY_TIMEOUT_MS, "wal")
    finally:
        await reg.close()


async def test_migrations_run_with_foreign_keys_off_and_give_the_pool_none_so(
    tmp_path: Path,
) -> None:
    """Alembic recreates a SQLite table (copy, DROP, rename) for some changes; with
    foreign keys on, the DROP cascaded to every child row (a 0014 that recreated
    `sessions` deleted every message). The migrations' transaction has them off, and
    its connection never returns to the pool that way."""
    reg = await Registry.open(_url(tmp_path / "zapgate.db"))
    try:
        engine = reg._db.engine
        async with engine.connect() as conn:
            conn = await conn.execution_options(**{FOREIGN_KEYS_OFF: True})
            async with conn.begin():
                assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 0
            await conn.invalidate()
        await migrator.upgrade(engine)
        for _ in range(3):
            async with engine.connect() as conn:
                assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    finally:
        await reg.close()


async def test_in_memory_database_is_refused() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        await Registry.open("sqlite+aiosqlite:///:memory:")


async def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    url = _url(tmp_path / "zapgate.db")
    regs = await asyncio.gather(*(Registry.open(url) for _ in range(4)))
    try:
        for reg in regs:
            assert await reg.revision() == reg.head_revision()
    finally:
        for reg in regs:
            await reg.close()


async def test_writers_in_two_registries_queue_instead_of_failing(tmp_path: Path) -> None:
    # Two registries on one file stand for two processes: read-then-write units of work
    # must wait for each other (BEGIN IMMEDIATE + busy_timeout), never raise "locked".
    url = _url(tmp_path / "zapgate.db")
    a = await Registry.open(url)
    b = await Registry.open(url)
    try:
        user = await a.users.create("w@example.com")
        await asyncio.gather(
            *(
                reg.sessions.get_or_create(user.id, f"s{i}", engine="sim", route=ROUTE)
                for i in range(20)
                for reg in (a, b)
            ),
            *(reg.cursors.set(f"k{i % 3}", i) for i in range(20) for reg in (a, b)),
        )
        assert len(await a.sessions.list(user.id)) == 20
    finally:
        await a.close()
        await b.close()


async def test_stored_timestamps_are_utc(tmp_path: Path) -> None:
    db = tmp_path / "zapgate.db"
    reg = await Registry.open(_url(db))
    try:
        user = await reg.users.create("tz@example.com")
    finally:
        await reg.close()
    with sqlite3.connect(db) as conn:
        [(raw,)] = conn.execute("SELECT created_at FROM users").fetchall()
    # SQLite keeps no zone: the text is the UTC wall-clock time.
    assert raw.startswith(user.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    assert user.created_at.tzinfo is not None
