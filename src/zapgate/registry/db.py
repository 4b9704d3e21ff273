"""The database a registry works on: the engine, its sessions, and one unit of work per
repository call (`read()` or `write()`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from zapgate.registry.batch import AsyncRunner, Job, SqliteRunner, WriteBatcher
from zapgate.registry.engine import READ_ONLY, create_engine, sqlite_writer_engine

T = TypeVar("T")


def rowcount(result: Result[Any]) -> int:
    # DML through AsyncSession.execute returns a CursorResult; the stubs only say Result.
    return cast("CursorResult[Any]", result).rowcount


class Database:
    """Owns the AsyncEngine. Reads are marked so SQLite can start them without the write
    lock; SQLite writers of this process queue on an asyncio lock. Hot writes go through
    `batch` (group commit, `registry/batch.py`); the rest through `write`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        self._sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        runner = (
            AsyncRunner(engine)
            if self._write_lock is None
            else SqliteRunner(sqlite_writer_engine(engine.url), self._write_lock)
        )
        self._batcher = WriteBatcher(runner)

    @classmethod
    def connect(cls, url: str) -> Database:
        return cls(create_engine(url))

    async def close(self) -> None:
        await self._batcher.close()
        await self.engine.dispose()

    async def batch(self, job: Job[T]) -> T:
        """Run `job(connection)` in the next group commit; its result once durable."""
        return await self._batcher.run(job)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessionmaker() as s:
            await s.connection(execution_options={READ_ONLY: True})
            yield s

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        if self._write_lock is None:
            async with self._sessionmaker() as s, s.begin():
                yield s
            return
        # SQLite has one writer at a time. Queueing our own writers here keeps them out
        # of SQLite's busy handler, which sleeps up to 100 ms per retry and made every
        # write wait behind the others (other processes still meet busy_timeout).
        async with self._write_lock, self._sessionmaker() as s, s.begin():
            yield s
