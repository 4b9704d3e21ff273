"""/v1/sessions: thin routes over SessionService."""

from __future__ import annotations

import base64
import io
from typing import Annotated

import segno
from fastapi import APIRouter, Body, Header, Query, Request, Response

from zapgate.domain.models import MessageStatus
from zapgate.errors import ValidationFailed
from zapgate.web.deps import Ctx, CurrentUser
from zapgate.web.schemas import (
    MessageList,
    MessagePublic,
    PairCodeIn,
    PairCodeOut,
    QrPublic,
    SendText,
    SessionCreate,
    SessionList,
    SessionPublic,
)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


@router.get("")
async def list_sessions(ctx: Ctx, user: CurrentUser) -> SessionList:
    return SessionList(items=[SessionPublic.of(s) for s in await ctx.sessions.list_for(user)])


@router.put("/{name}", responses={201: {"model": SessionPublic}})
async def get_or_create(
    name: str,
    ctx: Ctx,
    user: CurrentUser,
    response: Response,
    body: Annotated[SessionCreate | None, Body()] = None,
) -> SessionPublic:
    body = body or SessionCreate()
    session, created = await ctx.sessions.get_or_create(
        user, name, engine=body.engine, start=body.start
    )
    if "send_rate" in body.model_fields_set:
        session = await ctx.sessions.set_send_rate(user, name, body.send_rate)
    response.status_code = 201 if created else 200
    return SessionPublic.of(session)


@router.get("/{name}")
async def get_session(name: str, ctx: Ctx, user: CurrentUser) -> SessionPublic:
    return SessionPublic.of(await ctx.sessions.get(user, name))


@router.delete("/{name}", status_code=204)
async def delete_session(name: str, ctx: Ctx, user: CurrentUser) -> Response:
    await ctx.sessions.delete(user, name)
    return Response(status_code=204)


@router.post("/{name}/start")
async def start(name: str, ctx: Ctx, user: CurrentUser) -> SessionPublic:
    return SessionPublic.of(await ctx.sessions.start(user, name))


@router.post("/{name}/stop")
async def stop(name: str, ctx: Ctx, user: CurrentUser) -> SessionPublic:
    return SessionPublic.of(await ctx.sessions.stop(user, name))


@router.post("/{name}/logout")
async def logout(name: str, ctx: Ctx, user: CurrentUser) -> SessionPublic:
    return SessionPublic.of(await ctx.sessions.logout(user, name))


@router.get(
    "/{name}/qr",
    responses={200: {"content": {"image/png": {}}, "description": "JSON, or PNG on Accept"}},
)
async def qr(name: str, ctx: Ctx, user: CurrentUser, request: Request) -> Response:
    status = await ctx.sessions.qr(user, name)
    assert status.qr is not None  # SessionService.qr only returns a status with a QR
    buf = io.BytesIO()
    segno.make(status.qr, error="l").save(buf, kind="png", scale=6, border=2)
    png = buf.getvalue()
    accept = request.headers.get("accept", "")
    if "image/png" in accept and "application/json" not in accept:
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})
    body = QrPublic(
        qr=status.qr, png_base64=base64.b64encode(png).decode(), expires_at=status.qr_expires_at
    )
    return Response(
        body.model_dump_json(), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@router.post("/{name}/pair-code")
async def pair_code(name: str, body: PairCodeIn, ctx: Ctx, user: CurrentUser) -> PairCodeOut:
    return PairCodeOut(code=await ctx.sessions.pair_code(user, name, body.phone))


@router.post(
    "/{name}/messages",
    status_code=201,
    responses={
        200: {"model": MessagePublic, "description": "Replay of an Idempotency-Key"},
        202: {"model": MessagePublic, "description": "Queued: sent when it can go"},
    },
)
async def send_message(
    name: str,
    body: SendText,
    ctx: Ctx,
    user: CurrentUser,
    response: Response,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> MessagePublic:
    message, created = await ctx.sessions.send_text(
        user, name, to=body.to, text=body.text, idempotency_key=idempotency_key
    )
    if not created:
        response.status_code = 200
    elif message.status in (MessageStatus.QUEUED, MessageStatus.PENDING):
        response.status_code = 202
    return MessagePublic.of(message)


@router.get("/{name}/messages")
async def list_messages(
    name: str,
    ctx: Ctx,
    user: CurrentUser,
    direction: Annotated[str | None, Query(pattern="^(in|out)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=20)] = None,
) -> MessageList:
    cursor: int | None = None
    if before is not None:
        if not before.isdigit():
            raise ValidationFailed(
                "before: not a cursor returned by this API",
                hint="Pass the 'next' value of the previous page.",
            )
        cursor = int(before)
    items, nxt = await ctx.sessions.messages(
        user, name, direction=direction, limit=limit, before=cursor
    )
    return MessageList(
        items=[MessagePublic.of(m) for m in items], next=str(nxt) if nxt is not None else None
    )
