"""The worker event codec: one table from engine events to journal entries and back, on a
wire format that journals written by earlier workers still follow."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from zapgate.domain.content import Extras, LinkPreview, Location, Quote
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
from zapgate.worker import codec

AT = datetime(2026, 11, 29, 6, 5, 40, 123456, tzinfo=UTC)

# (event, the entry's kind, its data exactly as the journal stores it)
CASES: list[tuple[EngineEvent, str, str]] = [
    (
        StateChanged(state=SessionState.CONNECTED, reason=None, phone="+5511999990001"),
        "state",
        '{"state": "CONNECTED", "reason": null, "phone": "+5511999990001"}',
    ),
    (
        QrUpdated(qr="2@abc", expires_at=AT),
        "qr",
        '{"qr": "2@abc", "expires_at": "2026-11-29T06:05:40.123456+00:00"}',
    ),
    (
        MessageReceived(
            id="WA1", chat="+5511999990002", sender="+5511999990002", text="oi", timestamp=AT
        ),
        "message",
        '{"id": "WA1", "chat": "+5511999990002", "sender": "+5511999990002", "text": "oi", '
        '"timestamp": "2026-11-29T06:05:40.123456+00:00"}',
    ),
    (
        MessageReceived(
            id="WA2",
            chat="+5511999990002",
            sender="+5511999990002",
            text=None,
            timestamp=AT,
            media=MediaContent(
                kind="image",
                mime="image/png",
                size=3,
                filename="a.png",
                sha256="ff",
                ref="media/WA2",
            ),
        ),
        "message",
        '{"id": "WA2", "chat": "+5511999990002", "sender": "+5511999990002", "text": null, '
        '"timestamp": "2026-11-29T06:05:40.123456+00:00", "media": {"type": "image", '
        '"mime": "image/png", "size": 3, "filename": "a.png", "sha256": "ff", '
        '"ref": "media/WA2"}}',
    ),
    (MessageAck(id="M1", status=MessageStatus.READ), "ack", '{"id": "M1", "status": "read"}'),
    (
        MessageReceived(
            id="WA3",
            chat="+5511999990002",
            sender="+5511999990002",
            text="by LID",
            timestamp=AT,
            chat_lid="123456789012345@lid",
            sender_lid="123456789012345@lid",
        ),
        "message",
        '{"id": "WA3", "chat": "+5511999990002", "sender": "+5511999990002", '
        '"text": "by LID", "timestamp": "2026-11-29T06:05:40.123456+00:00", '
        '"chat_lid": "123456789012345@lid", "sender_lid": "123456789012345@lid"}',
    ),
    (
        MessageAck(id="WA4", status=MessageStatus.SENT, message_id="3EB0G1"),
        "ack",
        '{"id": "WA4", "status": "sent", "message_id": "3EB0G1"}',
    ),
    (
        MessageReceived(
            id="WA5",
            chat="+5511999990002",
            sender="+5511999990001",
            text="from the phone",
            timestamp=AT,
            from_me=True,
            extras=Extras(quote=Quote(id="WA1", sender="+5511999990002", text="oi")),
            push_name="Ana Souza",
        ),
        "message",
        '{"id": "WA5", "chat": "+5511999990002", "sender": "+5511999990001", '
        '"text": "from the phone", "timestamp": "2026-11-29T06:05:40.123456+00:00", '
        '"from_me": true, "extras": {"quote": {"id": "WA1", "sender": "+5511999990002", '
        '"text": "oi"}}, "push_name": "Ana Souza"}',
    ),
    (
        MessageReceived(
            id="WA6",
            chat="+5511999990002",
            sender="+5511999990002",
            text=None,
            timestamp=AT,
            extras=Extras(location=Location(latitude=-23.5, longitude=-46.6)),
        ),
        "message",
        '{"id": "WA6", "chat": "+5511999990002", "sender": "+5511999990002", "text": null, '
        '"timestamp": "2026-11-29T06:05:40.123456+00:00", "extras": {"location": '
        '{"latitude": -23.5, "longitude": -46.6, "name": null, "address": null}}}',
    ),
    (
        ReactionReceived(
            id="R1",
            chat="+5511999990002",
            sender="+5511999990002",
            target_id="WA1",
            emoji="👍",
            timestamp=AT,
        ),
        "reaction",
        '{"id": "R1", "chat": "+5511999990002", "sender": "+5511999990002", '
        '"target_id": "WA1", "emoji": "\\ud83d\\udc4d", '
        '"timestamp": "2026-11-29T06:05:40.123456+00:00"}',
    ),
    (
        MessageEdited(
            chat="+5511999990002",
            sender="+5511999990001",
            target_id="WA5",
            text="fixed",
            timestamp=AT,
            from_me=True,
            chat_lid="123456789012345@lid",
        ),
        "edit",
        '{"chat": "+5511999990002", "sender": "+5511999990001", "target_id": "WA5", '
        '"text": "fixed", "timestamp": "2026-11-29T06:05:40.123456+00:00", '
        '"from_me": true, "chat_lid": "123456789012345@lid"}',
    ),
    (
        MessageRevoked(
            chat="+5511999990002", sender="+5511999990002", target_id="WA1", timestamp=AT
        ),
        "revoke",
        '{"chat": "+5511999990002", "sender": "+5511999990002", "target_id": "WA1", '
        '"timestamp": "2026-11-29T06:05:40.123456+00:00"}',
    ),
    (
        PollVoted(
            chat="+5511999990002",
            sender="+5511999990002",
            poll_id="P1",
            selected=("yes",),
            selected_hashes=("aa",),
            timestamp=AT,
        ),
        "vote",
        '{"chat": "+5511999990002", "sender": "+5511999990002", "poll_id": "P1", '
        '"selected": ["yes"], "selected_hashes": ["aa"], '
        '"timestamp": "2026-11-29T06:05:40.123456+00:00"}',
    ),
    (
        MessageReceived(
            id="WA7",
            chat="+5511999990002",
            sender="+5511999990002",
            text="https://example.com",
            timestamp=AT,
            extras=Extras(
                preview=LinkPreview(url="https://example.com", title="Ex", thumbnail=b"\xff\xd8")
            ),
        ),
        "message",
        '{"id": "WA7", "chat": "+5511999990002", "sender": "+5511999990002", '
        '"text": "https://example.com", "timestamp": "2026-11-29T06:05:40.123456+00:00", '
        '"extras": {"preview": {"url": "https://example.com", "title": "Ex", '
        '"description": null, "thumbnail": "/9g="}}}',
    ),
    (
        ChatRead(chat="+5511999990002", ids=("WA1", "WA2"), timestamp=AT, chat_lid="1234@lid"),
        "chat_read",
        '{"chat": "+5511999990002", "ids": ["WA1", "WA2"], '
        '"timestamp": "2026-11-29T06:05:40.123456+00:00", "chat_lid": "1234@lid"}',
    ),
    (
        PresenceChanged(
            chat="+5511999990002", sender="+5511999990002", state="available", last_seen=AT
        ),
        "presence",
        '{"chat": "+5511999990002", "sender": "+5511999990002", "state": "available", '
        '"last_seen": "2026-11-29T06:05:40.123456+00:00"}',
    ),
]


@pytest.mark.parametrize(("event", "kind", "stored"), CASES)
def test_each_event_has_one_entry_both_ways(event: EngineEvent, kind: str, stored: str) -> None:
    name, data = codec.encode(event)
    assert name == kind
    # The journal stores `json.dumps(data, default=str)`: byte for byte what it was.
    assert json.dumps(data, default=str) == stored
    assert codec.decode(kind, json.loads(stored)) == event


def test_every_engine_event_has_a_kind() -> None:
    assert {k.event for k in codec.KINDS} == set(EngineEvent.__args__)  # type: ignore[attr-defined]
    assert len({k.name for k in codec.KINDS}) == len(codec.KINDS)


def test_a_kind_from_a_newer_worker_is_skipped() -> None:
    assert codec.decode("call", {"id": "WA1"}) is None


def test_entries_of_earlier_workers_fill_defaults() -> None:
    data: dict[str, Any] = {
        "id": "WA3",
        "chat": "+5511999990002",
        "sender": "+5511999990002",
        "text": None,
        "timestamp": AT.isoformat(),
        "media": {"type": "document", "mime": None, "size": None},
    }
    event = codec.decode("message", data)
    assert isinstance(event, MessageReceived) and event.media is not None
    assert (event.media.mime, event.media.size, event.media.ref) == (
        "application/octet-stream",
        0,
        None,
    )
    # Written before messages carried extras: a plain message from the contact.
    assert (event.from_me, event.extras, event.push_name) == (False, Extras(), None)
