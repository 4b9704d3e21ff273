"""/v1/sim: drive the simulated WhatsApp network (sim engine, never in production): a
simulated phone scans a QR of your session, writes to a number linked to your sessions
(a reply, mentions, a location, contacts, a poll), reacts, edits, deletes, votes on a
poll and shows its presence there; the phone of your session's number writes to someone;
a phone's log shows what your sessions did to it (reactions, edits, deletes, read
receipts, presence, votes, rejected calls); a phone has a profile, calls your session's
number, or has no WhatsApp at all; your session's own phone saves a contact."""

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
from zapgate.web.schemas.sim import (
    SimCall,
    SimEdit,
    SimLog,
    SimOwnMessage,
    SimPhoneMessage,
    SimPhoneOut,
    SimPresence,
    SimProfile,
    SimProfileOut,
    SimReaction,
    SimRevoke,
    SimSaveContact,
    SimScan,
    SimSent,
    SimVote,
    SimVoteOut,
)

router = APIRouter(prefix="/v1/sim", tags=["simulated network"])

Phone = Annotated[str, Path(max_length=32, json_schema_extra=PHONE_SCHEMA)]
# A phone acting in a chat: the network may refuse (no such message, not the author, too
# late to edit: 404/422) or a session's device be offline (409).
ACTION = errors(400, 401, 404, 409, 413, 422, 502, 503)


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


@router.post("/phones/{phone}/messages", status_code=201, responses=ACTION)
async def phone_send(
    phone: Phone, body: SimPhoneMessage, ctx: Ctx, user: CurrentUser
) -> dict[str, str]:
    """The simulated phone `phone` writes to `to`, a number linked to your sim sessions: a
    text, media (with `text` as caption), a location, contact cards or a poll; a text or
    media may quote a message of the chat (`reply_to`) and a text mention phones. The
    session receives it as `message.received`."""
    extras = body.content(body.media)
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
    elif body.text is None and extras.kind is None:
        raise ValidationFailed(N_("text: required (or send media)"))
    elif body.text is not None and extras.kind is not None:
        raise ValidationFailed(
            N_("text: not allowed with a {kind}"),
            hint=N_("Send the text as a separate message."),
            kind=extras.kind,
        )
    message_id = await ctx.sim.phone_send(
        user, phone, body.to, body.text, media, extras, body.reply_to
    )
    return {"id": message_id}


@router.post("/phones/{phone}/own-messages", status_code=201, responses=ACTION)
async def phone_send_own(phone: Phone, body: SimOwnMessage, ctx: Ctx, user: CurrentUser) -> SimSent:
    """The phone of `phone`, a number linked to your sim sessions, writes `text` to `to`
    itself (not through the API): the session reports it as `message.sent`, `from_me`."""
    return SimSent(id=await ctx.sim.phone_send_own(user, phone, body.to, body.text))


@router.post("/phones/{phone}/reactions", status_code=201, responses=ACTION)
async def phone_react(phone: Phone, body: SimReaction, ctx: Ctx, user: CurrentUser) -> SimSent:
    """The simulated phone reacts to a message of its chat with `to` (`""` removes its
    reaction): the session reports `message.reaction`."""
    reaction = await ctx.sim.phone_react(user, phone, body.to, body.message_id, body.emoji)
    return SimSent(id=reaction)


@router.post("/phones/{phone}/edits", status_code=201, responses=ACTION)
async def phone_edit(phone: Phone, body: SimEdit, ctx: Ctx, user: CurrentUser) -> SimSent:
    """The simulated phone edits a text it sent to `to` (within WhatsApp's 15 minutes):
    the session reports `message.edited`."""
    return SimSent(id=await ctx.sim.phone_edit(user, phone, body.to, body.message_id, body.text))


@router.post("/phones/{phone}/revokes", status_code=201, responses=ACTION)
async def phone_revoke(phone: Phone, body: SimRevoke, ctx: Ctx, user: CurrentUser) -> SimSent:
    """The simulated phone deletes a message it sent to `to` for everyone: the session
    reports `message.revoked`."""
    return SimSent(id=await ctx.sim.phone_revoke(user, phone, body.to, body.message_id))


@router.post("/phones/{phone}/votes", responses=ACTION)
async def phone_vote(phone: Phone, body: SimVote, ctx: Ctx, user: CurrentUser) -> SimVoteOut:
    """The simulated phone votes on a poll of its chat with `to`, options by their text
    (its new vote replaces the previous one; `[]` withdraws it): the session reports
    `poll.vote` with the poll's tally."""
    options = list(dict.fromkeys(o.strip() for o in body.options))
    poll_id = await ctx.sim.phone_vote(user, phone, body.to, body.poll_id, options)
    return SimVoteOut(poll_id=poll_id, options=options)


@router.post("/phones/{phone}/presence", responses=ACTION)
async def phone_presence(
    phone: Phone, body: SimPresence, ctx: Ctx, user: CurrentUser
) -> dict[str, str]:
    """The simulated phone shows `state` to `to` (typing, recording, paused in their chat;
    available, unavailable): the session reports `presence.update`."""
    await ctx.sim.phone_presence(user, phone, body.to, body.state)
    return {"to": ctx.sessions.phone(body.to), "state": body.state}


@router.get("/phones/{phone}/log", responses=errors(401, 404, 422, 502, 503))
async def phone_log(phone: Phone, ctx: Ctx, user: CurrentUser) -> SimLog:
    """What the simulated phone saw your sessions do besides messages, oldest first:
    reactions, edits, deletes, read receipts, presence and poll votes."""
    return SimLog(items=await ctx.sim.phone_log(user, phone))


@router.post("/phones/{phone}/off-whatsapp", responses=errors(401, 404, 422, 502, 503))
async def off_whatsapp(phone: Phone, ctx: Ctx, user: CurrentUser) -> SimPhoneOut:
    """From now on the number has no WhatsApp account (a landline, a number never
    registered): a check says `on_whatsapp: false`."""
    return SimPhoneOut(phone=await ctx.sim.off_whatsapp(user, phone))


@router.put("/phones/{phone}/profile", responses=errors(400, 401, 404, 413, 422, 502, 503))
async def set_profile(phone: Phone, body: SimProfile, ctx: Ctx, user: CurrentUser) -> SimProfileOut:
    """What the simulated phone's WhatsApp profile shows (all of it: a field left out is
    cleared): `GET /v1/sessions/{name}/contacts/{phone}` shows it."""
    number = await ctx.sim.set_profile(
        user,
        phone,
        push_name=body.push_name,
        about=body.about,
        business=body.business,
        picture=body.picture,
    )
    return SimProfileOut(phone=number, **body.model_dump())


@router.post("/phones/{phone}/calls", status_code=201, responses=ACTION)
async def phone_call(phone: Phone, body: SimCall, ctx: Ctx, user: CurrentUser) -> SimSent:
    """The simulated phone calls `to`, a number linked to your sim sessions: the session
    reports `call.received`; a rejection shows in the phone's log (`call_rejected`)."""
    return SimSent(id=await ctx.sim.phone_call(user, phone, body.to, body.video))


@router.post("/phones/{phone}/contacts", responses=ACTION)
async def save_contact(
    phone: Phone, body: SimSaveContact, ctx: Ctx, user: CurrentUser
) -> dict[str, str]:
    """The phone of `phone`, a number linked to your sim sessions, saves `body.phone` as
    `name` in its address book: `GET /v1/sessions/{name}/contacts` shows it."""
    saved = await ctx.sim.save_contact(user, phone, body.phone, body.name)
    return {"phone": saved, "name": body.name}
