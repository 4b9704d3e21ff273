"""Messages beyond text through a real `zapgate serve` (issue 9): replies, mentions,
locations, contacts, polls, stickers and voice notes; reactions, edits, deletes, read
receipts, presence and chats; each with its bad inputs, another tenant's 404, and the
events a loopback webhook receives exactly once.

Two sessions of one user, linked to two simulated numbers, write to each other: what
session `a` does reaches session `b` as WhatsApp events."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import Api, make_user, messaging_env
from tests.api.test_errors import assert_error
from tests.api.test_events import link
from tests.conftest import ZapgateProcess, wait_until
from tests.media_samples import png_bytes, webp_bytes
from tests.receiver import Receiver

PA = "+5511999993001"
PB = "+5511999993002"
OPUS = b"OggS" + bytes(24) + b"OpusHead" + bytes(40)


class Gw:
    def __init__(self, proc: ZapgateProcess, alice: Api, bob: Api, db: Path) -> None:
        self.proc, self.alice, self.bob, self.db = proc, alice, bob, db


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Gw]:
    tmp: Path = tmp_path_factory.mktemp("messages")
    env, port = messaging_env(tmp)
    _, key = make_user(env, "msgs@example.com")
    _, other = make_user(env, "intruder@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp / "serve.log").start()
    alice = Api(proc.url, key)
    try:
        alice.subscribe(receiver)
        link(alice, "a", PA)
        link(alice, "b", PB)
        yield Gw(proc, alice, Api(proc.url, other), tmp / "data" / "zapgate.db")
    finally:
        proc.stop()


def send(api: Api, name: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(f"/v1/sessions/{name}/messages", json=body)
    assert r.status_code in (201, 202), r.text
    msg: dict[str, Any] = r.json()
    return msg


def sent(api: Api, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Send and wait until WhatsApp has it (its wa_id known)."""
    msg = send(api, name, body)
    return wait_until(  # type: ignore[no-any-return]
        lambda: (m := message(api, name, msg["id"])) and m["wa_id"] and m,
        what=f"{msg['id']} sent",
    )


def message(api: Api, name: str, ref: str) -> dict[str, Any] | None:
    for m in api.get(f"/v1/sessions/{name}/messages", params={"limit": 200}).json()["items"]:
        if ref in (m["id"], m["wa_id"]):
            return m  # type: ignore[no-any-return]
    return None


def arrived(api: Api, name: str, wa_id: str) -> dict[str, Any]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: message(api, name, wa_id), what=f"{wa_id} at {name}"
    )


def events(receiver: Receiver, session: str, type_: str) -> list[dict[str, Any]]:
    return [
        x.json["data"]
        for x in receiver.got("/hook")
        if x.json["session"] == session and x.json["type"] == type_
    ]


def test_a_reply_with_mentions_quotes_the_message_on_both_sides(gw: Gw, receiver: Receiver) -> None:
    first = sent(gw.alice, "a", {"to": PB, "text": "first"})
    at_b = arrived(gw.alice, "b", first["wa_id"])
    reply = sent(
        gw.alice,
        "b",
        {"to": PA, "text": "@5511999993001 yes", "reply_to": at_b["id"], "mentions": [PA]},
    )
    assert reply["reply_to"]["id"] == at_b["id"] and reply["mentions"] == [PA]
    at_a = arrived(gw.alice, "a", reply["wa_id"])
    # Session a knows the quoted message by its own (gateway) id.
    assert at_a["reply_to"]["id"] == first["id"] and at_a["reply_to"]["wa_id"] == first["wa_id"]
    assert at_a["mentions"] == [PA]
    # By WhatsApp's id too; an unknown one is refused with a hint.
    by_wa = send(gw.alice, "a", {"to": PB, "text": "again", "reply_to": first["wa_id"]})
    assert by_wa["reply_to"]["id"] == first["id"]
    body = assert_error(
        gw.alice.post("/v1/sessions/a/messages", json={"to": PB, "text": "x", "reply_to": "NOPE"}),
        422,
        "unknown_reply_to",
    )
    assert "NOPE" in body["error"]
    received = wait_until(
        lambda: [e for e in events(receiver, "a", "message.received") if e["id"] == at_a["id"]],
        what="message.received",
    )
    assert len(received) == 1
    assert received[0]["reply_to"]["id"] == first["id"] and received[0]["mentions"] == [PA]


