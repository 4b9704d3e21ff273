"""The registry: users, API keys, sessions, messages and journal cursors.

The only place that speaks SQL. Every method is one short unit of work on its own
AsyncSession, and returns frozen domain objects, never ORM rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Result, and_, func, or_, select, text, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from zapgate.aio import KeyedLock
from zapgate.domain.ids import derive_client_id, is_valid_client_id, session_dir_for
from zapgate.domain.media import media_url
from zapgate.domain.models import (
    ApiKey,
    Delivery,
    Event,
    MediaMeta,
    Message,
    MessageStatus,
    Route,
    Session,
    User,
    Webhook,
)
from zapgate.domain.state import SessionState
from zapgate.errors import (
    Conflict,
    NotFound,
    SessionNotFound,
    UserExists,
    ValidationFailed,
)
from zapgate.registry import credentials, migrator, outbox
from zapgate.registry.engine import READ_ONLY, create_engine
from zapgate.registry.tables import (
    ApiKeyRow,
    DeliveryRow,
    EventRow,
    MessageRow,
    SessionRow,
    UserRow,
    WebhookRow,
    WorkerCursorRow,
)

logger = logging.getLogger(__name__)

# Writing last_used_at on every request would turn each authenticated read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_PAGE = 1000
DIRECTIONS = ("in", "out")
# Attempts at inserting a new session when a freshly derived client id collides.
_CLIENT_ID_ATTEMPTS = 3


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive (they are stored in UTC); PostgreSQL aware."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _as_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _rowcount(result: Result[Any]) -> int:
    # DML through AsyncSession.execute returns a CursorResult; the stubs only say Result.
    return cast("CursorResult[Any]", result).rowcount


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _may_move(old: MessageStatus, new: MessageStatus) -> bool:
    """Status only moves forward: acks arrive out of order (a late 'delivered' after
    'read'), and a failure can't undo a delivery."""
    if old is new:
        return False
    if new is MessageStatus.FAILED:
        return old in (MessageStatus.QUEUED, MessageStatus.PENDING, MessageStatus.SENT)
    return old is not MessageStatus.FAILED and new.rank > old.rank


# Row -> domain conversions: the only way data leaves this module.


def _message_data(row: MessageRow, session_name: str) -> dict[str, Any]:
    """What message events carry."""
    media: dict[str, Any] | None = None
    if row.media_type is not None:
        media = {
            "type": row.media_type,
            "mime": row.media_mime,
            "filename": row.media_name,
            "size": row.media_size,
            "url": media_url(session_name, row.id) if row.media_ref else None,
        }
    return {
        "id": row.id,
        "direction": row.direction,
        "chat": row.chat,
        "text": row.text,
        "status": row.status,
        "status_reason": row.status_reason,
        "created_at": as_utc(row.created_at).isoformat(),
        "media": media,
    }


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        is_admin=row.is_admin,
        created_at=as_utc(row.created_at),
        lang=row.lang,
    )


def _api_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        created_at=as_utc(row.created_at),
        last_used_at=_as_utc_or_none(row.last_used_at),
    )


def _session(row: SessionRow) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        client_id=row.client_id,
        session_dir=row.session_dir,
        engine=row.engine,
        state=SessionState(row.state),
        state_reason=row.state_reason,
        phone=row.phone,
        worker_id=row.worker_id,
        worker_url=row.worker_url,
        port=row.port,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        send_rate=row.send_rate,
    )


def _message(row: MessageRow) -> Message:
    return Message(
        pk=row.pk,
        session_id=row.session_id,
        id=row.id,
        direction=row.direction,
        chat=row.chat,
        text=row.text,
        status=MessageStatus(row.status),
        status_reason=row.status_reason,
        idempotency_key=row.idempotency_key,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        scheduled_at=_as_utc_or_none(row.scheduled_at),
        deadline_at=_as_utc_or_none(row.deadline_at),
        media=None
        if row.media_type is None
        else MediaMeta(
            type=row.media_type,
            mime=row.media_mime or "application/octet-stream",
            size=row.media_size or 0,
            filename=row.media_name,
            ref=row.media_ref,
        ),
    )


