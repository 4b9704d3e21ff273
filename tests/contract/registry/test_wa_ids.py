"""registry.messages with two ids: the gateway's (`id`) and WhatsApp's (`wa_id`), which
WhatsApp assigns on send and every receipt names; and each session's LID <-> phone map
(registry.lids), learned from events, through which chats are stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.contract.registry.helpers import (
    add_message,
    fetch_rows,
    new_session,
    run_sql,
    user_and_session,
)
from zapgate.domain.models import MessageStatus
from zapgate.registry import Registry
from zapgate.registry.migrator import alembic_config

PHONE = "+5511999990077"
LID = "184726394857261@lid"
OTHER_LID = "200000000000001@lid"


async def test_sent_records_whatsapps_id_and_receipts_find_the_message_by_it(
    registry: Registry,
) -> None:
    uid, sid = await user_and_session(registry)
    await add_message(registry, sid, "GW1")
    assert (await registry.messages.get(sid, "GW1")).wa_id is None  # type: ignore[union-attr]

    sent = await registry.messages.update_status(sid, "GW1", MessageStatus.SENT, wa_id="WA1")
    assert sent is not None and (sent.id, sent.wa_id, sent.status) == ("GW1", "WA1", "sent")
    delivered = await registry.messages.update_status_by_wa_id(sid, "WA1", MessageStatus.DELIVERED)
    assert delivered is not None and (delivered.id, delivered.status) == ("GW1", "delivered")
    read = await registry.messages.update_status_by_wa_id(sid, "WA1", MessageStatus.READ)
    assert read is not None and read.status is MessageStatus.READ
    # Forward only, as by the gateway's id; a repeat changes nothing.
    late = await registry.messages.update_status_by_wa_id(sid, "WA1", MessageStatus.DELIVERED)
    assert late is not None and late.status is MessageStatus.READ

    # Every status event names both ids.
    events = await registry.outbox.list_events(uid, session_id=sid, after=0)
    statuses = [(e.data["id"], e.data["wa_id"], e.data["status"]) for e in events]
    assert statuses == [
        ("GW1", None, "pending"),
        ("GW1", "WA1", "sent"),
        ("GW1", "WA1", "delivered"),
        ("GW1", "WA1", "read"),
    ]


async def test_a_pages_receipts_apply_together_in_order(registry: Registry) -> None:
    """The journal puller applies a run of receipts in one transaction (issue 15)."""
    uid, sid = await user_and_session(registry)
    for n in (1, 2):
        await add_message(registry, sid, f"GW{n}")
        await registry.messages.update_status(sid, f"GW{n}", MessageStatus.SENT, wa_id=f"WA{n}")
    moved = await registry.messages.update_statuses_by_wa_id(
        sid,
        [
            ("WA1", MessageStatus.DELIVERED),
            ("NOPE", MessageStatus.READ),
            ("WA2", MessageStatus.READ),
            ("WA1", MessageStatus.READ),
            ("WA2", MessageStatus.DELIVERED),  # late: forward only
        ],
    )
    assert [None if m is None else (m.id, m.status.value) for m in moved] == [
        ("GW1", "delivered"),
        None,
        ("GW2", "read"),
        ("GW1", "read"),
        ("GW2", "read"),
    ]
    events = await registry.outbox.list_events(uid, session_id=sid, after=0)
    assert [(e.data["id"], e.data["status"]) for e in events][-3:] == [
        ("GW1", "delivered"),
        ("GW2", "read"),
        ("GW1", "read"),
    ]


async def test_whatsapps_id_is_set_once_whichever_path_comes_first(registry: Registry) -> None:
    sid = await new_session(registry)
    await add_message(registry, sid, "GW1")
    # The journal's SENT ack and the send's return both record it; the first one wins.
    await registry.messages.update_status(sid, "GW1", MessageStatus.SENT, wa_id="WA1")
    again = await registry.messages.update_status(sid, "GW1", MessageStatus.SENT, wa_id="WA2")
    assert again is not None and again.wa_id == "WA1"
    # A receipt overtaken by nothing: the wa_id is there before any receipt needs it.
    await registry.messages.update_status_by_wa_id(sid, "WA1", MessageStatus.READ)
    await registry.messages.update_status(sid, "GW1", MessageStatus.SENT, wa_id="WA1")
    assert (await registry.messages.get(sid, "GW1")).status is MessageStatus.READ  # type: ignore[union-attr]


async def test_a_receipt_for_an_unknown_id_or_another_session_changes_nothing(
    registry: Registry,
) -> None:
    sid = await new_session(registry)
    other = await new_session(registry, "other@example.com")
    await add_message(registry, sid, "GW1")
    await registry.messages.update_status(sid, "GW1", MessageStatus.SENT, wa_id="WA1")
    assert await registry.messages.update_status_by_wa_id(sid, "NOPE", MessageStatus.READ) is None
    assert await registry.messages.update_status_by_wa_id(other, "WA1", MessageStatus.READ) is None
    # An inbound message is never moved by a receipt, even under the same id.
    await registry.messages.add(
        sid,
        id="WA9",
        wa_id="WA9",
        direction="in",
        chat=PHONE,
        text="hi",
        status=MessageStatus.RECEIVED,
    )
    assert await registry.messages.update_status_by_wa_id(sid, "WA9", MessageStatus.READ) is None
    assert (await registry.messages.get(sid, "GW1")).status is MessageStatus.SENT  # type: ignore[union-attr]


async def test_a_receipt_days_later_finds_the_message_after_a_restart(db_url: str) -> None:
    registry = await Registry.open(db_url)
    try:
        sid = await new_session(registry)
        await add_message(registry, sid, "GW1")
        await registry.messages.update_status(sid, "GW1", MessageStatus.SENT, wa_id="WA1")
    finally:
        await registry.close()
    registry = await Registry.open(db_url)
    try:
        read = await registry.messages.update_status_by_wa_id(sid, "WA1", MessageStatus.READ)
        assert read is not None and (read.id, read.status) == ("GW1", MessageStatus.READ)
    finally:
        await registry.close()


async def test_lookups_by_whatsapps_id_use_an_index(registry: Registry, raw: AsyncEngine) -> None:
    if registry.dialect == "sqlite":
        rows = await fetch_rows(raw, "PRAGMA index_list('messages')")
        names = {r[1] for r in rows}
    else:
        rows = await fetch_rows(raw, "SELECT indexname FROM pg_indexes WHERE tablename='messages'")
        names = {r[0] for r in rows}
    assert "ix_messages_session_id_wa_id" in names


# -- LIDs ------------------------------------------------------------------------------------
async def inbound(registry: Registry, sid: int, id: str, chat: str, chat_lid: str | None) -> None:
    await registry.messages.add(
        sid,
        id=id,
        wa_id=id,
        direction="in",
        chat=chat,
        chat_lid=chat_lid,
        text=id,
        status=MessageStatus.RECEIVED,
    )


async def chats(registry: Registry, sid: int) -> dict[str, tuple[str, str | None]]:
    items, _ = await registry.messages.list(sid, limit=100)
    return {m.id: (m.chat, m.chat_lid) for m in items}


async def test_a_lid_only_chat_shows_its_phone_once_learned(registry: Registry) -> None:
    uid, sid = await user_and_session(registry)
    await inbound(registry, sid, "WA1", LID, LID)
    await registry.messages.add(
        sid, id="GW1", direction="out", chat=PHONE, text="x", status=MessageStatus.PENDING
    )
    assert await chats(registry, sid) == {"WA1": (LID, LID), "GW1": (PHONE, None)}

    # A message with both addresses teaches the map: the earlier messages join the chat.
    await inbound(registry, sid, "WA2", PHONE, LID)
    assert await chats(registry, sid) == {
        "WA1": (PHONE, LID),
        "GW1": (PHONE, LID),
        "WA2": (PHONE, LID),
    }
    # From now on the LID alone is named by the phone, and the phone alone gets its LID.
    await inbound(registry, sid, "WA3", LID, None)
    await inbound(registry, sid, "WA4", PHONE, None)
    assert set((await chats(registry, sid)).values()) == {(PHONE, LID)}
    events = await registry.outbox.list_events(uid, session_id=sid, after=0)
    received = [(e.data["chat"], e.data["chat_lid"]) for e in events if e.data["direction"] == "in"]
    assert received == [(LID, LID), (PHONE, LID), (PHONE, LID), (PHONE, LID)]


async def test_outbound_messages_are_stored_through_the_map(registry: Registry) -> None:
    sid = await new_session(registry)
    await registry.lids.learn(sid, LID, PHONE)
    for id, to in (("GW1", LID), ("GW2", PHONE), ("GW3", OTHER_LID)):
        await registry.messages.add(
            sid, id=id, direction="out", chat=to, text="x", status=MessageStatus.PENDING
        )
    assert await chats(registry, sid) == {
        "GW1": (PHONE, LID),  # a known LID is sent (and grouped) as its phone
        "GW2": (PHONE, LID),
        "GW3": (OTHER_LID, OTHER_LID),  # an unknown one stays the LID
    }


async def test_the_map_is_per_session_and_ignores_what_is_not_a_mapping(
    registry: Registry, raw: AsyncEngine
) -> None:
    sid = await new_session(registry)
    other = await new_session(registry, "other@example.com")
    await inbound(registry, sid, "WA1", PHONE, LID)
    await inbound(registry, other, "WA1", LID, LID)
    assert await chats(registry, other) == {"WA1": (LID, LID)}
    # A group chat keeps its JID; a malformed LID or a non-phone is not learned.
    await inbound(registry, other, "WA2", "120363000000000001@g.us", LID)
    await registry.lids.learn(other, "abc@lid", PHONE)
    await registry.lids.learn(other, LID, "not-a-phone")
    assert await chats(registry, other) == {
        "WA1": (LID, LID),
        "WA2": ("120363000000000001@g.us", None),
    }
    rows = await fetch_rows(raw, "SELECT session_id, lid, phone FROM lid_phones ORDER BY 1")
    assert [tuple(r) for r in rows] == [(sid, LID, PHONE)]


async def test_deleting_a_session_forgets_its_map(registry: Registry, raw: AsyncEngine) -> None:
    sid = await new_session(registry)
    await registry.lids.learn(sid, LID, PHONE)
    await registry.sessions.delete(sid)
    assert await fetch_rows(raw, "SELECT * FROM lid_phones") == []


async def test_messages_stored_before_0008_keep_their_id_as_whatsapps(db_url: str) -> None:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0007"))
        now = datetime(2026, 11, 1, 10, tzinfo=UTC)
        await run_sql(
            engine, "INSERT INTO users (id, email, created_at) VALUES (1, 'old@x.org', :t)", t=now
        )
        await run_sql(
            engine,
            "INSERT INTO sessions (id, user_id, name, client_id, session_dir, engine, state,"
            " worker_id, created_at, updated_at) VALUES (1, 1, 's', 'u1-old', 'sessions/u1-old',"
            " 'sim', 'STOPPED', 'embedded', :t, :t)",
            t=now,
        )
        for id, direction, status in (("OLDOUT", "out", "sent"), ("OLDIN", "in", "received")):
            await run_sql(
                engine,
                "INSERT INTO messages (session_id, id, direction, chat, status, created_at,"
                " updated_at) VALUES (1, :id, :d, '+5511999990003', :s, :t, :t)",
                id=id,
                d=direction,
                s=status,
                t=now,
            )
    finally:
        await engine.dispose()
    registry = await Registry.open(db_url)
    try:
        assert await registry.revision() == registry.head_revision()
        for id in ("OLDOUT", "OLDIN"):
            message = await registry.messages.get(1, id)
            assert message is not None and (message.wa_id, message.chat_lid) == (id, None)
        read = await registry.messages.update_status_by_wa_id(1, "OLDOUT", MessageStatus.READ)
        assert read is not None and read.status is MessageStatus.READ
    finally:
        await registry.close()


async def test_two_messages_teaching_the_same_mapping_at_once_are_both_kept(
    registry: Registry,
) -> None:
    sid = await new_session(registry)
    await asyncio.gather(*(inbound(registry, sid, f"WA{i}", PHONE, LID) for i in range(6)))
    assert await chats(registry, sid) == {f"WA{i}": (PHONE, LID) for i in range(6)}


async def test_a_failing_batch_of_receipts_is_applied_one_by_one(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The puller's fallback: one bad receipt must not cost the page's others."""
    from zapgate.domain.events import MessageAck
    from zapgate.pipeline.puller import JournalPuller

    _, sid = await user_and_session(registry)
    session = await registry.sessions.get_by_id(sid)
    assert session is not None
    await add_message(registry, sid, "GW1")
    await registry.messages.update_status(sid, "GW1", MessageStatus.SENT, wa_id="WA1")

    async def broken(*_: object) -> None:
        raise RuntimeError("the batch failed")

    monkeypatch.setattr(registry.messages, "update_statuses_by_wa_id", broken)
    puller = JournalPuller(registry, pool=None, outbound=None)  # type: ignore[arg-type]
    await puller._apply_receipts(
        "w1", session.client_id, [MessageAck(id="WA1", status=MessageStatus.READ)]
    )
    assert (await registry.messages.get(sid, "GW1")).status is MessageStatus.READ  # type: ignore[union-attr]