def test_locations_contacts_and_polls(gw: Gw, receiver: Receiver) -> None:
    pin = {"latitude": -23.55, "longitude": -46.63, "name": "Sé", "address": "Praça da Sé"}
    loc = sent(gw.alice, "a", {"to": PB, "location": pin})
    assert loc["kind"] == "location" and loc["location"] == pin and loc["text"] is None
    card = {"name": "Ana", "phone": "+5511999990055", "organization": "ACME"}
    cards = sent(gw.alice, "a", {"to": PB, "contacts": [card]})
    assert cards["kind"] == "contacts" and cards["contacts"][0]["name"] == "Ana"
    poll = {"question": "Lunch?", "options": ["pizza", "sushi"], "max_selections": 1}
    asked = sent(gw.alice, "a", {"to": PB, "poll": poll})
    assert asked["poll"]["tally"] == {"pizza": 0, "sushi": 0}
    at_b = arrived(gw.alice, "b", loc["wa_id"])
    assert at_b["kind"] == "location" and at_b["location"]["latitude"] == -23.55
    assert arrived(gw.alice, "b", cards["wa_id"])["contacts"][0]["phone"] == "+5511999990055"
    assert arrived(gw.alice, "b", asked["wa_id"])["poll"]["options"] == ["pizza", "sushi"]
    wait_until(
        lambda: any(e["id"] == at_b["id"] for e in events(receiver, "b", "message.received")),
        what="the location's event",
    )
    location_event = next(
        e for e in events(receiver, "b", "message.received") if e["id"] == at_b["id"]
    )
    assert location_event["location"]["name"] == "Sé"

    bad: list[tuple[dict[str, Any], str]] = [
        ({"poll": {"question": "?", "options": ["only"]}}, "validation_error"),
        ({"poll": {"question": "?", "options": ["a", "a"]}}, "validation_error"),
        ({"poll": {"question": "?", "options": ["a", "b"], "max_selections": 3}}, ""),
        ({"location": {"latitude": 91, "longitude": 0}}, "validation_error"),
        ({"location": {"latitude": 0, "longitude": -181}}, "validation_error"),
        ({"contacts": []}, "validation_error"),
        ({"contacts": [card] * 11}, "validation_error"),
        ({"location": pin, "poll": poll}, "validation_error"),
        ({"location": pin, "text": "hi"}, "validation_error"),
    ]
    for extra, errcode in bad:
        r = gw.alice.post("/v1/sessions/a/messages", json={"to": PB, **extra})
        assert_error(r, 422, errcode or None)


def test_stickers_are_webp_and_voice_notes_ogg_opus(gw: Gw) -> None:
    png = base64.b64encode(png_bytes(600)).decode()
    sticker = send(gw.alice, "a", {"to": PB, "media": {"type": "sticker", "base64": png}})
    assert sticker["media"]["type"] == "sticker" and sticker["media"]["mime"] == "image/webp"
    data = gw.alice.get(f"/v1/sessions/a/messages/{sticker['id']}/media").content
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    webp = base64.b64encode(webp_bytes()).decode()
    kept = send(gw.alice, "a", {"to": PB, "media": {"type": "sticker", "base64": webp}})
    assert gw.alice.get(f"/v1/sessions/a/messages/{kept['id']}/media").content == webp_bytes()
    voice = base64.b64encode(OPUS).decode()
    note = send(gw.alice, "a", {"to": PB, "media": {"type": "voice", "base64": voice}})
    assert note["media"]["type"] == "voice"
    mp3 = base64.b64encode(b"ID3" + bytes(64)).decode()
    body = assert_error(
        gw.alice.post(
            "/v1/sessions/a/messages",
            json={"to": PB, "media": {"type": "voice", "base64": mp3}},
        ),
        422,
    )
    assert "ogg/opus" in body["error"] and "audio/mpeg" in body["error"]
    plain_ogg = base64.b64encode(b"OggS" + bytes(60)).decode()
    r = gw.alice.post(
        "/v1/sessions/a/messages", json={"to": PB, "media": {"type": "voice", "base64": plain_ogg}}
    )
    assert "ogg/opus" in assert_error(r, 422)["error"]


