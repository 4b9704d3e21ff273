"""Cursors of the worker journals the web tier pulls: how far each one was applied."""

from __future__ import annotations

from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import IntegrityError

from zapgate.registry.convert import utcnow
from zapgate.registry.db import Database
from zapgate.registry.tables import WorkerCursorRow


class CursorRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, worker_key: str) -> int:
        async with self._db.read() as s:
            row = await s.get(WorkerCursorRow, worker_key)
            return 0 if row is None else row.cursor

    async def set(self, worker_key: str, cursor: int) -> None:
        # Update-then-insert rather than a dialect-specific upsert; a concurrent insert
        # (another process) surfaces as IntegrityError and the second attempt updates.
        def job(conn: Connection) -> None:
            updated = conn.execute(
                update(WorkerCursorRow)
                .where(WorkerCursorRow.worker_key == worker_key)
                .values(cursor=cursor, updated_at=utcnow())
            ).rowcount
            if updated == 0:
                conn.execute(
                    insert(WorkerCursorRow).values(
                        worker_key=worker_key, cursor=cursor, updated_at=utcnow()
                    )
                )

        for attempt in range(2):
            try:
                await self._db.batch(job)
                return
            except IntegrityError:
                if attempt:
                    raise
