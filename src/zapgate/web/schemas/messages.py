"""/v1/sessions/{name}/messages: what is sent (text or media) and the history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from zapgate.domain.content import (
    CHAT_PRESENCES,
    POLL_MAX_OPTIONS,
    POLL_MIN_OPTIONS,
    POLL_OPTION_MAX_CHARS,
    POLL_QUESTION_MAX_CHARS,
    ContactCard,
    Extras,
    Location,
    Poll,
)
from zapgate.domain.ids import identity
from zapgate.domain.media import media_url
from zapgate.domain.models import SENDABLE_MEDIA, Chat, MediaMeta, Message
from zapgate.errors import ValidationFailed
from zapgate.i18n import N_

# Whom a message goes to: a phone number or a LID, `<digits>@lid`. The
# service answers `invalid_phone` or `invalid_lid` with a hint; this documents the shape.
RECIPIENT_SCHEMA: JsonDict = {
    "pattern": r"^([0-9+\s().-]+|\s*[0-9]{1,20}@lid\s*"
    r"|\s*[0-9]{1,20}(:[0-9]{1,3})?@(s\.whatsapp\.net|c\.us)\s*)$",
    "minLength": 1,
    "maxLength": 40,
    "description": "An E.164 phone number (+5511999990003; a national number when the "
    "session has a default_country), its JID (5511999990003@s.whatsapp.net), or a LID as "
    "a message's lid shows it (123456789012345@lid)",
}

# Checked by the media intake, which names the kinds it accepts.
MEDIA_TYPE_SCHEMA: JsonDict = {"enum": list(SENDABLE_MEDIA)}
MEDIA_TYPE_DESCRIPTION = (
    "image, document, audio, video, sticker (webp; other images are converted) or voice "
    "(an ogg/opus voice note)"
)
PHONE_SCHEMA: JsonDict = {"pattern": r"^[0-9+\s().-]+$", "minLength": 1, "maxLength": 32}
MAX_CONTACTS = 10
MAX_MENTIONS = 50
# The longest a send may show typing first (`typing_ms`).
MAX_TYPING_MS = 20_000


class MediaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(
        max_length=16, description=MEDIA_TYPE_DESCRIPTION, json_schema_extra=MEDIA_TYPE_SCHEMA
    )
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="http(s) URL zapgate downloads the file from",
    )
    base64: str | None = Field(
        default=None, min_length=1, description="The file, base64 (or a data: URL)"
    )
    mime: str | None = Field(default=None, max_length=200, description="Default: detected")
    filename: str | None = Field(default=None, max_length=255)
    caption: str | None = None


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    phone: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)
    organization: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)


class PollIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=POLL_QUESTION_MAX_CHARS)
    options: list[str] = Field(
        min_length=POLL_MIN_OPTIONS,
        max_length=POLL_MAX_OPTIONS,
        description="2 to 12 different options",
        json_schema_extra={
            "items": {"type": "string", "minLength": 1, "maxLength": POLL_OPTION_MAX_CHARS}
        },
    )
    max_selections: int = Field(
        default=1, ge=1, le=POLL_MAX_OPTIONS, description="At most the number of options"
    )


class ContentIn(BaseModel):
    """What a message carries besides its media: a text, a quote (`reply_to`), mentions,
    or a location, contact cards or a poll; shared by a session's send and a simulated
    phone's."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    reply_to: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="A message of this session to quote: its id or its wa_id",
    )
    mentions: list[str] | None = Field(
        default=None,
        max_length=MAX_MENTIONS,
        description="Phones mentioned in the text (write @<digits> in the text too)",
        json_schema_extra={"items": {"type": "string", **PHONE_SCHEMA}},
    )
    location: LocationIn | None = None
    contacts: list[ContactIn] | None = Field(
        default=None, min_length=1, max_length=MAX_CONTACTS, description="1 to 10 contact cards"
    )
    poll: PollIn | None = None

    def content(self, media: object | None) -> Extras:
        """The location, contacts or poll (at most one, and not with `media`) and the
        mentions, checked beyond what the schema says."""
        kinds = [
            k
            for k, v in (
                ("media", media),
                ("location", self.location),
                ("contacts", self.contacts),
                ("poll", self.poll),
            )
            if v is not None
        ]
        if len(kinds) > 1:
            raise ValidationFailed(
                N_("{kinds}: give only one of them"),
                hint=N_("Send each as a message of its own."),
                kinds=", ".join(kinds),
            )
        if self.mentions and (kinds or self.text is None):
            raise ValidationFailed(N_("mentions: only a text message mentions"))
        if self.poll is not None and self.reply_to is not None:
            raise ValidationFailed(N_("reply_to: a poll cannot quote a message"))
        poll = None
        if self.poll is not None:
            options = [o.strip() for o in self.poll.options]
            if any(not o or len(o) > POLL_OPTION_MAX_CHARS for o in options):
                raise ValidationFailed(
                    N_("poll.options: each option needs 1 to {max} characters"),
                    max=POLL_OPTION_MAX_CHARS,
                )
            if len(set(options)) != len(options):
                raise ValidationFailed(N_("poll.options: the options must all be different"))
            if self.poll.max_selections > len(options):
                raise ValidationFailed(
                    N_("poll.max_selections: at most the number of options ({n})"),
                    n=len(options),
                )
            poll = Poll(
                question=self.poll.question,
                options=tuple(options),
                max_selections=self.poll.max_selections,
            )
        return Extras(
            mentions=tuple(self.mentions or ()),
            location=None if self.location is None else Location(**self.location.model_dump()),
            contacts=tuple(ContactCard(**c.model_dump()) for c in self.contacts or ()),
            poll=poll,
        )