def test_reactions(gw: Gw, receiver: Receiver) -> None:
    msg = sent(gw.alice, "a", {"to": PB, "text": "react to me"})
    at_b = arrived(gw.alice, "b", msg["wa_id"])
    r = gw.alice.post(f"/v1/sessions/b/messages/{at_b['id']}/reaction", json={"emoji": "👍"})
    assert r.status_code == 200, r.text
    assert r.json()["reactions"] == [{"sender": "me", "emoji": "👍"}]
    # Session a sees the number of b react to its message.
    wait_until(
        lambda: (
            message(gw.alice, "a", msg["id"])["reactions"]  # type: ignore[index]
            == [{"sender": PB, "emoji": "👍"}]
        ),
        what="the reaction at a",
    )
    removed = gw.alice.post(f"/v1/sessions/b/messages/{at_b['id']}/reaction", json={"emoji": ""})
    assert removed.status_code == 200 and removed.json()["reactions"] == []
    wait_until(
        lambda: message(gw.alice, "a", msg["id"])["reactions"] == [],  # type: ignore[index]
        what="the reaction removed at a",
    )
    for emoji in ("ok", "👍 nice", "a"):
        r = gw.alice.post(f"/v1/sessions/b/messages/{at_b['id']}/reaction", json={"emoji": emoji})
        assert_error(r, 422, "invalid_emoji")
    assert_error(
        gw.alice.post("/v1/sessions/b/messages/NOPE/reaction", json={"emoji": "👍"}),
        404,
        "message_not_found",
    )
    at_a = [e for e in events(receiver, "a", "message.reaction") if e["message_id"] == msg["id"]]
    assert [(e["from"], e["emoji"]) for e in at_a] == [(PB, "👍"), (PB, "")]
    at_b_events = [
        e for e in events(receiver, "b", "message.reaction") if e["message_id"] == at_b["id"]
    ]
    assert [(e["from"], e["emoji"]) for e in at_b_events] == [("me", "👍"), ("me", "")]


