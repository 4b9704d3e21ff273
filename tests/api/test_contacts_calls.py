"""Contacts and calls (issue 10) through a real `zapgate serve` on the sim engine: number
checks and their cache, profiles, blocking, the address book, calls reported once at a
loopback webhook receiver, rejected through the API or as they ring (with the session's
reply reaching the caller), and user B never seeing or touching user A's contacts or
calls.

Alice's session `a` is linked to PA, `c` to PC (a phone that calls `a` and reads the
reply); Bob's session `b` to PB. The simulated phones PS, PT and PU are nobody's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import Api, make_user
from tests.api.test_errors import assert_error
from tests.api.test_events import link
from tests.api.test_messages import message
from tests.conftest import ZapgateProcess, base_env, free_port, wait_until
from tests.receiver import Receiver

PA = "+5511999995001"
PB = "+5511999995002"
PC = "+5511999995003"
PS = "+5511999995071"
PT = "+5511999995072"
PU = "+5511999995073"
PV = "+5511999995074"
OFF = "+5511999995099"


@dataclass
class Gw:
    alice: Api
    bob: Api
    hooks: Receiver


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gw]:
    tmp: Path = tmp_path_factory.mktemp("contacts")
    port = free_port()
    env = base_env(
        tmp / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_SEND_RATE="off",
        ZAPGATE_ALLOW_PRIVATE_URLS="true",
        ZAPGATE_WEBHOOK_BACKOFF_BASE="0.2",
    )
    _, alice_key = make_user(env, "alice@example.com")
    _, bob_key = make_user(env, "bob@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp / "serve.log").start()
    hooks = Receiver().start()
    try:
        alice, bob = Api(proc.url, alice_key), Api(proc.url, bob_key)
        for api in (alice, bob):
            hook = {"url": hooks.url(f"/{id(api)}"), "events": ["call.received"]}
            r = api.post("/v1/webhooks", json=hook)
            assert r.status_code == 201, r.text
        link(alice, "a", PA)
        link(alice, "c", PC)
        link(bob, "b", PB)
        yield Gw(alice=alice, bob=bob, hooks=hooks)
    finally:
        hooks.stop()
        proc.stop()


def events(gw: Gw, api: Api, type_: str) -> list[dict[str, Any]]:
    return [
        {**x.json["data"], "session": x.json["session"]}
        for x in gw.hooks.got(f"/{id(api)}")
        if x.json["type"] == type_
    ]


def check(api: Api, name: str, phones: list[str]) -> list[dict[str, Any]]:
    r = api.post(f"/v1/sessions/{name}/contacts/check", json={"phones": phones})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def test_a_check_answers_each_number_once_and_caches_it(gw: Gw) -> None:
    api = gw.alice
    assert api.post(f"/v1/sim/phones/{quote(OFF)}/off-whatsapp").json() == {"phone": OFF}
    r = api.put(f"/v1/sim/phones/{quote(PS)}/profile", json={"business": True})
    assert r.status_code == 200, r.text
    assert api.put("/v1/sessions/a", json={"default_country": "BR"}).status_code == 200
    # National, E.164 and JID-less repeats of PS are one number, answered once.
    items = check(api, "a", [PS, OFF, "(11) 99999-5071", PT])
    assert [(i["phone"], i["on_whatsapp"], i["cached"]) for i in items] == [
        (PS, True, False),
        (OFF, False, False),
        (PT, True, False),
    ]
    ps, off, _ = items
    assert ps["jid"] == "5511999995071@s.whatsapp.net" and ps["lid"].endswith("@lid")
    assert ps["business"] and ps["checked_at"]
    assert (off["jid"], off["lid"], off["business"]) == (None, None, False)

    # Now PS leaves WhatsApp: the cached answer is given without asking again.
    assert api.post(f"/v1/sim/phones/{quote(PS)}/off-whatsapp").status_code == 200
    again = check(api, "a", [PS, PU])
    assert [(i["phone"], i["on_whatsapp"], i["cached"]) for i in again] == [
        (PS, True, True),
        (PU, True, False),
    ]
    assert again[0]["checked_at"] == ps["checked_at"] and again[0]["lid"] == ps["lid"]
    # Another session (of another user) has its own answers.
    (at_b,) = check(gw.bob, "b", [PS])
    assert (at_b["on_whatsapp"], at_b["cached"]) == (False, False)


def test_bad_checks(gw: Gw) -> None:
    api = gw.alice
    phones = [f"+55119{i:08d}" for i in range(501)]
    assert_error(api.post("/v1/sessions/a/contacts/check", json={"phones": phones}), 422)
    assert_error(api.post("/v1/sessions/a/contacts/check", json={"phones": []}), 422)
    assert_error(api.post("/v1/sessions/a/contacts/check", json={}), 422)
    bad = assert_error(
        api.post("/v1/sessions/a/contacts/check", json={"phones": [PS, "12ab"]}),
        422,
        "invalid_phone",
    )
    assert "12ab" in bad["error"]
    pt = api.post(
        "/v1/sessions/a/contacts/check",
        json={"phones": ["12ab"]},
        headers={"Accept-Language": "pt-BR"},
    )
    assert "não é um número de telefone" in assert_error(pt, 422, "invalid_phone")["error"]
    assert_error(
        api.post("/v1/sessions/nope/contacts/check", json={"phones": [PS]}),
        404,
        "session_not_found",
    )


def test_a_contacts_profile(gw: Gw) -> None:
    api = gw.alice
    r = api.put(
        f"/v1/sim/phones/{quote(PT)}/profile",
        json={"push_name": "Tânia", "about": "Disponível", "picture": True},
    )
    assert r.status_code == 200, r.text
    profile = api.get(f"/v1/sessions/a/contacts/{quote(PT)}").json()
    assert (profile["phone"], profile["jid"]) == (PT, "5511999995072@s.whatsapp.net")
    assert (profile["push_name"], profile["about"], profile["business"]) == (
        "Tânia",
        "Disponível",
        False,
    )
    assert profile["picture_url"].startswith("https://") and not profile["blocked"]
    assert profile["lid"].endswith("@lid")
    assert_error(api.get("/v1/sessions/a/contacts/abc"), 422, "invalid_phone")
    assert_error(api.get("/v1/sessions/a/contacts/x%40example.com"), 422, "invalid_lid")


def test_a_blocked_contact_no_longer_reaches_the_session(gw: Gw) -> None:
    api = gw.alice
    r = api.post(f"/v1/sessions/a/contacts/{quote(PU)}/block")
    assert r.status_code == 200, r.text
    assert r.json() == {"phone": PU, "jid": "5511999995073@s.whatsapp.net", "blocked": True}
    assert api.get(f"/v1/sessions/a/contacts/{quote(PU)}").json()["blocked"]
    dropped = api.post(f"/v1/sim/phones/{quote(PU)}/messages", json={"to": PA, "text": "oi?"})
    assert dropped.status_code == 201, dropped.text
    time.sleep(1.0)
    assert message(api, "a", dropped.json()["id"]) is None

    r = api.post(f"/v1/sessions/a/contacts/{quote(PU)}/unblock")
    assert r.status_code == 200 and not r.json()["blocked"]
    sent = api.post(f"/v1/sim/phones/{quote(PU)}/messages", json={"to": PA, "text": "agora?"})
    wait_until(lambda: message(api, "a", sent.json()["id"]), what="a message after unblocking")
    assert message(api, "a", dropped.json()["id"]) is None


def test_the_address_book_by_name_in_pages(gw: Gw) -> None:
    api = gw.alice
    # PS is off WhatsApp (the first test): a sync leaves it out.
    for phone, name in ((PT, "bruno"), (PU, "Ana"), (PS, "Sérgio"), (PV, "Carla")):
        r = api.post(f"/v1/sim/phones/{quote(PA)}/contacts", json={"phone": phone, "name": name})
        assert r.status_code == 200, r.text

    def book(**params: Any) -> dict[str, Any]:
        r = api.get("/v1/sessions/a/contacts", params=params)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    wait_until(lambda: len(book()["items"]) == 3, what="the synced address book")
    first = book(limit=2)
    assert [(e["name"], e["phone"]) for e in first["items"]] == [("Ana", PU), ("bruno", PT)]
    assert first["items"][0]["jid"] == "5511999995073@s.whatsapp.net"
    assert first["items"][1]["push_name"] == "Tânia" and first["items"][1]["lid"]
    rest = book(limit=2, after=first["next"])
    assert [e["name"] for e in rest["items"]] == ["Carla"] and rest["next"] is None
    assert_error(api.get("/v1/sessions/a/contacts", params={"after": "nonsense!"}), 422)
    assert_error(api.get("/v1/sessions/a/contacts", params={"limit": 0}), 422)


def test_a_call_is_reported_once_and_rejected(gw: Gw) -> None:
    api = gw.alice
    r = api.post(f"/v1/sim/phones/{quote(PT)}/calls", json={"to": PA, "video": True})
    assert r.status_code == 201, r.text
    call_id = r.json()["id"]
    wait_until(
        lambda: [e for e in events(gw, api, "call.received") if e["id"] == call_id],
        what="call.received",
    )
    assert_error(api.post("/v1/sessions/a/calls/NOPE/reject"), 404, "call_not_found")
    rejected = api.post(f"/v1/sessions/a/calls/{call_id}/reject")
    assert rejected.status_code == 200, rejected.text
    call = rejected.json()
    assert (call["id"], call["from"], call["phone"], call["video"], call["group"]) == (
        call_id,
        PT,
        PT,
        True,
        False,
    )
    assert call["rejected_at"] and not call["auto_rejected"]
    again = api.post(f"/v1/sessions/a/calls/{call_id}/reject")
    assert again.json() == call
    log = wait_until(
        lambda: [
            e
            for e in api.get(f"/v1/sim/phones/{quote(PT)}/log").json()["items"]
            if e["type"] == "call_rejected"
        ],
        what="the rejection in the caller's log",
    )
    assert [(e["id"], e["from"]) for e in log] == [(call_id, PA)]
    time.sleep(0.5)
    received = [e for e in events(gw, api, "call.received") if e["id"] == call_id]
    assert received == [
        {
            "session": "a",
            "id": call_id,
            "from": PT,
            "phone": PT,
            "jid": "5511999995072@s.whatsapp.net",
            "lid": received[0]["lid"],
            "video": True,
            "group": False,
            "auto_rejected": False,
            "timestamp": received[0]["timestamp"],
        }
    ]
    assert received[0]["lid"].endswith("@lid")


def test_calls_rejected_as_they_ring_get_the_sessions_reply(gw: Gw) -> None:
    api = gw.alice
    long = api.put("/v1/sessions/a", json={"reject_calls_message": "x" * 1001})
    assert_error(long, 422)
    r = api.put(
        "/v1/sessions/a", json={"reject_calls": True, "reject_calls_message": "Só texto, por favor"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["reject_calls"], r.json()["reject_calls_message"]) == (
        True,
        "Só texto, por favor",
    )
    # Either setting alone keeps the other.
    assert api.put("/v1/sessions/a", json={"send_rate": "off"}).json()["reject_calls"]
    assert api.get("/v1/sessions/c").json()["reject_calls"] is False

    call_id = api.post(f"/v1/sim/phones/{quote(PC)}/calls", json={"to": PA}).json()["id"]
    (event,) = wait_until(
        lambda: [e for e in events(gw, api, "call.received") if e["id"] == call_id],
        what="call.received",
    )
    assert (event["from"], event["auto_rejected"], event["video"]) == (PC, True, False)
    wait_until(
        lambda: [
            e
            for e in api.get(f"/v1/sim/phones/{quote(PC)}/log").json()["items"]
            if e["type"] == "call_rejected" and e["id"] == call_id
        ],
        what="the automatic rejection in the caller's log",
    )
    reply = wait_until(
        lambda: [
            m
            for m in api.get("/v1/sessions/c/messages", params={"direction": "in"}).json()["items"]
            if m["text"] == "Só texto, por favor"
        ],
        what="the reply in the caller's inbox",
    )
    assert len(reply) == 1 and reply[0]["chat"] == PA
    # Rejected already: rejecting it again through the API changes nothing.
    call = api.post(f"/v1/sessions/a/calls/{call_id}/reject").json()
    assert call["auto_rejected"] and call["rejected_at"]
    time.sleep(0.5)
    assert len([e for e in events(gw, api, "call.received") if e["id"] == call_id]) == 1
    sent = [
        m
        for m in api.get("/v1/sessions/a/messages", params={"direction": "out"}).json()["items"]
        if m["text"] == "Só texto, por favor"
    ]
    assert len(sent) == 1
    off = api.put("/v1/sessions/a", json={"reject_calls": False})
    assert off.json()["reject_calls_message"] == "Só texto, por favor"


def test_another_user_never_sees_or_touches_them(gw: Gw) -> None:
    alice, bob = gw.alice, gw.bob
    call_id = alice.post(f"/v1/sim/phones/{quote(PV)}/calls", json={"to": PA}).json()["id"]
    wait_until(
        lambda: [e for e in events(gw, alice, "call.received") if e["id"] == call_id],
        what="call.received",
    )
    for r in (
        bob.post("/v1/sessions/a/contacts/check", json={"phones": [PS]}),
        bob.get("/v1/sessions/a/contacts"),
        bob.get(f"/v1/sessions/a/contacts/{quote(PS)}"),
        bob.post(f"/v1/sessions/a/contacts/{quote(PS)}/block"),
        bob.post(f"/v1/sessions/a/contacts/{quote(PS)}/unblock"),
        bob.post(f"/v1/sessions/a/calls/{call_id}/reject"),
    ):
        assert_error(r, 404, "session_not_found")
    # Alice's call id at Bob's own session is not his.
    assert_error(bob.post(f"/v1/sessions/b/calls/{call_id}/reject"), 404, "call_not_found")
    # Bob's phones cannot call Alice's number, nor save contacts on it.
    assert_error(bob.post(f"/v1/sim/phones/{quote(PT)}/calls", json={"to": PA}), 404)
    assert_error(
        bob.post(f"/v1/sim/phones/{quote(PA)}/contacts", json={"phone": PT, "name": "x"}), 404
    )
    # Alice's linked numbers are not Bob's simulated phones.
    assert_error(bob.post(f"/v1/sim/phones/{quote(PA)}/off-whatsapp"), 404, "phone_not_yours")
    assert_error(bob.put(f"/v1/sim/phones/{quote(PC)}/profile", json={}), 404, "phone_not_yours")
    # The call is still ringing for Alice: Bob's attempts left it alone.
    assert alice.post(f"/v1/sessions/a/calls/{call_id}/reject").json()["rejected_at"]
    assert events(gw, bob, "call.received") == []
    assert bob.get("/v1/sessions/b/contacts").json()["items"] == []
