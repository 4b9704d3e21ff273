"""`typing_ms` on a send (issue 9), through a real `zapgate serve`: the request returns at
once with the message queued (202) and `scheduled_at` that much later; the chat sees the
session typing (recording, for a voice note) before the message arrives; an
Idempotency-Key replay neither sends nor types twice; later sends keep their order; bad
values are 422."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import Api, make_user, messaging_env
from tests.api.test_errors import assert_error
from tests.api.test_events import link
from tests.api.test_messages import OPUS, message
from tests.conftest import ZapgateProcess, wait_until
from tests.receiver import Receiver

PA = "+5511999995001"
PB = "+5511999995002"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Api]:
    tmp: Path = tmp_path_factory.mktemp("typing")
    env, port = messaging_env(tmp)
    _, key = make_user(env, "typing@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp / "serve.log").start()
    client = Api(proc.url, key)
    try:
        client.subscribe(receiver)
        link(client, "a", PA)
        link(client, "b", PB)
        yield client
    finally:
        proc.stop()


def presences(api: Api, phone: str) -> list[str]:
    """The states session a's number showed to `phone`, oldest first."""
    items = api.get(f"/v1/sim/phones/{quote(phone)}/log").json()["items"]
    return [e["state"] for e in items if e["type"] == "presence" and e["from"] == PA]


def seconds(msg: dict[str, Any]) -> float:
    scheduled = datetime.fromisoformat(msg["scheduled_at"])
    created = datetime.fromisoformat(msg["created_at"])
    return (scheduled - created).total_seconds()


def test_typing_shows_before_the_message_without_holding_the_request(api: Api) -> None:
    phone = "+5511988885101"
    started = time.monotonic()
    r = api.post(
        "/v1/sessions/a/messages", json={"to": phone, "text": "hi there", "typing_ms": 2000}
    )
    assert r.status_code == 202, r.text
    assert time.monotonic() - started < 1.5  # the request does not wait for the typing
    msg = r.json()
    assert msg["status"] == "queued" and 1.9 <= seconds(msg) < 2.5
    # The phone sees the session typing while the message has not gone yet...
    wait_until(lambda: presences(api, phone) == ["typing"], what="typing at the phone")
    now = message(api, "a", msg["id"])
    assert now is not None and now["wa_id"] is None, now
    # ...then the message goes, no sooner than typing_ms after it was accepted.
    sent = wait_until(
        lambda: (m := message(api, "a", msg["id"])) and m["wa_id"] and m, what="the message"
    )
    assert time.monotonic() - started >= 2.0
    assert sent["status"] in ("sent", "delivered", "read")
    assert presences(api, phone) == ["typing"]


def test_a_voice_note_shows_recording(api: Api) -> None:
    phone = "+5511988885102"
    voice = base64.b64encode(OPUS).decode()
    body = {"to": phone, "media": {"type": "voice", "base64": voice}, "typing_ms": 300}
    r = api.post("/v1/sessions/a/messages", json=body)
    assert r.status_code == 202, r.text
    wait_until(lambda: presences(api, phone) == ["recording"], what="recording at the phone")
    wait_until(lambda: message(api, "a", r.json()["id"])["wa_id"], what="the voice note")  # type: ignore[index]


def test_the_chat_sees_typing_then_the_message_and_order_is_kept(
    api: Api, receiver: Receiver
) -> None:
    typed = api.post("/v1/sessions/a/messages", json={"to": PB, "text": "one", "typing_ms": 800})
    assert typed.status_code == 202, typed.text
    # Sent right after, without typing: it waits for the typed one, not overtaking it.
    after = api.post("/v1/sessions/a/messages", json={"to": PB, "text": "two"})
    assert after.status_code == 202, after.text
    assert after.json()["scheduled_at"] >= typed.json()["scheduled_at"]
    first = wait_until(
        lambda: (m := message(api, "a", typed.json()["id"])) and m["wa_id"], what="one"
    )
    second = wait_until(
        lambda: (m := message(api, "a", after.json()["id"])) and m["wa_id"], what="two"
    )

    def at_b() -> list[tuple[str, str]]:
        got = []
        for x in receiver.got("/hook"):
            if x.json["session"] != "b":
                continue
            data = x.json["data"]
            if x.json["type"] == "presence.update" and data["from"] == PA:
                got.append(("presence", data["state"]))
            elif x.json["type"] == "message.received" and data["wa_id"] in (first, second):
                got.append(("message", data["text"]))
        return got

    wait_until(lambda: len(at_b()) >= 3, what="b's events")
    time.sleep(0.5)
    assert at_b() == [("presence", "typing"), ("message", "one"), ("message", "two")]


def test_an_idempotent_replay_neither_sends_nor_types_twice(api: Api) -> None:
    phone = "+5511988885103"
    body = {"to": phone, "text": "once", "typing_ms": 300}
    headers = {"Idempotency-Key": "typing-once"}
    first = api.post("/v1/sessions/a/messages", json=body, headers=headers)
    assert first.status_code == 202, first.text
    again = api.post("/v1/sessions/a/messages", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = api.post("/v1/sessions/a/messages", json={**body, "typing_ms": 400}, headers=headers)
    assert_error(other, 422)
    wait_until(lambda: message(api, "a", first.json()["id"])["wa_id"], what="sent")  # type: ignore[index]
    time.sleep(0.5)
    assert presences(api, phone) == ["typing"]


def test_bad_typing_values_are_422(api: Api) -> None:
    for value in (-1, 20_001, "soon", 1.5, None):
        r = api.post("/v1/sessions/a/messages", json={"to": PB, "text": "x", "typing_ms": value})
        body = assert_error(r, 422)
        assert "typing_ms" in body["error"], body
