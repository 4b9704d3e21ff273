"""The worker's internal HTTP API, protected by ZAPGATE_WORKER_TOKEN. Routes are thin:
each one calls the `Worker` method of the same name."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Header, Query, Response, UploadFile

from zapgate.domain.content import Extras, MessageRef
from zapgate.errors import Unauthorized, ValidationFailed
from zapgate.http.errors import install_error_handlers
from zapgate.http.limits import BodyLimitMiddleware
from zapgate.i18n import N_
from zapgate.worker.core import Worker
from zapgate.worker.schemas import (
    AddressBookOut,
    AddressIn,
    BlockIn,
    CheckIn,
    CheckOut,
    EditIn,
    JournalPage,
    MessageRefIn,
    PairCodeIn,
    PairCodeOut,
    PresenceIn,
    ReactIn,
    ReadIn,
    RejectCallIn,
    RevokeIn,
    SendIn,
    SendOut,
    SessionSpec,
    SessionStatus,
    SimCallIn,
    SimEditIn,
    SimLogOut,
    SimMediaIn,
    SimOwnSendIn,
    SimPhoneSendIn,
    SimPresenceIn,
    SimProfileIn,
    SimReactIn,
    SimRevokeIn,
    SimSaveContactIn,
    SimScanIn,
    SimVoteIn,
    WorkerHealth,
)


def _sim_media(media: SimMediaIn | None) -> dict[str, Any] | None:
    if media is None:
        return None
    try:
        data = base64.b64decode(media.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(N_("media.data: not valid base64")) from exc
    return {"kind": media.kind, "mime": media.mime, "filename": media.filename, "data": data}


def _extras(raw: str | None) -> Extras:
    """A multipart field's `Extras.to_dict()` JSON."""
    if not raw:
        return Extras()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed(N_("extras: not valid message extras")) from exc
    return _extras_of(data if isinstance(data, dict) else None)


def _extras_of(data: dict[str, Any] | None) -> Extras:
    """`Extras.to_dict()` read back."""
    try:
        return Extras.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(N_("extras: not valid message extras")) from exc


def _ref(target: MessageRefIn) -> MessageRef:
    return MessageRef(id=target.id, from_me=target.from_me, sender=target.sender)


