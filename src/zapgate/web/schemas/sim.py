"""/v1/sim (sim engine only): a simulated phone scans a QR code, writes a message (the
session's own phone too), reacts, edits, deletes, votes, shows its presence, and reads
what it saw."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zapgate.domain.content import POLL_MAX_OPTIONS, POLL_OPTION_MAX_CHARS, PRESENCES
from zapgate.web.schemas.messages import MEDIA_TYPE_SCHEMA, ContentIn
from zapgate.web.schemas.sessions import PHONE_SCHEMA

# A message of the chat, as the phone names it (the network's id is WhatsApp's) or as the
# gateway does.
MESSAGE_REF_DESCRIPTION = (
    "A message of the chat between the phone and `to`: its id or wa_id at the session "
    "linked to `to`"
)


class SimScan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qr: str = Field(min_length=1, max_length=1024)
    phone: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)


class SimMedia(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(max_length=16, json_schema_extra=MEDIA_TYPE_SCHEMA)
    base64: str = Field(min_length=1)
    mime: str | None = Field(default=None, max_length=200)
    filename: str | None = Field(default=None, max_length=255)


class SimPhoneMessage(ContentIn):
    """`{to, text}`, `{to, media}` (with `text` as caption), `{to, location}`,
    `{to, contacts}` or `{to, poll}`; a text or media may quote a message of the chat
    (`reply_to`) and a text mention phones (`mentions`)."""

    to: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)
    text: str | None = Field(default=None, max_length=65_536)
    reply_to: str | None = Field(
        default=None, min_length=1, max_length=128, description=MESSAGE_REF_DESCRIPTION
    )
    media: SimMedia | None = Field(default=None, description="Sent with `text` as caption")


class SimOwnMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(
        max_length=32,
        description="Whom the session's own phone writes to",
        json_schema_extra=PHONE_SCHEMA,
    )
    text: str = Field(min_length=1, max_length=65_536)


class SimReaction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)
    message_id: str = Field(min_length=1, max_length=128, description=MESSAGE_REF_DESCRIPTION)
    emoji: str = Field(max_length=32, description='One emoji; "" removes the reaction')


class SimEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)
    message_id: str = Field(
        min_length=1, max_length=128, description="A message the phone sent to `to`"
    )
    text: str = Field(min_length=1, max_length=65_536)


class SimRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)
    message_id: str = Field(
        min_length=1, max_length=128, description="A message the phone sent to `to`"
    )


class SimVote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)
    poll_id: str = Field(min_length=1, max_length=128, description=MESSAGE_REF_DESCRIPTION)
    options: list[str] = Field(
        max_length=POLL_MAX_OPTIONS,
        description="The options chosen, by their text; [] withdraws the vote. A new vote "
        "replaces the phone's previous one",
        json_schema_extra={"items": {"type": "string", "maxLength": POLL_OPTION_MAX_CHARS}},
    )


class SimVoteOut(BaseModel):
    poll_id: str = Field(description="WhatsApp's id of the poll")
    options: list[str]


class SimPresence(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)
    state: Literal["available", "unavailable", "typing", "recording", "paused"] = Field(
        description=", ".join(PRESENCES)
    )


class SimSent(BaseModel):
    id: str = Field(description="WhatsApp's id of the message or action")


class SimLog(BaseModel):
    items: list[dict[str, Any]] = Field(
        description="What the phone saw besides messages, oldest first: {type, from, "
        "timestamp, ...}: reaction {id, emoji}, edit {id, text}, revoke {id}, read {ids}, "
        "presence {state}, vote {poll_id, options}"
    )


class SimProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    push_name: str | None = Field(default=None, max_length=100, description="Its WhatsApp name")
    about: str | None = Field(default=None, max_length=139, description="Its about text")
    business: bool = Field(default=False, description="A WhatsApp Business account")
    picture: bool = Field(default=False, description="It has a profile picture")


class SimProfileOut(SimProfile):
    phone: str


class SimCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(
        max_length=32,
        description="A number linked to your sim sessions",
        json_schema_extra=PHONE_SCHEMA,
    )
    video: bool = False


class SimSaveContact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(
        max_length=32, description="The number saved", json_schema_extra=PHONE_SCHEMA
    )
    name: str = Field(min_length=1, max_length=100, description="The name it is saved as")


class SimPhoneOut(BaseModel):
    phone: str
