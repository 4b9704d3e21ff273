"""The whatsmeow engine's contacts and calls (issue 10) on real neonize protobufs: what
whatsmeow's answers become (convert.py, contacts.py), and, through the fake WhatsApp, what
test_engine_contacts.py does not reach (hidden pictures, LID-addressed calls, push names
in the contact store, blocked callers, group calls)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from neonize.events import CallOfferEv
from neonize.exc import GetProfilePictureError, IsOnWhatsAppError
from neonize.proto.Neonize_pb2 import (
    JID,
    BasicCallMeta,
    GetProfilePictureReturnFunction,
    IsOnWhatsAppResponse,
    Node,
    NodeAttrs,
    ProfilePictureInfo,
    VerifiedName,
)

from tests.contract.test_engine_contract import PHONE_A, wait_for
from tests.contract.whatsmeow_fake import FakeWhatsApp, jid, message_event, source
from tests.unit.test_whatsmeow import linked, network
from zapgate.domain.events import CallReceived
from zapgate.engines.whatsmeow import contacts, convert
from zapgate.engines.whatsmeow.bridge import bind

__all__ = ["linked", "network"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.timeout(60)
STRANGER = "+5511999990077"
LID = "123456789012345"
EMPTY = JID(User="", Device=0, Server="", RawAgent=0, Integrator=0, IsEmpty=True)


class Store:
    """A client whose whatsmeow LID map holds `known` (LID user -> phone digits)."""

    def __init__(self, known: dict[str, str] | None = None, **answers: Any) -> None:
        self.known = known or {}
        self.answers = answers

    def get_pn_from_lid(self, lid: Any) -> Any:
        lid.SerializeToString()  # neonize hands it to Go
        return jid(self.known[lid.User]) if lid.User in self.known else EMPTY

    def get_lid_from_pn(self, pn: Any) -> Any:
        pn.SerializeToString()
        users = [u for u, p in self.known.items() if p == pn.User]
        return jid(users[0], server="lid") if users else EMPTY

    def is_on_whatsapp(self, *numbers: str) -> Any:
        answer = self.answers["on_whatsapp"]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get_profile_picture(self, target: Any) -> Any:
        answer = self.answers["picture"]
        if isinstance(answer, Exception):
            raise answer
        return answer


def offer(creator: JID, alt: JID, *, attrs: list[Any] = (), children: tuple[str, ...] = ()) -> Any:
    """whatsmeow's CallOffer as neonize encodes it (main.go: EncodeBasicCallMeta, EncodeNode)."""
    node = Node(
        Tag="offer",
        Attrs=[NodeAttrs(name="call-id", text="C1"), *attrs],
        Nodes=[Node(Tag=t, Nil=True) for t in ("audio", *children)],
    )
    meta = BasicCallMeta(
        timestamp=1_700_000_000, callCreator=creator, callCreatorAlt=alt, callID="C1"
    )
    return CallOfferEv(basicCallMeta=meta, data=node)


def test_a_call_offer_names_its_caller_and_kind() -> None:
    lid = jid(LID, server="lid")
    kind, fields, _ = convert.note_of(
        Store(), CallOfferEv, offer(lid, jid(STRANGER), children=("video", "net"))
    )
    assert kind == "call"
    assert fields == {
        "id": "C1",
        "caller": STRANGER,
        "caller_lid": f"{LID}@lid",
        "timestamp": 1_700_000_000.0,
        "video": True,
        "group": False,
    }
    # A LID creator without caller_pn: the store's map, else the LID itself.
    _, known, _ = convert.call_offer(Store({LID: STRANGER[1:]}), offer(lid, EMPTY))
    _, unknown, _ = convert.call_offer(Store(), offer(lid, EMPTY))
    assert (known["caller"], unknown["caller"], unknown["caller_lid"]) == (
        STRANGER,
        f"{LID}@lid",
        f"{LID}@lid",
    )
    group_jid = NodeAttrs(name="group-jid", jid=jid("1203630", server="g.us"))
    for call in (
        offer(lid, EMPTY, attrs=[NodeAttrs(name="type", text="group")]),
        offer(lid, EMPTY, attrs=[group_jid]),
        offer(lid, EMPTY, children=("group_info",)),
    ):
        _, fields, _ = convert.call_offer(Store(), call)
        assert fields["group"] and not fields["video"]


