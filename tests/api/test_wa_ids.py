"""WhatsApp's message ids and LID chats through real processes: `zapgate simnet` (which,
like WhatsApp, gives every message its own id and may address a phone by LID) and
`zapgate serve` over it, with a webhook receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, make_user
from tests.api.test_errors import assert_error
from tests.conftest import ZapgateProcess, base_env, free_port, wait_until
from tests.receiver import Receiver

PHONE_A = "+5511999994001"
PHONE_B = "+5511999994002"
STRANGER = "+5511999994077"
SHARER = "+5511999994078"


@dataclass
class Gateway:
    api: Api
    simnet: str
    receiver: Receiver


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("wa-ids")
    receiver = Receiver().start()
    sport, port = free_port(), free_port()
    simnet = ZapgateProcess(
        ["simnet", "--port", str(sport)], base_env(tmp / "simnet"), sport, tmp / "simnet.log"
    ).start()
    env = base_env(
        tmp / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_SIMNET_URL=simnet.url,
        ZAPGATE_ALLOW_PRIVATE_URLS="true",
        ZAPGATE_POLL_INTERVAL="0.1",
    )
    _, key = make_user(env, "ids@example.com")
    serve = ZapgateProcess(["serve"], env, port, tmp / "serve.log")
    try:
        serve.start()
        api = Api(serve.url, key)
        assert api.post("/v1/webhooks", json={"url": receiver.url("/ids")}).status_code == 201
        link(api, "a", PHONE_A)
        yield Gateway(api=api, simnet=simnet.url, receiver=receiver)
    finally:
        serve.stop()
        simnet.stop()
        receiver.stop()


def link(api: Api, name: str, phone: str) -> None:
    api.put(f"/v1/sessions/{name}", json={"engine": "sim"})
    qr = wait_until(
        lambda: (r := api.get(f"/v1/sessions/{name}/qr")).status_code == 200 and r.json()["qr"],
        what="QR",
    )
    assert api.post("/v1/sim/scan", json={"qr": qr, "phone": phone}).status_code == 200
    wait_until(lambda: api.state(name) == "CONNECTED", what="CONNECTED")


def history(api: Api, name: str, direction: str | None = None) -> list[dict[str, Any]]:
    query = f"?direction={direction}&limit=200" if direction else "?limit=200"
    items: list[dict[str, Any]] = api.get(f"/v1/sessions/{name}/messages{query}").json()["items"]
    return items


def message(api: Api, name: str, mid: str) -> dict[str, Any]:
    return next(m for m in history(api, name) if m["id"] == mid)


def test_queued_sends_reach_read_under_their_gateway_ids(gw: Gateway) -> None:
    api = gw.api
    link(api, "b", PHONE_B)
    # One send per 2 s: the second waits in the queue and goes through the sender.
    assert api.put("/v1/sessions/a", json={"send_rate": "1/2s"}).status_code == 200
    first = api.post(
        "/v1/sessions/a/messages",
        json={"to": PHONE_B, "text": "now"},
        headers={"Idempotency-Key": "ids-1"},
    )
    queued = api.post("/v1/sessions/a/messages", json={"to": PHONE_B, "text": "later"})
    assert (first.status_code, queued.status_code) == (201, 202), (first.text, queued.text)
    assert queued.json()["wa_id"] is None  # not sent yet: WhatsApp has not named it
    sent = [first.json(), queued.json()]

    def all_read() -> bool:
        return all(message(api, "a", m["id"])["status"] == "read" for m in sent)

    wait_until(all_read, what="both messages read")
    got = [message(api, "a", m["id"]) for m in sent]
    wa_ids = [m["wa_id"] for m in got]
    assert all(wa_ids) and not set(wa_ids) & {m["id"] for m in sent}
    # The network (and so the recipient) knows the messages by WhatsApp's ids only.
    inbox = httpx.get(f"{gw.simnet}/phones/{PHONE_B}/inbox").json()["items"]
    assert [(x["id"], x["text"]) for x in inbox] == [(wa_ids[0], "now"), (wa_ids[1], "later")]
    wait_until(lambda: len(history(api, "b", "in")) == 2, what="b's inbound")
    assert {(m["id"], m["wa_id"]) for m in history(api, "b", "in")} == {(w, w) for w in wa_ids}

    # The Idempotency-Key replay is the same message, with its WhatsApp id.
    again = api.post(
        "/v1/sessions/a/messages",
        json={"to": PHONE_B, "text": "now"},
        headers={"Idempotency-Key": "ids-1"},
    )
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["wa_id"]) == (sent[0]["id"], wa_ids[0])

    # Webhooks: every status of each message names its gateway id, and WhatsApp's once sent.
    def statuses(mid: str) -> list[tuple[str, str | None]]:
        return [
            (x.json["data"]["status"], x.json["data"]["wa_id"])
            for x in gw.receiver.got("/ids")
            if x.json["type"] == "message.status" and x.json["data"]["id"] == mid
        ]

    def all_hooked() -> bool:
        return all(("read", w) in statuses(m["id"]) for m, w in zip(sent, wa_ids, strict=True))

    wait_until(all_hooked, what="the read events")
    for m, wa_id in zip(sent, wa_ids, strict=True):
        assert [(s, w) for s, w in statuses(m["id"]) if s not in {"queued", "pending"}] == [
            ("sent", wa_id),
            ("delivered", wa_id),
            ("read", wa_id),
        ]
        assert {w for s, w in statuses(m["id"]) if s in {"queued", "pending"}} == {None}


def test_a_lid_chat_is_answered_and_shows_its_phone_once_learned(gw: Gateway) -> None:
    api, simnet = gw.api, gw.simnet
    r = httpx.post(f"{simnet}/phones/{STRANGER}/lid-addressing", json={"share_phone": False})
    lid = r.json()["lid"]
    assert lid.endswith("@lid")
    r = httpx.post(f"{simnet}/phones/{STRANGER}/messages", json={"to": PHONE_A, "text": "who?"})
    assert r.status_code == 201, r.text
    first_in = r.json()["id"]
    wait_until(lambda: any(m["id"] == first_in for m in history(api, "a", "in")), what="inbound")
    got = message(api, "a", first_in)
    # Nothing told the number: the chat is the LID (never a made-up phone).
    assert (got["chat"], got["chat_lid"], got["wa_id"]) == (lid, lid, first_in)
    assert (got["phone"], got["jid"], got["lid"]) == (None, lid, lid)

    # Answer the LID: it reaches the phone behind it.
    r = api.post("/v1/sessions/a/messages", json={"to": f" {lid} ", "text": "hello, LID"})
    assert r.status_code in {201, 202}, r.text
    answer = r.json()
    assert (answer["chat"], answer["chat_lid"]) == (lid, lid)
    wait_until(lambda: message(api, "a", answer["id"])["status"] == "read", what="read")
    inbox = httpx.get(f"{simnet}/phones/{STRANGER}/inbox").json()["items"]
    assert [(x["from"], x["text"]) for x in inbox] == [(PHONE_A, "hello, LID")]

    # Writing to the number teaches the session the mapping; the LID's next message then
    # names the phone, and the whole conversation is one chat.
    r = api.post("/v1/sessions/a/messages", json={"to": STRANGER, "text": "by number"})
    assert r.status_code in {201, 202}, r.text
    wait_until(lambda: message(api, "a", r.json()["id"])["status"] == "read", what="read")
    r = httpx.post(f"{simnet}/phones/{STRANGER}/messages", json={"to": PHONE_A, "text": "me"})
    second_in = r.json()["id"]
    wait_until(lambda: any(m["id"] == second_in for m in history(api, "a", "in")), what="again")
    conversation = [m for m in history(api, "a") if m["chat_lid"] == lid or m["chat"] == STRANGER]
    assert {m["text"] for m in conversation} == {"who?", "hello, LID", "by number", "me"}
    assert {(m["chat"], m["chat_lid"]) for m in conversation} == {(STRANGER, lid)}
    event = next(
        x.json["data"]
        for x in gw.receiver.got("/ids")
        if x.json["type"] == "message.received" and x.json["data"]["id"] == second_in
    )
    assert (event["chat"], event["chat_lid"], event["wa_id"]) == (STRANGER, lid, second_in)
    jid = STRANGER.lstrip("+") + "@s.whatsapp.net"
    assert (event["phone"], event["jid"], event["lid"]) == (STRANGER, jid, lid)


def test_a_lid_chat_with_the_number_beside_it_shows_the_phone_at_once(gw: Gateway) -> None:
    api, simnet = gw.api, gw.simnet
    lid = httpx.post(f"{simnet}/phones/{SHARER}/lid-addressing", json={"share_phone": True}).json()[
        "lid"
    ]
    r = httpx.post(f"{simnet}/phones/{SHARER}/messages", json={"to": PHONE_A, "text": "it's me"})
    mid = r.json()["id"]
    wait_until(lambda: any(m["id"] == mid for m in history(api, "a", "in")), what="inbound")
    got = message(api, "a", mid)
    assert (got["chat"], got["chat_lid"]) == (SHARER, lid)


def test_a_phones_jid_is_that_phone(gw: Gateway) -> None:
    """`to` (and a chat in a path) may be a phone's JID, as WhatsApp clients write it."""
    jid = SHARER.lstrip("+") + "@s.whatsapp.net"
    r = gw.api.post(
        "/v1/sessions/a/messages", json={"to": f"{jid[:-15]}:7@s.whatsapp.net", "text": "by JID"}
    )
    assert r.status_code in {201, 202}, r.text
    sent = r.json()
    assert (sent["chat"], sent["phone"], sent["jid"]) == (SHARER, SHARER, jid)
    r = gw.api.get(f"/v1/sessions/a/chats/{jid}/messages")
    assert r.status_code == 200, r.text
    assert sent["id"] in [m["id"] for m in r.json()["items"]]


