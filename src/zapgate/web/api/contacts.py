"""/v1/sessions/{name}/contacts and /v1/sessions/{name}/calls: thin routes over
ContactService. A contact is named by its phone (E.164, or national in the session's
default_country), its JID or its LID, URL-encoded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from zapgate.web.deps import Ctx, CurrentUser, SessionName
from zapgate.web.schemas.contacts import (
    AddressBookList,
    AddressBookPublic,
    BlockOut,
    CallPublic,
    CheckIn,
    CheckOut,
    ContactPublic,
    NumberCheckPublic,
)
from zapgate.web.schemas.errors import SESSION_ACTION, SESSION_WITH_BODY

router = APIRouter(prefix="/v1/sessions")

Contact = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="A phone (E.164), its JID or a LID (<digits>@lid), URL-encoded",
    ),
]
CallId = Annotated[
    str, Path(min_length=1, max_length=128, description="The id of the call.received event")
]


@router.post("/{name}/contacts/check", tags=["contacts"], responses=SESSION_WITH_BODY)
async def check_numbers(name: SessionName, body: CheckIn, ctx: Ctx, user: CurrentUser) -> CheckOut:
    """Which numbers have a WhatsApp account, with their JID and LID. Answers are kept
    for ZAPGATE_CONTACT_CHECK_TTL seconds (a day by default): a number checked since is
    answered from them (`cached`) without asking WhatsApp again."""
    answers = await ctx.contacts.check(user, name, body.phones)
    return CheckOut(items=[NumberCheckPublic.of(a) for a in answers])


@router.get("/{name}/contacts", tags=["contacts"], responses=SESSION_ACTION)
async def address_book(
    name: SessionName,
    ctx: Ctx,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[str | None, Query(max_length=400, description="A page's `next`")] = None,
) -> AddressBookList:
    """The address book the account's phone synced, by name (as saved on the phone)."""
    items, nxt = await ctx.contacts.address_book(user, name, limit=limit, after=after)
    return AddressBookList(items=[AddressBookPublic.of(e) for e in items], next=nxt)


@router.get("/{name}/contacts/{contact}", tags=["contacts"], responses=SESSION_ACTION)
async def contact_profile(
    name: SessionName, contact: Contact, ctx: Ctx, user: CurrentUser
) -> ContactPublic:
    """What WhatsApp shows of the contact: push name, about, profile picture URL,
    business or not, blocked or not."""
    return ContactPublic.of(await ctx.contacts.profile(user, name, contact))


@router.post("/{name}/contacts/{contact}/block", tags=["contacts"], responses=SESSION_ACTION)
async def block(name: SessionName, contact: Contact, ctx: Ctx, user: CurrentUser) -> BlockOut:
    """Block the contact: its messages and calls no longer reach the session."""
    return BlockOut.of(await ctx.contacts.set_blocked(user, name, contact, True), True)


@router.post("/{name}/contacts/{contact}/unblock", tags=["contacts"], responses=SESSION_ACTION)
async def unblock(name: SessionName, contact: Contact, ctx: Ctx, user: CurrentUser) -> BlockOut:
    """Unblock the contact."""
    return BlockOut.of(await ctx.contacts.set_blocked(user, name, contact, False), False)


@router.post("/{name}/calls/{call_id}/reject", tags=["calls"], responses=SESSION_ACTION)
async def reject_call(
    name: SessionName, call_id: CallId, ctx: Ctx, user: CurrentUser
) -> CallPublic:
    """Reject a call that is ringing (its id from `call.received`); the caller sees it
    declined. A call rejected already is answered as it is."""
    return CallPublic.of(await ctx.contacts.reject_call(user, name, call_id))