def test_jids_handed_to_go_carry_every_required_field() -> None:
    with pytest.raises(Exception, match="required fields"):
        JID(User="1", Server="lid").SerializeToString()
    assert JID.FromString(convert.make_jid("1", "lid", 3).SerializeToString()).Device == 3
    # A LID lookup serializes its JID as neonize does: it must not fail silently.
    assert convert.lid_for_phone(Store({LID: STRANGER[1:]}), jid(STRANGER)).User == LID


def test_the_contact_store_gets_the_sessions_go_key() -> None:
    """NewClient keys a resumed session (and its contact store) by jid.User; a store call
    under a key Go has no client for would dereference nil."""
    from neonize.client import NewClient

    client = NewClient("unused.db", jid=convert.make_jid("5511999990001", "s.whatsapp.net"))
    client._stop_finalizer.detach()
    assert client.contact.uuid == b"5511999990001"
    bind(client, "u1-aaa")
    assert (client.uuid, client.contact.uuid, client.chat_settings.uuid) == (b"u1-aaa",) * 3


def test_number_checks_read_whatsmeows_answer() -> None:
    verified = VerifiedName()
    verified.Details.verifiedName = "Padaria"
    answers = [
        IsOnWhatsAppResponse(Query="+5511999990077", JID=jid(LID, server="lid"), IsIn=True),
        IsOnWhatsAppResponse(Query="+5511999990002", JID=jid("+5511999990002"), IsIn=True),
        IsOnWhatsAppResponse(Query="+5511999990088", JID=jid("+5511999990088"), IsIn=False),
    ]
    answers[1].VerifiedName.CopyFrom(verified)
    client = Store({"999": "5511999990002"}, on_whatsapp=answers)
    phones = ["+5511999990088", "+5511999990002", "+5511999990077", "+5511999990099"]
    checks = contacts.check_numbers(client, phones)
    assert [(c["phone"], c["on_whatsapp"]) for c in checks] == [
        ("+5511999990088", False),
        ("+5511999990002", True),
        ("+5511999990077", True),
        ("+5511999990099", False),  # not in the answer at all
    ]
    business, stranger = checks[1], checks[2]
    assert (business["jid"], business["lid"], business["business"]) == (
        "5511999990002@s.whatsapp.net",
        "999@lid",
        True,
    )
    assert (stranger["jid"], stranger["lid"], stranger["business"]) == (
        "5511999990077@s.whatsapp.net",
        f"{LID}@lid",
        False,
    )
    nothing = Store(on_whatsapp=IsOnWhatsAppError(contacts.NOTHING_RETURNED))
    assert [c["on_whatsapp"] for c in contacts.check_numbers(nothing, ["+5511999990077"])] == [
        False
    ]
    with pytest.raises(IsOnWhatsAppError):
        contacts.check_numbers(Store(on_whatsapp=IsOnWhatsAppError("timed out")), ["+551199"])


def test_a_picture_not_there_for_this_account_is_no_url() -> None:
    def refused(error: str) -> GetProfilePictureError:
        # neonize raises it with the whole return protobuf (client.get_profile_picture).
        return GetProfilePictureError(GetProfilePictureReturnFunction(Error=error))

    target = jid(STRANGER)
    for error in (contacts.PICTURE_NOT_SET, contacts.PICTURE_HIDDEN):
        assert contacts.picture_url(Store(picture=refused(error)), target) is None
    with pytest.raises(RuntimeError, match="rate-overlimit"):
        contacts.picture_url(Store(picture=refused("info query returned rate-overlimit")), target)
    shown = ProfilePictureInfo(URL="https://pps.whatsapp.net/v/x.jpg", ID="1", Type="image")
    assert contacts.picture_url(Store(picture=shown), target) == "https://pps.whatsapp.net/v/x.jpg"


