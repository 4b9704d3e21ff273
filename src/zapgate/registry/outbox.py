"""The durable outbox, written inside the registry's own transactions: an event row and
one delivery row per matching webhook are inserted in the same transaction as the state
change the event reports, so a change is never visible without its event (and vice
versa), whatever crashes when.

`emit` is that write, for any repository's open transaction; `OutboxRepo` is the rest:
events, webhooks and their deliveries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from zapgate.domain.models import Delivery, Event, Webhook
from zapgate.registry import convert
from zapgate.registry.convert import utcnow
from zapgate.registry.db import Database, rowcount
from zapgate.registry.prepared import Prepared
from zapgate.registry.tables import DeliveryRow, EventRow, SessionRow, WebhookRow

EVENT_TYPES = (
    "message.received",
    "message.status",
    "session.status",
    "session.qr",
    "message.sent",
    "message.reaction",
    "message.edited",
    "message.revoked",
    "poll.vote",
    "presence.update",
    "chat.read",
    "call.received",
)
PING_TYPE = "webhook.ping"


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


_EVENT = Prepared(
    insert(EventRow)
    .values(
        id=bindparam("id"),
        user_id=bindparam("user_id"),
        session_id=bindparam("session_id"),
        session_name=bindparam("session_name"),
        type=bindparam("type"),
        occurred_at=bindparam("now"),
        data=bindparam("data"),
    )
    .returning(EventRow.seq)
)
_HOOKS = Prepared(
    select(WebhookRow.id, WebhookRow.events).where(
        WebhookRow.user_id == bindparam("user_id"), WebhookRow.enabled
    )
)
_DELIVERY = Prepared(
    insert(DeliveryRow).values(
        webhook_id=bindparam("webhook_id"),
        event_seq=bindparam("seq"),
        status="pending",
        attempts=0,
        next_attempt_at=bindparam("now"),
        created_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
)
_SESSION = Prepared(
    select(SessionRow.user_id, SessionRow.name).where(SessionRow.id == bindparam("sid"))
)


def session_of(conn: Connection, session_id: int) -> Any | None:
    """(user_id, name) of a session, what its events carry; None when it is gone."""
    return _SESSION.first(conn, {"sid": session_id})


def emit(
    conn: Connection,
    *,
    user_id: int,
    session_id: int | None,
    session_name: str | None,
    type_: str,
    data: dict[str, Any],
    only_webhook: int | None = None,
) -> Event:
    """Write an event and its deliveries in the caller's open transaction (a job of the
    group commit, `registry/batch.py`)."""
    now = utcnow()
    event_id = new_event_id()
    seq = _EVENT.one(
        conn,
        {
            "id": event_id,
            "user_id": user_id,
            "session_id": session_id,
            "session_name": session_name,
            "type": type_,
            "now": now,
            "data": json.dumps(data, default=str),
        },
    ).seq
    for hook_id, events in _HOOKS.rows(conn, {"user_id": user_id}):
        if only_webhook is not None and hook_id != only_webhook:
            continue
        if only_webhook is None and events.split() and type_ not in events.split():
            continue
        _DELIVERY.run(conn, {"webhook_id": hook_id, "seq": seq, "now": now})
    return Event(
        seq=seq,
        id=event_id,
        user_id=user_id,
        session=session_name,
        type=type_,
        occurred_at=now,
        data=data,
    )


def emit_for_session(conn: Connection, session_id: int, type_: str, data: dict[str, Any]) -> None:
    """`emit` for an event of a session known by id alone (none when it is gone)."""
    session = session_of(conn, session_id)
    if session is not None:
        emit(
            conn,
            user_id=session.user_id,
            session_id=session_id,
            session_name=session.name,
            type_=type_,
            data=data,
        )


class OutboxRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    # events

    async def record_event(self, session_id: int, type_: str, data: dict[str, Any]) -> None:
        """An event that changes no row of ours (a new QR): only the outbox is written."""
        await self._db.batch(lambda conn: emit_for_session(conn, session_id, type_, data))

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
        async with self._db.read() as s:
            return [convert.event(r) for r in await s.scalars(query)]

    # webhooks

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
        async with self._db.write() as s:
            s.add(row)
        return convert.webhook(row)

    async def list_webhooks(self, user_id: int) -> list[Webhook]:
        async with self._db.read() as s:
            rows = await s.scalars(
                select(WebhookRow).where(WebhookRow.user_id == user_id).order_by(WebhookRow.id)
            )
            return [convert.webhook(r) for r in rows]

    async def get_webhook(self, user_id: int, webhook_id: int) -> Webhook | None:
        async with self._db.read() as s:
            row = await s.get(WebhookRow, webhook_id)
            return None if row is None or row.user_id != user_id else convert.webhook(row)

    async def delete_webhook(self, user_id: int, webhook_id: int) -> bool:
        async with self._db.write() as s:
            result = await s.execute(
                delete(WebhookRow).where(WebhookRow.id == webhook_id, WebhookRow.user_id == user_id)
            )
            return rowcount(result) > 0

    async def disable_webhook(self, webhook_id: int, reason: str) -> None:
        """Switch a webhook off and close its pending deliveries (410 Gone)."""
        now = utcnow()
        async with self._db.write() as s:
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
        return await self._db.batch(
            lambda conn: emit(
                conn,
                user_id=user_id,
                session_id=None,
                session_name=None,
                type_=PING_TYPE,
                data={"webhook_id": webhook_id},
                only_webhook=webhook_id,
            )
        )

    # deliveries

    async def due_webhooks(self, now: datetime) -> list[Webhook]:
        """Enabled webhooks with a pending delivery due by `now`."""
        query = select(WebhookRow).where(
            WebhookRow.enabled,
            WebhookRow.id.in_(
                select(DeliveryRow.webhook_id).where(
                    DeliveryRow.status == "pending", DeliveryRow.next_attempt_at <= now
                )
            ),
        )
        async with self._db.read() as s:
            return [convert.webhook(r) for r in await s.scalars(query)]

    async def pending_deliveries(
        self, webhook_id: int, limit: int = 50
    ) -> list[tuple[Delivery, Event]]:
        """The webhook's pending deliveries, oldest event first (delivery order): the
        dispatcher claims them a page of `limit` at a time."""
        query = (
            select(DeliveryRow, EventRow)
            .join(EventRow, EventRow.seq == DeliveryRow.event_seq)
            .where(DeliveryRow.webhook_id == webhook_id, DeliveryRow.status == "pending")
            .order_by(DeliveryRow.event_seq)
            .limit(limit)
        )
        async with self._db.read() as s:
            rows = (await s.execute(query)).all()
            return [(convert.delivery(d, e), convert.event(e)) for d, e in rows]

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
        async with self._db.write() as s:
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

    async def record_results(self, results: Sequence[Delivery]) -> None:
        """Write the outcome of many delivery attempts in one transaction: each given
        delivery's status, attempts, next attempt and last answer (the dispatcher writes
        its results in batches, not a transaction per POST). A delivery deleted since
        (its webhook or event went) is skipped."""
        now = utcnow()
        await self._update_deliveries(
            [
                {
                    "delivery_id": d.id,
                    "status": d.status,
                    "attempts": d.attempts,
                    "next_attempt_at": d.next_attempt_at,
                    "last_status_code": d.last_status_code,
                    "last_error": d.last_error,
                    "updated_at": now,
                }
                for d in results
            ]
        )

    async def _update_deliveries(self, rows: list[dict[str, Any]]) -> None:
        """One UPDATE by id, executed for every row (executemany) in one transaction. On
        the Connection, as Core: the ORM's bulk update fails the whole batch when a row is
        gone."""
        if not rows:
            return
        statement = (
            update(DeliveryRow)
            .where(DeliveryRow.id == bindparam("delivery_id"))
            .values({c: bindparam(c) for c in rows[0] if c != "delivery_id"})
        )
        async with self._db.write() as s:
            await (await s.connection()).execute(statement, rows)

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
        async with self._db.read() as s:
            return [convert.delivery(d, e) for d, e in (await s.execute(query)).all()]
