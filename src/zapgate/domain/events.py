"""Events an engine reports about one session. Frozen, slotted, keyword-only; each keeps
the engine's raw payload for whoever needs more than the common fields.

Addresses. WhatsApp names a 1:1 chat either by its phone number (a PN JID) or by a LID
(`<digits>@lid`, a privacy id that hides the number). An engine reports an address as:
- an E.164 phone (`+5511999990003`) whenever the number is knowable: from the JID itself,
  from the alternative address WhatsApp sent along (whatsmeow's `SenderAlt`), or from the
  session's own LID <-> phone mapping (whatsmeow's store, `get_pn_from_lid`);
- else the LID itself, `<digits>@lid`;
- any other JID (a group, `...@g.us`) as `user@server`.
Beside it, `chat_lid` / `sender_lid` carry the LID (`<digits>@lid`) whenever it is known,
also when the phone is: an event with both teaches the registry that mapping, so a chat
first seen as LID-only shows its phone once learned, and one chat is one row key whichever
address its messages came with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from zapgate.domain.content import NO_EXTRAS, Extras
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged:
    state: SessionState
    reason: str | None = None
    phone: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class QrUpdated:
    qr: str
    expires_at: datetime
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaContent:
    """The media of an inbound message. `data` is None when the engine could not fetch
    the bytes (the metadata is still reported). `ref` is where the worker saved them,
    relative to the session dir (None until saved, or when they could not be)."""

    kind: str  # image, document, audio, video, sticker
    mime: str
    size: int
    filename: str | None = None
    sha256: str | None = None
    ref: str | None = None
    data: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived:
    """An inbound message. `id` is WhatsApp's id of it; `chat` and `sender` are addresses
    (see the module docstring), `chat_lid` / `sender_lid` their LIDs when known.
    `from_me`: this session's own number sent it from another device (the phone): the
    gateway reports it as `message.sent`. `extras`: the quoted message, mentions, or the
    location, contacts or poll it carries. `push_name`: the name the sender set in
    WhatsApp, as the message carried it (the account's own on a `from_me` message); None
    when it carried none."""

    id: str
    chat: str
    sender: str
    text: str | None  # the text, or a media message's caption
    timestamp: datetime
    media: MediaContent | None = None
    chat_lid: str | None = None
    sender_lid: str | None = None
    from_me: bool = False
    extras: Extras = NO_EXTRAS
    push_name: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageAck:
    """A status of a message this session sent. `id` is always WhatsApp's id of it.
    `message_id` is the gateway's id, set only on the SENT ack that the final send methods
    of `engines/base.py` report once the engine returned WhatsApp's id: it ties the two
    together, and comes before any receipt of that WhatsApp id in the event stream."""

    id: str
    status: MessageStatus
    message_id: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionReceived:
    """`sender` reacted to the message WhatsApp knows as `target_id` in `chat` with `emoji`
    ("" when the reaction was removed). `from_me`: this session's own number reacted
    (from another device). `id` is WhatsApp's id of the reaction itself."""

    id: str
    chat: str
    sender: str
    target_id: str
    emoji: str
    timestamp: datetime
    from_me: bool = False
    chat_lid: str | None = None
    sender_lid: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageEdited:
    """`sender` edited the message WhatsApp knows as `target_id`; `text` is its new text."""

    chat: str
    sender: str
    target_id: str
    text: str
    timestamp: datetime
    from_me: bool = False
    chat_lid: str | None = None
    sender_lid: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRevoked:
    """`sender` deleted the message WhatsApp knows as `target_id` for everyone."""

    chat: str
    sender: str
    target_id: str
    timestamp: datetime
    from_me: bool = False
    chat_lid: str | None = None
    sender_lid: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PollVoted:
    """`sender`'s vote on the poll WhatsApp knows as `poll_id`: the options now chosen
    (a new vote replaces the voter's previous one; none chosen is a withdrawn vote).
    `selected_hashes` are what WhatsApp carries (sha256 hex of each option's text);
    `selected` the options' texts when the engine knows the poll, else empty: the
    registry maps hashes to the stored poll's options."""

    chat: str
    sender: str
    poll_id: str
    selected: tuple[str, ...]
    selected_hashes: tuple[str, ...]
    timestamp: datetime
    chat_lid: str | None = None
    sender_lid: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceChanged:
    """A contact's presence: `state` is one of `domain.content.PRESENCES` (online or not,
    typing, recording, paused in `chat`). `last_seen` when WhatsApp tells it."""

    chat: str
    sender: str
    state: str
    last_seen: datetime | None = None
    chat_lid: str | None = None
    sender_lid: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRead:
    """This session's own account read `chat` elsewhere (its phone, another linked
    device): the messages WhatsApp knows as `ids`, and, as WhatsApp's apps read a chat,
    every message before them."""

    chat: str
    ids: tuple[str, ...]
    timestamp: datetime
    chat_lid: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallReceived:
    """`caller` is calling this account: `id` is WhatsApp's id of the call (what a reject
    names), `video` a video call, `group` a group call. Ringing only: whether it was
    answered elsewhere is not reported."""

    id: str
    caller: str
    timestamp: datetime
    video: bool = False
    group: bool = False
    caller_lid: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


EngineEvent = (
    StateChanged
    | QrUpdated
    | MessageReceived
    | MessageAck
    | ReactionReceived
    | MessageEdited
    | MessageRevoked
    | PollVoted
    | PresenceChanged
    | ChatRead
    | CallReceived
)
