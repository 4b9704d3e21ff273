"""/v1/sim: drive the simulated WhatsApp network (sim engine, never in production): a
simulated phone scans a QR of your session, or writes to a number linked to your sessions."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Path

from zapgate.domain.media import sniff
from zapgate.errors import ValidationFailed
from zapgate.i18n import N_
from zapgate.web.deps import Ctx, CurrentUser
from zapgate.web.schemas.errors import errors
from zapgate.web.schemas.sessions import PHONE_SCHEMA
from zapgate.web.schemas.sim import SimPhoneMessage, SimScan

router = APIRouter(prefix="/v1/sim", tags=["simulated network"])


@router.post("/scan", responses=errors(400, 401, 404, 413, 422, 502, 503))
async def scan(body: SimScan, ctx: Ctx, user: CurrentUser) -> dict[str, str]:
    """A simulated phone scans the QR one of your sim sessions shows: that session is
    linked to `phone`."""
    session = await ctx.sim.scan(user, body.qr, body.phone)
    return {
        "session": session.name,
        "device_id": session.client_id,
        "phone": ctx.sessions.phone(body.phone, session),
    }


@router.post(
    "/phones/{phone}/messages", status_code=201, responses=errors(400, 401, 404, 413, 422, 502, 503)
)
async def phone_send(
    phone: Annotated[str, Path(json_schema_extra=PHONE_SCHEMA)],
    body: SimPhoneMessage,
    ctx: Ctx,
    user: CurrentUser,
) -> dict[str, str]:
    """The simulated phone `phone` writes to `to`, a number linked to your sim sessions."""
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
    return {"id": await ctx.sim.phone_send(user, phone, body.to, body.text, media)}
