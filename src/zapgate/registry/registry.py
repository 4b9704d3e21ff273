"""The registry: the only place that speaks SQL. A facade that opens, migrates and closes
the database and holds one repository per area; every repository call is one short unit
of work on its own AsyncSession and returns frozen domain objects, never ORM rows.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from zapgate.registry import migrator, retention
from zapgate.registry.calls import CallRepo
from zapgate.registry.checks import NumberCheckRepo
from zapgate.registry.contacts import ContactRepo
from zapgate.registry.cursors import CursorRepo
from zapgate.registry.db import Database
from zapgate.registry.keys import KeyRepo
from zapgate.registry.lids import LidRepo
from zapgate.registry.logins import LoginRepo
from zapgate.registry.messages import MessageRepo
from zapgate.registry.outbox import OutboxRepo
from zapgate.registry.sessions import SessionRepo
from zapgate.registry.users import UserRepo

logger = logging.getLogger(__name__)


class Registry:
    """Open with `await Registry.open(url)`; close with `await registry.close()`.

    `users`, `logins` (dashboard sign-ins), `keys`, `sessions`, `messages`, `lids` (each
    session's LID <-> phone map), `contacts` (the names contacts' messages carried),
    `checks` (cached answers to "is this number on WhatsApp?"), `calls`, `outbox`
    (events, webhooks, deliveries) and `cursors` are the repositories."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.dialect: str = db.dialect
        self.users = UserRepo(db)
        self.logins = LoginRepo(db)
        self.keys = KeyRepo(db, self.users)
        self.sessions = SessionRepo(db, self.users)
        self.messages = MessageRepo(db)
        self.lids = LidRepo(db)
        self.contacts = ContactRepo(db)
        self.checks = NumberCheckRepo(db)
        self.calls = CallRepo(db)
        self.outbox = OutboxRepo(db)
        self.cursors = CursorRepo(db)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Registry:
        registry = cls(Database.connect(url))
        try:
            if migrate:
                await registry.migrate()
        except BaseException:
            await registry.close()
            raise
        return registry

    async def close(self) -> None:
        await self._db.close()

    async def migrate(self) -> None:
        for attempt in range(5):
            try:
                before = await self.revision()
                await migrator.upgrade(self._db.engine)
                break
            except DBAPIError as exc:
                # Several processes starting on a fresh database race to create the same
                # tables; the losers fail once the winner commits. Reaching head that way
                # is success. SQLite may also answer "database is locked" at once (not
                # after busy_timeout) to a reader caught behind a migrating writer: retry.
                if await self.revision() == self.head_revision():
                    logger.info("registry: another process migrated the database concurrently")
                    return
                if "locked" not in str(exc) or attempt == 4:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        after = await self.revision()
        if before != after:
            logger.info("registry: migrated %s database from %s to %s", self.dialect, before, after)

    async def revision(self) -> str | None:
        return await migrator.current_revision(self._db.engine)

    def head_revision(self) -> str:
        return migrator.head_revision()

    async def ping(self) -> None:
        async with self._db.read() as s:
            await s.execute(text("SELECT 1"))

    async def purge(self, *, messages_before: datetime, events_before: datetime) -> tuple[int, int]:
        """Retention over messages and events in one transaction: see `retention.purge`."""
        async with self._db.write() as s:
            return await retention.purge(
                s, messages_before=messages_before, events_before=events_before
            )
