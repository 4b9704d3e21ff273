"""Push names: each message keeps the name its sender set in WhatsApp, as it carried it,
and a chat is named by the latest one its contact's messages brought; through the LID
map a LID and its phone are one contact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.contract.registry.helpers import user_and_session
from zapgate.domain.models import Message, MessageStatus
from zapgate.registry import Registry

PHONE = "+5511999990077"
LID = "184726394857261@lid"
OTHER = "+5511999990088"
OTHER_LID = "184726394857299@lid"
GROUP = "120363025246125486@g.us"
AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


async def _inbound(
    registry: Registry,
    sid: int,
    wa_id: str,
    name: str | None,
    *,
    chat: str = PHONE,
    chat_lid: str | None = None,
    sender: str | None = None,
    minutes: int = 0,
) -> Message:
    message, _ = await registry.messages.add(
        sid,
        id=wa_id,
        wa_id=wa_id,
        direction="in",
        chat=chat,
        chat_lid=chat_lid,
        text="oi",
        status=MessageStatus.RECEIVED,
        created_at=AT + timedelta(minutes=minutes),
        sender=sender or chat,
        sender_lid=chat_lid if sender is None else None,
        sender_name=name,
    )
    return message


async def _names(registry: Registry, sid: int) -> dict[str, str | None]:
    chats, _ = await registry.messages.chats(sid)
    return {c.chat: c.name for c in chats}


async def test_a_chat_is_named_by_the_latest_name_its_messages_brought(
    registry: Registry,
) -> None:
    uid, sid = await user_and_session(registry)
    first = await _inbound(registry, sid, "A1", "Ana", minutes=1)
    assert first.sender_name == "Ana"
    await registry.messages.add(
        sid, id="GW1", direction="out", chat=OTHER, text="yo", status=MessageStatus.PENDING
    )
    assert await _names(registry, sid) == {PHONE: "Ana", OTHER: None}
    await _inbound(registry, sid, "A2", "Ana Souza", minutes=2)
    await _inbound(registry, sid, "A0", "Old name", minutes=0)  # delivered late
    await _inbound(registry, sid, "A3", None, minutes=3)  # carried no name
    assert (await _names(registry, sid))[PHONE] == "Ana Souza"
    stored = {m.id: m.sender_name for m in (await registry.messages.list(sid, chat=PHONE))[0]}
    assert stored == {"A0": "Old name", "A1": "Ana", "A2": "Ana Souza", "A3": None}
    # The account's own phone wrote: its name is the message's, not the chat's.
    own, _ = await registry.messages.add(
        sid,
        id="P1",
        wa_id="P1",
        direction="out",
        chat=PHONE,
        text="from the shop",
        status=MessageStatus.SENT,
        from_me=True,
        sender=OTHER,
        sender_name="Loja do Zé",
    )
    assert own.sender_name == "Loja do Zé"
    assert (await _names(registry, sid))[PHONE] == "Ana Souza"
    events = await registry.outbox.list_events(uid, session_id=sid, after=0)
    names = {(e.type, e.data["id"]): e.data["sender_name"] for e in events}
    assert names[("message.received", "A1")] == "Ana"
    assert names[("message.received", "A3")] is None
    assert names[("message.sent", "P1")] == "Loja do Zé"


async def test_a_lid_and_its_phone_are_one_contact(registry: Registry) -> None:
    _, sid = await user_and_session(registry)
    await _inbound(registry, sid, "L1", "Bia", chat=LID, minutes=1)
    assert await _names(registry, sid) == {LID: "Bia"}
    # A message with both addresses teaches the map: the contact is the phone's.
    await _inbound(registry, sid, "L2", None, chat=PHONE, chat_lid=LID, minutes=2)
    assert await _names(registry, sid) == {PHONE: "Bia"}
    await _inbound(registry, sid, "L3", "Bia B.", chat=LID, minutes=3)
    assert await _names(registry, sid) == {PHONE: "Bia B."}

    # Known by both addresses before the map joined them: the newer name wins.
    await _inbound(registry, sid, "O1", "Carlos", chat=OTHER, minutes=4)
    await _inbound(registry, sid, "O2", "Carlão", chat=OTHER_LID, minutes=5)
    await registry.lids.learn(sid, OTHER_LID, OTHER)
    assert (await _names(registry, sid))[OTHER] == "Carlão"


async def test_a_group_senders_name_is_the_senders(registry: Registry) -> None:
    _, sid = await user_and_session(registry)
    await _inbound(registry, sid, "G1", "Dani", chat=GROUP, sender=PHONE)
    assert await _names(registry, sid) == {GROUP: None}
    await _inbound(registry, sid, "D1", None, minutes=1)
    assert (await _names(registry, sid))[PHONE] == "Dani"
