"""The registry contract for contacts and calls (issue 10): cached number checks (whose
LIDs teach the LID map), calls reported once, their rejection, and the session's
reject_calls setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contract.registry.helpers import ROUTE, fetch_rows, user_and_session
from zapgate.config import Settings
from zapgate.domain.contacts import NumberCheck
from zapgate.domain.events import CallReceived
from zapgate.domain.models import MessageStatus
from zapgate.pipeline.puller import JournalPuller
from zapgate.registry import Registry
from zapgate.services.outbound import OutboundQueue

PHONE = "+5511999990077"
LID = "987654321012345@lid"
NOBODY = "+5511999990088"
AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _checks() -> list[NumberCheck]:
    return [
        NumberCheck(
            phone=PHONE,
            on_whatsapp=True,
            jid="5511999990077@s.whatsapp.net",
            lid=LID,
            business=True,
        ),
        NumberCheck(phone=NOBODY, on_whatsapp=False),
    ]


async def test_number_checks_are_cached_until_they_are_too_old(registry: Registry) -> None:
    _, sid = await user_and_session(registry)
    before = datetime.now(UTC) - timedelta(seconds=1)
    stored = await registry.checks.store(sid, _checks())
    assert [(a.check.phone, a.cached) for a in stored] == [(PHONE, False), (NOBODY, False)]

    cached = await registry.checks.cached(sid, [PHONE, NOBODY, "+5511999990099"], since=before)
    assert set(cached) == {PHONE, NOBODY}
    assert cached[PHONE].cached and cached[PHONE].check == _checks()[0]
    assert cached[NOBODY].check == _checks()[1]
    assert cached[PHONE].checked_at == stored[0].checked_at
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert await registry.checks.cached(sid, [PHONE], since=later) == {}

    # A new answer replaces the old one.
    await registry.checks.store(sid, [NumberCheck(phone=NOBODY, on_whatsapp=True, lid=None)])
    again = await registry.checks.cached(sid, [NOBODY], since=before)
    assert again[NOBODY].check.on_whatsapp


async def test_checks_belong_to_their_session(registry: Registry) -> None:
    _, sid = await user_and_session(registry)
    other = await registry.users.create("other@example.com")
    session, _ = await registry.sessions.get_or_create(other.id, "s", engine="sim", route=ROUTE)
    await registry.checks.store(sid, _checks())
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert await registry.checks.cached(session.id, [PHONE], since=since) == {}


async def test_a_checked_lid_names_a_later_lid_chat_by_its_phone(registry: Registry) -> None:
    _, sid = await user_and_session(registry)
    await registry.checks.store(sid, _checks())
    message, _ = await registry.messages.add(
        sid, id="WA1", direction="in", chat=LID, text="hi", status=MessageStatus.RECEIVED
    )
    assert (message.chat, message.chat_lid) == (PHONE, LID)


async def test_a_call_is_stored_and_reported_once(registry: Registry) -> None:
    user_id, sid = await user_and_session(registry)
    call = CallReceived(id="C1", caller=PHONE, timestamp=AT, video=True, caller_lid=LID)
    added = await registry.calls.add(sid, call)
    assert added is not None
    stored, created = added
    assert created
    assert (stored.id, stored.caller, stored.caller_lid, stored.video, stored.group) == (
        "C1",
        PHONE,
        LID,
        True,
        False,
    )
    assert (stored.auto_reject, stored.rejected_at, stored.received_at) == (False, None, AT)
    again = await registry.calls.add(sid, call)
    assert again is not None and again == (stored, False)

    events = [
        e
        for e in await registry.outbox.list_events(user_id, session_id=sid, after=0)
        if e.type == "call.received"
    ]
    assert [e.data for e in events] == [
        {
            "id": "C1",
            "from": PHONE,
            "phone": PHONE,
            "jid": "5511999990077@s.whatsapp.net",
            "lid": LID,
            "video": True,
            "group": False,
            "auto_rejected": False,
            "timestamp": AT.isoformat(),
        }
    ]
    assert await registry.calls.get(sid, "C1") == stored
    assert await registry.calls.get(sid, "C2") is None


async def test_a_call_by_lid_is_named_by_the_phone_the_map_knows(registry: Registry) -> None:
    user_id, sid = await user_and_session(registry)
    await registry.lids.learn(sid, LID, PHONE)
    await registry.calls.add(sid, CallReceived(id="C1", caller=LID, timestamp=AT))
    (event,) = [
        e
        for e in await registry.outbox.list_events(user_id, session_id=sid, after=0)
        if e.type == "call.received"
    ]
    assert (event.data["from"], event.data["phone"], event.data["lid"]) == (PHONE, PHONE, LID)


async def test_rejecting_calls_is_a_session_setting_read_when_it_rings(
    registry: Registry,
) -> None:
    _, sid = await user_and_session(registry)
    session = await registry.sessions.get_by_id(sid)
    assert session is not None and (session.reject_calls, session.reject_calls_message) == (
        False,
        None,
    )
    updated = await registry.sessions.set_reject_calls(sid, True, "Só mensagens, por favor")
    assert updated is not None
    assert (updated.reject_calls, updated.reject_calls_message) == (
        True,
        "Só mensagens, por favor",
    )
    added = await registry.calls.add(sid, CallReceived(id="C9", caller=PHONE, timestamp=AT))
    assert added is not None and added[0].auto_reject

    first = await registry.calls.mark_rejected(sid, "C9")
    assert first is not None and first.rejected_at is not None
    second = await registry.calls.mark_rejected(sid, "C9")
    assert second is not None and second.rejected_at == first.rejected_at
    assert await registry.calls.mark_rejected(sid, "nope") is None


async def test_calls_and_checks_go_with_their_session(registry: Registry, raw: AsyncEngine) -> None:
    _, sid = await user_and_session(registry)
    await registry.checks.store(sid, _checks())
    await registry.calls.add(sid, CallReceived(id="C1", caller=PHONE, timestamp=AT))
    await registry.sessions.delete(sid)
    assert await fetch_rows(raw, "SELECT * FROM calls") == []
    assert await fetch_rows(raw, "SELECT * FROM number_checks") == []
    assert await registry.calls.add(sid, CallReceived(id="C2", caller=PHONE, timestamp=AT)) is None


async def test_retention_drops_old_calls(registry: Registry) -> None:
    _, sid = await user_and_session(registry)
    await registry.calls.add(sid, CallReceived(id="OLD", caller=PHONE, timestamp=AT))
    await registry.calls.add(
        sid, CallReceived(id="NEW", caller=PHONE, timestamp=AT + timedelta(days=30))
    )
    await registry.purge(
        messages_before=AT + timedelta(days=1), events_before=AT - timedelta(days=1)
    )
    assert await registry.calls.get(sid, "OLD") is None
    assert await registry.calls.get(sid, "NEW") is not None


class _RejectingPool:
    """The worker pool as the puller uses it: every worker call is a `reject_call`."""

    def __init__(self) -> None:
        self.rejected: list[tuple[str, str, str]] = []

    async def call(self, route: Any, label: str, op: Any) -> Any:
        return await op(self)

    async def reject_call(self, client_id: str, call_id: str, caller: str) -> None:
        self.rejected.append((client_id, call_id, caller))


async def test_a_call_applied_twice_is_rejected_and_answered_once(
    registry: Registry, tmp_path: Path
) -> None:
    user_id, sid = await user_and_session(registry)
    await registry.sessions.set_reject_calls(sid, True, "Só mensagens")
    session = await registry.sessions.get_by_id(sid)
    assert session is not None
    pool = _RejectingPool()
    settings = Settings(data_dir=tmp_path)
    outbound = OutboundQueue(settings, registry, pool, on_queued=lambda: None)  # type: ignore[arg-type]
    puller = JournalPuller(registry, pool, outbound)  # type: ignore[arg-type]
    call = CallReceived(id="C1", caller=PHONE, timestamp=AT)
    await puller.apply(session.client_id, call)
    await puller.apply(session.client_id, call)

    assert pool.rejected == [(session.client_id, "C1", PHONE)]
    stored = await registry.calls.get(sid, "C1")
    assert stored is not None and stored.auto_reject and stored.rejected_at is not None
    replies, _ = await registry.messages.list(sid, direction="out")
    assert [(m.chat, m.text) for m in replies] == [(PHONE, "Só mensagens")]
    events = await registry.outbox.list_events(user_id, session_id=sid, after=0)
    assert [e.data["auto_rejected"] for e in events if e.type == "call.received"] == [True]


async def test_the_names_contacts_messages_carried(registry: Registry) -> None:
    _, sid = await user_and_session(registry)
    await registry.messages.add(
        sid,
        id="WA1",
        wa_id="WA1",
        direction="in",
        chat=PHONE,
        text="oi",
        status=MessageStatus.RECEIVED,
        sender=PHONE,
        sender_name="Ana",
    )
    assert await registry.contacts.names(sid, [PHONE, NOBODY]) == {PHONE: "Ana"}
    assert await registry.contacts.names(sid, []) == {}