# -- through the fake WhatsApp, a host process and neonize's own wrappers -------------------
async def test_profiles_by_lid_hidden_pictures_and_push_names(linked: Any) -> None:
    engine, _, net = linked
    await asyncio.to_thread(
        lambda: net.set_profile(STRANGER, about="Oi", picture_hidden=True, push_name="Ana")
    )
    lid = await asyncio.to_thread(net.lid_of, STRANGER)
    hidden = await engine.contact_profile(lid)
    assert (hidden.address, hidden.lid, hidden.about, hidden.picture_url) == (
        STRANGER,
        lid,
        "Oi",
        None,
    )
    assert hidden.push_name is None  # whatsmeow learns push names from messages only
    said = message_event("M1", source(jid(STRANGER), jid(STRANGER)), _text("olá"))
    said.Info.Pushname = "Ana"
    await asyncio.to_thread(net.push, PHONE_A, said)
    await asyncio.sleep(0.2)
    assert (await engine.contact_profile(STRANGER)).push_name == "Ana"
    # A push name alone is not an address book entry: the phone never saved that contact.
    assert await engine.address_book() == []
    await asyncio.to_thread(net.phone_save_contact, PHONE_A, STRANGER, "Ana Souza")
    (entry,) = await engine.address_book()
    assert (entry.address, entry.name, entry.push_name, entry.lid) == (
        STRANGER,
        "Ana Souza",
        "Ana",
        lid,
    )


async def test_the_address_book_syncs_after_linking(tmp_path: Any, network: FakeWhatsApp) -> None:
    """Saved before this device was linked: whatsmeow's full app-state sync brings it."""
    from tests.unit.test_whatsmeow import link, make

    await asyncio.to_thread(network.phone_save_contact, PHONE_A, STRANGER, "Ana")
    engine, rec = make(tmp_path, network.config())
    engine.probe_target = None
    try:
        await link(engine, rec, network, PHONE_A)
        assert [(e.address, e.name) for e in await engine.address_book()] == [(STRANGER, "Ana")]
    finally:
        await engine.stop()
        await engine.runtime.aclose()


async def test_calls_by_lid_blocked_callers_and_rejecting(linked: Any) -> None:
    engine, rec, net = linked

    def calls() -> list[CallReceived]:
        return [e for e in rec.events if isinstance(e, CallReceived)]

    await asyncio.to_thread(lambda: net.address_by_lid(STRANGER, share_phone=False))
    call_id = await asyncio.to_thread(lambda: net.phone_call(STRANGER, PHONE_A))
    await wait_for(lambda: bool(calls()), what="a ringing call")
    lid = await asyncio.to_thread(net.lid_of, STRANGER)
    (call,) = calls()
    assert (call.id, call.caller, call.caller_lid, call.video) == (call_id, lid, lid, False)
    await engine.reject_call(call_id=call.id, caller=call.caller)
    await wait_for(lambda: bool(net.phone_log(STRANGER)), what="the rejection")
    assert net.phone_log(STRANGER) == [{"type": "call_rejected", "id": call_id, "from": PHONE_A}]

    await engine.set_blocked(lid, True)
    assert (await engine.contact_profile(STRANGER)).blocked
    await asyncio.to_thread(lambda: net.phone_call(STRANGER, PHONE_A, video=True))
    await asyncio.sleep(0.3)
    assert len(calls()) == 1
    # What this account sends to someone it blocked is taken, and never delivered.
    await engine.set_blocked(lid, False)
    await asyncio.to_thread(lambda: net.blocked.setdefault(STRANGER, set()).add(PHONE_A))
    await engine.send_text(message_id="m-1", to=STRANGER, text="hello?")
    await asyncio.sleep(0.3)
    assert net.inboxes.get(STRANGER) is None


def _text(body: str) -> Any:
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

    return Message(conversation=body)