def create_worker_app(
    worker: Worker,
    *,
    token: str | None,
    max_body_bytes: int,
    media_body_bytes: int | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await worker.initialize()
        try:
            worker.start()
            yield
        finally:
            await worker.shutdown()

    async def check_token(
        x_zapgate_worker_token: Annotated[str | None, Header()] = None,
    ) -> None:
        if token and not hmac.compare_digest(x_zapgate_worker_token or "", token):
            raise Unauthorized(
                N_("missing or wrong worker token"),
                hint=N_("Set the same ZAPGATE_WORKER_TOKEN on the web tier and the worker."),
            )

    app = FastAPI(
        title="zapgate worker (internal)", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    install_error_handlers(app)
    big = media_body_bytes or max_body_bytes
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=max_body_bytes,
        overrides=[
            (r"/internal/sessions/[^/]+/media", big),
            (r"/internal/sim/phones/[^/]+/messages", big),
        ],
    )
    r = APIRouter(prefix="/internal", dependencies=[Depends(check_token)])

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "worker_id": worker.worker_id}

    @r.get("/health")
    async def health() -> WorkerHealth:
        return await worker.health()

    @r.put("/sessions/{client_id}")
    async def start(client_id: str, spec: SessionSpec) -> SessionStatus:
        return await worker.start_session(client_id, spec.session_dir, spec.engine)

    @r.get("/sessions/{client_id}")
    async def status(client_id: str) -> SessionStatus:
        return await worker.status(client_id)

    @r.post("/sessions/{client_id}/stop")
    async def stop(client_id: str) -> SessionStatus:
        return await worker.stop_session(client_id)

    @r.post("/sessions/{client_id}/logout")
    async def logout(client_id: str) -> SessionStatus:
        return await worker.logout_session(client_id)

    @r.delete("/sessions/{client_id}", status_code=204)
    async def delete(client_id: str) -> Response:
        await worker.delete_session(client_id)
        return Response(status_code=204)

    @r.post("/sessions/{client_id}/pair-code")
    async def pair_code(client_id: str, body: PairCodeIn) -> PairCodeOut:
        return PairCodeOut(code=await worker.pair_code(client_id, body.phone))

    @r.post("/sessions/{client_id}/messages")
    async def send(client_id: str, body: SendIn) -> SendOut:
        extras = Extras.from_dict(body.extras)
        wa_id = await worker.send_text(client_id, body.message_id, body.to, body.text, extras)
        return SendOut(id=wa_id)

    @r.post("/sessions/{client_id}/media")
    async def send_media(
        client_id: str,
        message_id: Annotated[str, Form(max_length=64)],
        to: Annotated[str, Form(max_length=32)],
        kind: Annotated[str, Form(max_length=16)],
        mime: Annotated[str, Form(max_length=200)],
        file: UploadFile,
        filename: Annotated[str | None, Form(max_length=255)] = None,
        caption: Annotated[str | None, Form()] = None,
        extras: Annotated[str | None, Form(max_length=10_000)] = None,
    ) -> SendOut:
        data = await file.read()
        wa_id = await worker.send_media(
            client_id,
            message_id,
            to,
            kind=kind,
            data=data,
            mime=mime,
            filename=filename,
            caption=caption,
            extras=_extras(extras),
        )
        return SendOut(id=wa_id)

    @r.post("/sessions/{client_id}/reaction")
    async def react(client_id: str, body: ReactIn) -> SendOut:
        return SendOut(id=await worker.react(client_id, body.chat, _ref(body.target), body.emoji))

    @r.post("/sessions/{client_id}/edit")
    async def edit(client_id: str, body: EditIn) -> SendOut:
        return SendOut(id=await worker.edit(client_id, body.chat, body.target_id, body.text))

    @r.post("/sessions/{client_id}/revoke")
    async def revoke(client_id: str, body: RevokeIn) -> SendOut:
        return SendOut(id=await worker.revoke(client_id, body.chat, _ref(body.target)))

    @r.post("/sessions/{client_id}/read", status_code=204)
    async def mark_read(client_id: str, body: ReadIn) -> Response:
        await worker.mark_read(client_id, body.chat, body.ids, body.sender)
        return Response(status_code=204)

    @r.post("/sessions/{client_id}/presence", status_code=204)
    async def presence(client_id: str, body: PresenceIn) -> Response:
        await worker.set_presence(client_id, body.chat, body.state)
        return Response(status_code=204)

    @r.post("/sessions/{client_id}/contacts/check")
    async def check_numbers(client_id: str, body: CheckIn) -> CheckOut:
        checks = await worker.check_numbers(client_id, body.phones)
        return CheckOut(items=[c.to_dict() for c in checks])

    @r.post("/sessions/{client_id}/contacts/profile")
    async def contact_profile(client_id: str, body: AddressIn) -> dict[str, Any]:
        return (await worker.contact_profile(client_id, body.address)).to_dict()

    @r.post("/sessions/{client_id}/contacts/block", status_code=204)
    async def set_blocked(client_id: str, body: BlockIn) -> Response:
        await worker.set_blocked(client_id, body.address, body.blocked)
        return Response(status_code=204)

    @r.get("/sessions/{client_id}/contacts")
    async def address_book(client_id: str) -> AddressBookOut:
        entries = await worker.address_book(client_id)
        return AddressBookOut(items=[e.to_dict() for e in entries])

    @r.post("/sessions/{client_id}/calls/reject", status_code=204)
    async def reject_call(client_id: str, body: RejectCallIn) -> Response:
        await worker.reject_call(client_id, body.call_id, body.caller)
        return Response(status_code=204)

    @r.get("/sessions/{client_id}/media/{message_id}")
    async def media(client_id: str, message_id: str) -> Response:
        data = await worker.media(client_id, message_id)
        return Response(data, media_type="application/octet-stream")

    @r.get("/events")
    async def events(
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        wait: Annotated[float, Query(ge=0, le=30)] = 0.0,
    ) -> JournalPage:
        return await worker.events(after, limit, wait)

    @r.post("/sim/scan")
    async def sim_scan(body: SimScanIn) -> dict[str, str]:
        return {"device_id": await worker.sim_scan(body.qr, body.phone)}

    @r.post("/sim/phones/{phone}/messages")
    async def sim_phone_send(phone: str, body: SimPhoneSendIn) -> dict[str, str]:
        media = _sim_media(body.media)
        extras = _extras_of(body.extras)
        return {"id": await worker.sim_phone_send(phone, body.to, body.text, media, extras)}

    @r.post("/sim/phones/{phone}/own-messages")
    async def sim_phone_send_own(phone: str, body: SimOwnSendIn) -> SendOut:
        return SendOut(id=await worker.sim_phone_send_own(phone, body.to, body.text))

    @r.post("/sim/phones/{phone}/reactions")
    async def sim_phone_react(phone: str, body: SimReactIn) -> SendOut:
        return SendOut(id=await worker.sim_phone_react(phone, body.to, body.target_id, body.emoji))

    @r.post("/sim/phones/{phone}/edits")
    async def sim_phone_edit(phone: str, body: SimEditIn) -> SendOut:
        return SendOut(id=await worker.sim_phone_edit(phone, body.to, body.target_id, body.text))

    @r.post("/sim/phones/{phone}/revokes")
    async def sim_phone_revoke(phone: str, body: SimRevokeIn) -> SendOut:
        return SendOut(id=await worker.sim_phone_revoke(phone, body.to, body.target_id))

    @r.post("/sim/phones/{phone}/votes", status_code=204)
    async def sim_phone_vote(phone: str, body: SimVoteIn) -> Response:
        await worker.sim_phone_vote(phone, body.to, body.poll_id, body.options)
        return Response(status_code=204)

    @r.post("/sim/phones/{phone}/presence", status_code=204)
    async def sim_phone_presence(phone: str, body: SimPresenceIn) -> Response:
        await worker.sim_phone_presence(phone, body.to, body.state)
        return Response(status_code=204)

    @r.post("/sim/phones/{phone}/off-whatsapp", status_code=204)
    async def sim_off_whatsapp(phone: str) -> Response:
        await worker.sim_off_whatsapp(phone)
        return Response(status_code=204)

    @r.put("/sim/phones/{phone}/profile", status_code=204)
    async def sim_set_profile(phone: str, body: SimProfileIn) -> Response:
        await worker.sim_set_profile(
            phone,
            push_name=body.push_name,
            about=body.about,
            business=body.business,
            picture=body.picture,
        )
        return Response(status_code=204)

    @r.post("/sim/phones/{phone}/calls")
    async def sim_phone_call(phone: str, body: SimCallIn) -> SendOut:
        return SendOut(id=await worker.sim_phone_call(phone, body.to, body.video))

    @r.post("/sim/phones/{phone}/contacts", status_code=204)
    async def sim_phone_save_contact(phone: str, body: SimSaveContactIn) -> Response:
        await worker.sim_phone_save_contact(phone, body.phone, body.name)
        return Response(status_code=204)

    @r.get("/sim/phones/{phone}/log")
    async def sim_phone_log(phone: str) -> SimLogOut:
        return SimLogOut(items=await worker.sim_phone_log(phone))

    app.include_router(r)
    return app
