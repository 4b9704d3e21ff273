"""One table between engine events and journal entries, used by the worker (which writes
the journal) and by the web tier's puller (which reads it).

A new event type is one `EntryKind` here: its entry name, how its event becomes the
entry's JSON data and how that data becomes the event again. The names and fields are a
wire format: a journal written by an older worker must still be read, so an existing kind
or field is never renamed; a kind this version does not know decodes to None."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from zapgate.domain.content import Extras
from zapgate.domain.events import (
    ChatRead,
    EngineEvent,
    MediaContent,
    MessageAck,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    PollVoted,
    PresenceChanged,
    QrUpdated,
    ReactionReceived,
    StateChanged,
)
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState

E = TypeVar(
    "E",
    StateChanged,
    QrUpdated,
    MessageReceived,
    MessageAck,
    ReactionReceived,
    MessageEdited,
    MessageRevoked,
    PollVoted,
    PresenceChanged,
    ChatRead,
)


@dataclass(frozen=True, slots=True)
class EntryKind(Generic[E]):
    """A journal entry kind: its name on the wire and its event type, both ways."""

    name: str
    event: type[E]
    encode: Callable[[E], dict[str, Any]]
    decode: Callable[[Mapping[str, Any]], E]


def _encode_state(event: StateChanged) -> dict[str, Any]:
    return {"state": event.state.value, "reason": event.reason, "phone": event.phone}


def _decode_state(data: Mapping[str, Any]) -> StateChanged:
    return StateChanged(
        state=SessionState(data["state"]),
        reason=data.get("reason"),
        phone=data.get("phone"),
        raw=data,
    )


def _encode_qr(event: QrUpdated) -> dict[str, Any]:
    return {"qr": event.qr, "expires_at": event.expires_at.isoformat()}


def _decode_qr(data: Mapping[str, Any]) -> QrUpdated:
    return QrUpdated(
        qr=str(data["qr"]), expires_at=datetime.fromisoformat(data["expires_at"]), raw=data
    )


def _encode_message(event: MessageReceived) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": event.id,
        "chat": event.chat,
        "sender": event.sender,
        "text": event.text,
        "timestamp": event.timestamp.isoformat(),
    }
    # Written only when known, so entries without LIDs keep their earlier shape.
    if event.chat_lid is not None:
        data["chat_lid"] = event.chat_lid
    if event.sender_lid is not None:
        data["sender_lid"] = event.sender_lid
    # Written only when set, so a plain inbound message keeps its earlier shape.
    if event.from_me:
        data["from_me"] = True
    if event.extras:
        data["extras"] = event.extras.to_dict()
    if event.push_name is not None:
        data["push_name"] = event.push_name
    media = event.media
    if media is not None:
        data["media"] = {
            "type": media.kind,
            "mime": media.mime,
            "size": media.size,
            "filename": media.filename,
            "sha256": media.sha256,
            "ref": media.ref,
        }
    return data


def _decode_message(data: Mapping[str, Any]) -> MessageReceived:
    raw_media = data.get("media")
    media = None
    if isinstance(raw_media, dict):
        media = MediaContent(
            kind=str(raw_media["type"]),
            mime=str(raw_media.get("mime") or "application/octet-stream"),
            size=int(raw_media.get("size") or 0),
            filename=raw_media.get("filename"),
            sha256=raw_media.get("sha256"),
            ref=raw_media.get("ref"),
        )
    return MessageReceived(
        id=str(data["id"]),
        chat=str(data["chat"]),
        sender=str(data.get("sender") or ""),
        text=data.get("text"),
        timestamp=datetime.fromisoformat(data["timestamp"]),
        media=media,
        chat_lid=data.get("chat_lid"),
        sender_lid=data.get("sender_lid"),
        from_me=bool(data.get("from_me")),
        extras=Extras.from_dict(data.get("extras")),
        push_name=data.get("push_name"),
        raw=data,
    )


def _addresses(
    data: dict[str, Any], from_me: bool, chat_lid: str | None, sender_lid: str | None
) -> dict[str, Any]:
    """Adds the optional fields the message actions share, only when set."""
    if from_me:
        data["from_me"] = True
    if chat_lid is not None:
        data["chat_lid"] = chat_lid
    if sender_lid is not None:
        data["sender_lid"] = sender_lid
    return data


def _encode_reaction(event: ReactionReceived) -> dict[str, Any]:
    data = {
        "id": event.id,
        "chat": event.chat,
        "sender": event.sender,
        "target_id": event.target_id,
        "emoji": event.emoji,
        "timestamp": event.timestamp.isoformat(),
    }
    return _addresses(data, event.from_me, event.chat_lid, event.sender_lid)


def _decode_reaction(data: Mapping[str, Any]) -> ReactionReceived:
    return ReactionReceived(
        id=str(data["id"]),
        chat=str(data["chat"]),
        sender=str(data.get("sender") or ""),
        target_id=str(data["target_id"]),
        emoji=str(data.get("emoji") or ""),
        timestamp=datetime.fromisoformat(data["timestamp"]),
        from_me=bool(data.get("from_me")),
        chat_lid=data.get("chat_lid"),
        sender_lid=data.get("sender_lid"),
        raw=data,
    )


def _encode_edit(event: MessageEdited) -> dict[str, Any]:
    data = {
        "chat": event.chat,
        "sender": event.sender,
        "target_id": event.target_id,
        "text": event.text,
        "timestamp": event.timestamp.isoformat(),
    }
    return _addresses(data, event.from_me, event.chat_lid, event.sender_lid)


def _decode_edit(data: Mapping[str, Any]) -> MessageEdited:
    return MessageEdited(
        chat=str(data["chat"]),
        sender=str(data.get("sender") or ""),
        target_id=str(data["target_id"]),
        text=str(data.get("text") or ""),
        timestamp=datetime.fromisoformat(data["timestamp"]),
        from_me=bool(data.get("from_me")),
        chat_lid=data.get("chat_lid"),
        sender_lid=data.get("sender_lid"),
        raw=data,
    )


def _encode_revoke(event: MessageRevoked) -> dict[str, Any]:
    data = {
        "chat": event.chat,
        "sender": event.sender,
        "target_id": event.target_id,
        "timestamp": event.timestamp.isoformat(),
    }
    return _addresses(data, event.from_me, event.chat_lid, event.sender_lid)


def _decode_revoke(data: Mapping[str, Any]) -> MessageRevoked:
    return MessageRevoked(
        chat=str(data["chat"]),
        sender=str(data.get("sender") or ""),
        target_id=str(data["target_id"]),
        timestamp=datetime.fromisoformat(data["timestamp"]),
        from_me=bool(data.get("from_me")),
        chat_lid=data.get("chat_lid"),
        sender_lid=data.get("sender_lid"),
        raw=data,
    )


def _encode_vote(event: PollVoted) -> dict[str, Any]:
    data = {
        "chat": event.chat,
        "sender": event.sender,
        "poll_id": event.poll_id,
        "selected": list(event.selected),
        "selected_hashes": list(event.selected_hashes),
        "timestamp": event.timestamp.isoformat(),
    }
    return _addresses(data, False, event.chat_lid, event.sender_lid)


def _decode_vote(data: Mapping[str, Any]) -> PollVoted:
    return PollVoted(
        chat=str(data["chat"]),
        sender=str(data.get("sender") or ""),
        poll_id=str(data["poll_id"]),
        selected=tuple(str(o) for o in data.get("selected") or ()),
        selected_hashes=tuple(str(h) for h in data.get("selected_hashes") or ()),
        timestamp=datetime.fromisoformat(data["timestamp"]),
        chat_lid=data.get("chat_lid"),
        sender_lid=data.get("sender_lid"),
        raw=data,
    )


def _encode_presence(event: PresenceChanged) -> dict[str, Any]:
    data: dict[str, Any] = {"chat": event.chat, "sender": event.sender, "state": event.state}
    if event.last_seen is not None:
        data["last_seen"] = event.last_seen.isoformat()
    return _addresses(data, False, event.chat_lid, event.sender_lid)


def _decode_presence(data: Mapping[str, Any]) -> PresenceChanged:
    last_seen = data.get("last_seen")
    return PresenceChanged(
        chat=str(data["chat"]),
        sender=str(data.get("sender") or ""),
        state=str(data["state"]),
        last_seen=None if last_seen is None else datetime.fromisoformat(last_seen),
        chat_lid=data.get("chat_lid"),
        sender_lid=data.get("sender_lid"),
        raw=data,
    )


def _encode_chat_read(event: ChatRead) -> dict[str, Any]:
    data = {"chat": event.chat, "ids": list(event.ids), "timestamp": event.timestamp.isoformat()}
    return _addresses(data, False, event.chat_lid, None)


def _decode_chat_read(data: Mapping[str, Any]) -> ChatRead:
    return ChatRead(
        chat=str(data["chat"]),
        ids=tuple(str(i) for i in data.get("ids") or ()),
        timestamp=datetime.fromisoformat(data["timestamp"]),
        chat_lid=data.get("chat_lid"),
        raw=data,
    )


def _encode_ack(event: MessageAck) -> dict[str, Any]:
    data = {"id": event.id, "status": event.status.value}
    if event.message_id is not None:  # the SENT ack of a send: the gateway's id too
        data["message_id"] = event.message_id
    return data


def _decode_ack(data: Mapping[str, Any]) -> MessageAck:
    message_id = data.get("message_id")
    return MessageAck(
        id=str(data["id"]),
        status=MessageStatus(data["status"]),
        message_id=None if message_id is None else str(message_id),
        raw=data,
    )


KINDS: tuple[EntryKind[Any], ...] = (
    EntryKind("state", StateChanged, _encode_state, _decode_state),
    EntryKind("qr", QrUpdated, _encode_qr, _decode_qr),
    EntryKind("message", MessageReceived, _encode_message, _decode_message),
    EntryKind("ack", MessageAck, _encode_ack, _decode_ack),
    EntryKind("reaction", ReactionReceived, _encode_reaction, _decode_reaction),
    EntryKind("edit", MessageEdited, _encode_edit, _decode_edit),
    EntryKind("revoke", MessageRevoked, _encode_revoke, _decode_revoke),
    EntryKind("vote", PollVoted, _encode_vote, _decode_vote),
    EntryKind("presence", PresenceChanged, _encode_presence, _decode_presence),
    EntryKind("chat_read", ChatRead, _encode_chat_read, _decode_chat_read),
)
_BY_EVENT: dict[type[Any], EntryKind[Any]] = {kind.event: kind for kind in KINDS}
_BY_NAME: dict[str, EntryKind[Any]] = {kind.name: kind for kind in KINDS}


def encode(event: EngineEvent) -> tuple[str, dict[str, Any]]:
    """The journal entry (its kind and data) of an engine event."""
    kind = _BY_EVENT[type(event)]
    return kind.name, kind.encode(event)


def decode(name: str, data: Mapping[str, Any]) -> EngineEvent | None:
    """The engine event of a journal entry; None for a kind this version does not know."""
    kind = _BY_NAME.get(name)
    return None if kind is None else kind.decode(data)
