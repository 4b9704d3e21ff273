"""/v1/sessions/{name}/contacts and /calls: number checks, profiles, blocking, the
address book and calls."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from zapgate.domain.contacts import MAX_CHECK, AddressBookEntry, ContactProfile
from zapgate.domain.ids import identity
from zapgate.domain.models import Call, CheckedNumber
from zapgate.web.schemas.sessions import PHONE_SCHEMA

PHONE_FIELD = "The phone as E.164 (a national number read in the session's default_country)"
JID_FIELD = "WhatsApp's JID: <digits>@s.whatsapp.net, or the LID when no phone is known"
LID_FIELD = "The contact's LID (<digits>@lid) when known"


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phones: list[Annotated[str, Field(max_length=32, json_schema_extra=PHONE_SCHEMA)]] = Field(
        min_length=1,
        max_length=MAX_CHECK,
        description=f"1 to {MAX_CHECK} phone numbers; a number given twice is answered once",
    )


class NumberCheckPublic(BaseModel):
    phone: str = Field(description=PHONE_FIELD)
    on_whatsapp: bool
    jid: str | None = Field(description="<digits>@s.whatsapp.net when on WhatsApp")
    lid: str | None = Field(description="The number's LID (<digits>@lid) when on WhatsApp")
    business: bool = Field(description="A WhatsApp Business account")
    checked_at: datetime = Field(description="When WhatsApp was asked")
    cached: bool = Field(description="Answered from this session's cache, not asked again")

    @classmethod
    def of(cls, answer: CheckedNumber) -> NumberCheckPublic:
        c = answer.check
        return cls(
            phone=c.phone,
            on_whatsapp=c.on_whatsapp,
            jid=c.jid,
            lid=c.lid,
            business=c.business,
            checked_at=answer.checked_at,
            cached=answer.cached,
        )


class CheckOut(BaseModel):
    items: list[NumberCheckPublic]


class ContactPublic(BaseModel):
    phone: str | None = Field(description="E.164, when known")
    jid: str = Field(description=JID_FIELD)
    lid: str | None = Field(description=LID_FIELD)
    push_name: str | None = Field(description="The name the contact set on WhatsApp")
    about: str | None = Field(description="The contact's about (status) text")
    picture_url: str | None = Field(
        description="Where WhatsApp serves the profile picture; null: none, or hidden"
    )
    business: bool = Field(description="A WhatsApp Business account")
    blocked: bool = Field(description="This account blocked the contact")

    @classmethod
    def of(cls, p: ContactProfile) -> ContactPublic:
        ids = identity(p.address, p.lid)
        return cls(
            phone=ids["phone"],
            jid=ids["jid"] or p.address,
            lid=ids["lid"],
            push_name=p.push_name,
            about=p.about,
            picture_url=p.picture_url,
            business=p.business,
            blocked=p.blocked,
        )


class BlockOut(BaseModel):
    phone: str | None = Field(description="E.164, when known")
    jid: str = Field(description=JID_FIELD)
    blocked: bool

    @classmethod
    def of(cls, address: str, blocked: bool) -> BlockOut:
        ids = identity(address, None)
        return cls(phone=ids["phone"], jid=ids["jid"] or address, blocked=blocked)


class AddressBookPublic(BaseModel):
    phone: str | None = Field(description="E.164, when known")
    jid: str = Field(description=JID_FIELD)
    lid: str | None = Field(description=LID_FIELD)
    name: str | None = Field(description="The name saved on the account's phone")
    push_name: str | None = Field(description="The name the contact set on WhatsApp")

    @classmethod
    def of(cls, e: AddressBookEntry) -> AddressBookPublic:
        ids = identity(e.address, e.lid)
        return cls(
            phone=ids["phone"],
            jid=ids["jid"] or e.address,
            lid=ids["lid"],
            name=e.name,
            push_name=e.push_name,
        )


class AddressBookList(BaseModel):
    items: list[AddressBookPublic]
    next: str | None = Field(description="Pass as `after` for the next page; null: the last")


class CallPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str = Field(description="WhatsApp's id of the call")
    from_: str = Field(alias="from", description="The caller: E.164, or a LID")
    phone: str | None = Field(description="E.164, when known")
    jid: str = Field(description=JID_FIELD)
    lid: str | None = Field(description=LID_FIELD)
    video: bool
    group: bool
    auto_rejected: bool = Field(description="Rejected as it rang (the session's reject_calls)")
    received_at: datetime
    rejected_at: datetime | None

    @classmethod
    def of(cls, c: Call) -> CallPublic:
        ids = identity(c.caller, c.caller_lid)
        return cls(
            id=c.id,
            from_=c.caller,
            phone=ids["phone"],
            jid=ids["jid"] or c.caller,
            lid=ids["lid"],
            video=c.video,
            group=c.group,
            auto_rejected=c.auto_reject,
            received_at=c.received_at,
            rejected_at=c.rejected_at,
        )
