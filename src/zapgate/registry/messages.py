"""Messages: history (a new message or a status change emits an event), idempotency,
and the outbound queue the sender drains (due, claim, release, expired).

A message has the gateway's id (`id`, the public one) and WhatsApp's (`wa_id`): an
inbound message has the same in both; an outbound one gets its `wa_id` when the engine
sent it (`update_status(..., wa_id=)`), and receipts find it by that
(`update_status_by_wa_id`). Its chat is stored through the session's LID <-> phone map
(`registry/lids.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zapgate.domain.models import MediaMeta, Message, MessageStatus, Session
from zapgate.domain.state import SessionState
from zapgate.errors import SessionNotFound, ValidationFailed
from zapgate.i18n import N_
from zapgate.registry import convert, lids, outbox
from zapgate.registry.convert import as_utc, utcnow
from zapgate.registry.db import Database, rowcount
from zapgate.registry.tables import MessageRow, SessionRow

MAX_PAGE = 1000
DIRECTIONS = ("in", "out")


class MessageRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        session_id: int,
        *,
        id: str,
        direction: str,
        chat: str,
        text: str | None,
        status: MessageStatus,
        idempotency_key: str | None = None,
        idempotency_hash: str | None = None,
        created_at: datetime | None = None,
        scheduled_at: datetime | None = None,
        deadline_at: datetime | None = None,
        media: MediaMeta | None = None,
        wa_id: str | None = None,
        chat_lid: str | None = None,
    ) -> tuple[Message, bool]:
        """Store a message once per id (a repeat returns the first, `created` False).
        `chat` is a phone, a LID or another JID, `chat_lid` the chat's LID when known:
        both go through the session's LID <-> phone map (`registry/lids.py`)."""
        if direction not in DIRECTIONS:
            raise ValidationFailed(
                N_("direction: {direction!r} is not 'in' or 'out'"), direction=direction[:10]
            )
        if direction == "in":
            # Engines repeat inbound messages (a reconnect, a part of a stanza): most
            # repeats are answered without a write. An outbound id is new (the gateway
            # just made it); a rare clash ends in IntegrityError below.
            existing = await self.get(session_id, id)
            if existing is not None:
                return existing, False
        now = utcnow()
        for _ in range(2):
            row = MessageRow(
                session_id=session_id,
                id=id,
                wa_id=wa_id,
                direction=direction,
                text=text,
                status=MessageStatus(status).value,
                idempotency_key=idempotency_key,
                idempotency_hash=idempotency_hash,
                created_at=now if created_at is None else as_utc(created_at),
                updated_at=now,
                scheduled_at=scheduled_at,
                deadline_at=deadline_at,
            )
            if media is not None:
                row.media_type, row.media_mime, row.media_name = (
                    media.type,
                    media.mime,
                    media.filename,
                )
                row.media_size, row.media_ref = media.size, media.ref
            try:
                async with self._db.write() as s:
                    row.chat, row.chat_lid = await lids.resolve(s, session_id, chat, chat_lid)
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
                            data=convert.message_data(row, session.name),
                        )
                return convert.message(row), True
            except IntegrityError:
                # A concurrent insert of the same message id or idempotency key won; or
                # of the same LID mapping (tried again: the map then has it); or the
                # session is gone (foreign key).
                existing = await self.get(session_id, id)
                if existing is None and idempotency_key is not None:
                    existing = await self.get_by_idempotency_key(session_id, idempotency_key)
                if existing is not None:
                    return existing, False
        raise SessionNotFound(N_("No session {id}."), id=session_id)

    async def get(self, session_id: int, id: str) -> Message | None:
        async with self._db.read() as s:
            row = await s.scalar(
                select(MessageRow).where(MessageRow.session_id == session_id, MessageRow.id == id)
            )
            return None if row is None else convert.message(row)

    async def get_by_idempotency_key(self, session_id: int, key: str) -> Message | None:
        async with self._db.read() as s:
            row = await s.scalar(
                select(MessageRow).where(
                    MessageRow.session_id == session_id, MessageRow.idempotency_key == key
                )
            )
            return None if row is None else convert.message(row)

    async def update_status(
        self,
        session_id: int,
        id: str,
        status: MessageStatus,
        reason: str | None = None,
        *,
        wa_id: str | None = None,
    ) -> Message | None:
        """Move the message `id` to `status` (forward only). `wa_id`, WhatsApp's id of it
        once sent, is recorded with it (never replaced)."""
        async with self._db.write() as s:
            if wa_id is not None:
                await s.execute(
                    update(MessageRow)
                    .where(
                        MessageRow.session_id == session_id,
                        MessageRow.id == id,
                        MessageRow.wa_id.is_(None),
                    )
                    .values(wa_id=wa_id)
                    .execution_options(synchronize_session=False)
                )
            return await _move(s, session_id, MessageRow.id == id, status, reason)

    async def update_status_by_wa_id(
        self, session_id: int, wa_id: str, status: MessageStatus
    ) -> Message | None:
        """A receipt: move the message this session sent that WhatsApp knows as `wa_id`."""
        async with self._db.write() as s:
            return await _receipt(s, session_id, wa_id, status)

    async def update_statuses_by_wa_id(
        self, session_id: int, receipts: Sequence[tuple[str, MessageStatus]]
    ) -> list[Message | None]:
        """Several receipts of one session, in order, in one transaction (the journal
        puller applies a page's receipts together)."""
        async with self._db.write() as s:
            return [await _receipt(s, session_id, w, status) for w, status in receipts]

    # the outbound queue

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
        async with self._db.read() as s:
            return [
                (convert.message(m), convert.session(sr))
                for m, sr in (await s.execute(query)).all()
            ]

    async def claim(self, message_pk: int, *, stale_before: datetime) -> bool:
        """Mark a queued (or stale pending) message as being sent; False when another
        sender got it first."""
        async with self._db.write() as s:
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
            return rowcount(result) == 1

    async def release(self, session_id: int, id: str, reason: str) -> Message | None:
        """Put a message whose send did not happen (session not connected, worker away)
        back in the queue; nothing is lost and nothing is sent twice."""
        async with self._db.write() as s:
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
            return None if row is None else convert.message(row)

    async def expired(self, now: datetime, limit: int = 100) -> list[Message]:
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
        async with self._db.read() as s:
            return [convert.message(r) for r in await s.scalars(query)]

    async def list(
        self,
        session_id: int,
        *,
        direction: str | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> tuple[list[Message], int | None]:
        if direction is not None and direction not in DIRECTIONS:
            raise ValidationFailed(
                N_("direction: {direction!r} is not 'in' or 'out'"), direction=direction[:10]
            )
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed(N_("limit: must be between 1 and {max}"), max=MAX_PAGE)
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
        async with self._db.read() as s:
            rows: Sequence[MessageRow] = (await s.scalars(query)).all()
        items = [convert.message(r) for r in rows[:limit]]
        return items, (items[-1].pk if len(rows) > limit else None)


async def _receipt(
    s: AsyncSession, session_id: int, wa_id: str, status: MessageStatus
) -> Message | None:
    """Move the message this session sent that WhatsApp knows as `wa_id`."""
    pk = await s.scalar(
        select(MessageRow.pk)
        .where(
            MessageRow.session_id == session_id,
            MessageRow.wa_id == wa_id,
            MessageRow.direction == "out",
        )
        .order_by(MessageRow.pk.desc())
        .limit(1)
    )
    return None if pk is None else await _move(s, session_id, MessageRow.pk == pk, status, None)


async def _move(
    s: AsyncSession,
    session_id: int,
    which: ColumnElement[bool],
    status: MessageStatus,
    reason: str | None,
) -> Message | None:
    """Move one message of the session to `status` when its rule allows; a change emits
    `message.status` in the same transaction."""
    status = MessageStatus(status)
    # The rule goes into the WHERE clause, so two acks racing can't both read the old
    # status and the lower one land last.
    movable = [old.value for old in MessageStatus if old.may_move_to(status)]
    changed = 0
    if movable:
        result = await s.execute(
            update(MessageRow)
            .where(MessageRow.session_id == session_id, which, MessageRow.status.in_(movable))
            .values(status=status.value, status_reason=reason, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        changed = rowcount(result)
    row = await s.scalar(select(MessageRow).where(MessageRow.session_id == session_id, which))
    if row is not None and changed:
        session = await s.get(SessionRow, session_id)
        if session is not None:
            await outbox.emit(
                s,
                user_id=session.user_id,
                session=session,
                type_="message.status",
                data=convert.message_data(row, session.name),
            )
    return None if row is None else convert.message(row)
