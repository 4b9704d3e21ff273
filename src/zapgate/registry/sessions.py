"""Sessions: lookup, get-or-create, routes, states (a state change emits an event) and
send rates."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zapgate.aio import KeyedLock
from zapgate.domain.ids import derive_client_id, is_valid_client_id, session_dir_for
from zapgate.domain.models import Route, Session
from zapgate.domain.state import SessionState
from zapgate.errors import (
    Conflict,
    NotFound,
    SessionLimitReached,
    SessionNotFound,
    ValidationFailed,
)
from zapgate.i18n import N_
from zapgate.registry import convert, outbox
from zapgate.registry.convert import utcnow
from zapgate.registry.db import Database, rowcount
from zapgate.registry.tables import SessionRow, UserRow
from zapgate.registry.users import UserRepo

logger = logging.getLogger(__name__)

# Attempts at inserting a new session when a freshly derived client id collides.
_CLIENT_ID_ATTEMPTS = 3

# How long a session looked up by (user, name) is answered from memory: every API call
# looks its session up. A change through this process forgets them at once; one made by
# another process (a CLI command, another replica) is seen within this time.
CACHE_SECONDS = 1.0
_CACHE_MAX = 10_000


class _SessionCache:
    """Sessions by (user id, name) for `CACHE_SECONDS`. A lookup that began before a
    change (the generation moved on) is not stored: it may have read the old row."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[float, Session]] = {}
        self.generation = 0

    def get(self, key: tuple[int, str]) -> Session | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: tuple[int, str], session: Session, generation: int) -> None:
        if generation != self.generation:
            return
        if len(self._entries) >= _CACHE_MAX:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + CACHE_SECONDS, session)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()


