"""The durable outbox, written inside the registry's own transactions: an event row and
one delivery row per matching webhook are inserted in the same transaction as the state
change the event reports, so a change is never visible without its event (and vice
versa), whatever crashes when."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from zapgate.domain.models import Delivery, Event, Webhook
from zapgate.registry.tables import DeliveryRow, EventRow, SessionRow, WebhookRow

EVENT_TYPES = ("message.received", "message.status", "session.status", "session.qr")
PING_TYPE = "webhook.ping"


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
    now = datetime.now(UTC)
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


def event(row: EventRow) -> Event:
    return Event(
        seq=row.seq,
        id=row.id,
        user_id=row.user_id,
        session=row.session_name,
        type=row.type,
        occurred_at=as_utc(row.occurred_at),
        data=json.loads(row.data),
    )


def webhook(row: WebhookRow) -> Webhook:
    return Webhook(
        id=row.id,
        user_id=row.user_id,
        url=row.url,
        secret=row.secret,
        events=tuple(row.events.split()),
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        created_at=as_utc(row.created_at),
    )


def delivery(row: DeliveryRow, ev: EventRow) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_seq=row.event_seq,
        event_id=ev.id,
        event_type=ev.type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=as_utc(row.next_attempt_at),
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )
