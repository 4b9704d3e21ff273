"""API keys: shown once at creation, only their hash stored; authenticate, list, revoke."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from zapgate.domain.models import ApiKey, User
from zapgate.errors import NotFound
from zapgate.i18n import N_
from zapgate.registry import convert, credentials
from zapgate.registry.convert import as_utc_or_none, utcnow
from zapgate.registry.db import Database, rowcount
from zapgate.registry.tables import ApiKeyRow, UserRow
from zapgate.registry.users import UserRepo

logger = logging.getLogger(__name__)

# Writing last_used_at on every request would turn each authenticated read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class KeyRepo:
    def __init__(self, db: Database, users: UserRepo) -> None:
        self._db = db
        self._users = users

    async def create(self, user_id: int, name: str = "default") -> tuple[ApiKey, str]:
        key = credentials.new_api_key()
        row = ApiKeyRow(
            user_id=user_id,
            name=name.strip() or "default",
            prefix=key[: credentials.DISPLAY_PREFIX_CHARS],
            key_hash=credentials.hash_api_key(key),
            created_at=utcnow(),
        )
        try:
            async with self._db.write() as s:
                s.add(row)
        except IntegrityError:
            if await self._users.get(user_id) is None:
                raise NotFound(N_("No user {id}."), id=user_id) from None
            raise
        logger.info("registry: created API key %s (%s) for user %s", row.id, row.prefix, user_id)
        return convert.api_key(row), key

    async def authenticate(self, key: str) -> User | None:
        if not key.startswith(credentials.API_KEY_PREFIX):
            return None
        if len(key) > credentials.MAX_API_KEY_CHARS:
            return None
        async with self._db.read() as s:
            found = (
                await s.execute(
                    select(ApiKeyRow, UserRow)
                    .join(UserRow, UserRow.id == ApiKeyRow.user_id)
                    .where(
                        ApiKeyRow.key_hash == credentials.hash_api_key(key),
                        ApiKeyRow.revoked_at.is_(None),
                    )
                )
            ).first()
        if found is None:
            return None
        api_key, user = found
        now = utcnow()
        last = as_utc_or_none(api_key.last_used_at)
        if last is None or now - last >= LAST_USED_RESOLUTION:
            await self._touch(api_key.id, now)
        return convert.user(user)

    async def _touch(self, key_id: int, now: datetime) -> None:
        try:
            async with self._db.write() as s:
                await s.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == key_id)
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
        except OperationalError as exc:
            # Bookkeeping only: a busy database must not turn a valid key into a 500.
            logger.warning("registry: could not record use of API key %s: %s", key_id, exc)

    async def revoke(self, user_id: int, key_id: int) -> bool:
        async with self._db.write() as s:
            result = await s.execute(
                update(ApiKeyRow)
                .where(
                    ApiKeyRow.id == key_id,
                    ApiKeyRow.user_id == user_id,
                    ApiKeyRow.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            revoked = rowcount(result) > 0
        if revoked:
            logger.info("registry: revoked API key %s of user %s", key_id, user_id)
        return revoked

    async def list(self, user_id: int) -> list[ApiKey]:
        async with self._db.read() as s:
            rows = await s.scalars(
                select(ApiKeyRow)
                .where(ApiKeyRow.user_id == user_id, ApiKeyRow.revoked_at.is_(None))
                .order_by(ApiKeyRow.id)
            )
            return [convert.api_key(r) for r in rows]