class Registry:
    """Open with `await Registry.open(url)`; close with `await registry.close()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        self.dialect: str = engine.dialect.name
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        # Serializes get-or-create per (user, name) inside this process.
        self._creating = KeyedLock()

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Registry:
        registry = cls(create_engine(url))
        try:
            if migrate:
                await registry.migrate()
        except BaseException:
            await registry.close()
            raise
        return registry

    async def close(self) -> None:
        await self._engine.dispose()

    async def migrate(self) -> None:
        for attempt in range(5):
            try:
                before = await self.revision()
                await migrator.upgrade(self._engine)
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
        return await migrator.current_revision(self._engine)

    def head_revision(self) -> str:
        return migrator.head_revision()

    async def ping(self) -> None:
        async with self._read() as s:
            await s.execute(text("SELECT 1"))

    # Units of work. Reads are marked so SQLite can start them without the write lock.

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessionmaker() as s:
            await s.connection(execution_options={READ_ONLY: True})
            yield s

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        if self._write_lock is None:
            async with self._sessionmaker() as s, s.begin():
                yield s
            return
        # SQLite has one writer at a time. Queueing our own writers here keeps them out
        # of SQLite's busy handler, which sleeps up to 100 ms per retry and made every
        # write wait behind the others (other processes still meet busy_timeout).
        async with self._write_lock, self._sessionmaker() as s, s.begin():
            yield s

    # users

    async def create_user(
        self,
        email: str,
        password: str | None = None,
        *,
        is_admin: bool = False,
        user_id: int | None = None,
    ) -> User:
        email = normalize_email(email)
        if not email:
            raise ValidationFailed("email: must not be empty")
        if password is not None and not password:
            raise ValidationFailed("password: must not be empty (leave it out for none)")
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
            async with self._write() as s:
                s.add(row)
                if user_id is not None:
                    await s.flush()
                    if self.dialect == "postgresql":
                        # An explicit id doesn't advance the SERIAL sequence; without this
                        # the next ordinary insert would collide with the imported row.
                        await s.execute(
                            text(
                                "SELECT setval(pg_get_serial_sequence('users', 'id'), "
                                "(SELECT MAX(id) FROM users))"
                            )
                        )
        except IntegrityError:
            if await self.get_user_by_email(email) is not None:
                raise UserExists(f"A user with e-mail {email!r} already exists.") from None
            if user_id is not None and await self.get_user(user_id) is not None:
                raise Conflict(
                    f"User id {user_id} is already taken.", hint="Pick another user id."
                ) from None
            raise
        logger.info("registry: created user %s%s", row.id, " (admin)" if is_admin else "")
        return _user(row)

    async def get_user(self, user_id: int) -> User | None:
        async with self._read() as s:
            row = await s.get(UserRow, user_id)
            return None if row is None else _user(row)

    async def get_user_by_email(self, email: str) -> User | None:
        async with self._read() as s:
            row = await s.scalar(select(UserRow).where(UserRow.email == normalize_email(email)))
            return None if row is None else _user(row)

    async def verify_password(self, email: str, password: str) -> User | None:
        async with self._read() as s:
            row = await s.scalar(select(UserRow).where(UserRow.email == normalize_email(email)))
        stored = None if row is None else row.password_hash
        # Hashing takes tens of milliseconds of CPU: keep it off the event loop.
        if not await asyncio.to_thread(credentials.check_password, stored, password):
            return None
        if row is None or stored is None:  # check_password said no already; for mypy
            return None
        if credentials.needs_rehash(stored):
            fresh = await asyncio.to_thread(credentials.hash_password, password)
            async with self._write() as s:
                # Only if nobody changed the password meanwhile.
                await s.execute(
                    update(UserRow)
                    .where(UserRow.id == row.id, UserRow.password_hash == stored)
                    .values(password_hash=fresh)
                    .execution_options(synchronize_session=False)
                )
            logger.info("registry: rehashed the password of user %s", row.id)
        return _user(row)

    async def set_admin(self, user_id: int, is_admin: bool) -> None:
        async with self._write() as s:
            result = await s.execute(
                update(UserRow)
                .where(UserRow.id == user_id)
                .values(is_admin=is_admin)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(result) == 0:
                raise NotFound(f"No user {user_id}.", hint="List users with `zapgate users`.")
        logger.info("registry: user %s is_admin=%s", user_id, is_admin)

    # -- dashboard: user settings and listings (issue 4) --------------------------------------

    async def set_user_lang(self, user_id: int, lang: str | None) -> None:
        """The dashboard language a user picked; None follows the browser again."""
        async with self._write() as s:
            result = await s.execute(
                update(UserRow)
                .where(UserRow.id == user_id)
                .values(lang=lang)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(result) == 0:
                raise NotFound(f"No user {user_id}.")

    async def count_users(self) -> int:
        async with self._read() as s:
            return int(await s.scalar(select(func.count()).select_from(UserRow)) or 0)

    async def list_users(self) -> list[User]:
        async with self._read() as s:
            return [_user(r) for r in await s.scalars(select(UserRow).order_by(UserRow.id))]

    # -- end of dashboard section --------------------------------------------------------------

    # api keys

    async def create_api_key(self, user_id: int, name: str = "default") -> tuple[ApiKey, str]:
        key = credentials.new_api_key()
        row = ApiKeyRow(
            user_id=user_id,
            name=name.strip() or "default",
            prefix=key[: credentials.DISPLAY_PREFIX_CHARS],
            key_hash=credentials.hash_api_key(key),
            created_at=utcnow(),
        )
        try:
            async with self._write() as s:
                s.add(row)
        except IntegrityError:
            if await self.get_user(user_id) is None:
                raise NotFound(f"No user {user_id}.") from None
            raise
        logger.info("registry: created API key %s (%s) for user %s", row.id, row.prefix, user_id)
        return _api_key(row), key

    async def authenticate_api_key(self, key: str) -> User | None:
        if not key.startswith(credentials.API_KEY_PREFIX):
            return None
        if len(key) > credentials.MAX_API_KEY_CHARS:
            return None
        async with self._read() as s:
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
        last = _as_utc_or_none(api_key.last_used_at)
        if last is None or now - last >= LAST_USED_RESOLUTION:
            await self._touch_api_key(api_key.id, now)
        return _user(user)

    async def _touch_api_key(self, key_id: int, now: datetime) -> None:
        try:
            async with self._write() as s:
                await s.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == key_id)
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
        except OperationalError as exc:
            # Bookkeeping only: a busy database must not turn a valid key into a 500.
            logger.warning("registry: could not record use of API key %s: %s", key_id, exc)

    async def list_api_keys(self, user_id: int) -> list[ApiKey]:
        async with self._read() as s:
            rows = await s.scalars(
                select(ApiKeyRow)
                .where(ApiKeyRow.user_id == user_id, ApiKeyRow.revoked_at.is_(None))
                .order_by(ApiKeyRow.id)
            )
            return [_api_key(r) for r in rows]

    async def revoke_api_key(self, user_id: int, key_id: int) -> bool:
        async with self._write() as s:
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
            revoked = _rowcount(result) > 0
        if revoked:
            logger.info("registry: revoked API key %s of user %s", key_id, user_id)
        return revoked

    # sessions

    async def get_or_create_session(
        self,
        user_id: int,
        name: str,
        *,
        engine: str,
        route: Route,
        client_id: str | None = None,
    ) -> tuple[Session, bool]:
        if client_id is not None and not is_valid_client_id(client_id):
            raise ValidationFailed(
                f"client_id {client_id[:80]!r} is not valid.",
                hint="A client id is 1-64 letters, digits, '-' or '_'.",
            )
        async with self._creating((user_id, name)):
            existing = await self.get_session(user_id, name)
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
                    async with self._write() as s:
                        s.add(row)
                except IntegrityError:
                    # Another process created the same (user, name) first, or the client
                    # id is taken: find out which.
                    existing = await self.get_session(user_id, name)
                    if existing is not None:
                        return existing, False
                    if await self.get_user(user_id) is None:
                        raise NotFound(f"No user {user_id}.") from None
                    if client_id is not None:
                        raise Conflict(
                            f"client_id {client_id!r} already belongs to another session.",
                            hint="Leave client_id out to have one derived.",
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
                return _session(row), True
        raise Conflict(f"Could not derive a free client id for user {user_id}.")

    async def get_session(self, user_id: int, name: str) -> Session | None:
        async with self._read() as s:
            row = await s.scalar(
                select(SessionRow).where(SessionRow.user_id == user_id, SessionRow.name == name)
            )
            return None if row is None else _session(row)

    async def get_session_by_id(self, session_id: int) -> Session | None:
        async with self._read() as s:
            row = await s.get(SessionRow, session_id)
            return None if row is None else _session(row)

    async def get_session_by_client_id(self, client_id: str) -> Session | None:
        async with self._read() as s:
            row = await s.scalar(select(SessionRow).where(SessionRow.client_id == client_id))
            return None if row is None else _session(row)

    async def find_sessions_by_phone(self, phone: str) -> list[Session]:
        async with self._read() as s:
            rows = await s.scalars(
                select(SessionRow).where(SessionRow.phone == phone).order_by(SessionRow.id)
            )
            return [_session(r) for r in rows]

    async def list_sessions(self, user_id: int | None = None) -> list[Session]:
        query = select(SessionRow).order_by(SessionRow.user_id, SessionRow.name)
        if user_id is not None:
            query = query.where(SessionRow.user_id == user_id)
        async with self._read() as s:
            return [_session(r) for r in await s.scalars(query)]

    async def _update_session(self, session_id: int, values: dict[str, Any]) -> Session | None:
        """Update one session and read it back in the same transaction."""
        values["updated_at"] = utcnow()
        async with self._write() as s:
            result = await s.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(result) == 0:
                return None
            row = await s.get_one(SessionRow, session_id)
            return _session(row)

    async def update_route(self, session_id: int, route: Route) -> Session:
        updated = await self._update_session(
            session_id,
            {"worker_id": route.worker_id, "worker_url": route.worker_url, "port": route.port},
        )
        if updated is None:
            raise SessionNotFound(f"No session {session_id}.")
        return updated

    async def update_state(
        self,
        session_id: int,
        state: SessionState,
        reason: str | None,
        phone: str | None = None,
    ) -> Session | None:
        state = SessionState(state)
        async with self._write() as s:
            row = await s.get(SessionRow, session_id, with_for_update=True)
            if row is None:
                return None
            new_phone = row.phone if phone is None else phone
            if (row.state, row.state_reason, row.phone) != (state.value, reason, new_phone):
                row.state, row.state_reason, row.phone = state.value, reason, new_phone
                row.updated_at = utcnow()
                await outbox.emit(
                    s,
                    user_id=row.user_id,
                    session=row,
                    type_="session.status",
                    data={"state": state.value, "reason": reason, "phone": new_phone},
                )
            return _session(row)

    async def clear_phone(self, session_id: int) -> None:
        await self._update_session(session_id, {"phone": None})

    async def delete_session(self, session_id: int) -> None:
        # Messages go with it: ON DELETE CASCADE (SQLite enforces it with foreign_keys=ON).
        async with self._write() as s:
            await s.execute(sql_delete(SessionRow).where(SessionRow.id == session_id))
        logger.info("registry: deleted session %s", session_id)

    # messages

    async def add_message(
        self,
        session_id: int,
        *,
        id: str,
        direction: str,
        chat: str,
        text: str | None,
        status: MessageStatus,
        idempotency_key: str | None = None,
        created_at: datetime | None = None,
        scheduled_at: datetime | None = None,
        deadline_at: datetime | None = None,
        media: MediaMeta | None = None,
    ) -> tuple[Message, bool]:
        if direction not in DIRECTIONS:
            raise ValidationFailed(f"direction: {direction[:10]!r} is not 'in' or 'out'")
        existing = await self.get_message(session_id, id)
        if existing is not None:
            return existing, False
        now = utcnow()
        row = MessageRow(
            session_id=session_id,
            id=id,
            direction=direction,
            chat=chat,
            text=text,
            status=MessageStatus(status).value,
            idempotency_key=idempotency_key,
            created_at=now if created_at is None else as_utc(created_at),
            updated_at=now,
            scheduled_at=scheduled_at,
            deadline_at=deadline_at,
        )
        if media is not None:
            row.media_type, row.media_mime, row.media_name = media.type, media.mime, media.filename
            row.media_size, row.media_ref = media.size, media.ref
        try:
            async with self._write() as s:
                s.add(row)
                await s.flush()
                session = await s.get(SessionRow, session_id)
                if session is not None:
                    type_ = "message.received" if direction == "in" else "message.status"
                    await outbox.emit(
                        s,
                        user_id=session.user_id,
                        session=session,
                        type_=type_,
                        data=_message_data(row, session.name),
                    )
        except IntegrityError:
            # A concurrent insert of the same message id or idempotency key won; or the
            # session is gone (foreign key).
            existing = await self.get_message(session_id, id)
            if existing is None and idempotency_key is not None:
                existing = await self.get_message_by_idempotency_key(session_id, idempotency_key)
            if existing is not None:
                return existing, False
            raise SessionNotFound(f"No session {session_id}.") from None
        return _message(row), True

    async def get_message(self, session_id: int, id: str) -> Message | None:
        async with self._read() as s:
            row = await s.scalar(
                select(MessageRow).where(MessageRow.session_id == session_id, MessageRow.id == id)
            )
            return None if row is None else _message(row)

    async def get_message_by_idempotency_key(self, session_id: int, key: str) -> Message | None:
        async with self._read() as s:
            row = await s.scalar(
                select(MessageRow).where(
                    MessageRow.session_id == session_id, MessageRow.idempotency_key == key
                )
            )
            return None if row is None else _message(row)

    async def update_message_status(
        self,
        session_id: int,
        id: str,
        status: MessageStatus,
        reason: str | None = None,
    ) -> Message | None:
        status = MessageStatus(status)
        # The rule goes into the WHERE clause, so two acks racing can't both read the old
        # status and the lower one land last.
        movable = [old.value for old in MessageStatus if _may_move(old, status)]
        async with self._write() as s:
            changed = 0
            if movable:
                result = await s.execute(
                    update(MessageRow)
                    .where(
                        MessageRow.session_id == session_id,
                        MessageRow.id == id,
                        MessageRow.status.in_(movable),
                    )
                    .values(status=status.value, status_reason=reason, updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
                changed = _rowcount(result)
            row = await s.scalar(
                select(MessageRow).where(MessageRow.session_id == session_id, MessageRow.id == id)
            )
            if row is not None and changed:
                session = await s.get(SessionRow, session_id)
                if session is not None:
                    await outbox.emit(
                        s,
                        user_id=session.user_id,
                        session=session,
                        type_="message.status",
                        data=_message_data(row, session.name),
                    )
            return None if row is None else _message(row)

    async def list_messages(
        self,
        session_id: int,
        *,
        direction: str | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> tuple[list[Message], int | None]:
        if direction is not None and direction not in DIRECTIONS:
            raise ValidationFailed(f"direction: {direction[:10]!r} is not 'in' or 'out'")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed(f"limit: must be between 1 and {MAX_PAGE}")
        query = (
            select(MessageRow)
            .where(MessageRow.session_id == session_id)
            .order_by(MessageRow.pk.desc())
            .limit(limit + 1)  # one extra row says whether there is a next page
        )
        if direction is not None:
            query = query.where(MessageRow.direction == direction)
        if before is not None:
            query = query.where(MessageRow.pk < before)
        async with self._read() as s:
            rows: Sequence[MessageRow] = (await s.scalars(query)).all()
        items = [_message(r) for r in rows[:limit]]
        return items, (items[-1].pk if len(rows) > limit else None)

    # cursors of the worker journals the web tier pulls

    async def get_cursor(self, worker_key: str) -> int:
        async with self._read() as s:
            row = await s.get(WorkerCursorRow, worker_key)
            return 0 if row is None else row.cursor

    async def set_cursor(self, worker_key: str, cursor: int) -> None:
        # Update-then-insert rather than a dialect-specific upsert; a concurrent insert
        # surfaces as IntegrityError and the second attempt updates instead.
        for attempt in range(2):
            try:
                async with self._write() as s:
                    result = await s.execute(
                        update(WorkerCursorRow)
                        .where(WorkerCursorRow.worker_key == worker_key)
                        .values(cursor=cursor, updated_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
                    if _rowcount(result) == 0:
                        s.add(
                            WorkerCursorRow(
                                worker_key=worker_key, cursor=cursor, updated_at=utcnow()
                            )
                        )
                return
            except IntegrityError:
                if attempt:
                    raise

    # -- events: outbox, webhooks, deliveries, outbound queue, retention -----------------------

    async def record_event(self, session_id: int, type_: str, data: dict[str, Any]) -> None:
        """An event that changes no row of ours (a new QR): only the outbox is written."""
        async with self._write() as s:
            session = await s.get(SessionRow, session_id)
            if session is not None:
                await outbox.emit(
                    s, user_id=session.user_id, session=session, type_=type_, data=data
                )

    async def list_events(
        self, user_id: int, *, session_id: int | None, after: int, limit: int = 100
    ) -> list[Event]:
        query = (
            select(EventRow)
            .where(EventRow.user_id == user_id, EventRow.seq > after)
            .order_by(EventRow.seq)
            .limit(limit)
        )
        if session_id is not None:
            query = query.where(EventRow.session_id == session_id)
        async with self._read() as s:
            return [outbox.event(r) for r in await s.scalars(query)]

    async def create_webhook(
        self, user_id: int, *, url: str, secret: str, events: Sequence[str]
    ) -> Webhook:
        row = WebhookRow(
            user_id=user_id,
            url=url,
            secret=secret,
            events=" ".join(events),
            enabled=True,
            created_at=utcnow(),
        )
        async with self._write() as s:
            s.add(row)
        return outbox.webhook(row)

    async def list_webhooks(self, user_id: int) -> list[Webhook]:
        async with self._read() as s:
            rows = await s.scalars(
                select(WebhookRow).where(WebhookRow.user_id == user_id).order_by(WebhookRow.id)
            )
            return [outbox.webhook(r) for r in rows]

    async def get_webhook(self, user_id: int, webhook_id: int) -> Webhook | None:
        async with self._read() as s:
            row = await s.get(WebhookRow, webhook_id)
            return None if row is None or row.user_id != user_id else outbox.webhook(row)

    async def delete_webhook(self, user_id: int, webhook_id: int) -> bool:
        async with self._write() as s:
            result = await s.execute(
                sql_delete(WebhookRow).where(
                    WebhookRow.id == webhook_id, WebhookRow.user_id == user_id
                )
            )
            return _rowcount(result) > 0

    async def disable_webhook(self, webhook_id: int, reason: str) -> None:
        """Switch a webhook off and close its pending deliveries (410 Gone)."""
        now = utcnow()
        async with self._write() as s:
            await s.execute(
                update(WebhookRow)
                .where(WebhookRow.id == webhook_id)
                .values(enabled=False, disabled_reason=reason)
            )
            await s.execute(
                update(DeliveryRow)
                .where(DeliveryRow.webhook_id == webhook_id, DeliveryRow.status == "pending")
                .values(status="cancelled", last_error=reason, updated_at=now)
            )

    async def ping_webhook(self, user_id: int, webhook_id: int) -> Event:
        """Queue a `webhook.ping` event for this one webhook."""
        async with self._write() as s:
            row = await outbox.emit(
                s,
                user_id=user_id,
                session=None,
                type_=outbox.PING_TYPE,
                data={"webhook_id": webhook_id},
                only_webhook=webhook_id,
            )
            return outbox.event(row)

    async def webhooks_with_due_deliveries(self, now: datetime) -> list[Webhook]:
        query = select(WebhookRow).where(
            WebhookRow.enabled,
            WebhookRow.id.in_(
                select(DeliveryRow.webhook_id).where(
                    DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now
                )
            ),
        )
        async with self._read() as s:
            return [outbox.webhook(r) for r in await s.scalars(query)]

    async def pending_deliveries(
        self, webhook_id: int, limit: int = 50
    ) -> list[tuple[Delivery, Event]]:
        """The webhook's pending deliveries, oldest event first (delivery order)."""
        query = (
            select(DeliveryRow, EventRow)
            .join(EventRow, EventRow.seq == DeliveryRow.event_seq)
            .where(DeliveryRow.webhook_id == webhook_id, DeliveryRow.status == "pending")
            .order_by(DeliveryRow.event_seq)
            .limit(limit)
        )
        async with self._read() as s:
            rows = (await s.execute(query)).all()
            return [(outbox.delivery(d, e), outbox.event(e)) for d, e in rows]

    async def update_delivery(
        self,
        delivery_id: int,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime,
        status_code: int | None,
        error: str | None,
    ) -> None:
        async with self._write() as s:
            await s.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id)
                .values(
                    status=status,
                    attempts=attempts,
                    next_attempt_at=next_attempt_at,
                    last_status_code=status_code,
                    last_error=error,
                    updated_at=utcnow(),
                )
            )

    async def list_deliveries(
        self, user_id: int, webhook_id: int, *, limit: int = 50
    ) -> list[Delivery]:
        query = (
            select(DeliveryRow, EventRow)
            .join(EventRow, EventRow.seq == DeliveryRow.event_seq)
            .join(WebhookRow, WebhookRow.id == DeliveryRow.webhook_id)
            .where(DeliveryRow.webhook_id == webhook_id, WebhookRow.user_id == user_id)
            .order_by(DeliveryRow.id.desc())
            .limit(limit)
        )
        async with self._read() as s:
            return [outbox.delivery(d, e) for d, e in (await s.execute(query)).all()]

    async def set_send_rate(self, session_id: int, rate: str | None) -> Session | None:
        return await self._update_session(session_id, {"send_rate": rate})

    async def due_outbound(
        self,
        now: datetime,
        *,
        stale_before: datetime,
        session_id: int | None = None,
        limit: int = 100,
    ) -> list[tuple[Message, Session]]:
        """Outbound messages ready to go: queued and due, on a CONNECTED session; or
        claimed (`pending`) by a sender that died before finishing (claim older than
        `stale_before`)."""
        query = (
            select(MessageRow, SessionRow)
            .join(SessionRow, SessionRow.id == MessageRow.session_id)
            .where(
                MessageRow.direction == "out",
                SessionRow.state == SessionState.CONNECTED.value,
                or_(
                    and_(
                        MessageRow.status == MessageStatus.QUEUED.value,
                        or_(MessageRow.scheduled_at.is_(None), MessageRow.scheduled_at <= now),
                    ),
                    and_(
                        MessageRow.status == MessageStatus.PENDING.value,
                        MessageRow.updated_at < stale_before,
                    ),
                ),
            )
            .order_by(MessageRow.pk)
            .limit(limit)
        )
        if session_id is not None:
            query = query.where(MessageRow.session_id == session_id)
        async with self._read() as s:
            return [(_message(m), _session(sr)) for m, sr in (await s.execute(query)).all()]

    async def claim_message(self, message_pk: int, *, stale_before: datetime) -> bool:
        """Mark a queued (or stale pending) message as being sent; False when another
        sender got it first."""
        async with self._write() as s:
            result = await s.execute(
                update(MessageRow)
                .where(
                    MessageRow.pk == message_pk,
                    or_(
                        MessageRow.status == MessageStatus.QUEUED.value,
                        and_(
                            MessageRow.status == MessageStatus.PENDING.value,
                            MessageRow.updated_at < stale_before,
                        ),
                    ),
                )
                .values(status=MessageStatus.PENDING.value, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return _rowcount(result) == 1

    async def expired_outbound(self, now: datetime, limit: int = 100) -> list[Message]:
        query = (
            select(MessageRow)
            .where(
                MessageRow.direction == "out",
                MessageRow.status.in_([MessageStatus.QUEUED.value, MessageStatus.PENDING.value]),
                MessageRow.deadline_at.is_not(None),
                MessageRow.deadline_at < now,
            )
            .order_by(MessageRow.pk)
            .limit(limit)
        )
        async with self._read() as s:
            return [_message(r) for r in await s.scalars(query)]

    async def purge(self, *, messages_before: datetime, events_before: datetime) -> tuple[int, int]:
        """Retention: drop finished messages and events older than the cut-offs (queued
        and in-flight messages are kept; deliveries go with their events)."""
        async with self._write() as s:
            m = await s.execute(
                sql_delete(MessageRow).where(
                    MessageRow.created_at < messages_before,
                    MessageRow.status.not_in(
                        [MessageStatus.QUEUED.value, MessageStatus.PENDING.value]
                    ),
                )
            )
            e = await s.execute(sql_delete(EventRow).where(EventRow.occurred_at < events_before))
            return _rowcount(m), _rowcount(e)

    async def release_message(self, session_id: int, id: str, reason: str) -> Message | None:
        """Put a message whose send did not happen (session not connected, worker away)
        back in the queue; nothing is lost and nothing is sent twice."""
        async with self._write() as s:
            await s.execute(
                update(MessageRow)
                .where(
                    MessageRow.session_id == session_id,
                    MessageRow.id == id,
                    MessageRow.status == MessageStatus.PENDING.value,
                )
                .values(
                    status=MessageStatus.QUEUED.value, status_reason=reason, updated_at=utcnow()
                )
                .execution_options(synchronize_session=False)
            )
            row = await s.scalar(
                select(MessageRow).where(MessageRow.session_id == session_id, MessageRow.id == id)
            )
            return None if row is None else _message(row)

    async def mark_delivered(self, delivered: Sequence[tuple[int, int, int]]) -> None:
        """Record successful deliveries in one transaction: (delivery id, attempts, code)."""
        if not delivered:
            return
        now = utcnow()
        async with self._write() as s:
            for delivery_id, attempts, code in delivered:
                await s.execute(
                    update(DeliveryRow)
                    .where(DeliveryRow.id == delivery_id)
                    .values(
                        status="delivered",
                        attempts=attempts,
                        next_attempt_at=now,
                        last_status_code=code,
                        last_error=None,
                        updated_at=now,
                    )
                )
