"""Domain records returned by the registry and passed between layers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from zapgate.domain.content import NO_EXTRAS, Extras
from zapgate.domain.state import SessionState

# What can be sent (and is kept) as media; inbound stickers are kept as `sticker`.
MEDIA_KINDS = ("image", "document", "audio", "video")
# What a message is (its `kind`).
MESSAGE_KINDS = ("text", "media", "location", "contacts", "poll")
# What an engine's send_media takes: a sticker is a webp image, a voice note an ogg/opus
# audio sent push-to-talk.
SENDABLE_MEDIA = (*MEDIA_KINDS, "sticker", "voice")


class MessageStatus(StrEnum):
    QUEUED = "queued"
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    RECEIVED = "received"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def may_move_to(self, new: MessageStatus) -> bool:
        """Status only moves forward: acks arrive out of order (a late 'delivered' after
        'read'), and a failure can't undo a delivery."""
        if self is new:
            return False
        if new is MessageStatus.FAILED:
            return self in (MessageStatus.QUEUED, MessageStatus.PENDING, MessageStatus.SENT)
        return self is not MessageStatus.FAILED and new.rank > self.rank


_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.PENDING: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
    MessageStatus.RECEIVED: 3,
    MessageStatus.FAILED: 4,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Where a session lives. `worker_url` and `port` are None in embedded topology."""

    worker_id: str
    worker_url: str | None
    port: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    id: int
    email: str
    is_admin: bool
    created_at: datetime
    lang: str | None = None
    # Sessions this user may have; None follows ZAPGATE_MAX_SESSIONS_PER_USER.
    max_sessions: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    id: int
    user_id: int
    name: str
    client_id: str
    session_dir: str
    engine: str
    state: SessionState
    state_reason: str | None
    phone: str | None
    worker_id: str
    worker_url: str | None
    port: int | None
    created_at: datetime
    updated_at: datetime
    send_rate: str | None = None
    default_country: str | None = None

    @property
    def route(self) -> Route:
        return Route(worker_id=self.worker_id, worker_url=self.worker_url, port=self.port)

    @property
    def label(self) -> str:
        """How logs name a session: `u3/default`."""
        return f"u{self.user_id}/{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    pk: int
    session_id: int
    id: str
    direction: str
    chat: str
    text: str | None
    status: MessageStatus
    status_reason: str | None
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    scheduled_at: datetime | None = None
    deadline_at: datetime | None = None
    media: MediaMeta | None = None
    # The digest of the request an Idempotency-Key came with (None: no key, or older rows).
    idempotency_hash: str | None = None
    # WhatsApp's id of the message: for an inbound message the same as `id`; for an
    # outbound one what the engine returned when it sent it (None until then).
    wa_id: str | None = None
    # The chat's LID (`<digits>@lid`) when known; `chat` is then its phone when known.
    chat_lid: str | None = None
    # text, media, location, contacts or poll (MESSAGE_KINDS).
    kind: str = "text"
    # The quoted message, mentions, and the location, contacts or poll it carries.
    extras: Extras = NO_EXTRAS
    # The gateway's id of the message this one replies to, when this session has it.
    reply_to: str | None = None
    # An outbound message sent from the phone (or another device), not by the gateway.
    from_me: bool = False
    edited_at: datetime | None = None
    revoked_at: datetime | None = None
    # When this session sent a read receipt for it (inbound; None: unread).
    read_at: datetime | None = None
    # Per reactor (an address, or "me" for this session's number): the emoji.
    reactions: Mapping[str, str] = field(default_factory=dict)
    # A poll's votes: per voter, the options now chosen.
    votes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The name its sender set in WhatsApp (push name), as the message carried it.
    sender_name: str | None = None

    def tally(self) -> dict[str, int]:
        """A poll's votes per option, every option named (empty for other messages)."""
        poll = self.extras.poll
        if poll is None:
            return {}
        counts = dict.fromkeys(poll.options, 0)
        for chosen in self.votes.values():
            for option in chosen:
                if option in counts:
                    counts[option] += 1
        return counts


@dataclass(frozen=True, slots=True, kw_only=True)
class Chat:
    """One conversation of a session: its address (`chat`: a phone whenever known, else a
    LID or a group's JID), its LID, the contact's name (the latest push name its messages
    brought), its newest message and how many inbound messages this session has not
    read."""

    chat: str
    chat_lid: str | None
    name: str | None
    last_message: Message
    unread: int
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaMeta:
    """What a message's media is. `ref` is where its bytes are stored: relative to the web
    tier's data dir for an outbound message, to the session dir on its worker for an
    inbound one (None when the bytes could not be downloaded)."""

    type: str
    mime: str
    size: int
    filename: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One outbox event, as webhooks and the live stream send it."""

    seq: int
    id: str
    user_id: int
    session: str | None
    type: str
    occurred_at: datetime
    data: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "session": self.session,
            "occurred_at": self.occurred_at.isoformat(),
            "data": self.data,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhook:
    id: int
    user_id: int
    url: str
    secret: str
    events: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    id: int
    webhook_id: int
    event_seq: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
