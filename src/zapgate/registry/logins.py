"""Dashboard sign-ins: one row per signed-in browser, named by a random id in the signed
cookie. Signing out revokes that row; a new password ends every session signed in with the
old one (each row keeps a digest of the password hash it was opened under)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapgate.registry.convert import as_utc, utcnow
from zapgate.registry.db import Database
from zapgate.registry.tables import DashboardSessionRow, UserRow

logger = logging.getLogger(__name__)

# last_seen_at is written at most this often per session: not one write per page view.
TOUCH_EVERY = timedelta(minutes=5)


def password_stamp(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()


async def restamp(s: AsyncSession, user_id: int, old_hash: str, new_hash: str) -> None:
    """Inside the caller's transaction: the same password hashed again (new argon2
    parameters) is not a new password, so the user's sessions stay open."""
    await s.execute(
        update(DashboardSessionRow)
        .where(
            DashboardSessionRow.user_id == user_id,
            DashboardSessionRow.password_stamp == password_stamp(old_hash),
        )
        .values(password_stamp=password_stamp(new_hash))
        .execution_options(synchronize_session=False)
    )


class LoginRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open(self, user_id: int) -> str:
        """A new signed-in session for the user; its id goes into the signed cookie."""
        sid = secrets.token_urlsafe(32)
        now = utcnow()
        async with self._db.write() as s:
            stored = await s.scalar(select(UserRow.password_hash).where(UserRow.id == user_id))
            s.add(
                DashboardSessionRow(
                    id=sid,
                    user_id=user_id,
                    password_stamp=password_stamp(stored),
                    created_at=now,
                    last_seen_at=now,
                )
            )
        return sid

    async def check(self, sid: str, user_id: int) -> bool:
        """Whether the session is still open: not revoked, the user's, and opened under
        the user's current password. Records that it was seen."""
        async with self._db.read() as s:
            found = (
                await s.execute(
                    select(DashboardSessionRow, UserRow.password_hash)
                    .join(UserRow, UserRow.id == DashboardSessionRow.user_id)
                    .where(DashboardSessionRow.id == sid)
                )
            ).first()
        if found is None:
            return False
        row, stored = found
        if (
            row.user_id != user_id
            or row.revoked_at is not None
            or row.password_stamp != password_stamp(stored)
        ):
            return False
        now = utcnow()
        if now - as_utc(row.last_seen_at) >= TOUCH_EVERY:
            async with self._db.write() as s:
                await s.execute(
                    update(DashboardSessionRow)
                    .where(DashboardSessionRow.id == sid)
                    .values(last_seen_at=now)
                    .execution_options(synchronize_session=False)
                )
        return True

    async def revoke(self, sid: str) -> None:
        async with self._db.write() as s:
            await s.execute(
                update(DashboardSessionRow)
                .where(DashboardSessionRow.id == sid, DashboardSessionRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        logger.info("registry: revoked a dashboard session")
