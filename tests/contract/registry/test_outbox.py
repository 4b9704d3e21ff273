"""registry.outbox: events written with the changes they report, webhooks and their
deliveries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tests.contract.registry.helpers import user_and_session
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState
from zapgate.registry import Registry


async def test_changes_and_their_events_are_written_together(registry: Registry) -> None:
    uid, sid = await user_and_session(registry)
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


async def test_deliveries_move_and_disable(registry: Registry) -> None:
    uid, sid = await user_and_session(registry)
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
    await registry.outbox.record_results(
        [replace(delivery, status="delivered", attempts=2, last_status_code=200)]
    )
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


async def test_results_are_written_in_one_batch(registry: Registry) -> None:
    """The dispatcher's batched write: each delivery's own outcome, a delivery deleted in
    the meantime skipped (not failing the batch), and the claim sees what is left, oldest
    event first, a page at a time."""
    uid, _ = await user_and_session(registry)
    hook = await registry.outbox.create_webhook(
        uid, url="https://example.com/h", secret="x" * 20, events=[]
    )
    for _ in range(4):
        await registry.outbox.ping_webhook(uid, hook.id)
    page = await registry.outbox.pending_deliveries(hook.id, limit=3)
    assert [e.seq for _, e in page] == sorted(e.seq for _, e in page) and len(page) == 3
    (first, _), (second, _), (third, _) = page
    now = datetime.now(UTC)
    later = now + timedelta(seconds=60)
    await registry.outbox.record_results(
        [
            replace(
                first, status="delivered", attempts=1, next_attempt_at=now, last_status_code=204
            ),
            replace(first, id=first.id + 10_000, status="delivered"),  # gone: skipped
            replace(
                second, status="failed", attempts=3, last_status_code=500, last_error="gave up"
            ),
            replace(
                third, status="pending", attempts=1, next_attempt_at=later, last_error="HTTP 503"
            ),
        ]
    )
    log = {d.id: d for d in await registry.outbox.list_deliveries(uid, hook.id)}
    assert (log[first.id].status, log[first.id].attempts, log[first.id].last_status_code) == (
        "delivered",
        1,
        204,
    )
    assert (log[second.id].status, log[second.id].last_error) == ("failed", "gave up")
    assert log[third.id].status == "pending" and log[third.id].next_attempt_at == later
    assert log[third.id].last_error == "HTTP 503" and log[third.id].attempts == 1
    left = await registry.outbox.pending_deliveries(hook.id, limit=3)
    assert left[0][0].id == third.id and len(left) == 2
    await registry.outbox.record_results([])  # nothing to write: no transaction
