"""/v1/sim: drive the simulated WhatsApp network (development only): a simulated phone
scans a QR, or writes to a linked number."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter

from zapgate.domain.media import sniff
from zapgate.errors import NotFound, ValidationFailed
from zapgate.i18n import N_
from zapgate.web.deps import Ctx, CurrentUser
from zapgate.web.schemas.sim import SimPhoneMessage, SimScan

router = APIRouter(prefix="/v1/sim", tags=["simulated network"])


@router.post("/scan")
async def scan(body: SimScan, ctx: Ctx, user: CurrentUser) -> dict[str, str]:
    phone = ctx.sessions.phone(body.phone)
    sessions = [s for s in await ctx.sessions.list_for(user) if s.engine == "sim"]
    if not sessions:
        raise NotFound(
            N_("You have no session on the sim engine."),
            hint=N_('PUT /v1/sessions/{name} with {"engine": "sim"} first.'),
        )
    routes = {s.route: s.label for s in sessions}
    last: Exception | None = None
    for route, label in routes.items():
        try:
            device = await ctx.pool.call(route, label, lambda w: w.sim_scan(body.qr, phone))
        except NotFound as exc:
            last = exc
            continue
        return {"device_id": device, "phone": phone}
    assert last is not None
    raise last


@router.post("/phones/{phone}/messages", status_code=201)
async def phone_send(phone: str, body: SimPhoneMessage, ctx: Ctx, _: CurrentUser) -> dict[str, str]:
    sender, to = ctx.sessions.phone(phone), ctx.sessions.phone(body.to)
    targets = [s for s in await ctx.sessions.find_by_phone(to) if s.engine == "sim"]
    if not targets:
        raise NotFound(
            N_("No sim session is linked to {phone}."),
            hint=N_("Link one first: start a sim session and scan its QR."),
            phone=to,
        )
    media: dict[str, Any] | None = None
    if body.media is not None:
        try:
            data = base64.b64decode(body.media.base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed(N_("media.base64: not valid base64")) from exc
        media = {
            "kind": body.media.type,
            "mime": body.media.mime or sniff(data) or "application/octet-stream",
            "filename": body.media.filename,
            "data": data,
        }
    elif body.text is None:
        raise ValidationFailed(N_("text: required (or send media)"))
    target = targets[0]
    msg_id = await ctx.pool.call(
        target.route, target.label, lambda w: w.sim_phone_send(sender, to, body.text, media)
    )
    return {"id": msg_id}
