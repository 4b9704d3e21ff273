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
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Connection,
    Table,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from zapgate.domain.models import MediaMeta, Message, MessageStatus, Session
from zapgate.domain.state import SessionState
from zapgate.errors import SessionNotFound, ValidationFailed
from zapgate.i18n import N_
from zapgate.registry import convert, lids, outbox
from zapgate.registry.convert import as_utc, utcnow
from zapgate.registry.db import Database
from zapgate.registry.prepared import Prepared
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
        now = utcnow()
        values: dict[str, Any] = {
            "session_id": session_id,
            "id": id,
            "wa_id": wa_id,
            "direction": direction,
            "text": text,
            "status": MessageStatus(status).value,
            "idempotency_key": idempotency_key,
            "idempotency_hash": idempotency_hash,
            "created_at": now if created_at is None else as_utc(created_at),
            "updated_at": now,
            "scheduled_at": scheduled_at,
            "deadline_at": deadline_at,
        }
        if media is not None:
            values.update(
                media_type=media.type,
                media_mime=media.mime,
                media_name=media.filename,
                media_size=media.size,
                media_ref=media.ref,
            )
        for _ in range(2):
            try:
                return await self._db.batch(lambda conn: _insert(conn, values, chat, chat_lid))
            except IntegrityError:
                # A concurrent insert (another process) of the same message id or
                # idempotency key won; or of the same LID mapping (tried again: the map
                # then has it); or the session is gone (foreign key).
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

        def job(conn: Connection) -> Message | None:
            if wa_id is not None:
                _SET_WA_ID.run(conn, {"sid": session_id, "mid": id, "wa_id": wa_id})
            return _move(conn, session_id, id, status, reason)

        return await self._db.batch(job)

    async def update_status_by_wa_id(
        self, session_id: int, wa_id: str, status: MessageStatus
    ) -> Message | None:
        """A receipt: move the message this session sent that WhatsApp knows as `wa_id`."""
        return await self._db.batch(lambda conn: _receipt(conn, session_id, wa_id, status))

    async def update_statuses_by_wa_id(
        self, session_id: int, receipts: Sequence[tuple[str, MessageStatus]]
    ) -> list[Message | None]:
        """Several receipts of one session, in order, in one job (the journal puller
        applies a page's receipts together)."""
        return await self._db.batch(
            lambda conn: [_receipt(conn, session_id, w, status) for w, status in receipts]
        )

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
        claim = (
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
        )
        return await self._db.batch(lambda conn: conn.execute(claim).rowcount == 1)

    async def release(self, session_id: int, id: str, reason: str) -> Message | None:
        """Put a message whose send did not happen (session not connected, worker away)
        back in the queue; nothing is lost and nothing is sent twice."""

        def job(conn: Connection) -> Message | None:
            conn.execute(
                update(MessageRow)
                .where(
                    MessageRow.session_id == session_id,
                    MessageRow.id == id,
                    MessageRow.status == MessageStatus.PENDING.value,
                )
                .values(
                    status=MessageStatus.QUEUED.value, status_reason=reason, updated_at=utcnow()
                )
            )
            row = _BY_ID.first(conn, {"sid": session_id, "mid": id})
            return None if row is None else convert.message(row)

        return await self._db.batch(job)

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


_M = cast(Table, MessageRow.__table__)
_SID: BindParameter[int] = bindparam("sid")
# Hot statements, prepared (`registry/prepared.py`).
_BY_ID = Prepared(select(_M).where(_M.c.session_id == _SID, _M.c.id == bindparam("mid")))
_BY_PK = Prepared(select(_M).where(_M.c.session_id == _SID, _M.c.pk == bindparam("pk")))
_PK_BY_WA_ID = Prepared(
    select(_M.c.pk)
    .where(_M.c.session_id == _SID, _M.c.wa_id == bindparam("wa_id"), _M.c.direction == "out")
    .order_by(_M.c.pk.desc())
    .limit(1)
)
_INSERT = Prepared(
    insert(_M).values({c: bindparam(c.key) for c in _M.c if c.key != "pk"}).returning(*_M.c)
)
_SET_WA_ID = Prepared(
    update(_M)
    .where(_M.c.session_id == _SID, _M.c.id == bindparam("mid"), _M.c.wa_id.is_(None))
    .values(wa_id=bindparam("wa_id"))
)
_COLUMNS = [c.key for c in _M.c if c.key != "pk"]


