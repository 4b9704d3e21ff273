"""/v1/sessions: thin routes over SessionService."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Annotated
from urllib.parse import quote

import segno
from fastapi import APIRouter, Body, Form, Header, Query, Request, Response, UploadFile

from zapgate.domain.ids import parse_cursor
from zapgate.domain.models import Message, MessageStatus
from zapgate.errors import ValidationFailed
from zapgate.i18n import N_
from zapgate.services.media import CHUNK, MediaFile, MediaIntake
from zapgate.web.deps import Ctx, CurrentUser, SessionName
from zapgate.web.schemas.errors import (
    AUTHED,
    SESSION,
    SESSION_ACTION,
    SESSION_WITH_BODY,
)
from zapgate.web.schemas.messages import (
    MAX_TYPING_MS,
    MEDIA_TYPE_DESCRIPTION,
    MEDIA_TYPE_SCHEMA,
    RECIPIENT_SCHEMA,
    MessageList,
    MessagePublic,
    SendMessage,
)
from zapgate.web.schemas.sessions import (
    PairCodeIn,
    PairCodeOut,
    QrPublic,
    SessionCreate,
    SessionList,
    SessionPublic,
)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


@router.get("", responses=AUTHED)
async def list_sessions(ctx: Ctx, user: CurrentUser) -> SessionList:
    return SessionList(items=[SessionPublic.of(s) for s in await ctx.sessions.list_for(user)])


@router.put(
    "/{name}",
    responses={201: {"model": SessionPublic, "description": "Created"}, **SESSION_WITH_BODY},
)
async def get_or_create(
    name: SessionName,
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
    if "default_country" in body.model_fields_set:
        session = await ctx.sessions.set_default_country(user, name, body.default_country)
    given = body.model_fields_set
    if {"reject_calls", "reject_calls_message"} & given:
        # Either one alone keeps the other as it was.
        session = await ctx.sessions.set_reject_calls(
            user,
            name,
            body.reject_calls if "reject_calls" in given else session.reject_calls,
            body.reject_calls_message
            if "reject_calls_message" in given
            else session.reject_calls_message,
        )
    response.status_code = 201 if created else 200
    return SessionPublic.of(session)


@router.get("/{name}", responses=SESSION)
async def get_session(name: SessionName, ctx: Ctx, user: CurrentUser) -> SessionPublic:
    return SessionPublic.of(await ctx.sessions.get(user, name))


@router.delete("/{name}", status_code=204, responses=SESSION_ACTION)
async def delete_session(name: SessionName, ctx: Ctx, user: CurrentUser) -> Response:
    await ctx.sessions.delete(user, name)
    return Response(status_code=204)


@router.post("/{name}/start", responses=SESSION_ACTION)
async def start(name: SessionName, ctx: Ctx, user: CurrentUser) -> SessionPublic:
    return SessionPublic.of(await ctx.sessions.start(user, name))


@router.post("/{name}/stop", responses=SESSION_ACTION)
async def stop(name: SessionName, ctx: Ctx, user: CurrentUser) -> SessionPublic:
    return SessionPublic.of(await ctx.sessions.stop(user, name))


@router.post("/{name}/logout", responses=SESSION_ACTION)
async def logout(name: SessionName, ctx: Ctx, user: CurrentUser) -> SessionPublic:
    return SessionPublic.of(await ctx.sessions.logout(user, name))


@router.get(
    "/{name}/qr",
    responses={
        200: {
            "model": QrPublic,
            "content": {"image/png": {}},
            "description": "JSON, or PNG on Accept",
        },
        **SESSION_ACTION,
    },
)
async def qr(name: SessionName, ctx: Ctx, user: CurrentUser, request: Request) -> Response:
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


@router.post("/{name}/pair-code", responses=SESSION_WITH_BODY)
async def pair_code(
    name: SessionName, body: PairCodeIn, ctx: Ctx, user: CurrentUser
) -> PairCodeOut:
    return PairCodeOut(code=await ctx.sessions.pair_code(user, name, body.phone))


@router.post(
    "/{name}/messages",
    status_code=201,
    responses={
        200: {"model": MessagePublic, "description": "Replay of an Idempotency-Key"},
        202: {"model": MessagePublic, "description": "Queued: sent when it can go"},
        **SESSION_WITH_BODY,
    },
)
async def send_message(
    name: SessionName,
    body: SendMessage,
    ctx: Ctx,
    user: CurrentUser,
    response: Response,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> MessagePublic:
    """Send `{to, text}`, or `{to, media: {type, url | base64, mime?, filename?, caption?}}`
    (image, document, audio, video, sticker or voice), or `{to, location}`,
    `{to, contacts}`, `{to, poll}`. `reply_to` quotes a message of this session (its id or
    wa_id); `mentions` lists the phones a text mentions; `link_preview` shows the card of
    a text's first link (fetched by zapgate; sent without it when the page cannot be
    fetched). `typing_ms` shows the session typing (recording, for a voice note) in the
    chat that long first: the message is then queued (202) with `scheduled_at` that much
    later. For a file upload see
    `POST .../messages/media`."""
    media = body.media
    extras = body.extras()
    if media is None:
        if body.text is None and extras.kind is None:
            raise ValidationFailed(N_("text: required (or send media)"))
        message, created = await ctx.sessions.send_text(
            user,
            name,
            to=body.to,
            text=body.text,
            idempotency_key=idempotency_key,
            extras=extras,
            reply_to=body.reply_to,
            link_preview=body.link_preview,
            typing_ms=body.typing_ms,
        )
    else:
        if body.text is not None:
            raise ValidationFailed(
                N_("text: not allowed with media"), hint=N_("Put the text in media.caption.")
            )
        if (media.url is None) == (media.base64 is None):
            raise ValidationFailed(N_("media: give exactly one of url and base64"))
        opts = {"mime": media.mime, "filename": media.filename, "caption": media.caption}

        async def load(intake: MediaIntake) -> MediaFile:
            if media.url is not None:
                return await intake.from_url(media.type, media.url, **opts)
            assert media.base64 is not None
            return intake.from_base64(media.type, media.base64, **opts)

        message, created = await ctx.sessions.send_media(
            user,
            name,
            to=body.to,
            caption=media.caption,
            idempotency_key=idempotency_key,
            source={
                "type": media.type,
                "url": media.url,
                "base64": None if media.base64 is None else _sha256(media.base64.encode()),
                "mime": media.mime,
                "filename": media.filename,
            },
            load=load,
            reply_to=body.reply_to,
            typing_ms=body.typing_ms,
        )
    return _sent(message, created, name, response)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sent(message: Message, created: bool, name: str, response: Response) -> MessagePublic:
    if not created:
        response.status_code = 200
    elif message.status in (MessageStatus.QUEUED, MessageStatus.PENDING):
        response.status_code = 202
    return MessagePublic.of(message, name)


@router.post(
    "/{name}/messages/media",
    status_code=201,
    responses={
        200: {"model": MessagePublic, "description": "Replay of an Idempotency-Key"},
        202: {"model": MessagePublic, "description": "Queued: sent when it can go"},
        **SESSION_WITH_BODY,
    },
)
async def send_media_upload(
    name: SessionName,
    ctx: Ctx,
    user: CurrentUser,
    response: Response,
    to: Annotated[str, Form(max_length=40, json_schema_extra=RECIPIENT_SCHEMA)],
    type: Annotated[
        str,
        Form(
            max_length=16,
            description=MEDIA_TYPE_DESCRIPTION,
            json_schema_extra=MEDIA_TYPE_SCHEMA,
        ),
    ],
    file: UploadFile,
    caption: Annotated[str | None, Form()] = None,
    mime: Annotated[str | None, Form(max_length=200)] = None,
    filename: Annotated[str | None, Form(max_length=255)] = None,
    reply_to: Annotated[
        str | None, Form(min_length=1, max_length=128, description="A message to quote")
    ] = None,
    typing_ms: Annotated[
        int,
        Form(
            ge=0,
            le=MAX_TYPING_MS,
            description="Show typing (recording, for a voice note) this long first",
        ),
    ] = 0,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> MessagePublic:
    """Send an uploaded file (multipart/form-data) as image, document, audio, video,
    sticker or voice note; `typing_ms` as in `POST .../messages`."""

    async def load(intake: MediaIntake) -> MediaFile:
        return await intake.from_reader(
            type,
            file.read,
            mime=mime or file.content_type,
            filename=filename or file.filename,
            caption=caption,
        )

    digest = hashlib.sha256()
    while chunk := await file.read(CHUNK):
        digest.update(chunk)
    await file.seek(0)
    source = {
        "type": type,
        "file": digest.hexdigest(),
        "mime": mime or file.content_type,
        "filename": filename or file.filename,
    }
    message, created = await ctx.sessions.send_media(
        user,
        name,
        to=to,
        caption=caption,
        idempotency_key=idempotency_key,
        source=source,
        load=load,
        reply_to=reply_to,
        typing_ms=typing_ms,
    )
    return _sent(message, created, name, response)


@router.get(
    "/{name}/messages/{message_id}/media",
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        **SESSION,
    },
)
async def message_media(
    name: SessionName, message_id: str, ctx: Ctx, user: CurrentUser
) -> Response:
    message, data = await ctx.sessions.media(user, name, message_id)
    assert message.media is not None
    fname = message.media.filename or message.id
    headers = {
        # Never rendered as a page of ours: a download, not sniffed, no scripts.
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(fname, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, max-age=3600",
    }
    return Response(data, media_type=message.media.mime, headers=headers)


@router.get("/{name}/messages", responses=SESSION)
async def list_messages(
    name: SessionName,
    ctx: Ctx,
    user: CurrentUser,
    direction: Annotated[str | None, Query(pattern="^(in|out)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=20)] = None,
) -> MessageList:
    cursor: int | None = None
    if before is not None:
        cursor = parse_cursor(before)
        if cursor is None:
            raise ValidationFailed(
                N_("before: not a cursor returned by this API"),
                hint=N_("Pass the 'next' value of the previous page."),
            )
    items, nxt = await ctx.sessions.messages(
        user, name, direction=direction, limit=limit, before=cursor
    )
    return MessageList(
        items=[MessagePublic.of(m, name) for m in items],
        next=str(nxt) if nxt is not None else None,
    )
