"""registry.messages beyond text: kinds and extras, replies, messages sent from the phone,
reactions, edits, revokes, poll votes and their tally, read marks and the chats list. An
action the gateway made and then hears back from WhatsApp is one event."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from tests.contract.registry.helpers import user_and_session
from zapgate.domain.content import Extras, Location, Poll, Quote
from zapgate.domain.models import Message, MessageStatus
from zapgate.registry import Registry

PHONE = "+5511999990077"
LID = "184726394857261@lid"
OTHER = "+5511999990088"
AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


async def _inbound(
    registry: Registry,
    sid: int,
    wa_id: str,
    *,
    chat: str = PHONE,
    text: str | None = "oi",
    extras: Extras = Extras(),
    chat_lid: str | None = None,
) -> Message:
    message, _ = await registry.messages.add(
        sid,
        id=wa_id,
        wa_id=wa_id,
        direction="in",
        chat=chat,
        chat_lid=chat_lid,
        text=text,
        status=MessageStatus.RECEIVED,
        extras=extras,
    )
    return message


async def _types(registry: Registry, uid: int, sid: int) -> list[str]:
    return [e.type for e in await registry.outbox.list_events(uid, session_id=sid, after=0)]


async def test_kinds_and_extras_are_kept_and_a_reply_names_the_quoted_message(
    registry: Registry,
) -> None:
    uid, sid = await user_and_session(registry)
    first = await _inbound(registry, sid, "WA1")
    assert (first.kind, first.extras, first.reply_to) == ("text", Extras(), None)
    reply = await _inbound(
        registry,
        sid,
        "WA2",
        extras=Extras(quote=Quote(id="WA1", sender=PHONE, text="oi"), mentions=(OTHER,)),
    )
    assert reply.reply_to == "WA1" and reply.extras.mentions == (OTHER,)
    pin = Location(latitude=-23.5, longitude=-46.6, name="Sé")
    located = await _inbound(registry, sid, "WA3", text=None, extras=Extras(location=pin))
    assert located.kind == "location" and located.extras.location == pin
    # A quote of a message this session never saw keeps WhatsApp's id only.
    orphan = await _inbound(registry, sid, "WA4", extras=Extras(quote=Quote(id="GONE")))
    assert orphan.reply_to is None
    assert await registry.messages.get(sid, "WA2") == reply

    events = await registry.outbox.list_events(uid, session_id=sid, after=0)
    data = events[1].data
    assert data["kind"] == "text" and data["mentions"] == [OTHER]
    assert data["reply_to"] == {"id": "WA1", "wa_id": "WA1", "sender": PHONE, "text": "oi"}
    assert events[2].data["location"]["name"] == "Sé"
    assert events[3].data["reply_to"]["id"] is None


async def test_a_message_from_the_phone_is_message_sent_once(registry: Registry) -> None:
    uid, sid = await user_and_session(registry)
    # The gateway sent GW1 (WhatsApp's WA1): WhatsApp telling of WA1 again is not new.
    await registry.messages.add(
        sid, id="GW1", direction="out", chat=PHONE, text="hi", status=MessageStatus.PENDING
    )
    await registry.messages.update_status(sid, "GW1", MessageStatus.SENT, wa_id="WA1")
    for wa_id in ("WA1", "WA9", "WA9"):
        await registry.messages.add(
            sid,
            id=wa_id,
            wa_id=wa_id,
            direction="out",
            chat=PHONE,
            text="from the phone",
            status=MessageStatus.SENT,
            from_me=True,
        )
    stored = await registry.messages.get(sid, "WA9")
    assert stored is not None and stored.from_me and stored.direction == "out"
    assert await registry.messages.get(sid, "WA1") is None
    assert await _types(registry, uid, sid) == ["message.status", "message.status", "message.sent"]


async def test_reactions_latest_wins_and_empty_removes(registry: Registry) -> None:
    uid, sid = await user_and_session(registry)
    await _inbound(registry, sid, "WA1", chat=PHONE, chat_lid=LID)
    assert await registry.messages.react(sid, "NOPE", PHONE, "👍", reactor_lid=None) is None
    await registry.messages.react(sid, "WA1", PHONE, "👍", reactor_lid=None)
    # The same reactor by LID is the same reactor; a repeat is no new event.
    after = await registry.messages.react(sid, "WA1", LID, "❤️", reactor_lid=None)
    assert after is not None and after.reactions == {PHONE: "❤️"}
    await registry.messages.react(sid, "WA1", PHONE, "❤️", reactor_lid=None)
    mine = await registry.messages.react(sid, "WA1", "me", "😂", reactor_lid=None)
    assert mine is not None and mine.reactions == {PHONE: "❤️", "me": "😂"}
    removed = await registry.messages.react(sid, "WA1", PHONE, "", reactor_lid=None)
    assert removed is not None and removed.reactions == {"me": "😂"}
    assert (await registry.messages.find(sid, "WA1")).reactions == {"me": "😂"}  # type: ignore[union-attr]

    events = await registry.outbox.list_events(uid, session_id=sid, after=0)
    reactions = [(e.data["from"], e.data["emoji"]) for e in events if e.type == "message.reaction"]
    assert reactions == [(PHONE, "👍"), (PHONE, "❤️"), ("me", "😂"), (PHONE, "")]
    assert events[-1].data["message_id"] == "WA1" and events[-1].data["chat"] == PHONE


async def test_an_edit_and_a_revoke_are_each_reported_once(registry: Registry) -> None:
    uid, sid = await user_and_session(registry)
    await registry.messages.add(
        sid, id="GW1", direction="out", chat=PHONE, text="helo", status=MessageStatus.PENDING
    )
    await registry.messages.update_status(sid, "GW1", MessageStatus.SENT, wa_id="WA1")
    edited = await registry.messages.edit(sid, "WA1", "hello", AT)
    assert edited is not None and (edited.id, edited.text, edited.edited_at) == (
        "GW1",
        "hello",
        AT,
    )
    await registry.messages.edit(sid, "WA1", "hello", AT)  # WhatsApp's echo of it
    revoked = await registry.messages.revoke(sid, "WA1", AT)
    assert revoked is not None and revoked.revoked_at == AT and revoked.text is None
    await registry.messages.revoke(sid, "WA1", AT)
    # A revoked message is not edited again.
    late = await registry.messages.edit(sid, "WA1", "again", AT)
    assert late is not None and late.text is None
    assert await registry.messages.edit(sid, "NOPE", "x", AT) is None

    types = await _types(registry, uid, sid)
    assert types[-2:] == ["message.edited", "message.revoked"]
    assert types.count("message.edited") == 1 and types.count("message.revoked") == 1
    events = await registry.outbox.list_events(uid, session_id=sid, after=0)
    assert events[-1].data["revoked"] is True and events[-2].data["text"] == "hello"


async def test_poll_votes_replace_each_voters_and_are_tallied(registry: Registry) -> None:
    uid, sid = await user_and_session(registry)
    poll = Poll(question="Lunch?", options=("pizza", "sushi", "salad"), max_selections=2)
    await registry.messages.add(
        sid,
        id="GW1",
        direction="out",
        chat=PHONE,
        text=None,
        status=MessageStatus.PENDING,
        extras=Extras(poll=poll),
    )
    await registry.messages.update_status(sid, "GW1", MessageStatus.SENT, wa_id="WA1")
    first = await registry.messages.vote(sid, "WA1", PHONE, ("pizza",), (), voter_lid=None)
    assert first is not None and first.tally() == {"pizza": 1, "sushi": 0, "salad": 0}
    # Votes named by the hashes WhatsApp carries, and one voter changing theirs.
    hashes = [hashlib.sha256(o.encode()).hexdigest() for o in ("sushi", "salad")]
    await registry.messages.vote(sid, "WA1", OTHER, (), hashes, voter_lid=None)
    changed = await registry.messages.vote(sid, "WA1", PHONE, ("sushi",), (), voter_lid=None)
    assert changed is not None and changed.tally() == {"pizza": 0, "sushi": 2, "salad": 1}
    await registry.messages.vote(sid, "WA1", PHONE, ("sushi",), (), voter_lid=None)  # repeat
    withdrawn = await registry.messages.vote(sid, "WA1", OTHER, (), (), voter_lid=None)
    assert withdrawn is not None and withdrawn.votes == {PHONE: ("sushi",)}
    assert await registry.messages.vote(sid, "NOPE", PHONE, ("x",), (), voter_lid=None) is None

    votes = [e.data for e in await registry.outbox.list_events(uid, session_id=sid, after=0)]
    tallies = [d["tally"] for d in votes if "tally" in d]
    assert len(tallies) == 4
    assert tallies[-1] == {"pizza": 0, "sushi": 1, "salad": 0}


async def test_chats_newest_first_with_unread_counts_and_paging(registry: Registry) -> None:
    _, sid = await user_and_session(registry)
    await _inbound(registry, sid, "A1", chat=PHONE, chat_lid=LID)
    await _inbound(registry, sid, "B1", chat=OTHER)
    await _inbound(registry, sid, "A2", chat=LID)  # the same chat, by its LID
    await registry.messages.add(
        sid, id="GW1", direction="out", chat=OTHER, text="yo", status=MessageStatus.PENDING
    )
    chats, nxt = await registry.messages.chats(sid, limit=10)
    assert nxt is None
    assert [(c.chat, c.chat_lid, c.unread, c.last_message.id) for c in chats] == [
        (OTHER, None, 1, "GW1"),
        (PHONE, LID, 2, "A2"),
    ]
    page1, cursor = await registry.messages.chats(sid, limit=1)
    assert [c.chat for c in page1] == [OTHER] and cursor is not None
    page2, end = await registry.messages.chats(sid, limit=1, before=cursor)
    assert [c.chat for c in page2] == [PHONE] and end is None

    unread = await registry.messages.unread(sid, LID)
    assert [m.id for m in unread] == ["A1", "A2"]
    await registry.messages.mark_read(sid, [m.pk for m in unread], AT)
    assert await registry.messages.unread(sid, PHONE) == []
    chats, _ = await registry.messages.chats(sid)
    assert [c.unread for c in chats] == [1, 0]

    history, _ = await registry.messages.list(sid, chat=LID)
    assert [m.id for m in history] == ["A2", "A1"]
    assert history[0].read_at == AT


async def test_a_chat_read_is_marked_and_reported_once(registry: Registry) -> None:
    uid, sid = await user_and_session(registry)
    for wa_id in ("R1", "R2", "R3"):
        await _inbound(registry, sid, wa_id)
    await _inbound(registry, sid, "R9", chat=OTHER)
    # Read up to R2 on the phone, the chat named by its LID as WhatsApp may name it.
    await registry.lids.learn(sid, LID, PHONE)
    assert await registry.messages.read_chat(sid, LID, None, wa_ids=["R2"], at=AT) == 2
    assert [m.id for m in await registry.messages.unread(sid, PHONE)] == ["R3"]
    # The same read again (the gateway's own, echoed), or of unknown ids: nothing.
    assert await registry.messages.read_chat(sid, PHONE, LID, wa_ids=["R1", "R2"], at=AT) == 0
    assert await registry.messages.read_chat(sid, PHONE, None, wa_ids=["NOPE"], at=AT) == 0
    assert await registry.messages.read_chat(sid, PHONE, None, wa_ids=["R3"], at=AT) == 1
    events = [
        e.data
        for e in await registry.outbox.list_events(uid, session_id=sid, after=0)
        if e.type == "chat.read"
    ]
    assert events == [
        {"chat": PHONE, "chat_lid": LID, "phone": PHONE, "read_at": AT.isoformat(), "up_to": "R2"},
        {"chat": PHONE, "chat_lid": LID, "phone": PHONE, "read_at": AT.isoformat(), "up_to": "R3"},
    ]
    chats, _ = await registry.messages.chats(sid)
    assert {c.chat: c.unread for c in chats} == {PHONE: 0, OTHER: 1}
