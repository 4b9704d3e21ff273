"""Retention: a write over two areas (messages and the outbox), in the caller's
transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from zapgate.domain.models import MessageStatus
from zapgate.registry.db import rowcount
from zapgate.registry.tables import CallRow, EventRow, MessageRow


async def purge(
    s: AsyncSession, *, messages_before: datetime, events_before: datetime
) -> tuple[int, int]:
    """Drop finished messages (and calls) and events older than the cut-offs (queued and
    in-flight messages are kept; deliveries go with their events). Returns the counts of
    messages and events."""
    m = await s.execute(
        delete(MessageRow).where(
            MessageRow.created_at < messages_before,
            MessageRow.status.not_in([MessageStatus.QUEUED.value, MessageStatus.PENDING.value]),
        )
    )
    await s.execute(delete(CallRow).where(CallRow.received_at < messages_before))
    e = await s.execute(delete(EventRow).where(EventRow.occurred_at < events_before))
    return rowcount(m), rowcount(e)
