"""Group commit: the registry's hot writes (message rows, status changes, outbox events,
journal cursors) are jobs, synchronous functions of one SQLAlchemy `Connection`, that
`WriteBatcher.run` queues; one drain task runs every job queued so far in a single
transaction and hands each caller its own result once that transaction has committed.
A caller never sees a result that is not durable, and concurrent writers share one
commit instead of queueing for the write lock one transaction each.

Jobs run in queue order. A job that raises is not allowed to spoil the others: the batch
is rolled back and run again with each job in its own SAVEPOINT, so the failing job's
caller gets its exception and the rest commit. A job may therefore run more than once
before its batch commits; it must only touch the database (no side effects of its own).

Where the jobs run is the runner's business: on SQLite a synchronous connection of its
own, inline (`SqliteRunner`), so a batch costs no round trip per statement (aiosqlite's
hand-offs to its thread); on PostgreSQL the async engine's connection through
`run_sync`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.registry.engine import SQLITE_BUSY_TIMEOUT_MS

logger = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[Connection], T]

# Jobs per transaction at most: a commit is cheap, a huge transaction holds the write
# lock (and every caller of the batch) for long.
MAX_BATCH = 500


@dataclass
class _Queued:
    job: Job[Any]
    future: asyncio.Future[Any]
    outcome: tuple[bool, Any] = field(default=(False, None))


class Busy(Exception):
    """SQLite's write lock is held by another process (inline runs do not wait)."""


def _begin(conn: Connection) -> RootTransaction:
    try:
        return conn.begin()
    except OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise Busy from exc
        raise


def _run_batch(conn: Connection, batch: Sequence[_Queued]) -> None:
    """Run the batch in one transaction; each job's outcome is (ok, result or exception).
    First all together; when one fails, again with a SAVEPOINT per job."""
    try:
        with _begin(conn):
            for item in batch:
                item.outcome = (True, item.job(conn))
        return
    except Busy:
        raise
    except Exception as exc:
        if len(batch) == 1:
            batch[0].outcome = (False, exc)
            return
    with _begin(conn):
        for item in batch:
            try:
                with conn.begin_nested():
                    item.outcome = (True, item.job(conn))
            except Exception as exc:
                item.outcome = (False, exc)


# An inline batch does not wait for another process's write lock at all: it hands the
# batch to the thread, which waits as long as every other writer does.
_INLINE_BUSY_MS = 0


class SqliteRunner:
    """SQLite: a batch runs on a synchronous connection, inline on the event loop: a
    batch of jobs is a few hundred microseconds of work, far less than handing it to a
    thread (each hand-off also meets the GIL, which a busy event loop holds). Only when
    another process holds the write lock does the batch go to a thread of its own, to
    wait there for `busy_timeout` without stopping the loop. The process's SQLite write
    lock (`write_lock`, shared with the async writers) is held meanwhile."""

    def __init__(self, engine: Engine, write_lock: asyncio.Lock) -> None:
        self._engine = engine
        self._lock = write_lock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-writer")

    async def __call__(self, batch: Sequence[_Queued]) -> None:
        async with self._lock:
            try:
                self._run(batch, _INLINE_BUSY_MS)
                return
            except Busy:
                logger.debug("registry: write lock busy; the batch waits on a thread")
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, self._run, batch, SQLITE_BUSY_TIMEOUT_MS)

    def _run(self, batch: Sequence[_Queued], busy_ms: int) -> None:
        with self._engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            dbapi.execute(f"PRAGMA busy_timeout={busy_ms}")
            _run_batch(conn, batch)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._engine.dispose()


class AsyncRunner:
    """PostgreSQL (or any async driver): the batch runs on a pooled async connection,
    each statement awaited under the hood through SQLAlchemy's `run_sync`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def __call__(self, batch: Sequence[_Queued]) -> None:
        async with self._engine.connect() as conn:
            await conn.run_sync(_run_batch, batch)

    def close(self) -> None:
        """The engine is the Database's to dispose of."""


class WriteBatcher:
    """`await batcher.run(job)` runs `job(conn)` in the next group commit and returns its
    result (or raises its exception) once that commit is durable."""

    def __init__(self, runner: SqliteRunner | AsyncRunner) -> None:
        self._runner = runner
        self._queue: list[_Queued] = []
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False

    async def run(self, job: Job[T]) -> T:
        if self._closed:
            raise RuntimeError("the registry is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(job, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="registry:group-commit")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self._runner(batch)
            except BaseException as exc:
                # The commit itself failed (or the drain was cancelled): nothing of this
                # batch is durable, so every caller hears it.
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(
                            exc if isinstance(exc, Exception) else RuntimeError("cancelled")
                        )
                if not isinstance(exc, Exception):
                    raise
                logger.debug("registry: a group commit of %d jobs failed: %r", len(batch), exc)
                continue
            for item in batch:
                if item.future.done():  # its caller went away (cancelled)
                    continue
                ok, value = item.outcome
                if ok:
                    item.future.set_result(value)
                else:
                    item.future.set_exception(cast(BaseException, value))

    async def close(self) -> None:
        """Finish what is queued, then refuse new jobs."""
        self._closed = True
        if self._drainer is not None:
            await asyncio.shield(self._drainer)
        self._runner.close()
