"""The events half of the registry (outbox, webhooks, deliveries, outbound queue,
retention), run over both backends like the rest of the registry contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.contract.test_registry_contract import db_url, registry  # noqa: F401 - fixtures
from zapgate.domain.models import MessageStatus, Route
from zapgate.domain.state import SessionState
from zapgate.registry import Registry

ROUTE = Route(worker_id="embedded", worker_url=None, port=None)


async def _setup(registry: Registry) -> tuple[int, int]:  # noqa: F811
    user = await registry.users.create("ev@example.com")
    session, _ = await registry.sessions.get_or_create(user.id, "s", engine="sim", route=ROUTE)
    return user.id, session.id


async def test_changes_and_their_events_are_written_together(registry: Registry) -> None:  # noqa: F811
    uid, sid = await _setup(registry)
    hook = await registry.outbox.create_webhook(
        uid, url="https://example.com/h", secret="x" * 20, events=[]
    )
    only = await registry.outbox.create_webhook(
        uid, url="https://example.com/i", secret="y" * 20, events=["message.received"]
    )
    await registry.sessions.update_state(sid, SessionState.STARTING, None)
    await registry.sessions.update_state(sid, SessionState.STARTING, None)  # no change: no event
    await registry.sessions.update_state(sid, SessionState.CONNECTED, None, "+5511999990001")
    await registry.messages.add(
        sid,
        id="M1",
        direction="in",
        chat="+5511988887777",
        text="oi",
        status=MessageStatus.RECEIVED,
    )
    await registry.messages.add(
        sid,
        id="M1",
        direction="in",
        chat="+5511988887777",
        text="oi",
        status=MessageStatus.RECEIVED,
    )  # duplicate
    await registry.messages.add(
        sid, id="O1", direction="out", chat="+5511988887777", text="x", status=MessageStatus.PENDING
    )
    await registry.messages.update_status(sid, "O1", MessageStatus.READ)
    await registry.messages.update_status(sid, "O1", MessageStatus.DELIVERED)  # late: ignored
    await registry.outbox.record_event(sid, "session.qr", {"qr": "2@x"})
    events = await registry.outbox.list_events(uid, session_id=sid, after=0)
    assert [e.type for e in events] == [
        "session.status",
        "session.status",
        "message.received",
        "message.status",
        "message.status",
        "session.qr",
    ]
    assert [e.data.get("state") for e in events[:2]] == ["STARTING", "CONNECTED"]
    assert events[4].data["status"] == "read"
    assert len({e.id for e in events}) == len(events)
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert await registry.outbox.list_events(uid, session_id=sid, after=events[2].seq) == events[3:]
    all_pending = await registry.outbox.pending_deliveries(hook.id)
    assert [e.seq for _, e in all_pending] == [e.seq for e in events]
    filtered = await registry.outbox.pending_deliveries(only.id)
    assert [e.type for _, e in filtered] == ["message.received"]


async def test_deliveries_move_and_disable(registry: Registry) -> None:  # noqa: F811
    uid, sid = await _setup(registry)
    hook = await registry.outbox.create_webhook(
        uid, url="https://example.com/h", secret="x" * 20, events=[]
    )
    ping = await registry.outbox.ping_webhook(uid, hook.id)
    now = datetime.now(UTC)
    assert [w.id for w in await registry.outbox.due_webhooks(now)] == [hook.id]
    ((delivery, event),) = await registry.outbox.pending_deliveries(hook.id)
    assert event.id == ping.id and event.type == "webhook.ping"
    later = now + timedelta(seconds=30)
    await registry.outbox.update_delivery(
        delivery.id,
        status="pending",
        attempts=1,
        next_attempt_at=later,
        status_code=500,
        error="HTTP 500",
    )
    assert await registry.outbox.due_webhooks(now) == []
    await registry.outbox.mark_delivered([(delivery.id, 2, 200)])
    log = await registry.outbox.list_deliveries(uid, hook.id)
    assert log[0].status == "delivered" and log[0].attempts == 2
    assert await registry.outbox.list_deliveries(uid + 1, hook.id) == []
    await registry.outbox.ping_webhook(uid, hook.id)
    await registry.outbox.disable_webhook(hook.id, "410")
    assert (
        next(d.status for d in await registry.outbox.list_deliveries(uid, hook.id)) == "cancelled"
    )
    assert not (await registry.outbox.get_webhook(uid, hook.id)).enabled  # type: ignore[union-attr]
    await registry.sessions.update_state(sid, SessionState.STARTING, None)
    assert await registry.outbox.pending_deliveries(hook.id) == []  # disabled: no new deliveries
    assert await registry.outbox.get_webhook(uid + 1, hook.id) is None
    assert not await registry.outbox.delete_webhook(uid + 1, hook.id)
    assert await registry.outbox.delete_webhook(uid, hook.id)


async def test_outbound_queue(registry: Registry) -> None:  # noqa: F811
    _uid, sid = await _setup(registry)
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


async def test_send_rate_and_retention(registry: Registry) -> None:  # noqa: F811
    uid, sid = await _setup(registry)
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