@pytest.mark.parametrize(
    ("to", "errcode"),
    [
        ("abc@lid", "invalid_lid"),
        ("@lid", "invalid_lid"),
        ("123@lid.example", "invalid_lid"),
        ("5511999994077@g.us", "invalid_lid"),
        ("5511999994077@s.whatsapp.net.example", "invalid_lid"),
        ("55@s.whatsapp.net", "invalid_phone"),
        ("1234567890123456789012@lid", "invalid_lid"),
        ("12 34@lid", "invalid_lid"),
        ("not a number", "invalid_phone"),
    ],
)
def test_a_recipient_that_is_neither_a_phone_nor_a_lid_is_a_clear_422(
    gw: Gateway, to: str, errcode: str
) -> None:
    r = gw.api.post("/v1/sessions/a/messages", json={"to": to, "text": "x"})
    body = assert_error(r, 422, errcode)
    assert body["hint"]
    r = gw.api.post(
        "/v1/sessions/a/messages/media",
        data={"to": to, "type": "document"},
        files={"file": ("a.pdf", b"%PDF-1.4\n", "application/pdf")},
    )
    assert_error(r, 422, errcode)


def test_a_chat_is_named_by_its_contacts_push_name(gw: Gateway) -> None:
    """A phone's messages carry the name its user set in WhatsApp: the chat is named by
    it (a new one once changed) and each message keeps the name it came with."""
    api, simnet = gw.api, gw.simnet
    namer = "+5511999994079"

    def write(text: str) -> str:
        r = httpx.post(f"{simnet}/phones/{namer}/messages", json={"to": PHONE_A, "text": text})
        assert r.status_code == 201, r.text
        wa_id = str(r.json()["id"])
        wait_until(lambda: any(m["id"] == wa_id for m in history(api, "a", "in")), what=text)
        return wa_id

    def chat_name() -> str | None:
        chats = api.get("/v1/sessions/a/chats", params={"limit": 100}).json()["items"]
        name: str | None = next(c for c in chats if c["id"] == namer)["name"]
        return name

    def webhook_name(wa_id: str) -> str | None:
        event = wait_until(
            lambda: next(
                (
                    x.json["data"]
                    for x in gw.receiver.got("/ids")
                    if x.json["type"] == "message.received" and x.json["data"]["id"] == wa_id
                ),
                None,
            ),
            what=f"message.received {wa_id}",
        )
        name: str | None = event["sender_name"]
        return name

    r = httpx.post(f"{simnet}/phones/{namer}/push-name", json={"name": "Ana Souza"})
    assert r.status_code == 200 and r.json() == {"name": "Ana Souza"}, r.text
    first = write("oi")
    assert chat_name() == "Ana Souza"
    assert (message(api, "a", first)["sender_name"], webhook_name(first)) == ("Ana Souza",) * 2

    httpx.post(f"{simnet}/phones/{namer}/push-name", json={"name": "Ana S."})
    second = write("de novo")
    assert chat_name() == "Ana S."
    assert webhook_name(second) == "Ana S."
    assert message(api, "a", first)["sender_name"] == "Ana Souza"  # as it came
    # A message the gateway sent has no sender name.
    r = api.post("/v1/sessions/a/messages", json={"to": namer, "text": "olá, Ana"})
    assert r.status_code in {201, 202} and r.json()["sender_name"] is None, r.text
    assert httpx.post(f"{simnet}/phones/{namer}/push-name", json={"name": " "}).status_code == 422