class SessionRepo:
    def __init__(self, db: Database, users: UserRepo) -> None:
        self._db = db
        self._users = users
        # Serializes get-or-create per (user, name) inside this process.
        self._creating = KeyedLock()
        self._cache = _SessionCache()

    async def get_or_create(
        self,
        user_id: int,
        name: str,
        *,
        engine: str,
        route: Route,
        client_id: str | None = None,
        limit: int | None = None,
    ) -> tuple[Session, bool]:
        """The user's session `name`, created when missing. A new session is refused with
        `session_limit_reached` once the user has as many sessions as their own
        `max_sessions`, or `limit` when they have none; `limit` None (an import) checks no
        limit at all."""
        if client_id is not None and not is_valid_client_id(client_id):
            raise ValidationFailed(
                N_("client_id {client_id!r} is not valid."),
                hint=N_("A client id is 1-64 letters, digits, '-' or '_'."),
                client_id=client_id[:80],
            )
        async with self._creating((user_id, name)):
            existing = await self.get(user_id, name)
            if existing is not None:
                return existing, False
            for _ in range(_CLIENT_ID_ATTEMPTS):
                # Derived from the user id and randomness, never from the name: a name is
                # user input and must never reach a path.
                cid = client_id if client_id is not None else derive_client_id(user_id)
                now = utcnow()
                row = SessionRow(
                    user_id=user_id,
                    name=name,
                    client_id=cid,
                    session_dir=session_dir_for(cid),
                    engine=engine,
                    state=SessionState.STOPPED.value,
                    worker_id=route.worker_id,
                    worker_url=route.worker_url,
                    port=route.port,
                    created_at=now,
                    updated_at=now,
                )
                try:
                    async with self._db.write() as s:
                        await self._check_limit(s, user_id, name, limit)
                        s.add(row)
                except IntegrityError:
                    # Another process created the same (user, name) first, or the client
                    # id is taken: find out which.
                    existing = await self.get(user_id, name)
                    if existing is not None:
                        return existing, False
                    if await self._users.get(user_id) is None:
                        raise NotFound(N_("No user {id}."), id=user_id) from None
                    if client_id is not None:
                        raise Conflict(
                            N_("client_id {client_id!r} already belongs to another session."),
                            hint=N_("Leave client_id out to have one derived."),
                            client_id=client_id,
                        ) from None
                    logger.warning("registry: derived client id %s collided; retrying", cid)
                    continue
                logger.info(
                    "registry: created session u%s/%s as %s on %s",
                    user_id,
                    name,
                    cid,
                    route.worker_id,
                )
                return convert.session(row), True
        raise Conflict(N_("Could not derive a free client id for user {id}."), id=user_id)

    async def _check_limit(
        self, s: AsyncSession, user_id: int, name: str, limit: int | None
    ) -> None:
        if limit is None:
            return
        # Counting and inserting are one transaction that concurrent creators of the same
        # user cannot interleave with. SQLite: write() began with BEGIN IMMEDIATE (the one
        # write lock, held until commit). PostgreSQL: the user's row is locked FOR UPDATE,
        # so a second creator waits here and counts (a new READ COMMITTED snapshot) after
        # the first one committed.
        own = await s.scalar(
            select(UserRow.max_sessions).where(UserRow.id == user_id).with_for_update()
        )
        limit = own if own is not None else limit
        # The session itself doesn't count: created meanwhile, the insert finds it instead.
        count = await s.scalar(
            select(func.count())
            .select_from(SessionRow)
            .where(SessionRow.user_id == user_id, SessionRow.name != name)
        )
        if int(count or 0) >= limit:
            logger.info("registry: user %s is at the session limit (%s)", user_id, limit)
            raise SessionLimitReached(limit=limit)

    async def get(self, user_id: int, name: str) -> Session | None:
        """The user's session `name` (from memory for up to `CACHE_SECONDS`)."""
        key = (user_id, name)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        generation = self._cache.generation
        async with self._db.read() as s:
            row = await s.scalar(
                select(SessionRow).where(SessionRow.user_id == user_id, SessionRow.name == name)
            )
        if row is None:
            return None
        session = convert.session(row)
        self._cache.put(key, session, generation)
        return session

    async def get_by_id(self, session_id: int) -> Session | None:
        async with self._db.read() as s:
            row = await s.get(SessionRow, session_id)
            return None if row is None else convert.session(row)

    async def get_by_client_id(self, client_id: str) -> Session | None:
        async with self._db.read() as s:
            row = await s.scalar(select(SessionRow).where(SessionRow.client_id == client_id))
            return None if row is None else convert.session(row)

    async def find_by_phone(self, phone: str) -> list[Session]:
        async with self._db.read() as s:
            rows = await s.scalars(
                select(SessionRow).where(SessionRow.phone == phone).order_by(SessionRow.id)
            )
            return [convert.session(r) for r in rows]

    async def _update(self, session_id: int, values: dict[str, Any]) -> Session | None:
        """Update one session and read it back in the same transaction."""
        values["updated_at"] = utcnow()
        try:
            async with self._db.write() as s:
                result = await s.execute(
                    update(SessionRow)
                    .where(SessionRow.id == session_id)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if rowcount(result) == 0:
                    return None
                row = await s.get_one(SessionRow, session_id)
                return convert.session(row)
        finally:
            self._cache.clear()  # after the commit: see _SessionCache

    async def update_route(self, session_id: int, route: Route) -> Session:
        updated = await self._update(
            session_id,
            {"worker_id": route.worker_id, "worker_url": route.worker_url, "port": route.port},
        )
        if updated is None:
            raise SessionNotFound(N_("No session {id}."), id=session_id)
        return updated

    async def update_state(
        self,
        session_id: int,
        state: SessionState,
        reason: str | None,
        phone: str | None = None,
    ) -> Session | None:
        state = SessionState(state)

        def job(conn: Connection) -> tuple[Session | None, bool]:
            row = conn.execute(
                select(SessionRow.__table__).where(SessionRow.id == session_id).with_for_update()
            ).first()
            if row is None:
                return None, False
            new_phone = row.phone if phone is None else phone
            if (row.state, row.state_reason, row.phone) == (state.value, reason, new_phone):
                return convert.session(row), False
            conn.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id)
                .values(
                    state=state.value, state_reason=reason, phone=new_phone, updated_at=utcnow()
                )
            )
            outbox.emit(
                conn,
                user_id=row.user_id,
                session_id=session_id,
                session_name=row.name,
                type_="session.status",
                data={"state": state.value, "reason": reason, "phone": new_phone},
            )
            changed = conn.execute(
                select(SessionRow.__table__).where(SessionRow.id == session_id)
            ).one()
            return convert.session(changed), True

        # A state reported again unchanged (every PUT of a running session reports it)
        # leaves the cache alone; a change forgets it after the commit.
        try:
            session, changed = await self._db.batch(job)
        except BaseException:
            self._cache.clear()
            raise
        if changed:
            self._cache.clear()
        return session

    async def clear_phone(self, session_id: int) -> None:
        await self._update(session_id, {"phone": None})

    async def set_send_rate(self, session_id: int, rate: str | None) -> Session | None:
        return await self._update(session_id, {"send_rate": rate})

    async def set_default_country(self, session_id: int, country: str | None) -> Session | None:
        return await self._update(session_id, {"default_country": country})

    async def set_reject_calls(
        self, session_id: int, reject: bool, message: str | None
    ) -> Session | None:
        return await self._update(
            session_id, {"reject_calls": reject, "reject_calls_message": message}
        )

    async def delete(self, session_id: int) -> None:
        # Messages go with it: ON DELETE CASCADE (SQLite enforces it with foreign_keys=ON).
        try:
            async with self._db.write() as s:
                await s.execute(delete(SessionRow).where(SessionRow.id == session_id))
        finally:
            self._cache.clear()
        logger.info("registry: deleted session %s", session_id)

    async def list(self, user_id: int | None = None) -> list[Session]:
        query = select(SessionRow).order_by(SessionRow.user_id, SessionRow.name)
        if user_id is not None:
            query = query.where(SessionRow.user_id == user_id)
        async with self._db.read() as s:
            return [convert.session(r) for r in await s.scalars(query)]