class SendMessage(ContentIn):
    """`{to, text}`, or `{to, media: {type, url | base64, mime?, filename?, caption?}}`,
    or `{to, location}`, `{to, contacts}`, `{to, poll}`; a text or media may reply to a
    message (`reply_to`), a text mention phones (`mentions`) and show its link's preview
    (`link_preview`). `typing_ms` shows the session typing (recording, for a voice note)
    that long before the message goes."""

    to: str = Field(max_length=40, json_schema_extra=RECIPIENT_SCHEMA)
    media: MediaIn | None = None
    link_preview: bool = Field(
        default=False,
        description="Show the title, description and thumbnail of the text's first "
        "http(s) link, fetched by zapgate; the text is sent without them when the page "
        "cannot be fetched",
    )
    typing_ms: int = Field(
        default=0,
        ge=0,
        le=MAX_TYPING_MS,
        description="Show typing (recording, for a voice note) in the chat for this many "
        "milliseconds, then send: the message is queued (202) with scheduled_at that much "
        "later",
    )

    def extras(self) -> Extras:
        extras = self.content(self.media)
        if self.link_preview and (extras.kind is not None or self.media or self.text is None):
            raise ValidationFailed(N_("link_preview: only a text message has a link preview"))
        return extras


class MediaPublic(BaseModel):
    type: str
    mime: str
    size: int
    filename: str | None
    url: str | None = Field(description="Where the owner can download it (API path)")

    @classmethod
    def of(cls, m: MediaMeta, session_name: str, message_id: str) -> MediaPublic:
        return cls(
            type=m.type,
            mime=m.mime,
            size=m.size,
            filename=m.filename,
            url=media_url(session_name, message_id) if m.ref else None,
        )


class QuotePublic(BaseModel):
    id: str | None = Field(description="The gateway's id of the quoted message, when known")
    wa_id: str = Field(description="WhatsApp's id of the quoted message")
    sender: str | None = Field(description="Its author (null: this session's number)")
    text: str | None


class LocationPublic(BaseModel):
    latitude: float
    longitude: float
    name: str | None
    address: str | None


class ContactPublic(BaseModel):
    name: str
    phone: str | None
    organization: str | None
    email: str | None
    vcard: str | None


class PollPublic(BaseModel):
    question: str
    options: list[str]
    max_selections: int
    tally: dict[str, int] = Field(description="Votes per option (each voter's latest)")


class PreviewPublic(BaseModel):
    url: str = Field(description="The link as the text has it")
    title: str | None
    description: str | None
    thumbnail: str | None = Field(description="A small JPEG, base64")


class ReactionPublic(BaseModel):
    sender: str = Field(description='Who reacted: an address, or "me" for this session')
    emoji: str


