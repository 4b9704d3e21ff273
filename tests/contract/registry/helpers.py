"""What the registry contract's modules share: routes, raw SQL, a user with a session,
a message."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.domain.models import MessageStatus, Route
from zapgate.registry import Registry

ROUTE = Route(worker_id="w1", worker_url="http://127.0.0.1:5001", port=5001)
EMBEDDED = Route(worker_id="embedded", worker_url=None, port=None)


async def fetch_rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.begin() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def run_sql(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


def is_utc(value: datetime | None) -> bool:
    return value is not None and value.utcoffset() == timedelta(0)


async def new_session(registry: Registry, email: str = "m@example.com") -> int:
    user = await registry.users.create(email)
    session, _ = await registry.sessions.get_or_create(
        user.id, "default", engine="sim", route=ROUTE
    )
    return session.id


async def user_and_session(registry: Registry) -> tuple[int, int]:
    """A user and their embedded session: (user id, session id)."""
    user = await registry.users.create("ev@example.com")
    session, _ = await registry.sessions.get_or_create(user.id, "s", engine="sim", route=EMBEDDED)
    return user.id, session.id


async def add_message(
    registry: Registry,
    session_id: int,
    id: str,
    *,
    direction: str = "out",
    status: MessageStatus = MessageStatus.PENDING,
    idempotency_key: str | None = None,
) -> Any:
    message, _ = await registry.messages.add(
        session_id,
        id=id,
        direction=direction,
        chat="+5511999990003",
        text=f"text of {id}",
        status=status,
        idempotency_key=idempotency_key,
    )
    return message
