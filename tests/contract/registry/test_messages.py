"""registry.messages: history, idempotency, statuses that only move forward, paging,
media, the outbound queue; and retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.contract.registry.helpers import (
    ROUTE,
    add_message,
    is_utc,
    new_session,
    user_and_session,
)
from zapgate.domain.models import MediaMeta, MessageStatus
from zapgate.domain.state import SessionState
from zapgate.errors import SessionNotFound, ValidationFailed
from zapgate.registry import Registry


async def test_add_and_get_message(registry: Registry) -> None:
    sid = await new_session(registry)
    message, created = await registry.messages.add(
        sid,
        id="3EB0AAA",
        direction="out",
        chat="+5511999990003",
        text="olá 👋",
        status=MessageStatus.PENDING,
        idempotency_key="k1",
        idempotency_hash="a" * 64,
    )
    assert created
    assert (message.session_id, message.id, message.direction, message.chat, message.text) == (
        sid,
        "3EB0AAA",
        "out",
        "+5511999990003",
        "olá 👋",
    )
    assert message.status is MessageStatus.PENDING and message.status_reason is None
    assert message.idempotency_key == "k1" and message.idempotency_hash == "a" * 64
    assert is_utc(message.created_at) and is_utc(message.updated_at)
    assert await registry.messages.get(sid, "3EB0AAA") == message
    assert await registry.messages.get_by_idempotency_key(sid, "k1") == message
    assert await registry.messages.get(sid, "nope") is None
    assert await registry.messages.get_by_idempotency_key(sid, "nope") is None


async def test_add_message_is_idempotent_on_id(registry: Registry) -> None:
    sid = await new_session(registry)
    first = await add_message(registry, sid, "DUP", direction="in", status=MessageStatus.RECEIVED)
    again, created = await registry.messages.add(
        sid, id="DUP", direction="in", chat="other", text="other", status=MessageStatus.RECEIVED
    )
    assert not created and again == first
    # Concurrent duplicates too (at-least-once delivery from the worker journal).
    results = await asyncio.gather(
        *(
            registry.messages.add(
                sid, id="RACE", direction="in", chat="c", text="t", status=MessageStatus.RECEIVED
            )
            for _ in range(10)
        )
    )
    assert sum(created for _, created in results) == 1
    assert len({m.pk for m, _ in results}) == 1


async def test_same_message_id_in_two_sessions(registry: Registry) -> None:
    s1 = await new_session(registry, "one@example.com")
    s2 = await new_session(registry, "two@example.com")
    m1 = await add_message(registry, s1, "SAME", idempotency_key="k")
    m2 = await add_message(registry, s2, "SAME", idempotency_key="k")
    assert m1.pk != m2.pk
    assert (await registry.messages.get(s2, "SAME")) == m2


async def test_idempotency_key_is_unique_per_session(registry: Registry) -> None:
    sid = await new_session(registry)
    first = await add_message(registry, sid, "A1", idempotency_key="order-17")
    second, created = await registry.messages.add(
        sid,
        id="A2",
        direction="out",
        chat="c",
        text="t",
        status=MessageStatus.PENDING,
        idempotency_key="order-17",
    )
    assert not created and second == first
    assert await registry.messages.get(sid, "A2") is None
    # Messages without a key never collide with each other.
    await add_message(registry, sid, "B1")
    await add_message(registry, sid, "B2")
    items, _ = await registry.messages.list(sid)
    assert [m.id for m in items] == ["B2", "B1", "A1"]


async def test_message_timestamps_are_utc(registry: Registry) -> None:
    sid = await new_session(registry)
    brt = timezone(timedelta(hours=-3))
    local = datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=brt)
    message, _ = await registry.messages.add(
        sid,
        id="T1",
        direction="in",
        chat="c",
        text=None,
        status=MessageStatus.RECEIVED,
        created_at=local,
    )
    assert message.created_at == local and message.created_at.tzinfo == UTC
    stored = await registry.messages.get(sid, "T1")
    assert stored is not None and stored.created_at == local and is_utc(stored.created_at)
    assert stored.text is None
    naive, _ = await registry.messages.add(
        sid,
        id="T2",
        direction="in",
        chat="c",
        text="x",
        status=MessageStatus.RECEIVED,
        created_at=datetime(2024, 5, 1, 12, 0),
    )
    assert naive.created_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert (await registry.messages.get(sid, "T2")).created_at == naive.created_at  # type: ignore[union-attr]


async def test_add_message_validates(registry: Registry) -> None:
    sid = await new_session(registry)
    with pytest.raises(ValidationFailed):
        await registry.messages.add(
            sid, id="X", direction="sideways", chat="c", text="t", status=MessageStatus.PENDING
        )
    with pytest.raises(SessionNotFound):
        await registry.messages.add(
            sid + 1000, id="X", direction="out", chat="c", text="t", status=MessageStatus.PENDING
        )


async def test_message_status_only_moves_forward(registry: Registry) -> None:
    sid = await new_session(registry)
    await add_message(registry, sid, "M")
    S = MessageStatus

    async def move(status: MessageStatus, reason: str | None = None) -> MessageStatus:
        message = await registry.messages.update_status(sid, "M", status, reason)
        assert message is not None
        return message.status

    assert await move(S.SENT) is S.SENT
    assert await move(S.PENDING) is S.SENT
    assert await move(S.READ) is S.READ
    assert await move(S.DELIVERED) is S.READ  # a late delivery ack never overwrites read
    assert await move(S.SENT) is S.READ
    assert await move(S.FAILED, "late") is S.READ  # a delivered message can't fail
    stored = await registry.messages.get(sid, "M")
    assert stored is not None and stored.status is S.READ and stored.status_reason is None
    assert stored.updated_at >= stored.created_at

    await add_message(registry, sid, "F")
    failed = await registry.messages.update_status(sid, "F", S.FAILED, "worker_unreachable")
    assert failed is not None
    assert (failed.status, failed.status_reason) == (S.FAILED, "worker_unreachable")
    for later in (S.SENT, S.DELIVERED, S.READ, S.PENDING):
        assert (await registry.messages.update_status(sid, "F", later)).status is S.FAILED  # type: ignore[union-attr]

    await add_message(registry, sid, "G", status=S.SENT)
    assert (await registry.messages.update_status(sid, "G", S.FAILED)).status is S.FAILED  # type: ignore[union-attr]
    await add_message(registry, sid, "H", status=S.DELIVERED)
    assert (await registry.messages.update_status(sid, "H", S.FAILED)).status is S.DELIVERED  # type: ignore[union-attr]

    assert await registry.messages.update_status(sid, "unknown", S.READ) is None
    assert await registry.messages.update_status(sid + 1000, "M", S.READ) is None


async def test_racing_acks_end_on_the_highest_status(registry: Registry) -> None:
    sid = await new_session(registry)
    await add_message(registry, sid, "R", status=MessageStatus.SENT)
    order = [MessageStatus.READ, MessageStatus.DELIVERED, MessageStatus.SENT] * 5
    await asyncio.gather(*(registry.messages.update_status(sid, "R", s) for s in order))
    assert (await registry.messages.get(sid, "R")).status is MessageStatus.READ  # type: ignore[union-attr]


async def test_list_messages_pages_newest_first(registry: Registry) -> None:
    sid = await new_session(registry)
    other = await new_session(registry, "noise@example.com")
    ids = [f"M{i}" for i in range(7)]
    for i, mid in enumerate(ids):
        await add_message(registry, sid, mid, direction="in" if i % 2 else "out")
        await add_message(registry, other, f"noise{i}")

    page1, cursor1 = await registry.messages.list(sid, limit=3)
    assert [m.id for m in page1] == ["M6", "M5", "M4"]
    assert cursor1 == page1[-1].pk
    page2, cursor2 = await registry.messages.list(sid, limit=3, before=cursor1)
    assert [m.id for m in page2] == ["M3", "M2", "M1"]
    page3, cursor3 = await registry.messages.list(sid, limit=3, before=cursor2)
    assert [m.id for m in page3] == ["M0"]
    assert cursor3 is None

    everything, last = await registry.messages.list(sid)
    assert [m.id for m in everything] == list(reversed(ids)) and last is None
    exact, none = await registry.messages.list(sid, limit=7)
    assert len(exact) == 7 and none is None

    inbound, _ = await registry.messages.list(sid, direction="in")
    assert [m.id for m in inbound] == ["M5", "M3", "M1"]
    outbound, cur = await registry.messages.list(sid, direction="out", limit=2)
    assert [m.id for m in outbound] == ["M6", "M4"]
    rest, end = await registry.messages.list(sid, direction="out", limit=2, before=cur)
    assert [m.id for m in rest] == ["M2", "M0"] and end is None

    assert await registry.messages.list(sid + 1000) == ([], None)
    bad_args: list[dict[str, Any]] = [{"limit": 0}, {"limit": -1}, {"direction": "both"}]
    for bad in bad_args:
        with pytest.raises(ValidationFailed):
            await registry.messages.list(sid, **bad)


async def test_media_message_keeps_its_media_and_reports_it(registry: Registry) -> None:
    user = await registry.users.create("media@example.com")
    session, _ = await registry.sessions.get_or_create(user.id, "main", engine="sim", route=ROUTE)
    media = MediaMeta(type="image", mime="image/png", size=70, filename="a.png", ref="media/x")
    message, created = await registry.messages.add(
        session.id,
        id="3EB0MEDIA",
        direction="in",
        chat="+5511999990003",
        text="caption",
        status=MessageStatus.RECEIVED,
        media=media,
    )
    assert created and message.media == media
    again = await registry.messages.get(session.id, "3EB0MEDIA")
    assert again is not None and again.media == media
    (event,) = [
        e
        for e in await registry.outbox.list_events(user.id, session_id=session.id, after=0)
        if e.type == "message.received"
    ]
    assert event.data["media"] == {
        "type": "image",
        "mime": "image/png",
        "filename": "a.png",
        "size": 70,
        "url": "/v1/sessions/main/messages/3EB0MEDIA/media",
    }
    plain = await add_message(registry, session.id, "3EB0TEXT")
    assert plain.media is None


async def test_outbound_queue(registry: Registry) -> None:
    _uid, sid = await user_and_session(registry)
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=60)
    await registry.messages.add(
        sid,
        id="Q1",
        direction="out",
        chat="+1",
        text="a",
        status=MessageStatus.QUEUED,
        scheduled_at=now,
        deadline_at=now + timedelta(hours=1),
    )
    await registry.messages.add(
        sid,
        id="Q2",
        direction="out",
        chat="+1",
        text="b",
        status=MessageStatus.QUEUED,
        scheduled_at=now + timedelta(minutes=5),
        deadline_at=now + timedelta(hours=1),
    )
    await registry.messages.add(
        sid,
        id="Q3",
        direction="out",
        chat="+1",
        text="c",
        status=MessageStatus.QUEUED,
        scheduled_at=now,
        deadline_at=now - timedelta(seconds=1),
    )
    assert await registry.messages.due_outbound(now, stale_before=stale) == []  # not CONNECTED
    await registry.sessions.update_state(sid, SessionState.CONNECTED, None)
    due = await registry.messages.due_outbound(now, stale_before=stale, session_id=sid)
    assert [m.id for m, _ in due] == ["Q1", "Q3"]
    q1 = due[0][0]
    assert await registry.messages.claim(q1.pk, stale_before=stale)
    assert not await registry.messages.claim(q1.pk, stale_before=stale)  # someone has it
    released = await registry.messages.release(sid, "Q1", "worker_unreachable")
    assert released is not None and released.status is MessageStatus.QUEUED
    assert [m.id for m in await registry.messages.expired(now)] == ["Q3"]
    await registry.messages.update_status(sid, "Q3", MessageStatus.FAILED, "deadline_exceeded")
    assert (await registry.messages.get(sid, "Q3")).status_reason == "deadline_exceeded"  # type: ignore[union-attr]
    # A claim whose sender died is taken over once stale.
    assert await registry.messages.claim(q1.pk, stale_before=stale)
    assert [
        m.id
        for m, _ in await registry.messages.due_outbound(
            now, stale_before=now + timedelta(seconds=1)
        )
    ] == ["Q1"]


async def test_send_rate_and_retention(registry: Registry) -> None:
    uid, sid = await user_and_session(registry)
    s = await registry.sessions.set_send_rate(sid, "2/1s")
    assert s is not None and s.send_rate == "2/1s"
    old = datetime.now(UTC) - timedelta(days=100)
    await registry.messages.add(
        sid,
        id="OLD",
        direction="in",
        chat="+1",
        text="x",
        status=MessageStatus.RECEIVED,
        created_at=old,
    )
    await registry.messages.add(
        sid,
        id="OLDQ",
        direction="out",
        chat="+1",
        text="x",
        status=MessageStatus.QUEUED,
        created_at=old,
    )
    await registry.messages.add(
        sid, id="NEW", direction="in", chat="+1", text="x", status=MessageStatus.RECEIVED
    )
    cut = datetime.now(UTC) - timedelta(days=90)
    m, _ = await registry.purge(messages_before=cut, events_before=cut)
    assert m == 1
    items, _ = await registry.messages.list(sid)
    assert {x.id for x in items} == {"OLDQ", "NEW"}  # queued ones are never purged
    _, e = await registry.purge(
        messages_before=cut, events_before=datetime.now(UTC) + timedelta(seconds=1)
    )
    assert e >= 3 and await registry.outbox.list_events(uid, session_id=sid, after=0) == []