class MessagePublic(BaseModel):
    id: str = Field(description="The gateway's id of the message (inbound: WhatsApp's)")
    wa_id: str | None = Field(
        default=None,
        description="WhatsApp's id of the message: assigned by WhatsApp when it is sent "
        "(null until then); receipts, replies and reactions name it",
    )
    direction: Literal["in", "out"]
    chat: str = Field(
        description="The other side: an E.164 phone whenever known, else its LID "
        "(<digits>@lid), or a group's JID"
    )
    chat_lid: str | None = Field(
        default=None, description="The chat's LID (<digits>@lid) when known"
    )
    phone: str | None = Field(
        default=None, description="The other side's phone (E.164) whenever it is known"
    )
    jid: str = Field(
        description="The chat's WhatsApp JID: <digits>@s.whatsapp.net for a phone, the "
        "LID itself when no phone is known, a group's JID",
    )
    lid: str | None = Field(default=None, description="The chat's LID when known")
    kind: Literal["text", "media", "location", "contacts", "poll"] = "text"
    text: str | None
    status: str
    status_reason: str | None
    created_at: datetime
    scheduled_at: datetime | None = Field(
        default=None, description="When a queued message is expected to go (rate limit)"
    )
    media: MediaPublic | None = None
    from_me: bool = Field(
        default=False, description="Sent from the phone (or another device), not the API"
    )
    sender_name: str | None = Field(
        default=None,
        description="The name the sender set in WhatsApp (push name), as this message "
        "carried it; null on messages sent through the API",
    )
    reply_to: QuotePublic | None = None
    mentions: list[str] = Field(default_factory=list)
    location: LocationPublic | None = None
    contacts: list[ContactPublic] | None = None
    poll: PollPublic | None = None
    preview: PreviewPublic | None = Field(default=None, description="The text's link preview")
    reactions: list[ReactionPublic] = Field(default_factory=list)
    edited_at: datetime | None = None
    revoked: bool = Field(default=False, description="Deleted for everyone")

    @classmethod
    def of(cls, m: Message, session_name: str | None = None) -> MessagePublic:
        direction: Literal["in", "out"] = "in" if m.direction == "in" else "out"
        kind: Literal["text", "media", "location", "contacts", "poll"] = "text"
        for k in ("media", "location", "contacts", "poll"):
            if m.kind == k:
                kind = k
        ex = m.extras
        poll = ex.poll
        return cls(
            id=m.id,
            wa_id=m.wa_id,
            direction=direction,
            chat=m.chat,
            chat_lid=m.chat_lid,
            **identity(m.chat, m.chat_lid),
            kind=kind,
            text=m.text,
            status=m.status.value,
            status_reason=m.status_reason,
            created_at=m.created_at,
            scheduled_at=m.scheduled_at,
            media=MediaPublic.of(m.media, session_name, m.id)
            if m.media is not None and session_name is not None
            else None,
            from_me=m.from_me,
            sender_name=m.sender_name,
            reply_to=None
            if ex.quote is None
            else QuotePublic(
                id=m.reply_to, wa_id=ex.quote.id, sender=ex.quote.sender, text=ex.quote.text
            ),
            mentions=list(ex.mentions),
            location=None
            if ex.location is None
            else LocationPublic.model_validate(ex.location.to_dict()),
            contacts=[ContactPublic.model_validate(c.to_dict()) for c in ex.contacts] or None,
            poll=None
            if poll is None
            else PollPublic(
                question=poll.question,
                options=list(poll.options),
                max_selections=poll.max_selections,
                tally=m.tally(),
            ),
            preview=None
            if ex.preview is None
            else PreviewPublic.model_validate(ex.preview.to_dict()),
            reactions=[ReactionPublic(sender=who, emoji=e) for who, e in m.reactions.items()],
            edited_at=m.edited_at,
            revoked=m.revoked_at is not None,
        )


class MessageList(BaseModel):
    items: list[MessagePublic]
    next: str | None


class ReactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    emoji: str = Field(max_length=64, description='One emoji; "" removes your reaction')


class EditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)


class PresenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["typing", "recording", "paused"] = Field(description=", ".join(CHAT_PRESENCES))


class PresenceOut(BaseModel):
    chat: str
    state: str


class ChatReadOut(BaseModel):
    chat: str
    read: int = Field(description="How many received messages were marked read")


class ChatPublic(BaseModel):
    id: str = Field(description="The chat: an E.164 phone whenever known, else its LID")
    phone: str | None = Field(description="The chat's phone (E.164) when known")
    jid: str = Field(description="The chat's WhatsApp JID")
    lid: str | None = Field(description="The chat's LID when known")
    chat_lid: str | None = Field(description="The chat's LID when known (as `lid`)")
    name: str | None = Field(
        description="The name the contact set in WhatsApp (push name), as its latest "
        "message carried it; null until a message brings one"
    )
    last_message: MessagePublic
    unread: int = Field(description="Received messages without a read receipt")
    updated_at: datetime

    @classmethod
    def of(cls, c: Chat, session_name: str) -> ChatPublic:
        return cls(
            id=c.chat,
            **identity(c.chat, c.chat_lid),
            chat_lid=c.chat_lid,
            name=c.name,
            last_message=MessagePublic.of(c.last_message, session_name),
            unread=c.unread,
            updated_at=c.updated_at,
        )


class ChatList(BaseModel):
    items: list[ChatPublic]
    next: str | None
