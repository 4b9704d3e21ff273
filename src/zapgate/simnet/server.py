"""`zapgate simnet`: the simulated network over HTTP JSON, so several worker processes can
share one network (HttpSimLink is the client). Errors keep the gateway's
`{errcode, error, hint}` shape and status."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from zapgate.domain.contacts import MAX_CHECK
from zapgate.errors import DETAILS_HINT, GatewayError, ValidationFailed
from zapgate.i18n import N_
from zapgate.simnet.network import SimNetwork

logger = logging.getLogger(__name__)

MAX_POLL = 30.0
# A long-poll is served in slices so a client that went away (a stopped session) does not
# keep a handler, and a graceful shutdown, waiting for the whole poll.
POLL_SLICE = 1.0


def default_state_path(data_dir: Path) -> Path:
    """Where `zapgate simnet` keeps its linked devices."""
    return data_dir / "simnet.json"


class ConnectBody(BaseModel):
    creds: dict[str, Any] | None = None


class PairCodeBody(BaseModel):
    phone: str = Field(max_length=40)


class MediaBody(BaseModel):
    kind: str = Field(max_length=16)
    mime: str | None = Field(default=None, max_length=200)
    filename: str | None = Field(default=None, max_length=255)
    data: str  # base64

    def decoded(self) -> dict[str, Any]:
        try:
            data = base64.b64decode(self.data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed(N_("media.data: not valid base64")) from exc
        return {"kind": self.kind, "mime": self.mime, "filename": self.filename, "data": data}


class QuoteBody(BaseModel):
    id: str = Field(min_length=1, max_length=128)
    sender: str | None = Field(default=None, max_length=40)
    text: str | None = None


class LocationBody(BaseModel):
    latitude: float
    longitude: float
    name: str | None = Field(default=None, max_length=1000)
    address: str | None = Field(default=None, max_length=1000)


class ContactBody(BaseModel):
    name: str = Field(max_length=1000)
    phone: str | None = Field(default=None, max_length=40)
    organization: str | None = Field(default=None, max_length=1000)
    email: str | None = Field(default=None, max_length=320)
    vcard: str | None = Field(default=None, max_length=65536)


class PollBody(BaseModel):
    question: str = Field(max_length=1000)
    options: list[str] = Field(max_length=64)
    max_selections: int = 1


class PreviewBody(BaseModel):
    url: str = Field(min_length=1, max_length=2000)
    title: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=5000)
    thumbnail: str | None = Field(default=None, max_length=400_000, description="base64")


class ExtrasBody(BaseModel):
    """Extras.to_dict()'s shape; simnet.content checks the values."""

    quote: QuoteBody | None = None
    mentions: list[str] = Field(default_factory=list, max_length=1024)
    location: LocationBody | None = None
    contacts: list[ContactBody] = Field(default_factory=list, max_length=64)
    poll: PollBody | None = None
    preview: PreviewBody | None = None

    def plain(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True)


class SendBody(BaseModel):
    request_id: str = Field(min_length=1, max_length=128)
    to: str = Field(max_length=40)
    text: str | None = None
    media: MediaBody | None = None
    extras: ExtrasBody | None = None


class TargetBody(BaseModel):
    """A MessageRef: the message to act on."""

    id: str = Field(min_length=1, max_length=128)
    from_me: bool
    sender: str | None = Field(default=None, max_length=40)


class ReactBody(BaseModel):
    chat: str = Field(max_length=40)
    target: TargetBody
    emoji: str = Field(max_length=64)


class EditBody(BaseModel):
    chat: str = Field(max_length=40)
    target_id: str = Field(min_length=1, max_length=128)
    text: str


class RevokeBody(BaseModel):
    chat: str = Field(max_length=40)
    target: TargetBody


class ReadBody(BaseModel):
    chat: str = Field(max_length=40)
    ids: list[str] = Field(max_length=1000)
    sender: str | None = Field(default=None, max_length=40)


class PresenceBody(BaseModel):
    chat: str = Field(max_length=40)
    state: str = Field(max_length=20)


class NumberCheckBody(BaseModel):
    phones: list[str] = Field(max_length=MAX_CHECK)


class BlockBody(BaseModel):
    address: str = Field(max_length=40)
    blocked: bool


class CallRejectBody(BaseModel):
    call_id: str = Field(min_length=1, max_length=128)
    caller: str = Field(max_length=40)


class ScanBody(BaseModel):
    qr: str = Field(max_length=4096)


class EnterCodeBody(BaseModel):
    code: str = Field(max_length=32)


class PushNameBody(BaseModel):
    name: str = Field(max_length=100)


class LidAddressingBody(BaseModel):
    share_phone: bool = False


class PhoneSendBody(BaseModel):
    to: str = Field(max_length=40)
    text: str | None = None
    media: MediaBody | None = None
    extras: ExtrasBody | None = None


class OwnSendBody(BaseModel):
    to: str = Field(max_length=40)
    text: str


class PhoneReactBody(BaseModel):
    to: str = Field(max_length=40)
    target_id: str = Field(min_length=1, max_length=128)
    emoji: str = Field(max_length=64)


