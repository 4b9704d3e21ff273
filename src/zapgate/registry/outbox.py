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

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from zapgate.domain.models import Delivery, Event, Webhook
from zapgate.registry import convert
from zapgate.registry.convert import utcnow
from zapgate.registry.db import Database, rowcount
from zapgate.registry.tables import DeliveryRow, EventRow, SessionRow, WebhookRow

EVENT_TYPES = ("message.received", "message.status", "session.status", "session.qr")
PING_TYPE = "webhook.ping"


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


async def emit(
    s: AsyncSession,
    *,
    user_id: int,
    session: SessionRow | None,
    type_: str,
    data: dict[str, Any],
    only_webhook: int | None = None,
) -> EventRow:
    now = utcnow()
    row = EventRow(
        id=new_event_id(),
        user_id=user_id,
        session_id=session.id if session else None,
        session_name=session.name if session else None,
        type=type_,
        occurred_at=now,
        data=json.dumps(data, default=str),
    )
    s.add(row)
    await s.flush()
    query = select(WebhookRow).where(WebhookRow.user_id == user_id, WebhookRow.enabled)
    if only_webhook is not None:
        query = query.where(WebhookRow.id == only_webhook)
    for hook in await s.scalars(query):
        wanted = hook.events.split()
        if only_webhook is None and wanted and type_ not in wanted:
            continue
        s.add(
            DeliveryRow(
                webhook_id=hook.id,
                event_seq=row.seq,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    return row


class OutboxRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    # events

    async def record_event(self, session_id: int, type_: str, data: dict[str, Any]) -> None:
        """An event that changes no row of ours (a new QR): only the outbox is written."""
        async with self._db.write() as s:
            session = await s.get(SessionRow, session_id)
            if session is not None:
                await emit(s, user_id=session.user_id, session=session, type_=type_, data=data)

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
        async with self._db.write() as s:
            row = await emit(
                s,
                user_id=user_id,
                session=None,
                type_=PING_TYPE,
                data={"webhook_id": webhook_id},
                only_webhook=webhook_id,
            )
            return convert.event(row)

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
