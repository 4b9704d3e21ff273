"""What a session learns about other WhatsApp users: whether a number is on WhatsApp, a
contact's profile, the account's address book. Frozen, slotted, keyword-only; addresses
follow `domain/events.py` (an E.164 phone when known, else a `<digits>@lid`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# At most this many numbers per check (WhatsApp's usync answers in batches; a campaign
# list is checked a page at a time).
MAX_CHECK = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberCheck:
    """Whether `phone` has a WhatsApp account; its JID and LID when it has."""

    phone: str
    on_whatsapp: bool
    jid: str | None = None
    lid: str | None = None
    business: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "phone": self.phone,
            "on_whatsapp": self.on_whatsapp,
            "jid": self.jid,
            "lid": self.lid,
            "business": self.business,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumberCheck:
        return cls(
            phone=str(data["phone"]),
            on_whatsapp=bool(data["on_whatsapp"]),
            jid=_opt(data.get("jid")),
            lid=_opt(data.get("lid")),
            business=bool(data.get("business")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactProfile:
    """A WhatsApp user as this session may see them. `about` is their status text,
    `picture_url` where WhatsApp serves their profile picture (None: none, or hidden from
    this account), `business` a WhatsApp Business account, `blocked` whether this account
    blocked them."""

    address: str
    lid: str | None = None
    push_name: str | None = None
    about: str | None = None
    picture_url: str | None = None
    business: bool = False
    blocked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "lid": self.lid,
            "push_name": self.push_name,
            "about": self.about,
            "picture_url": self.picture_url,
            "business": self.business,
            "blocked": self.blocked,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContactProfile:
        return cls(
            address=str(data["address"]),
            lid=_opt(data.get("lid")),
            push_name=_opt(data.get("push_name")),
            about=_opt(data.get("about")),
            picture_url=_opt(data.get("picture_url")),
            business=bool(data.get("business")),
            blocked=bool(data.get("blocked")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressBookEntry:
    """One contact the account's phone synced to its devices: the name saved on the
    phone (`name`) and the contact's own push name when known."""

    address: str
    name: str | None = None
    push_name: str | None = None
    lid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "name": self.name,
            "push_name": self.push_name,
            "lid": self.lid,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AddressBookEntry:
        return cls(
            address=str(data["address"]),
            name=_opt(data.get("name")),
            push_name=_opt(data.get("push_name")),
            lid=_opt(data.get("lid")),
        )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