class PhoneEditBody(BaseModel):
    to: str = Field(max_length=40)
    target_id: str = Field(min_length=1, max_length=128)
    text: str


class PhoneRevokeBody(BaseModel):
    to: str = Field(max_length=40)
    target_id: str = Field(min_length=1, max_length=128)


class VoteBody(BaseModel):
    to: str = Field(max_length=40)
    poll_id: str = Field(min_length=1, max_length=128)
    options: list[str] = Field(max_length=64)


class PhonePresenceBody(BaseModel):
    to: str = Field(max_length=40)
    state: str = Field(max_length=20)


class PhoneReadBody(BaseModel):
    chat: str = Field(max_length=40)


class ProfileBody(BaseModel):
    push_name: str | None = Field(default=None, max_length=100)
    about: str | None = Field(default=None, max_length=1000)
    business: bool = False
    picture: bool = False


class SaveContactBody(BaseModel):
    phone: str = Field(max_length=40)
    name: str = Field(max_length=1000)


class CallBody(BaseModel):
    to: str = Field(max_length=40)
    video: bool = False


def _error(exc: GatewayError) -> JSONResponse:
    return JSONResponse(exc.to_dict(wire=True), status_code=exc.status)


def create_app(network: SimNetwork) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await network.aclose()  # pending acks are timers on this loop

    app = FastAPI(title="zapgate simulated WhatsApp network", version="1", lifespan=lifespan)
    app.state.network = network

    @app.exception_handler(GatewayError)
    async def _gateway_error(_: Request, exc: GatewayError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        body = {
            "errcode": "validation_error",
            "error": "the request does not match the simulated network's API",
            "hint": DETAILS_HINT,
            "details": [
                {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
                for e in exc.errors()
            ],
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.error("simnet: unexpected error", exc_info=exc)
        return _error(GatewayError(N_("simulated network error: {kind}"), kind=type(exc).__name__))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "service": "simnet", "linked": len(network.linked_devices())}

    # -- device side -------------------------------------------------------------------------
    @app.post("/devices/{device_id}/connect")
    async def connect(device_id: str, body: ConnectBody) -> dict[str, Any]:
        return {"phone": await network.connect(device_id, body.creds)}

    @app.post("/devices/{device_id}/qr")
    async def request_qr(device_id: str) -> dict[str, str]:
        return {"qr": await network.request_qr(device_id)}

    @app.post("/devices/{device_id}/pair-code")
    async def pair_code(device_id: str, body: PairCodeBody) -> dict[str, str]:
        return {"code": await network.pair_code(device_id, body.phone)}

    @app.post("/devices/{device_id}/messages")
    async def send(device_id: str, body: SendBody) -> dict[str, str]:
        media = body.media.decoded() if body.media is not None else None
        extras = body.extras.plain() if body.extras is not None else None
        sent = await network.send(device_id, body.request_id, body.to, body.text, media, extras)
        return {"id": sent}

    @app.post("/devices/{device_id}/reactions")
    async def react(device_id: str, body: ReactBody) -> dict[str, str]:
        target = body.target.model_dump()
        return {"id": await network.react(device_id, body.chat, target, body.emoji)}

    @app.post("/devices/{device_id}/edits")
    async def edit(device_id: str, body: EditBody) -> dict[str, str]:
        return {"id": await network.edit(device_id, body.chat, body.target_id, body.text)}

    @app.post("/devices/{device_id}/revokes")
    async def revoke(device_id: str, body: RevokeBody) -> dict[str, str]:
        return {"id": await network.revoke(device_id, body.chat, body.target.model_dump())}

    @app.post("/devices/{device_id}/reads")
    async def mark_read(device_id: str, body: ReadBody) -> dict[str, bool]:
        await network.mark_read(device_id, body.chat, body.ids, body.sender)
        return {"ok": True}

    @app.post("/devices/{device_id}/presence")
    async def set_presence(device_id: str, body: PresenceBody) -> dict[str, bool]:
        await network.set_presence(device_id, body.chat, body.state)
        return {"ok": True}

    @app.post("/devices/{device_id}/number-checks")
    async def check_numbers(device_id: str, body: NumberCheckBody) -> dict[str, Any]:
        return {"items": await network.check_numbers(device_id, body.phones)}

    @app.get("/devices/{device_id}/profiles/{address}")
    async def contact_profile(device_id: str, address: str) -> dict[str, Any]:
        return await network.contact_profile(device_id, address)

    @app.post("/devices/{device_id}/blocks")
    async def set_blocked(device_id: str, body: BlockBody) -> dict[str, bool]:
        await network.set_blocked(device_id, body.address, body.blocked)
        return {"ok": True}

    @app.get("/devices/{device_id}/address-book")
    async def address_book(device_id: str) -> dict[str, Any]:
        return {"items": await network.address_book(device_id)}

    @app.post("/devices/{device_id}/call-rejects")
    async def reject_call(device_id: str, body: CallRejectBody) -> dict[str, bool]:
        await network.reject_call(device_id, body.call_id, body.caller)
        return {"ok": True}

    @app.get("/devices/{device_id}/lids/{lid}")
    async def pn_for_lid(device_id: str, lid: str) -> dict[str, str | None]:
        return {"phone": await network.pn_for_lid(device_id, lid)}

    @app.post("/devices/{device_id}/logout")
    async def logout(device_id: str) -> dict[str, bool]:
        await network.logout(device_id)
        return {"ok": True}

    @app.post("/devices/{device_id}/disconnect")
    async def disconnect(device_id: str) -> dict[str, bool]:
        await network.disconnect(device_id)
        return {"ok": True}

    @app.get("/devices/{device_id}/events")
    async def events(
        request: Request,
        device_id: str,
        after: int = Query(0, ge=0),
        wait: float = Query(0.0, ge=0.0, alias="timeout"),
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait, MAX_POLL)
        while True:
            remaining = max(deadline - loop.time(), 0.0)
            batch = await network.next_events(device_id, after, min(remaining, POLL_SLICE))
            if batch or remaining <= POLL_SLICE or await request.is_disconnected():
                return {"events": batch}

    # -- phone side --------------------------------------------------------------------------
    @app.post("/phones/{phone}/scan")
    async def scan(phone: str, body: ScanBody) -> dict[str, str]:
        return {"device_id": await network.scan(body.qr, phone)}

    @app.post("/phones/{phone}/pair-code")
    async def enter_pair_code(phone: str, body: EnterCodeBody) -> dict[str, str]:
        return {"device_id": await network.enter_pair_code(phone, body.code)}

    @app.post("/phones/{phone}/messages", status_code=201)
    async def phone_send(phone: str, body: PhoneSendBody) -> dict[str, str]:
        media = body.media.decoded() if body.media is not None else None
        extras = body.extras.plain() if body.extras is not None else None
        return {"id": await network.phone_send(phone, body.to, body.text, media, extras)}

    @app.post("/phones/{phone}/own-messages", status_code=201)
    async def phone_send_own(phone: str, body: OwnSendBody) -> dict[str, str]:
        return {"id": await network.phone_send_own(phone, body.to, body.text)}

    @app.post("/phones/{phone}/reactions", status_code=201)
    async def phone_react(phone: str, body: PhoneReactBody) -> dict[str, str]:
        return {"id": await network.phone_react(phone, body.to, body.target_id, body.emoji)}

    @app.post("/phones/{phone}/edits", status_code=201)
    async def phone_edit(phone: str, body: PhoneEditBody) -> dict[str, str]:
        return {"id": await network.phone_edit(phone, body.to, body.target_id, body.text)}

    @app.post("/phones/{phone}/revokes", status_code=201)
    async def phone_revoke(phone: str, body: PhoneRevokeBody) -> dict[str, str]:
        return {"id": await network.phone_revoke(phone, body.to, body.target_id)}

    @app.post("/phones/{phone}/votes")
    async def phone_vote(phone: str, body: VoteBody) -> dict[str, bool]:
        await network.phone_vote(phone, body.to, body.poll_id, body.options)
        return {"ok": True}

    @app.post("/phones/{phone}/presence")
    async def phone_presence(phone: str, body: PhonePresenceBody) -> dict[str, bool]:
        await network.phone_presence(phone, body.to, body.state)
        return {"ok": True}

    @app.post("/phones/{phone}/reads")
    async def phone_read(phone: str, body: PhoneReadBody) -> dict[str, list[str]]:
        return {"ids": await network.phone_read(phone, body.chat)}

    @app.get("/phones/{phone}/log")
    async def phone_log(phone: str) -> dict[str, Any]:
        return {"items": await network.phone_log(phone)}

    @app.post("/phones/{phone}/push-name")
    async def set_push_name(phone: str, body: PushNameBody) -> dict[str, str]:
        return {"name": await network.set_push_name(phone, body.name)}

    @app.post("/phones/{phone}/off-whatsapp")
    async def off_whatsapp(phone: str) -> dict[str, bool]:
        await network.off_whatsapp(phone)
        return {"ok": True}

    @app.put("/phones/{phone}/profile")
    async def set_profile(phone: str, body: ProfileBody) -> dict[str, bool]:
        await network.set_profile(phone, **body.model_dump())
        return {"ok": True}

    @app.post("/phones/{phone}/contacts")
    async def phone_save_contact(phone: str, body: SaveContactBody) -> dict[str, bool]:
        await network.phone_save_contact(phone, body.phone, body.name)
        return {"ok": True}

    @app.post("/phones/{phone}/calls", status_code=201)
    async def phone_call(phone: str, body: CallBody) -> dict[str, str]:
        return {"id": await network.phone_call(phone, body.to, video=body.video)}

    @app.get("/phones/{phone}/lid")
    async def lid_of(phone: str) -> dict[str, str]:
        return {"lid": await network.lid_of(phone)}

    @app.post("/phones/{phone}/lid-addressing")
    async def address_by_lid(phone: str, body: LidAddressingBody) -> dict[str, str]:
        return {"lid": await network.address_by_lid(phone, share_phone=body.share_phone)}

    @app.get("/phones/{phone}/inbox")
    async def phone_inbox(phone: str) -> dict[str, Any]:
        return {"items": await network.phone_inbox(phone)}

    return app
