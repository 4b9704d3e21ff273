"""What a message holds beyond text and media, both ways: the quoted message of a reply,
mentions, a location, contact cards, a poll, a link's preview. Frozen, slotted,
keyword-only, and plain data: `to_dict` / `from_dict` give the JSON that the worker's
wire, the journal and the registry's `content` column carry (names and fields are a wire
format: never renamed).

Addresses follow `domain/events.py`: an E.164 phone when known, else a `<digits>@lid`,
else `user@server` (a group)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# WhatsApp's own limits, checked where a send is accepted.
POLL_MIN_OPTIONS = 2
POLL_MAX_OPTIONS = 12
POLL_OPTION_MAX_CHARS = 100
POLL_QUESTION_MAX_CHARS = 255
# WhatsApp lets a sender edit a message for 15 minutes.
EDIT_WINDOW_SECONDS = 15 * 60
# What a chat presence can be set to (and reported as), as whatsmeow's ChatPresence and
# ChatPresenceMedia name them: "recording" is composing with audio media.
CHAT_PRESENCES = ("typing", "recording", "paused")
# What a contact's presence is reported as (whatsmeow's events.Presence and ChatPresence).
PRESENCES = ("available", "unavailable", *CHAT_PRESENCES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """The message a reply quotes. `id` is WhatsApp's id of it; `sender` its author's
    address (None: this session's own number); `text` a copy of its text, which WhatsApp
    shows in the reply bubble."""

    id: str
    sender: str | None = None
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "sender": self.sender, "text": self.text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quote:
        return cls(id=str(data["id"]), sender=_opt(data.get("sender")), text=_opt(data.get("text")))


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRef:
    """A message to act on (react to, delete) as WhatsApp names it: its id, whether this
    session's number sent it, and, in a group, who did (WhatsApp's `MessageKey`)."""

    id: str
    from_me: bool
    sender: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "from_me": self.from_me, "sender": self.sender}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MessageRef:
        return cls(
            id=str(data["id"]), from_me=bool(data["from_me"]), sender=_opt(data.get("sender"))
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "latitude": self.latitude,
            "longitude": self.longitude,
            "name": self.name,
            "address": self.address,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Location:
        return cls(
            latitude=float(data["latitude"]),
            longitude=float(data["longitude"]),
            name=_opt(data.get("name")),
            address=_opt(data.get("address")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactCard:
    """One shared contact. `vcard` is the card as sent (built from the fields when
    sending; as received otherwise)."""

    name: str
    phone: str | None = None
    organization: str | None = None
    email: str | None = None
    vcard: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phone": self.phone,
            "organization": self.organization,
            "email": self.email,
            "vcard": self.vcard,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContactCard:
        return cls(
            name=str(data["name"]),
            phone=_opt(data.get("phone")),
            organization=_opt(data.get("organization")),
            email=_opt(data.get("email")),
            vcard=_opt(data.get("vcard")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Poll:
    question: str
    options: tuple[str, ...]
    max_selections: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "options": list(self.options),
            "max_selections": self.max_selections,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Poll:
        return cls(
            question=str(data["question"]),
            options=tuple(str(o) for o in data["options"]),
            max_selections=int(data.get("max_selections") or 1),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkPreview:
    """The card WhatsApp shows under a text with a link: `url` as the text has it
    (WhatsApp's `matchedText`), the page's title and description, and a small JPEG
    thumbnail (its bytes; base64 in `to_dict`)."""

    url: str
    title: str | None = None
    description: str | None = None
    thumbnail: bytes | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        thumb = None if self.thumbnail is None else base64.b64encode(self.thumbnail).decode()
        return {
            "url": self.url,
            "title": self.title,
            "description": self.description,
            "thumbnail": thumb,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkPreview:
        thumbnail: bytes | None = None
        if data.get("thumbnail"):
            try:
                thumbnail = base64.b64decode(str(data["thumbnail"]), validate=True)
            except (binascii.Error, ValueError):
                thumbnail = None  # a preview is worth keeping without its picture
        return cls(
            url=str(data["url"]),
            title=_opt(data.get("title")),
            description=_opt(data.get("description")),
            thumbnail=thumbnail,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Extras:
    """Everything a message may carry besides its text and media. Empty for a plain text.
    Exactly one of `location`, `contacts`, `poll` is set for those kinds of message; a
    text may carry the `preview` of its first link."""

    quote: Quote | None = None
    mentions: tuple[str, ...] = ()
    location: Location | None = None
    contacts: tuple[ContactCard, ...] = field(default=())
    poll: Poll | None = None
    preview: LinkPreview | None = None

    @property
    def kind(self) -> str | None:
        """`location`, `contacts` or `poll`, or None (a text or media message)."""
        if self.location is not None:
            return "location"
        if self.contacts:
            return "contacts"
        if self.poll is not None:
            return "poll"
        return None

    def __bool__(self) -> bool:
        return bool(self.quote or self.mentions or self.kind or self.preview)

    def to_dict(self) -> dict[str, Any]:
        """Only the fields set, so a plain message's JSON stays `{}`."""
        out: dict[str, Any] = {}
        if self.quote is not None:
            out["quote"] = self.quote.to_dict()
        if self.mentions:
            out["mentions"] = list(self.mentions)
        if self.location is not None:
            out["location"] = self.location.to_dict()
        if self.contacts:
            out["contacts"] = [c.to_dict() for c in self.contacts]
        if self.poll is not None:
            out["poll"] = self.poll.to_dict()
        if self.preview is not None:
            out["preview"] = self.preview.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Extras:
        if not data:
            return NO_EXTRAS
        quote, location, poll = data.get("quote"), data.get("location"), data.get("poll")
        preview = data.get("preview")
        return cls(
            quote=Quote.from_dict(quote) if quote else None,
            mentions=tuple(str(m) for m in data.get("mentions") or ()),
            location=Location.from_dict(location) if location else None,
            contacts=tuple(ContactCard.from_dict(c) for c in data.get("contacts") or ()),
            poll=Poll.from_dict(poll) if poll else None,
            preview=LinkPreview.from_dict(preview) if preview else None,
        )


NO_EXTRAS = Extras()


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