def test_edits(gw: Gw, receiver: Receiver) -> None:
    msg = sent(gw.alice, "a", {"to": PB, "text": "helo"})
    at_b = arrived(gw.alice, "b", msg["wa_id"])
    r = gw.alice.request("PATCH", f"/v1/sessions/a/messages/{msg['id']}", json={"text": "hello"})
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "hello" and r.json()["edited_at"]
    wait_until(
        lambda: message(gw.alice, "b", at_b["id"])["text"] == "hello",  # type: ignore[index]
        what="the edit at b",
    )
    edited = wait_until(
        lambda: [e for e in events(receiver, "b", "message.edited") if e["id"] == at_b["id"]],
        what="message.edited",
    )
    assert len(edited) == 1 and edited[0]["text"] == "hello"
    # Someone else's message, a location, a too-late edit: refused with the reason.
    inbound = gw.alice.request(
        "PATCH", f"/v1/sessions/b/messages/{at_b['id']}", json={"text": "mine now"}
    )
    assert "received" in assert_error(inbound, 409, "message_action_refused")["error"]
    pin = sent(gw.alice, "a", {"to": PB, "location": {"latitude": 1, "longitude": 2}})
    r = gw.alice.request("PATCH", f"/v1/sessions/a/messages/{pin['id']}", json={"text": "x"})
    assert "location" in assert_error(r, 409, "message_action_refused")["error"]
    old = sent(gw.alice, "a", {"to": PB, "text": "old"})
    aged = (datetime.now(UTC) - timedelta(minutes=16)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(gw.db) as db:
        db.execute("UPDATE messages SET created_at = ? WHERE id = ?", (aged, old["id"]))
    r = gw.alice.request("PATCH", f"/v1/sessions/a/messages/{old['id']}", json={"text": "new"})
    assert "15 minutes" in assert_error(r, 409, "message_action_refused")["error"]
    r = gw.alice.request("PATCH", f"/v1/sessions/a/messages/{msg['id']}", json={"text": ""})
    assert_error(r, 422)


def test_deletes_for_everyone(gw: Gw, receiver: Receiver) -> None:
    msg = sent(gw.alice, "a", {"to": PB, "text": "oops"})
    at_b = arrived(gw.alice, "b", msg["wa_id"])
    r = gw.alice.delete(f"/v1/sessions/a/messages/{msg['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["revoked"] is True and r.json()["text"] is None
    assert gw.alice.delete(f"/v1/sessions/a/messages/{msg['id']}").status_code == 200
    wait_until(
        lambda: message(gw.alice, "b", at_b["id"])["revoked"],  # type: ignore[index]
        what="the delete at b",
    )
    r = gw.alice.delete(f"/v1/sessions/b/messages/{at_b['id']}")
    assert_error(r, 409, "message_action_refused")
    revoked = wait_until(
        lambda: [e for e in events(receiver, "b", "message.revoked") if e["id"] == at_b["id"]],
        what="message.revoked",
    )
    assert len(revoked) == 1


def test_read_receipts_chats_and_history(gw: Gw) -> None:
    m1 = sent(gw.alice, "a", {"to": PB, "text": "one"})
    m2 = sent(gw.alice, "a", {"to": PB, "text": "two"})
    arrived(gw.alice, "b", m2["wa_id"])
    chats = gw.alice.get("/v1/sessions/b/chats").json()
    chat = next(c for c in chats["items"] if c["id"] == PA)
    assert chat["phone"] == PA and chat["unread"] >= 2
    assert chat["last_message"]["wa_id"] == m2["wa_id"]
    r = gw.alice.post(f"/v1/sessions/b/messages/{m1['wa_id']}/read")
    assert r.status_code == 200, r.text
    r = gw.alice.post(f"/v1/sessions/b/chats/{quote(PA)}/read")
    assert r.status_code == 200 and r.json()["chat"] == PA and r.json()["read"] >= 1
    chats = gw.alice.get("/v1/sessions/b/chats").json()
    assert next(c for c in chats["items"] if c["id"] == PA)["unread"] == 0
    # Session a's messages are read by b: their status says so.
    wait_until(
        lambda: message(gw.alice, "a", m2["id"])["status"] == "read",  # type: ignore[index]
        what="read receipts at a",
    )
    # One chat's history, by its phone or its JID, paged like /messages.
    jid = quote(PA[1:] + "@s.whatsapp.net")
    for chat_id in (quote(PA), jid):
        page = gw.alice.get(f"/v1/sessions/b/chats/{chat_id}/messages", params={"limit": 1})
        assert page.status_code == 200, page.text
        assert [m["wa_id"] for m in page.json()["items"]] == [m2["wa_id"]]
        nxt = page.json()["next"]
        older = gw.alice.get(
            f"/v1/sessions/b/chats/{chat_id}/messages", params={"limit": 1, "before": nxt}
        ).json()
        assert [m["wa_id"] for m in older["items"]] == [m1["wa_id"]]
    assert_error(gw.alice.get("/v1/sessions/b/chats", params={"before": "x"}), 422)


def test_presence(gw: Gw, receiver: Receiver) -> None:
    for state in ("typing", "recording", "paused"):
        r = gw.alice.post(f"/v1/sessions/a/chats/{quote(PB)}/presence", json={"state": state})
        assert r.status_code == 200, r.text
        assert r.json() == {"chat": PB, "state": state}
    # Session b sees the number of a type, record and pause, each once.
    seen = wait_until(
        lambda: len(got := events(receiver, "b", "presence.update")) >= 3 and got,
        what="presence.update at b",
    )
    assert [(e["from"], e["state"]) for e in seen] == [
        (PA, "typing"),
        (PA, "recording"),
        (PA, "paused"),
    ]
    r = gw.alice.post(f"/v1/sessions/a/chats/{quote(PB)}/presence", json={"state": "dancing"})
    assert_error(r, 422)


def test_another_tenants_messages_are_not_found(gw: Gw) -> None:
    msg = sent(gw.alice, "a", {"to": PB, "text": "private"})
    bob = gw.bob
    assert bob.put("/v1/sessions/a", json={"engine": "sim"}).status_code == 201
    for r in (
        bob.post(f"/v1/sessions/a/messages/{msg['id']}/reaction", json={"emoji": "👍"}),
        bob.request("PATCH", f"/v1/sessions/a/messages/{msg['id']}", json={"text": "x"}),
        bob.delete(f"/v1/sessions/a/messages/{msg['id']}"),
        bob.post(f"/v1/sessions/a/messages/{msg['id']}/read"),
    ):
        assert_error(r, 404, "message_not_found")
    r = bob.post("/v1/sessions/a/messages", json={"to": PB, "text": "x", "reply_to": msg["id"]})
    assert_error(r, 422, "unknown_reply_to")
    assert_error(bob.get("/v1/sessions/b/chats"), 404, "session_not_found")
    assert bob.get("/v1/sessions/a/chats").json()["items"] == []
    untouched = message(gw.alice, "a", msg["id"])
    assert untouched is not None and untouched["reactions"] == [] and not untouched["revoked"]
