"""The simulated phone plays the other side through `/v1/sim` (issue 9), against a real
`zapgate serve`: it replies, mentions, sends a location, contacts and a poll, reacts,
edits, deletes, votes and shows its presence; the session's own phone writes to someone.
Each reaches a loopback webhook receiver as the right event, exactly once; bad input is a
4xx in the usual shape, and another account's numbers do not exist for the caller."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import Api, make_user, messaging_env
from tests.api.test_errors import assert_error
from tests.api.test_events import link
from tests.api.test_messages import events, message, sent
from tests.conftest import ZapgateProcess, base_env, free_port, wait_until
from tests.receiver import Receiver

PS = "+5511999994001"  # the session's number
PX = "+5511988884002"  # a simulated phone nobody linked
PB = "+5511999994003"  # another account's session


class Gw:
    def __init__(self, proc: ZapgateProcess, alice: Api, bob: Api) -> None:
        self.proc, self.alice, self.bob = proc, alice, bob


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Gw]:
    tmp: Path = tmp_path_factory.mktemp("simphone")
    env, port = messaging_env(tmp)
    _, key = make_user(env, "phone-alice@example.com")
    _, other = make_user(env, "phone-bob@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp / "serve.log").start()
    alice, bob = Api(proc.url, key), Api(proc.url, other)
    try:
        alice.subscribe(receiver)
        link(alice, "s", PS)
        link(bob, "bobs", PB)
        yield Gw(proc, alice, bob)
    finally:
        proc.stop()


def phone(api: Api, action: str, body: dict[str, Any], sender: str = PX) -> dict[str, Any]:
    r = api.post(f"/v1/sim/phones/{quote(sender)}/{action}", json=body)
    assert r.status_code in (200, 201), r.text
    out: dict[str, Any] = r.json()
    return out


def once(receiver: Receiver, type_: str, match: Any) -> dict[str, Any]:
    """The one event of `type_` at session s that `match` picks (waits for it; a second
    one fails)."""
    found = wait_until(
        lambda: [e for e in events(receiver, "s", type_) if match(e)], what=f"{type_}"
    )
    assert len(found) == 1, found
    return found[0]  # type: ignore[no-any-return]


def settle(receiver: Receiver, type_: str, match: Any, count: int) -> list[dict[str, Any]]:
    """Exactly `count` events of `type_` that `match` picks, after deliveries settle."""
    wait_until(
        lambda: len([e for e in events(receiver, "s", type_) if match(e)]) >= count,
        what=f"{count} x {type_}",
    )
    time.sleep(1.0)  # a duplicate would have come by now
    got = [e for e in events(receiver, "s", type_) if match(e)]
    assert len(got) == count, got
    return got


def test_a_phone_votes_and_its_new_vote_replaces_the_first(gw: Gw, receiver: Receiver) -> None:
    poll = {"question": "Lunch?", "options": ["pizza", "sushi"], "max_selections": 1}
    asked = sent(gw.alice, "s", {"to": PX, "poll": poll})
    out = phone(gw.alice, "votes", {"to": PS, "poll_id": asked["id"], "options": ["pizza"]})
    assert out == {"poll_id": asked["wa_id"], "options": ["pizza"]}
    first = once(receiver, "poll.vote", lambda e: e["message_id"] == asked["id"])
    assert first["from"] == PX and first["selected"] == ["pizza"]
    assert first["tally"] == {"pizza": 1, "sushi": 0}
    # By WhatsApp's id too; the new vote replaces the first.
    phone(gw.alice, "votes", {"to": PS, "poll_id": asked["wa_id"], "options": ["sushi"]})
    votes = settle(receiver, "poll.vote", lambda e: e["message_id"] == asked["id"], 2)
    assert votes[1]["tally"] == {"pizza": 0, "sushi": 1}
    assert message(gw.alice, "s", asked["id"])["poll"]["tally"] == {  # type: ignore[index]
        "pizza": 0,
        "sushi": 1,
    }
    # An option the poll does not have, two of a one-choice poll, a message that is no
    # poll, a poll that does not exist.
    text = sent(gw.alice, "s", {"to": PX, "text": "not a poll"})
    for body, status in [
        ({"poll_id": asked["id"], "options": ["tacos"]}, 422),
        ({"poll_id": asked["id"], "options": ["pizza", "sushi"]}, 422),
        ({"poll_id": text["id"], "options": ["pizza"]}, 422),
        ({"poll_id": "NOPE", "options": ["pizza"]}, 404),
        ({"poll_id": asked["id"], "options": "pizza"}, 422),
    ]:
        r = gw.alice.post(f"/v1/sim/phones/{quote(PX)}/votes", json={"to": PS, **body})
        assert_error(r, status)
    settle(receiver, "poll.vote", lambda e: e["message_id"] == asked["id"], 2)
    # A poll the session has not sent yet is not the phone's to see.
    later = gw.alice.post(
        "/v1/sessions/s/messages", json={"to": PX, "poll": poll, "typing_ms": 3000}
    ).json()
    r = gw.alice.post(
        f"/v1/sim/phones/{quote(PX)}/votes",
        json={"to": PS, "poll_id": later["id"], "options": ["pizza"]},
    )
    assert "not sent yet" in assert_error(r, 409, "message_action_refused")["error"]


def test_the_sessions_own_phone_writes_message_sent_once(gw: Gw, receiver: Receiver) -> None:
    out = phone(gw.alice, "own-messages", {"to": PX, "text": "from my phone"}, sender=PS)
    event = once(receiver, "message.sent", lambda e: e["wa_id"] == out["id"])
    assert event["from_me"] is True and event["direction"] == "out" and event["chat"] == PX
    assert event["text"] == "from my phone"
    listed = [
        m
        for m in gw.alice.get("/v1/sessions/s/messages", params={"limit": 200}).json()["items"]
        if m["wa_id"] == out["id"]
    ]
    assert len(listed) == 1, listed
    assert listed[0]["direction"] == "out" and listed[0]["from_me"] is True
    # Only a number linked to the caller's session has an own phone here; it only writes
    # to numbers no other account has linked.
    r = gw.alice.post(f"/v1/sim/phones/{quote(PX)}/own-messages", json={"to": PS, "text": "x"})
    assert_error(r, 404, "number_not_linked")
    r = gw.alice.post(f"/v1/sim/phones/{quote(PS)}/own-messages", json={"to": PB, "text": "x"})
    assert_error(r, 404, "phone_not_yours")
    r = gw.alice.post(f"/v1/sim/phones/{quote(PS)}/own-messages", json={"to": PX, "text": ""})
    assert_error(r, 422)


def test_a_phone_reacts_edits_and_deletes(gw: Gw, receiver: Receiver) -> None:
    mine = sent(gw.alice, "s", {"to": PX, "text": "react to me"})
    phone(gw.alice, "reactions", {"to": PS, "message_id": mine["id"], "emoji": "👍"})
    reaction = once(receiver, "message.reaction", lambda e: e["message_id"] == mine["id"])
    assert reaction["from"] == PX and reaction["emoji"] == "👍"
    wait_until(
        lambda: (
            message(gw.alice, "s", mine["id"])["reactions"]  # type: ignore[index]
            == [{"sender": PX, "emoji": "👍"}]
        ),
        what="the reaction on the message",
    )
    for emoji in ("ok", "👍 nice"):
        r = gw.alice.post(
            f"/v1/sim/phones/{quote(PX)}/reactions",
            json={"to": PS, "message_id": mine["id"], "emoji": emoji},
        )
        assert_error(r, 422, "invalid_emoji")

    written = phone(gw.alice, "messages", {"to": PS, "text": "helo"})
    wait_until(lambda: message(gw.alice, "s", written["id"]), what="the phone's message")
    phone(gw.alice, "edits", {"to": PS, "message_id": written["id"], "text": "hello"})
    edited = once(receiver, "message.edited", lambda e: e["id"] == written["id"])
    assert edited["text"] == "hello"
    # Only its author edits or deletes a message.
    r = gw.alice.post(
        f"/v1/sim/phones/{quote(PX)}/edits",
        json={"to": PS, "message_id": mine["id"], "text": "mine now"},
    )
    assert "only its sender" in assert_error(r, 422)["error"]
    r = gw.alice.post(
        f"/v1/sim/phones/{quote(PX)}/revokes", json={"to": PS, "message_id": mine["id"]}
    )
    assert_error(r, 422)
    phone(gw.alice, "revokes", {"to": PS, "message_id": written["id"]})
    once(receiver, "message.revoked", lambda e: e["id"] == written["id"])
    wait_until(
        lambda: message(gw.alice, "s", written["id"])["revoked"],  # type: ignore[index]
        what="the delete",
    )
    r = gw.alice.post(f"/v1/sim/phones/{quote(PX)}/edits", json={"to": PS, "message_id": "NOPE"})
    assert_error(r, 422)
    r = gw.alice.post(f"/v1/sim/phones/{quote(PX)}/revokes", json={"to": PS, "message_id": "NOPE"})
    assert_error(r, 404)


def test_a_phones_presence(gw: Gw, receiver: Receiver) -> None:
    out = phone(gw.alice, "presence", {"to": PS, "state": "typing"}, sender="+5511988884010")
    assert out == {"to": PS, "state": "typing"}
    seen = once(receiver, "presence.update", lambda e: e["from"] == "+5511988884010")
    assert seen["state"] == "typing"
    r = gw.alice.post(f"/v1/sim/phones/{quote(PX)}/presence", json={"to": PS, "state": "dance"})
    assert_error(r, 422)


def test_a_phones_reply_mentions_location_contacts_and_poll(gw: Gw, receiver: Receiver) -> None:
    asked = sent(gw.alice, "s", {"to": PX, "text": "question?"})
    reply = phone(
        gw.alice,
        "messages",
        {"to": PS, "text": "@5511999994001 answer", "reply_to": asked["id"], "mentions": [PS]},
    )
    got = once(receiver, "message.received", lambda e: e["id"] == reply["id"])
    assert got["reply_to"]["id"] == asked["id"] and got["reply_to"]["wa_id"] == asked["wa_id"]
    assert got["reply_to"]["text"] == "question?" and got["mentions"] == [PS]
    pin = {"latitude": -22.9, "longitude": -43.2, "name": "Rio"}
    loc = phone(gw.alice, "messages", {"to": PS, "location": pin})
    assert once(receiver, "message.received", lambda e: e["id"] == loc["id"])["location"][
        "name"
    ] == ("Rio")
    card = {"name": "Ana", "phone": "+5511999990055"}
    cards = phone(gw.alice, "messages", {"to": PS, "contacts": [card]})
    got = once(receiver, "message.received", lambda e: e["id"] == cards["id"])
    assert got["contacts"][0]["phone"] == "+5511999990055"
    poll = phone(gw.alice, "messages", {"to": PS, "poll": {"question": "?", "options": ["a", "b"]}})
    at_s = wait_until(lambda: message(gw.alice, "s", poll["id"]), what="the phone's poll")
    assert at_s["kind"] == "poll" and at_s["poll"]["options"] == ["a", "b"]
    for body, status in [
        ({"text": "x", "reply_to": "NOPE"}, 404),
        ({"location": {"latitude": 91, "longitude": 0}}, 422),
        ({"location": pin, "text": "hi"}, 422),
        ({"location": pin, "poll": {"question": "?", "options": ["a", "b"]}}, 422),
        ({"poll": {"question": "?", "options": ["a"]}}, 422),
        ({"contacts": []}, 422),
        ({"text": None}, 422),
        ({"text": "x", "mentions": ["not a phone"]}, 422),
    ]:
        r = gw.alice.post(f"/v1/sim/phones/{quote(PX)}/messages", json={"to": PS, **body})
        assert_error(r, status)


def test_a_phones_log_shows_only_the_callers_numbers(gw: Gw) -> None:
    written = phone(gw.alice, "messages", {"to": PS, "text": "like this"})
    wait_until(lambda: message(gw.alice, "s", written["id"]), what="the phone's message")
    r = gw.alice.post(f"/v1/sessions/s/messages/{written['id']}/reaction", json={"emoji": "🎉"})
    assert r.status_code == 200, r.text
    r = gw.alice.post(f"/v1/sessions/s/chats/{quote(PX)}/presence", json={"state": "paused"})
    assert r.status_code == 200, r.text
    log = gw.alice.get(f"/v1/sim/phones/{quote(PX)}/log")
    assert log.status_code == 200, log.text
    items = log.json()["items"]
    assert {"type": "reaction", "from": PS, "id": written["id"], "emoji": "🎉"}.items() <= next(
        e for e in items if e["type"] == "reaction" and e["id"] == written["id"]
    ).items()
    assert any(e["type"] == "presence" and e["state"] == "paused" for e in items)
    # Bob reads the same phone's log: nothing his numbers did, so nothing.
    assert gw.bob.get(f"/v1/sim/phones/{quote(PX)}/log").json() == {"items": []}
    assert_error(gw.bob.get(f"/v1/sim/phones/{quote(PS)}/log"), 404, "phone_not_yours")
    assert_error(gw.alice.get("/v1/sim/phones/abc/log"), 422, "invalid_phone")


def test_another_accounts_chats_are_not_found(gw: Gw, receiver: Receiver) -> None:
    mine = sent(gw.alice, "s", {"to": PX, "text": "private"})
    bob = gw.bob
    attempts = [
        ("reactions", {"to": PS, "message_id": mine["id"], "emoji": "👍"}, PX),
        ("edits", {"to": PS, "message_id": mine["id"], "text": "x"}, PX),
        ("revokes", {"to": PS, "message_id": mine["id"]}, PX),
        ("votes", {"to": PS, "poll_id": mine["id"], "options": []}, PX),
        ("presence", {"to": PS, "state": "typing"}, PX),
        ("messages", {"to": PS, "text": "x", "reply_to": mine["id"]}, PX),
        ("own-messages", {"to": PX, "text": "x"}, PS),
        # From Alice's number into Bob's own chat: still not his number.
        ("presence", {"to": PB, "state": "typing"}, PS),
    ]
    for action, body, sender in attempts:
        r = bob.post(f"/v1/sim/phones/{quote(sender)}/{action}", json=body)
        body_out = assert_error(r, 404)
        assert body_out["errcode"] in {"number_not_linked", "phone_not_yours"}, body_out
        assert mine["wa_id"] not in r.text
    untouched = message(gw.alice, "s", mine["id"])
    assert untouched is not None and untouched["reactions"] == [] and not untouched["revoked"]


def test_every_phone_action_crosses_a_worker_process(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The shared topology: the web tier reaches the simulated network through the
    worker's internal HTTP API (a phone number with its '+' in the path)."""
    token = "worker-token-Hx3Lq8Vn2Ps6Td9Rb4Kw7Zm"
    wport, port = free_port(), free_port()
    spawn(
        ["worker", "--port", str(wport)],
        base_env(tmp_path / "worker", ZAPGATE_WORKER_TOKEN=token),
        wport,
        name="worker",
    ).start()
    env = base_env(
        tmp_path / "web",
        ZAPGATE_TOPOLOGY="shared",
        ZAPGATE_PORT=str(port),
        ZAPGATE_WORKER_URL=f"http://127.0.0.1:{wport}",
        ZAPGATE_WORKER_TOKEN=token,
        ZAPGATE_SEND_RATE="off",
    )
    _, key = make_user(env, "split-phone@example.com")
    api = Api(spawn(["web"], env, port, name="web").start().url, key)
    link(api, "s", PS)
    poll = {"question": "?", "options": ["a", "b"]}
    asked = sent(api, "s", {"to": PX, "poll": poll})
    reply = phone(
        api,
        "messages",
        {"to": PS, "text": "@5511999994001 a", "reply_to": asked["id"], "mentions": [PS]},
    )
    got = wait_until(lambda: message(api, "s", reply["id"]), what="the reply")
    assert got["reply_to"]["id"] == asked["id"] and got["mentions"] == [PS]
    phone(api, "votes", {"to": PS, "poll_id": asked["id"], "options": ["b"]})
    wait_until(
        lambda: message(api, "s", asked["id"])["poll"]["tally"] == {"a": 0, "b": 1},  # type: ignore[index]
        what="the vote",
    )
    phone(api, "reactions", {"to": PS, "message_id": asked["id"], "emoji": "👍"})
    phone(api, "edits", {"to": PS, "message_id": reply["id"], "text": "b"})
    phone(api, "revokes", {"to": PS, "message_id": reply["id"]})
    wait_until(
        lambda: (
            message(api, "s", reply["id"])["revoked"]  # type: ignore[index]
            and message(api, "s", asked["id"])["reactions"]
        ),  # type: ignore[index]
        what="the reaction and the delete",
    )
    assert phone(api, "presence", {"to": PS, "state": "paused"}) == {"to": PS, "state": "paused"}
    own = phone(api, "own-messages", {"to": PX, "text": "mine"}, sender=PS)
    mine = wait_until(lambda: message(api, "s", own["id"]), what="the own message")
    assert mine["from_me"] is True and mine["direction"] == "out"
    r = api.post(f"/v1/sessions/s/chats/{quote(PX)}/presence", json={"state": "typing"})
    assert r.status_code == 200, r.text
    log = api.get(f"/v1/sim/phones/{quote(PX)}/log").json()["items"]
    assert [(e["type"], e["state"]) for e in log if e["type"] == "presence"] == [
        ("presence", "typing")
    ]
    r = api.post(
        f"/v1/sim/phones/{quote(PX)}/votes",
        json={"to": PS, "poll_id": asked["id"], "options": ["z"]},
    )
    assert_error(r, 422)
