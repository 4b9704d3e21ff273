"""Webhooks, the live stream, the outbound queue and the anti-ban rate, against a real
`zapgate serve` and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Api, make_user
from tests.api.test_errors import assert_error
from tests.conftest import ZapgateProcess, base_env, free_port, wait_until
from tests.receiver import Receiver

PHONE = "+5511999990003"
FRIEND = "+5511988887777"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ZapgateProcess, Api, Api]]:
    tmp: Path = tmp_path_factory.mktemp("events")
    port = free_port()
    env = base_env(
        tmp / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_ALLOW_PRIVATE_URLS="true",
        ZAPGATE_WEBHOOK_BACKOFF_BASE="0.2",
        ZAPGATE_POLL_INTERVAL="0.1",
        ZAPGATE_QUEUE_DEADLINE="6",
    )
    _, key = make_user(env, "events@example.com")
    _, other = make_user(env, "other@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp / "serve.log").start()
    yield proc, Api(proc.url, key), Api(proc.url, other)
    proc.stop()


def link(api: Api, name: str, phone: str = PHONE) -> None:
    api.put(f"/v1/sessions/{name}", json={"engine": "sim"})
    qr = wait_until(
        lambda: (r := api.get(f"/v1/sessions/{name}/qr")).status_code == 200 and r.json()["qr"],
        what="QR",
    )
    assert api.post("/v1/sim/scan", json={"qr": qr, "phone": phone}).status_code == 200
    wait_until(lambda: api.state(name) == "CONNECTED", what="CONNECTED")


def test_webhook_create_validation(gw: tuple[ZapgateProcess, Api, Api]) -> None:
    _, api, _ = gw
    assert_error(api.post("/v1/webhooks", json={"url": "ftp://x"}), 422)
    assert_error(api.post("/v1/webhooks", json={"url": "http://u:p@example.com/"}), 422)
    assert_error(
        api.post("/v1/webhooks", json={"url": "http://127.0.0.1:1/", "events": ["nope"]}), 422
    )
    assert_error(
        api.post("/v1/webhooks", json={"url": "http://127.0.0.1:1/", "secret": "short"}), 422
    )
    assert_error(api.get("/v1/webhooks/999999"), 404, "webhook_not_found")
    assert_error(api.delete("/v1/webhooks/999999"), 404, "webhook_not_found")


def test_events_are_signed_ordered_and_filtered(
    gw: tuple[ZapgateProcess, Api, Api], receiver: Receiver
) -> None:
    _, api, other = gw
    r = api.post("/v1/webhooks", json={"url": receiver.url("/all")})
    assert r.status_code == 201
    hook = r.json()
    assert hook["secret"].startswith("whsec_") and hook["events"] == []
    assert (
        "secret" not in api.get("/v1/webhooks").json()["items"][0]
        or api.get("/v1/webhooks").json()["items"][0]["secret"] is None
    )
    only_in = api.post(
        "/v1/webhooks",
        json={
            "url": receiver.url("/in"),
            "events": ["message.received"],
            "secret": "my-own-secret-123456",
        },
    ).json()
    # Another user's events never reach this user's webhooks.
    other.post("/v1/webhooks", json={"url": receiver.url("/other")})

    link(api, "hooks")
    assert (
        api.post(f"/v1/sim/phones/{FRIEND}/messages", json={"to": PHONE, "text": "oi"}).status_code
        == 201
    )
    assert (
        api.post("/v1/sessions/hooks/messages", json={"to": FRIEND, "text": "olá"}).status_code
        == 201
    )

    def types() -> list[str]:
        return [x.json["type"] for x in receiver.got("/all")]

    wait_until(
        lambda: (
            "message.received" in types()
            and [
                x.json["data"].get("status")
                for x in receiver.got("/all")
                if x.json["type"] == "message.status"
            ][-1:]
            == ["read"]
        ),
        what="events",
    )
    got = receiver.got("/all")
    assert all(x.signature_ok(hook["secret"]) for x in got)
    assert not got[0].signature_ok("wrong-secret")
    ids = [x.headers["x-zapgate-event-id"] for x in got]
    assert len(ids) == len(set(ids)) and all(
        i == x.json["id"] for i, x in zip(ids, got, strict=True)
    )
    body = got[0].json
    assert set(body) == {"id", "type", "session", "occurred_at", "data"}
    assert body["session"] == "hooks"
    states = [x.json["data"]["state"] for x in got if x.json["type"] == "session.status"]
    assert states[-1] == "CONNECTED" and states.index("SCAN_QR") < states.index("CONNECTED")
    assert "session.qr" in types() and "message.received" in types()
    statuses = [x.json["data"]["status"] for x in got if x.json["type"] == "message.status"]
    assert statuses == sorted(statuses, key=["pending", "sent", "delivered", "read"].index)
    # The filtered webhook only got message.received, signed with its own secret.
    wait_until(lambda: receiver.got("/in"), what="filtered delivery")
    assert {x.json["type"] for x in receiver.got("/in")} == {"message.received"}
    assert all(x.signature_ok("my-own-secret-123456") for x in receiver.got("/in"))
    assert receiver.got("/other") == []
    log = api.get(f"/v1/webhooks/{only_in['id']}/deliveries").json()["items"]
    assert log and log[0]["status"] == "delivered" and log[0]["last_status_code"] == 200
    assert_error(other.get(f"/v1/webhooks/{only_in['id']}/deliveries"), 404)


def test_retries_then_delivered_with_the_same_id(
    gw: tuple[ZapgateProcess, Api, Api], receiver: Receiver
) -> None:
    _, api, _ = gw
    receiver.fail_first["/flaky"] = 2
    hook = api.post("/v1/webhooks", json={"url": receiver.url("/flaky")}).json()
    ping = api.post(f"/v1/webhooks/{hook['id']}/ping")
    assert ping.status_code == 202
    wait_until(lambda: len(receiver.got("/flaky")) >= 3, what="3 attempts")
    attempts = receiver.got("/flaky")
    assert {x.headers["x-zapgate-event-id"] for x in attempts} == {ping.json()["event_id"]}
    assert [x.headers["x-zapgate-delivery-attempt"] for x in attempts[:3]] == ["1", "2", "3"]
    wait_until(
        lambda: (
            api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"][0]["status"]
            == "delivered"
        ),
        what="delivered",
    )
    d = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"][0]
    assert d["attempts"] == 3 and d["event_type"] == "webhook.ping"
    api.delete(f"/v1/webhooks/{hook['id']}")


def test_410_disables_the_webhook(gw: tuple[ZapgateProcess, Api, Api], receiver: Receiver) -> None:
    _, api, _ = gw
    receiver.gone.add("/gone")
    hook = api.post("/v1/webhooks", json={"url": receiver.url("/gone")}).json()
    api.post(f"/v1/webhooks/{hook['id']}/ping")
    wait_until(lambda: not api.get(f"/v1/webhooks/{hook['id']}").json()["enabled"], what="disabled")
    assert "410" in api.get(f"/v1/webhooks/{hook['id']}").json()["disabled_reason"]
    assert len(receiver.got("/gone")) == 1
    assert_error(api.post(f"/v1/webhooks/{hook['id']}/ping"), 422)
    assert api.delete(f"/v1/webhooks/{hook['id']}").status_code == 204


def test_live_stream_resumes_with_last_event_id(gw: tuple[ZapgateProcess, Api, Api]) -> None:
    proc, api, other = gw
    link(api, "live", "+5511999990077")
    headers = {"Authorization": f"Bearer {api.key}"}

    def read(n: int, extra: dict[str, str]) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        with httpx.stream(
            "GET", proc.url + "/v1/sessions/live/events", headers={**headers, **extra}, timeout=10
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            cur: dict[str, str] = {}
            for line in r.iter_lines():
                if line.startswith(("id:", "event:", "data:")):
                    k, _, v = line.partition(":")
                    cur[k] = v.strip()
                elif line == "" and "id" in cur:
                    out.append(cur)
                    cur = {}
                    if len(out) == n:
                        break
        return out

    first = read(3, {})
    assert [int(e["id"]) for e in first] == sorted(int(e["id"]) for e in first)
    assert json.loads(first[0]["data"])["session"] == "live"
    resumed = read(1, {"Last-Event-ID": first[1]["id"]})
    assert resumed[0]["id"] == first[2]["id"]
    assert_error(
        httpx.get(
            proc.url + "/v1/sessions/live/events", headers={"Authorization": f"Bearer {other.key}"}
        ),
        404,
    )
    assert_error(
        httpx.get(
            proc.url + "/v1/sessions/live/events", headers={**headers, "Last-Event-ID": "abc"}
        ),
        422,
    )


def test_queued_send_goes_out_when_the_session_connects(
    gw: tuple[ZapgateProcess, Api, Api],
) -> None:
    _, api, _ = gw
    api.put("/v1/sessions/later", json={"engine": "sim", "start": False})
    r = api.post("/v1/sessions/later/messages", json={"to": FRIEND, "text": "na fila"})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    mid = r.json()["id"]
    link(api, "later", "+5511999990055")

    def status() -> str:
        items = api.get("/v1/sessions/later/messages?direction=out").json()["items"]
        return str(next(m["status"] for m in items if m["id"] == mid))

    wait_until(lambda: status() == "read", what="queued message sent and read")


def test_queued_send_fails_after_its_deadline(gw: tuple[ZapgateProcess, Api, Api]) -> None:
    _, api, _ = gw
    api.put("/v1/sessions/never", json={"engine": "sim", "start": False})
    mid = api.post("/v1/sessions/never/messages", json={"to": FRIEND, "text": "x"}).json()["id"]

    def failed() -> dict[str, str] | None:
        items = api.get("/v1/sessions/never/messages").json()["items"]
        m = next(m for m in items if m["id"] == mid)
        return m if m["status"] == "failed" else None

    m = wait_until(failed, timeout=15, what="deadline")
    assert m["status_reason"] == "deadline_exceeded"


def test_rate_limit_queues_instead_of_refusing(gw: tuple[ZapgateProcess, Api, Api]) -> None:
    _, api, _ = gw
    link(api, "rate", "+5511999990066")
    assert (
        api.put("/v1/sessions/rate", json={"start": False, "send_rate": "2/1s"}).json()["send_rate"]
        == "2/1s"
    )
    answers = [
        api.post("/v1/sessions/rate/messages", json={"to": FRIEND, "text": f"m{i}"})
        for i in range(4)
    ]
    assert [a.status_code for a in answers] == [201, 201, 202, 202]
    times = [a.json()["scheduled_at"] for a in answers]
    assert times[2] < times[3]
    ids = {a.json()["id"] for a in answers}

    def all_sent() -> bool:
        items = api.get("/v1/sessions/rate/messages?direction=out").json()["items"]
        return all(m["status"] in {"sent", "delivered", "read"} for m in items if m["id"] in ids)

    wait_until(all_sent, timeout=10, what="rate-limited sends")


def test_a_slow_receiver_never_delays_another_users_webhook(
    gw: tuple[ZapgateProcess, Api, Api], receiver: Receiver
) -> None:
    _, api, other = gw
    receiver.slow["/slow"] = 4.0
    slow = other.post("/v1/webhooks", json={"url": receiver.url("/slow")}).json()
    fast = api.post("/v1/webhooks", json={"url": receiver.url("/fast")}).json()
    for _ in range(3):
        other.post(f"/v1/webhooks/{slow['id']}/ping")
    wait_until(lambda: receiver.got("/slow"), what="slow receiver busy")
    t0 = time.monotonic()
    api.post(f"/v1/webhooks/{fast['id']}/ping")
    wait_until(lambda: receiver.got("/fast"), timeout=3, what="fast delivery")
    assert time.monotonic() - t0 < 3
    assert len(receiver.got("/slow")) < 3  # the slow one is still working through its queue
    other.delete(f"/v1/webhooks/{slow['id']}")
    api.delete(f"/v1/webhooks/{fast['id']}")