def _moves(which: str) -> dict[MessageStatus, Prepared]:
    """Per target status, the UPDATE that moves one message (by `mid` or `pk`) there if
    its rule allows: the rule is in the WHERE clause, so two acks racing can't both read
    the old status and the lower one land last."""
    key = _M.c.id == bindparam("mid") if which == "id" else _M.c.pk == bindparam("pk")
    moves = {}
    for status in MessageStatus:
        movable = [old.value for old in MessageStatus if old.may_move_to(status)]
        if movable:
            moves[status] = Prepared(
                update(_M)
                .where(_M.c.session_id == _SID, key, or_(*(_M.c.status == old for old in movable)))
                .values(
                    status=status.value,
                    status_reason=bindparam("reason"),
                    updated_at=bindparam("now"),
                )
                .returning(*_M.c)
            )
    return moves


_MOVE_BY_ID, _MOVE_BY_PK = _moves("id"), _moves("pk")


def _insert(
    conn: Connection, values: dict[str, Any], chat: str, chat_lid: str | None
) -> tuple[Message, bool]:
    """Store a message once per id, with its event. Engines repeat inbound messages (a
    reconnect, a part of a stanza): a repeat is answered with the stored one. An
    outbound id is new (the gateway just made it); a rare clash is an IntegrityError."""
    session_id = values["session_id"]
    if values["direction"] == "in":
        existing = _BY_ID.first(conn, {"sid": session_id, "mid": values["id"]})
        if existing is not None:
            return convert.message(existing), False
    session = outbox.session_of(conn, session_id)
    if session is None:
        raise SessionNotFound(N_("No session {id}."), id=session_id)
    params = dict.fromkeys(_COLUMNS)
    params.update(values)
    params["chat"], params["chat_lid"] = lids.resolve(conn, session_id, chat, chat_lid)
    row = _INSERT.one(conn, params)
    outbox.emit(
        conn,
        user_id=session.user_id,
        session_id=session_id,
        session_name=session.name,
        type_="message.received" if values["direction"] == "in" else "message.status",
        data=convert.message_data(row, session.name),
    )
    return convert.message(row), True


def _receipt(
    conn: Connection, session_id: int, wa_id: str, status: MessageStatus
) -> Message | None:
    """Move the message this session sent that WhatsApp knows as `wa_id`."""
    pk = _PK_BY_WA_ID.scalar(conn, {"sid": session_id, "wa_id": wa_id})
    return None if pk is None else _move(conn, session_id, pk, status, None)


def _move(
    conn: Connection,
    session_id: int,
    which: str | int,
    status: MessageStatus,
    reason: str | None,
) -> Message | None:
    """Move one message of the session (`which`: its id, or its pk) to `status` when its
    rule allows; a change emits `message.status` in the same transaction."""
    status = MessageStatus(status)
    by_id = isinstance(which, str)
    key = {"sid": session_id, "mid" if by_id else "pk": which}
    move = (_MOVE_BY_ID if by_id else _MOVE_BY_PK).get(status)
    row = None if move is None else move.first(conn, {**key, "reason": reason, "now": utcnow()})
    if row is None:  # not moved: as it is
        row = (_BY_ID if by_id else _BY_PK).first(conn, key)
        return None if row is None else convert.message(row)
    session = outbox.session_of(conn, session_id)
    if session is not None:
        outbox.emit(
            conn,
            user_id=session.user_id,
            session_id=session_id,
            session_name=session.name,
            type_="message.status",
            data=convert.message_data(row, session.name),
        )
    return convert.message(row)
