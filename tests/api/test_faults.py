"""Fault tests: kill -9 the server (embedded) or the worker (shared) in the middle of
inbound traffic and queued sends, start it again, and check that every event reached the
webhook at least once and every accepted send went out exactly once.

The simulated network runs as its own process (`zapgate simnet`), so what the phones
received survives the kills and can be counted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx

from tests.api.conftest import Api, make_user
from tests.conftest import base_env, free_port, wait_until
from tests.receiver import Receiver

PHONE = "+5511999990003"
FRIEND = "+5511988887777"
TOKEN = "worker-token-Fa7Yq2Wm5Ks9Pd3Vn8Lc1Rg6"
N_SENDS = 20
N_INBOUND = 10


def common_env(tmp: Path, name: str, simnet: str, **extra: str) -> dict[str, str]:
    return base_env(
        tmp / name,
        ZAPGATE_SIMNET_URL=simnet,
        ZAPGATE_ALLOW_PRIVATE_URLS="true",
        ZAPGATE_SEND_RATE="3/0.3s",
        ZAPGATE_POLL_INTERVAL="0.1",
        ZAPGATE_WEBHOOK_BACKOFF_BASE="0.2",
        ZAPGATE_WORKER_TOKEN=TOKEN,
        **extra,
    )


def phone_writes(simnet: str, i: int) -> None:
    r = httpx.post(f"{simnet}/phones/{FRIEND}/messages", json={"to": PHONE, "text": f"in-{i}"})
    assert r.status_code == 201, r.text


def send(api: Api, i: int) -> int:
    try:
        return api.post(
            "/v1/sessions/default/messages",
            json={"to": FRIEND, "text": f"out-{i}"},
            headers={"Idempotency-Key": f"k-{i}"},
        ).status_code
    except httpx.HTTPError:
        return 0  # the server died under us: the client retries later, as a real one would


def link(api: Api, simnet: str) -> None:
    api.put("/v1/sessions/default", json={"engine": "sim"})
    qr = wait_until(
        lambda: (r := api.get("/v1/sessions/default/qr")).status_code == 200 and r.json()["qr"],
        what="QR",
    )
    assert httpx.post(f"{simnet}/phones/{PHONE}/scan", json={"qr": qr}).status_code == 200
    wait_until(lambda: api.state("default") == "CONNECTED", what="CONNECTED")


def check_nothing_lost(api: Api, simnet: str, receiver: Receiver, path: str) -> None:
    # Every accepted send went out exactly once.
    for i in range(N_SENDS):
        assert send(api, i) in {200, 201, 202}

    def inbox() -> Counter[str]:
        items = httpx.get(f"{simnet}/phones/{FRIEND}/inbox").json()["items"]
        return Counter(m["text"] for m in items if m["from"] == PHONE)

    wait_until(lambda: len(inbox()) == N_SENDS, timeout=60, what="every send delivered")
    counts = inbox()
    assert set(counts) == {f"out-{i}" for i in range(N_SENDS)}
    assert set(counts.values()) == {1}, counts

    # Every inbound message is in the history once, and reached the webhook at least once.
    def history() -> list[str]:
        items = api.get("/v1/sessions/default/messages?direction=in&limit=200").json()["items"]
        return [m["text"] for m in items]

    wait_until(lambda: len(set(history())) == N_INBOUND, timeout=30, what="inbound history")
    assert sorted(history()) == sorted(f"in-{i}" for i in range(N_INBOUND))

    def hooked() -> set[str]:
        return {
            x.json["data"]["text"]
            for x in receiver.got(path)
            if x.json["type"] == "message.received"
        }

    wait_until(
        lambda: hooked() == {f"in-{i}" for i in range(N_INBOUND)},
        timeout=30,
        what="every inbound event delivered",
    )
    out = api.get("/v1/sessions/default/messages?direction=out&limit=200").json()["items"]
    assert len(out) == N_SENDS
    wait_until(
        lambda: all(
            m["status"] in {"sent", "delivered", "read"}
            for m in api.get("/v1/sessions/default/messages?direction=out&limit=200").json()[
                "items"
            ]
        ),
        timeout=30,
        what="statuses",
    )


def test_kill_9_the_server(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver().start()
    try:
        sport, port = free_port(), free_port()
        simnet = f"http://127.0.0.1:{sport}"
        spawn(
            ["simnet", "--port", str(sport)], base_env(tmp_path / "simnet"), sport, name="simnet"
        ).start()
        env = common_env(tmp_path, "data", simnet, ZAPGATE_PORT=str(port))
        _, key = make_user(env, "fault@example.com")
        server = spawn(["serve"], env, port, name="serve").start()
        api = Api(server.url, key)
        api.post("/v1/webhooks", json={"url": receiver.url("/kill-server")})
        link(api, simnet)

        for i in range(N_SENDS // 2):
            send(api, i)
            if i < N_INBOUND // 2:
                phone_writes(simnet, i)
        server.kill()  # kill -9, with sends queued by the rate limit and events pending
        for i in range(N_INBOUND // 2, N_INBOUND):
            phone_writes(simnet, i)  # arrive while the server is down
        server.start()
        check_nothing_lost(api, simnet, receiver, "/kill-server")
    finally:
        receiver.stop()


def test_kill_9_the_worker_in_shared_topology(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver().start()
    try:
        sport, wport, port = free_port(), free_port(), free_port()
        simnet = f"http://127.0.0.1:{sport}"
        spawn(
            ["simnet", "--port", str(sport)], base_env(tmp_path / "simnet"), sport, name="simnet"
        ).start()
        worker = spawn(
            ["worker", "--port", str(wport)],
            common_env(tmp_path, "worker", simnet),
            wport,
            name="worker",
        ).start()
        env = common_env(
            tmp_path,
            "web",
            simnet,
            ZAPGATE_PORT=str(port),
            ZAPGATE_TOPOLOGY="shared",
            ZAPGATE_WORKER_URL=f"http://127.0.0.1:{wport}",
        )
        _, key = make_user(env, "fault@example.com")
        web = spawn(["web"], env, port, name="web").start()
        api = Api(web.url, key)
        api.post("/v1/webhooks", json={"url": receiver.url("/kill-worker")})
        link(api, simnet)

        for i in range(N_SENDS // 2):
            send(api, i)
            if i < N_INBOUND // 2:
                phone_writes(simnet, i)
        worker.kill()
        for i in range(N_INBOUND // 2, N_INBOUND):
            phone_writes(simnet, i)
        for i in range(N_SENDS // 2, N_SENDS - 5):
            assert send(api, i) == 202  # accepted and queued while the worker is away
        worker.start()
        check_nothing_lost(api, simnet, receiver, "/kill-worker")
    finally:
        receiver.stop()
