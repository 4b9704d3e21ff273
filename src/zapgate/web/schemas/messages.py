"""/v1/sessions/{name}/messages: what is sent (text or media) and the history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from zapgate.domain.media import media_url
from zapgate.domain.models import MEDIA_KINDS, MediaMeta, Message

# Whom a message goes to: a phone number or a LID, `<digits>@lid`. The
# service answers `invalid_phone` or `invalid_lid` with a hint; this documents the shape.
RECIPIENT_SCHEMA: JsonDict = {
    "pattern": r"^([0-9+\s().-]+|\s*[0-9]{1,20}@lid\s*)$",
    "minLength": 1,
    "maxLength": 32,
    "description": "An E.164 phone number (+5511999990003; a national number when the "
    "session has a default_country), or a LID as a message's chat_lid shows it "
    "(123456789012345@lid)",
}

# Checked by the media intake, which names the kinds it accepts.
MEDIA_TYPE_SCHEMA: JsonDict = {"enum": list(MEDIA_KINDS)}


class MediaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(
        max_length=16,
        description="image, document, audio or video",
        json_schema_extra=MEDIA_TYPE_SCHEMA,
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


class SendMessage(BaseModel):
    """`{to, text}`, or `{to, media: {type, url | base64, mime?, filename?, caption?}}`."""

    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=32, json_schema_extra=RECIPIENT_SCHEMA)
    text: str | None = None
    media: MediaIn | None = None


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
    text: str | None
    status: str
    status_reason: str | None
    created_at: datetime
    scheduled_at: datetime | None = Field(
        default=None, description="When a queued message is expected to go (rate limit)"
    )
    media: MediaPublic | None = None

    @classmethod
    def of(cls, m: Message, session_name: str | None = None) -> MessagePublic:
        direction: Literal["in", "out"] = "in" if m.direction == "in" else "out"
        return cls(
            id=m.id,
            wa_id=m.wa_id,
            direction=direction,
            chat=m.chat,
            chat_lid=m.chat_lid,
            text=m.text,
            status=m.status.value,
            status_reason=m.status_reason,
            created_at=m.created_at,
            scheduled_at=m.scheduled_at,
            media=MediaPublic.of(m.media, session_name, m.id)
            if m.media is not None and session_name is not None
            else None,
        )


class MessageList(BaseModel):
    items: list[MessagePublic]
    next: str | None
