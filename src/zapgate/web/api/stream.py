"""GET /v1/sessions/{name}/events: the session's events as Server-Sent Events, read from
the durable outbox, so a client that reconnects with `Last-Event-ID` misses nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from zapgate.domain.ids import MAX_DB_INT, parse_cursor
from zapgate.errors import ValidationFailed
from zapgate.i18n import N_
from zapgate.web.deps import Ctx, CurrentUser, SessionName
from zapgate.web.schemas.errors import SESSION

router = APIRouter(prefix="/v1/sessions", tags=["events"])
KEEPALIVE_SECONDS = 15.0


@router.get(
    "/{name}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **SESSION},
)
async def events(
    name: SessionName,
    ctx: Ctx,
    user: CurrentUser,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_DB_INT, description="Start after this event id")
    ] = None,
) -> StreamingResponse:
    session = await ctx.sessions.get(user, name)
    cursor = after or 0
    if last_event_id is not None:
        parsed = parse_cursor(last_event_id)
        if parsed is None:
            raise ValidationFailed(N_("Last-Event-ID: not an id sent by this stream"))
        cursor = parsed
    interval = ctx.settings.poll_interval

    async def stream() -> AsyncIterator[str]:
        nonlocal cursor
        yield "retry: 2000\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            batch = await ctx.sessions.events(session, after=cursor)
            for ev in batch:
                cursor = ev.seq
                data = json.dumps(ev.payload(), ensure_ascii=False)
                yield f"id: {ev.seq}\nevent: {ev.type}\ndata: {data}\n\n"
            if batch:
                idle = 0.0
                continue
            await asyncio.sleep(interval)
            idle += interval
            if idle >= KEEPALIVE_SECONDS:
                idle = 0.0
                yield ": keep-alive\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
