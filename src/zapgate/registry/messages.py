"""Messages: history (a new message or a status change emits an event), idempotency,
and the outbound queue the sender drains (due, claim, release, expired).

A message has the gateway's id (`id`, the public one) and WhatsApp's (`wa_id`): an
inbound message has the same in both; an outbound one gets its `wa_id` when the engine
sent it (`update_status(..., wa_id=)`), and receipts find it by that
(`update_status_by_wa_id`). Its chat is stored through the session's LID <-> phone map
(`registry/lids.py`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Connection,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zapgate.domain.content import NO_EXTRAS, Extras
from zapgate.domain.ids import identity
from zapgate.domain.models import Chat, MediaMeta, Message, MessageStatus, Session
from zapgate.domain.state import SessionState
from zapgate.errors import SessionNotFound, ValidationFailed
from zapgate.i18n import N_
from zapgate.registry import contacts, convert, lids, outbox
from zapgate.registry.convert import as_utc, utcnow
from zapgate.registry.db import Database
from zapgate.registry.prepared import Prepared
from zapgate.registry.tables import MessageRow, PollVoteRow, ReactionRow, SessionRow

MAX_PAGE = 1000
DIRECTIONS = ("in", "out")
# The reactor (or voter) name of the session's own number.
ME = "me"


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
        extras: Extras = NO_EXTRAS,
        reply_to: str | None = None,
        from_me: bool = False,
        sender: str | None = None,
        sender_lid: str | None = None,
        sender_name: str | None = None,
    ) -> tuple[Message, bool]:
        """Store a message once per id (a repeat returns the first, `created` False).
        `chat` is a phone, a LID or another JID, `chat_lid` the chat's LID when known:
        both go through the session's LID <-> phone map (`registry/lids.py`). `extras`:
        its quote, mentions, location, contacts or poll; `reply_to` the gateway id of the
        quoted message (found by WhatsApp's id when not given). `from_me`: an outbound
        message the phone sent (reported as `message.sent`; one the gateway sent itself
        is not stored twice). `sender_name`: the name its sender set in WhatsApp, as the
        message carried it; on an inbound message it becomes the name of the contact
        `sender` (with `sender_lid`, its LID; the chat when not given) unless a newer
        message brought another."""
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
            "kind": extras.kind or ("media" if media is not None else "text"),
            "content": json.dumps(extras.to_dict()) if extras else None,
            "reply_to": reply_to,
            "from_me": from_me,
            "sender_name": sender_name,
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
                return await self._db.batch(
                    lambda conn: _insert(conn, values, (chat, chat_lid), (sender, sender_lid))
                )
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
        """A message by the gateway's id, with its reactions and votes."""
        async with self._db.read() as s:
            row = await s.scalar(
                select(MessageRow).where(MessageRow.session_id == session_id, MessageRow.id == id)
            )
            return None if row is None else (await _decorated(s, [row]))[0]

    async def find(self, session_id: int, ref: str) -> Message | None:
        """A message by the gateway's id, else by WhatsApp's (the newest with it)."""
        found = await self.get(session_id, ref)
        if found is not None:
            return found
        async with self._db.read() as s:
            row = await s.scalar(
                select(MessageRow)
                .where(MessageRow.session_id == session_id, MessageRow.wa_id == ref)
                .order_by(MessageRow.pk.desc())
                .limit(1)
            )
            return None if row is None else (await _decorated(s, [row]))[0]

    # acting on messages: each write emits its event only when it changes something, so
    # an action the gateway made and then hears back from WhatsApp is reported once

    async def react(
        self, session_id: int, wa_id: str, reactor: str, emoji: str, *, reactor_lid: str | None
    ) -> Message | None:
        """`reactor` (an address, or "me") now reacts to the message WhatsApp knows as
        `wa_id` with `emoji` ("" removes the reaction): `message.reaction`. None when the
        session has no such message."""
        return await self._db.batch(
            lambda conn: _react(conn, session_id, wa_id, reactor, reactor_lid, emoji)
        )

    async def edit(self, session_id: int, wa_id: str, text: str, at: datetime) -> Message | None:
        """The message WhatsApp knows as `wa_id` now reads `text`: `message.edited`."""
        return await self._db.batch(lambda conn: _edit(conn, session_id, wa_id, text, at))

    async def revoke(self, session_id: int, wa_id: str, at: datetime) -> Message | None:
        """The message WhatsApp knows as `wa_id` was deleted for everyone (its text is
        dropped): `message.revoked`."""
        return await self._db.batch(lambda conn: _revoke(conn, session_id, wa_id, at))

    async def vote(
        self,
        session_id: int,
        poll_wa_id: str,
        voter: str,
        selected: Sequence[str],
        selected_hashes: Sequence[str],
        *,
        voter_lid: str | None,
    ) -> Message | None:
        """`voter`'s selection on the poll WhatsApp knows as `poll_wa_id` (replacing
        theirs; none chosen withdraws it): `poll.vote` with the tally. Options come as
        texts, or as sha256 hashes mapped to the stored poll's options."""
        return await self._db.batch(
            lambda conn: _vote(
                conn, session_id, poll_wa_id, voter, voter_lid, selected, selected_hashes
            )
        )

    async def unread(self, session_id: int, chat: str, limit: int = MAX_PAGE) -> list[Message]:
        """A chat's inbound messages this session has not sent a read receipt for,
        oldest first (`chat`: its phone, LID or JID)."""
        query = (
            select(MessageRow)
            .where(
                MessageRow.session_id == session_id,
                _in_chat(chat),
                MessageRow.direction == "in",
                MessageRow.read_at.is_(None),
            )
            .order_by(MessageRow.pk)
            .limit(limit)
        )
        async with self._db.read() as s:
            return [convert.message(r) for r in await s.scalars(query)]

    async def mark_read(self, session_id: int, pks: Iterable[int], at: datetime) -> None:
        """Record that read receipts went for these messages."""
        keys = list(pks)
        if not keys:
            return
        stmt = (
            update(MessageRow)
            .where(
                MessageRow.session_id == session_id,
                MessageRow.pk.in_(keys),
                MessageRow.read_at.is_(None),
            )
            .values(read_at=at)
        )
        await self._db.batch(lambda conn: conn.execute(stmt))

    async def read_chat(
        self,
        session_id: int,
        chat: str,
        chat_lid: str | None,
        *,
        wa_ids: Sequence[str],
        at: datetime,
    ) -> int:
        """The chat (its phone, LID or JID, with its LID when known) was read up to the
        newest of the received messages WhatsApp knows as `wa_ids`: it and every received
        message before it are marked read, and `chat.read` is emitted when that changed
        anything (a read already recorded, such as the gateway's own coming back from
        WhatsApp, is not reported again). How many were marked."""
        return await self._db.batch(
            lambda conn: _read_chat(conn, session_id, chat, chat_lid, list(wa_ids), at)
        )

    async def chats(
        self, session_id: int, *, limit: int = 50, before: int | None = None
    ) -> tuple[list[Chat], int | None]:
        """The session's chats, the one with the newest message first: each with that
        message, its unread count and the contact's name (the latest push name its
        messages brought). `before`: the cursor of the previous page."""
        _check_limit(limit)
        last = func.max(MessageRow.pk).label("last_pk")
        unread = func.sum(
            case((and_(MessageRow.direction == "in", MessageRow.read_at.is_(None)), 1), else_=0)
        ).label("unread")
        query = (
            select(MessageRow.chat, last, unread)
            .where(MessageRow.session_id == session_id)
            .group_by(MessageRow.chat)
            .order_by(last.desc())
            .limit(limit + 1)
        )
        if before is not None:
            query = query.having(func.max(MessageRow.pk) < before)
        async with self._db.read() as s:
            groups = (await s.execute(query)).all()
            page = groups[:limit]
            rows = (
                await s.scalars(
                    select(MessageRow).where(MessageRow.pk.in_([g.last_pk for g in page]))
                )
            ).all()
            by_pk = {m.pk: m for m in await _decorated(s, rows)}
            lids_of = [m.chat_lid for m in by_pk.values() if m.chat_lid is not None]
            names = await contacts.names(s, session_id, [g.chat for g in page] + lids_of)
        items = [
            Chat(
                chat=g.chat,
                chat_lid=by_pk[g.last_pk].chat_lid,
                name=names.get(g.chat) or names.get(by_pk[g.last_pk].chat_lid or ""),
                last_message=by_pk[g.last_pk],
                unread=int(g.unread or 0),
                updated_at=by_pk[g.last_pk].created_at,
            )
            for g in page
        ]
        return items, (page[-1].last_pk if len(groups) > limit else None)

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
        chat: str | None = None,
    ) -> tuple[list[Message], int | None]:
        """The session's messages, newest first (`chat`: one chat's, by its phone, LID
        or JID), with their reactions and votes."""
        if direction is not None and direction not in DIRECTIONS:
            raise ValidationFailed(
                N_("direction: {direction!r} is not 'in' or 'out'"), direction=direction[:10]
            )
        _check_limit(limit)
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
        if chat is not None:
            query = query.where(_in_chat(chat))
        async with self._db.read() as s:
            rows: Sequence[MessageRow] = (await s.scalars(query)).all()
            items = await _decorated(s, rows[:limit])
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
# Any message of the session WhatsApp knows by this id (the newest: ids are unique).
_BY_WA_ID = Prepared(
    select(_M)
    .where(_M.c.session_id == _SID, _M.c.wa_id == bindparam("wa_id"))
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
    conn: Connection,
    values: dict[str, Any],
    chat: tuple[str, str | None],
    sender: tuple[str | None, str | None],
) -> tuple[Message, bool]:
    """Store a message once per id, with its event; an inbound message's sender name
    becomes its contact's. Engines repeat inbound messages (a reconnect, a part of a
    stanza): a repeat is answered with the stored one. An outbound id is new (the gateway
    just made it); a rare clash is an IntegrityError. `chat` and `sender`: (address, LID)."""
    session_id = values["session_id"]
    reported = values["direction"] == "in" or values["from_me"]
    if reported:
        existing = _BY_ID.first(conn, {"sid": session_id, "mid": values["id"]})
        if existing is None and values["from_me"]:
            # WhatsApp may tell of a message this gateway sent as one from the number.
            existing = _BY_WA_ID.first(conn, {"sid": session_id, "wa_id": values["wa_id"]})
        if existing is not None:
            return convert.message(existing), False
    session = outbox.session_of(conn, session_id)
    if session is None:
        raise SessionNotFound(N_("No session {id}."), id=session_id)
    params = dict.fromkeys(_COLUMNS)
    params.update(values)
    address, params["chat_lid"] = lids.resolve(conn, session_id, *chat)
    params["chat"] = address
    name = values["sender_name"]
    if name and values["direction"] == "in":
        author, author_lid = sender
        if author is not None and author != chat[0]:
            address = lids.resolve(conn, session_id, author, author_lid)[0]
        contacts.remember(conn, session_id, address, name, values["created_at"])
    quote = convert.extras(values["content"]).quote
    if quote is not None and params["reply_to"] is None:
        quoted = _BY_WA_ID.first(conn, {"sid": session_id, "wa_id": quote.id})
        params["reply_to"] = None if quoted is None else quoted.id
    row = _INSERT.one(conn, params)
    if values["direction"] == "in":
        type_ = "message.received"
    else:
        type_ = "message.sent" if values["from_me"] else "message.status"
    outbox.emit(
        conn,
        user_id=session.user_id,
        session_id=session_id,
        session_name=session.name,
        type_=type_,
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


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(N_("limit: must be between 1 and {max}"), max=MAX_PAGE)


def _in_chat(chat: str) -> Any:
    """A chat named by its address or its LID: the same chat either way."""
    return or_(MessageRow.chat == chat, MessageRow.chat_lid == chat)


async def _decorated(s: AsyncSession, rows: Sequence[Any]) -> list[Message]:
    """Messages with their reactions and poll votes (two reads for a whole page)."""
    pks = [r.pk for r in rows]
    reactions: dict[int, dict[str, str]] = {}
    votes: dict[int, dict[str, tuple[str, ...]]] = {}
    if pks:
        for pk, reactor, emoji in await s.execute(
            select(ReactionRow.message_pk, ReactionRow.reactor, ReactionRow.emoji)
            .where(ReactionRow.message_pk.in_(pks))
            .order_by(ReactionRow.updated_at)
        ):
            reactions.setdefault(pk, {})[reactor] = emoji
        polls = [r.pk for r in rows if r.kind == "poll"]
        if polls:
            for pk, voter, selected in await s.execute(
                select(PollVoteRow.message_pk, PollVoteRow.voter, PollVoteRow.selected).where(
                    PollVoteRow.message_pk.in_(polls)
                )
            ):
                votes.setdefault(pk, {})[voter] = tuple(json.loads(selected))
    return [convert.message(r, reactions.get(r.pk), votes.get(r.pk)) for r in rows]


def _reactions_of(conn: Connection, pk: int) -> dict[str, str]:
    return {
        reactor: emoji
        for reactor, emoji in conn.execute(
            select(ReactionRow.reactor, ReactionRow.emoji)
            .where(ReactionRow.message_pk == pk)
            .order_by(ReactionRow.updated_at)
        )
    }


def _votes_of(conn: Connection, pk: int) -> dict[str, tuple[str, ...]]:
    return {
        voter: tuple(json.loads(selected))
        for voter, selected in conn.execute(
            select(PollVoteRow.voter, PollVoteRow.selected).where(PollVoteRow.message_pk == pk)
        )
    }


def _target_data(row: Any) -> dict[str, Any]:
    """How an action's event names the message it acted on."""
    return {
        "message_id": row.id,
        "wa_id": row.wa_id,
        "direction": row.direction,
        "chat": row.chat,
        "chat_lid": row.chat_lid,
        **identity(row.chat, row.chat_lid),
    }


def _who(conn: Connection, session_id: int, address: str, lid: str | None) -> str:
    """A reactor's or voter's address: its phone whenever the LID map knows it."""
    if address == ME:
        return address
    return lids.resolve(conn, session_id, address, lid)[0]


def _react(
    conn: Connection,
    session_id: int,
    wa_id: str,
    reactor: str,
    reactor_lid: str | None,
    emoji: str,
) -> Message | None:
    row = _BY_WA_ID.first(conn, {"sid": session_id, "wa_id": wa_id})
    if row is None:
        return None
    reactor = _who(conn, session_id, reactor, reactor_lid)
    before = _reactions_of(conn, row.pk)
    if before.get(reactor, "") != emoji:
        conn.execute(
            delete(ReactionRow).where(
                ReactionRow.message_pk == row.pk, ReactionRow.reactor == reactor
            )
        )
        if emoji:
            conn.execute(
                insert(ReactionRow).values(
                    message_pk=row.pk, reactor=reactor, emoji=emoji, updated_at=utcnow()
                )
            )
        outbox.emit_for_session(
            conn,
            session_id,
            "message.reaction",
            {**_target_data(row), "from": reactor, "emoji": emoji},
        )
    return convert.message(row, _reactions_of(conn, row.pk), _votes_of(conn, row.pk))


def _edit(conn: Connection, session_id: int, wa_id: str, text: str, at: datetime) -> Message | None:
    row = _BY_WA_ID.first(conn, {"sid": session_id, "wa_id": wa_id})
    if row is None or row.revoked_at is not None:
        return None if row is None else convert.message(row)
    if row.text != text:
        row = conn.execute(
            update(_M)
            .where(_M.c.pk == row.pk)
            .values(text=text, edited_at=at, updated_at=utcnow())
            .returning(*_M.c)
        ).one()
        session = outbox.session_of(conn, session_id)
        if session is not None:
            outbox.emit_for_session(
                conn, session_id, "message.edited", convert.message_data(row, session.name)
            )
    return convert.message(row, _reactions_of(conn, row.pk), _votes_of(conn, row.pk))


def _revoke(conn: Connection, session_id: int, wa_id: str, at: datetime) -> Message | None:
    row = _BY_WA_ID.first(conn, {"sid": session_id, "wa_id": wa_id})
    if row is None:
        return None
    if row.revoked_at is None:
        row = conn.execute(
            update(_M)
            .where(_M.c.pk == row.pk)
            .values(text=None, revoked_at=at, updated_at=utcnow())
            .returning(*_M.c)
        ).one()
        session = outbox.session_of(conn, session_id)
        if session is not None:
            outbox.emit_for_session(
                conn, session_id, "message.revoked", convert.message_data(row, session.name)
            )
    return convert.message(row, _reactions_of(conn, row.pk), _votes_of(conn, row.pk))


def _read_chat(
    conn: Connection,
    session_id: int,
    chat: str,
    chat_lid: str | None,
    wa_ids: list[str],
    at: datetime,
) -> int:
    if not wa_ids:
        return 0
    address, lid = lids.resolve(conn, session_id, chat, chat_lid)
    in_chat = or_(_M.c.chat == address, _M.c.chat_lid == (lid or address))
    received = and_(_M.c.session_id == session_id, _M.c.direction == "in", in_chat)
    newest = conn.execute(
        select(func.max(_M.c.pk)).where(received, _M.c.wa_id.in_(wa_ids))
    ).scalar()
    if newest is None:
        return 0
    marked = conn.execute(
        update(_M)
        .where(received, _M.c.read_at.is_(None), _M.c.pk <= newest)
        .values(read_at=at, updated_at=utcnow())
        .returning(_M.c.pk, _M.c.id, _M.c.chat, _M.c.chat_lid)
    ).all()
    if not marked:
        return 0
    last = max(marked, key=lambda r: r.pk)
    outbox.emit_for_session(
        conn,
        session_id,
        "chat.read",
        {
            "chat": last.chat,
            "chat_lid": last.chat_lid,
            "phone": last.chat if last.chat.startswith("+") else None,
            "read_at": as_utc(at).isoformat(),
            "up_to": last.id,
        },
    )
    return len(marked)


def _option_hash(option: str) -> str:
    return hashlib.sha256(option.encode()).hexdigest()


def _vote(
    conn: Connection,
    session_id: int,
    poll_wa_id: str,
    voter: str,
    voter_lid: str | None,
    selected: Sequence[str],
    selected_hashes: Sequence[str],
) -> Message | None:
    row = _BY_WA_ID.first(conn, {"sid": session_id, "wa_id": poll_wa_id})
    poll = None if row is None else convert.extras(row.content).poll
    if row is None or poll is None:
        return None
    if selected:
        chosen = [o for o in poll.options if o in set(selected)]
    else:
        hashes = {h.lower() for h in selected_hashes}
        chosen = [o for o in poll.options if _option_hash(o) in hashes]
    voter = _who(conn, session_id, voter, voter_lid)
    before = _votes_of(conn, row.pk)
    if list(before.get(voter, ())) != chosen:
        conn.execute(
            delete(PollVoteRow).where(PollVoteRow.message_pk == row.pk, PollVoteRow.voter == voter)
        )
        if chosen:
            conn.execute(
                insert(PollVoteRow).values(
                    message_pk=row.pk,
                    voter=voter,
                    selected=json.dumps(chosen),
                    updated_at=utcnow(),
                )
            )
        message = convert.message(row, _reactions_of(conn, row.pk), _votes_of(conn, row.pk))
        outbox.emit_for_session(
            conn,
            session_id,
            "poll.vote",
            {
                **_target_data(row),
                "from": voter,
                "selected": chosen,
                "poll": poll.to_dict(),
                "tally": message.tally(),
            },
        )
        return message
    return convert.message(row, _reactions_of(conn, row.pk), before)
