"""Cursors of the worker journals the web tier pulls: how far each one was applied."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from zapgate.registry.convert import utcnow
from zapgate.registry.db import Database, rowcount
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
        # surfaces as IntegrityError and the second attempt updates instead.
        for attempt in range(2):
            try:
                async with self._db.write() as s:
                    result = await s.execute(
                        update(WorkerCursorRow)
                        .where(WorkerCursorRow.worker_key == worker_key)
                        .values(cursor=cursor, updated_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
                    if rowcount(result) == 0:
                        s.add(
                            WorkerCursorRow(
                                worker_key=worker_key, cursor=cursor, updated_at=utcnow()
                            )
                        )
                return
            except IntegrityError:
                if attempt:
                    raise
