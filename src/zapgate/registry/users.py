"""Users: accounts, passwords (argon2), admin flag and dashboard language."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from zapgate.domain.models import User
from zapgate.errors import Conflict, NotFound, UserExists, ValidationFailed
from zapgate.i18n import N_
from zapgate.registry import convert, credentials, logins
from zapgate.registry.convert import utcnow
from zapgate.registry.db import Database, rowcount
from zapgate.registry.tables import UserRow

logger = logging.getLogger(__name__)


def normalize_email(email: str) -> str:
    return email.strip().lower()


class UserRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        email: str,
        password: str | None = None,
        *,
        is_admin: bool = False,
        first_is_admin: bool = False,
        user_id: int | None = None,
    ) -> User:
        """A new user. With `first_is_admin` (sign-up and `zapgate users create`) the user
        is also an administrator when no other user exists: decided inside the insert's
        transaction, so concurrent first sign-ups give exactly one admin."""
        email = normalize_email(email)
        if not email:
            raise ValidationFailed(N_("email: must not be empty"))
        if password is not None and not password:
            raise ValidationFailed(N_("password: must not be empty (leave it out for none)"))
        password_hash = (
            None
            if password is None
            else await asyncio.to_thread(credentials.hash_password, password)
        )
        row = UserRow(
            email=email, password_hash=password_hash, is_admin=is_admin, created_at=utcnow()
        )
        if user_id is not None:
            row.id = user_id
        try:
            async with self._db.write() as s:
                if first_is_admin:
                    # Atomic on both dialects. SQLite: write() began with BEGIN IMMEDIATE,
                    # which holds the database's one write lock until commit, so no other
                    # writer (of any process) inserts between the check and the insert.
                    # PostgreSQL: SHARE ROW EXCLUSIVE conflicts with itself and with the
                    # ROW EXCLUSIVE lock every INSERT takes, so a concurrent first sign-up
                    # waits here until this one commits, and its check (a new snapshot
                    # under READ COMMITTED) then sees this user.
                    if self._db.dialect == "postgresql":
                        await s.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
                    others = await s.scalar(select(UserRow.id).limit(1))
                    row.is_admin = is_admin or others is None
                s.add(row)
                if user_id is not None:
                    await s.flush()
                    if self._db.dialect == "postgresql":
                        # An explicit id doesn't advance the SERIAL sequence; without this
                        # the next ordinary insert would collide with the imported row.
                        await s.execute(
                            text(
                                "SELECT setval(pg_get_serial_sequence('users', 'id'), "
                                "(SELECT MAX(id) FROM users))"
                            )
                        )
        except IntegrityError:
            if await self.get_by_email(email) is not None:
                raise UserExists(email=email) from None
            if user_id is not None and await self.get(user_id) is not None:
                raise Conflict(
                    N_("User id {id} is already taken."),
                    hint=N_("Pick another user id."),
                    id=user_id,
                ) from None
            raise
        logger.info("registry: created user %s%s", row.id, " (admin)" if row.is_admin else "")
        return convert.user(row)

    async def get(self, user_id: int) -> User | None:
        async with self._db.read() as s:
            row = await s.get(UserRow, user_id)
            return None if row is None else convert.user(row)

    async def get_by_email(self, email: str) -> User | None:
        async with self._db.read() as s:
            row = await s.scalar(select(UserRow).where(UserRow.email == normalize_email(email)))
            return None if row is None else convert.user(row)

    async def verify_password(self, email: str, password: str) -> User | None:
        async with self._db.read() as s:
            row = await s.scalar(select(UserRow).where(UserRow.email == normalize_email(email)))
        stored = None if row is None else row.password_hash
        # Hashing takes tens of milliseconds of CPU: keep it off the event loop.
        if not await asyncio.to_thread(credentials.check_password, stored, password):
            return None
        if row is None or stored is None:  # check_password said no already; for mypy
            return None
        if credentials.needs_rehash(stored):
            fresh = await asyncio.to_thread(credentials.hash_password, password)
            async with self._db.write() as s:
                # Only if nobody changed the password meanwhile.
                await s.execute(
                    update(UserRow)
                    .where(UserRow.id == row.id, UserRow.password_hash == stored)
                    .values(password_hash=fresh)
                    .execution_options(synchronize_session=False)
                )
                await logins.restamp(s, row.id, stored, fresh)
            logger.info("registry: rehashed the password of user %s", row.id)
        return convert.user(row)

    async def _set(self, user_id: int, **values: Any) -> None:
        """Update columns of one user; NotFound when there is no such user."""
        async with self._db.write() as s:
            result = await s.execute(
                update(UserRow)
                .where(UserRow.id == user_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if rowcount(result) == 0:
                raise NotFound(
                    N_("No user {id}."),
                    hint=N_("List users with `zapgate users list`."),
                    id=user_id,
                )

    async def set_admin(self, user_id: int, is_admin: bool) -> None:
        await self._set(user_id, is_admin=is_admin)
        logger.info("registry: user %s is_admin=%s", user_id, is_admin)

    async def set_password(self, user_id: int, password: str) -> None:
        """Replace a user's dashboard password (hashed off the event loop). Dashboard
        sessions opened under the old password end (see `logins.password_stamp`)."""
        if not password:
            raise ValidationFailed(N_("password: must not be empty (leave it out for none)"))
        password_hash = await asyncio.to_thread(credentials.hash_password, password)
        await self._set(user_id, password_hash=password_hash)
        logger.info("registry: set the password of user %s", user_id)

    async def set_max_sessions(self, user_id: int, limit: int | None) -> None:
        """How many sessions the user may have; None follows ZAPGATE_MAX_SESSIONS_PER_USER."""
        if limit is not None and limit < 0:
            raise ValidationFailed(
                N_("The session limit must be 0 or more (got {n})."),
                hint=N_("Use 'default' to follow ZAPGATE_MAX_SESSIONS_PER_USER again."),
                n=limit,
            )
        await self._set(user_id, max_sessions=limit)
        logger.info("registry: user %s max_sessions=%s", user_id, limit)

    async def set_lang(self, user_id: int, lang: str | None) -> None:
        """The dashboard language a user picked; None follows the browser again."""
        await self._set(user_id, lang=lang)

    async def count(self) -> int:
        async with self._db.read() as s:
            return int(await s.scalar(select(func.count()).select_from(UserRow)) or 0)

    async def list(self) -> list[User]:
        async with self._db.read() as s:
            return [convert.user(r) for r in await s.scalars(select(UserRow).order_by(UserRow.id))]
