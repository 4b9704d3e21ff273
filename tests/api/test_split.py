"""The split topologies with real processes: `zapgate worker` + `zapgate web`.

Includes the seed incident: three users; development per-user gives B/B+1/B+2 (the old
5001/5002/5003); production shared gives B to everyone and migrates user 3's old B+2
record; a worker that cannot be reached gives a clear 503."""

from __future__ import annotations

import base64
import signal
import time
from pathlib import Path

import httpx

from tests.api.conftest import Api, make_user
from tests.api.test_errors import assert_error
from tests.conftest import ZapgateProcess, base_env, free_port, free_port_block, run_cli, wait_until
from tests.media_samples import png_bytes
from zapgate.cli import SHUTDOWN_GRACE_SECONDS

TOKEN = "worker-token-Qm4v8Rz1Lx7Nc2Kp9Tw5Hb3J"
SECRET = "secret-key-Jt6Bw9Xe2Qh5Nv8Ma3Ls7C"
PHONE = "+5511999990003"


def worker_proc(spawn, tmp: Path, port: int, name: str = "worker", **env: str) -> ZapgateProcess:  # type: ignore[no-untyped-def]
    e = base_env(tmp / name, ZAPGATE_WORKER_TOKEN=TOKEN, **env)
    return spawn(["worker", "--port", str(port)], e, port, name=name)  # type: ignore[no-any-return]


def test_shared_topology_end_to_end(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wport, port = free_port(), free_port()
    worker = worker_proc(spawn, tmp_path, wport).start()
    env = base_env(
        tmp_path / "web",
        ZAPGATE_TOPOLOGY="shared",
        ZAPGATE_PORT=str(port),
        ZAPGATE_WORKER_URL=f"http://127.0.0.1:{wport}",
        ZAPGATE_WORKER_TOKEN=TOKEN,
    )
    _, key = make_user(env, "shared@example.com")
    web = spawn(["web"], env, port, name="web").start()
    api = Api(web.url, key)

    s = api.put("/v1/sessions/default").json()
    assert s["port"] == wport and s["worker_url"] == f"http://127.0.0.1:{wport}"
    wait_until(lambda: api.state("default") == "SCAN_QR", what="SCAN_QR")
    qr = api.get("/v1/sessions/default/qr").json()["qr"]
    assert api.post("/v1/sim/scan", json={"qr": qr, "phone": PHONE}).status_code == 200
    wait_until(lambda: api.state("default") == "CONNECTED", what="CONNECTED")
    assert (
        api.post(
            "/v1/sessions/default/messages", json={"to": "+5511911112222", "text": "oi"}
        ).status_code
        == 201
    )

    # Media crosses the worker's internal API both ways: an upload to send, and an
    # inbound image the web tier fetches from the worker that saved it.
    image = png_bytes()
    b64 = base64.b64encode(image).decode()
    r = api.post(
        "/v1/sessions/default/messages",
        json={"to": "+5511911112222", "media": {"type": "image", "base64": b64}},
    )
    assert r.status_code == 201 and r.json()["media"]["size"] == len(image), r.text
    r = api.post(
        "/v1/sim/phones/+5511911113333/messages",
        json={"to": PHONE, "media": {"type": "image", "base64": b64}},
    )
    assert r.status_code == 201, r.text
    inbound = wait_until(
        lambda: api.get("/v1/sessions/default/messages", params={"direction": "in"}).json()[
            "items"
        ],
        what="the inbound image",
    )
    assert api.get(inbound[0]["media"]["url"]).content == image

    # The session dir lives on the worker, under its own data dir.
    assert (tmp_path / "worker" / "sessions" / s["client_id"]).is_dir()
    assert (tmp_path / "worker" / "sessions" / s["client_id"] / "media").is_dir()

    worker.kill()
    r = api.get("/v1/sessions/default/qr")
    body = assert_error(r, 503, "worker_unreachable")
    assert f"http://127.0.0.1:{wport}" in body["error"] and f"port {wport}" in body["error"]
    assert "u1/default" in body["error"]
    assert r.headers.get("retry-after")
    assert httpx.get(web.url + "/readyz").status_code == 503
    assert httpx.get(web.url + "/healthz").status_code == 200

    worker.start()  # restores the linked session from its session dir, no QR
    wait_until(
        lambda: api.get("/v1/sessions/default/messages", params={"limit": 1}).status_code == 200,
        what="web sees the worker again",
    )

    # One send while the worker restores the session: sent at once (201) or queued (202)
    # and sent as soon as the session is back; either way it goes out. (Sending in a loop
    # until a 201 would spend the anti-ban rate's burst and queue the later ones.)
    sent = api.post("/v1/sessions/default/messages", json={"to": "+5511911112222", "text": "ok"})
    assert sent.status_code in (201, 202), sent.text

    def went_out() -> bool:
        items = api.get("/v1/sessions/default/messages", params={"direction": "out"}).json()
        return any(
            m["id"] == sent.json()["id"] and m["status"] in ("sent", "delivered", "read")
            for m in items["items"]
        )

    wait_until(went_out, timeout=30, what="the send after the worker restart to go out")
    assert "restored 1 linked session" in worker.log()


def test_a_worker_stops_promptly_while_a_web_tier_long_polls_it(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The web tier's journal long poll waits up to 20 s on the worker; SIGTERM must not
    wait for it (the worker stopped only when the poll ended, ~20 s, or was killed)."""
    wport, port = free_port(), free_port()
    worker = worker_proc(spawn, tmp_path, wport).start()
    env = base_env(
        tmp_path / "web",
        ZAPGATE_TOPOLOGY="shared",
        ZAPGATE_PORT=str(port),
        ZAPGATE_WORKER_URL=f"http://127.0.0.1:{wport}",
        ZAPGATE_WORKER_TOKEN=TOKEN,
    )
    _, key = make_user(env, "poll@example.com")
    api = Api(spawn(["web"], env, port, name="web").start().url, key)
    api.put("/v1/sessions/default")
    wait_until(lambda: api.state("default") == "SCAN_QR", what="SCAN_QR")
    assert worker.proc is not None
    started = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    worker.proc.wait(timeout=15)
    assert time.monotonic() - started < SHUTDOWN_GRACE_SECONDS + 5


def test_wrong_worker_token_is_a_clear_error(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wport, port = free_port(), free_port()
    worker_proc(spawn, tmp_path, wport).start()
    env = base_env(
        tmp_path / "web",
        ZAPGATE_TOPOLOGY="shared",
        ZAPGATE_PORT=str(port),
        ZAPGATE_WORKER_URL=f"http://127.0.0.1:{wport}",
        ZAPGATE_WORKER_TOKEN="another-token-" + "q" * 20,
    )
    _, key = make_user(env, "tok@example.com")
    web = spawn(["web"], env, port, name="web").start()
    r = Api(web.url, key).put("/v1/sessions/default")
    body = assert_error(r, 502, "worker_error")
    assert "ZAPGATE_WORKER_TOKEN" in body["hint"]
    # The internal API refuses callers without the token.
    assert httpx.get(f"http://127.0.0.1:{wport}/internal/health").status_code == 401


def test_seed_incident(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base = free_port_block(3)  # plays the role of 5001, 5002, 5003
    port = free_port()
    dev = base_env(
        tmp_path / "web",
        ZAPGATE_TOPOLOGY="per-user",
        ZAPGATE_PORT=str(port),
        ZAPGATE_BASE_PORT=str(base),
        ZAPGATE_WORKER_TOKEN=TOKEN,
    )
    keys = [make_user(dev, f"user{n}@example.com")[1] for n in (1, 2, 3)]
    # Development: one worker per port, for users 1 and 2 only.
    for n in (0, 1):
        worker_proc(spawn, tmp_path, base + n, name=f"worker{n + 1}").start()
    web = spawn(["web"], dev, port, name="web-dev").start()
    apis = [Api(web.url, k) for k in keys]
    got = [api.put("/v1/sessions/default", json={"start": False}).json()["port"] for api in apis]
    assert got == [base, base + 1, base + 2]

    # User 3's worker does not exist: a clear 503 naming the URL, the port and the cause.
    r = apis[2].post("/v1/sessions/default/start")
    body = assert_error(r, 503, "worker_unreachable")
    assert f"http://127.0.0.1:{base + 2}" in body["error"] and f"port {base + 2}" in body["error"]
    assert "ZAPGATE_TOPOLOGY=shared" in body["hint"]
    # ... and it fails fast the second time: the health cache remembers.
    assert apis[2].post("/v1/sessions/default/start").status_code == 503
    web.stop()

    # Production with per-user is refused at start-up, with the explanation.
    prod = {**dev, "IS_PRODUCTION": "true", "ZAPGATE_SECRET_KEY": SECRET}
    out = run_cli(["web"], prod)
    assert out.returncode == 2 and "per-user is for development only" in out.stderr

    # Production, shared: everyone on the one worker (base), user 3's record migrated.
    prod.update(ZAPGATE_TOPOLOGY="shared", ZAPGATE_WORKER_URL=f"http://127.0.0.1:{base}")
    web = spawn(["web"], prod, port, name="web-prod").start()
    ports = [api.get("/v1/sessions/default").json()["port"] for api in apis]
    assert ports == [base, base, base]
    assert f"session u3/default: port {base + 2} -> {base}" in web.log()
    assert f"session u2/default: port {base + 1} -> {base}" in web.log()
    assert "session u1/default" not in web.log()
    # Sessions stay apart by client id and session dir on the shared worker.
    client_ids = {api.get("/v1/sessions/default").json()["client_id"] for api in apis}
    assert len(client_ids) == 3
    for api in apis:
        assert api.post("/v1/sessions/default/start").status_code == 200
    wait_until(lambda: all(api.state("default") == "SCAN_QR" for api in apis), what="3 QRs")
    r = apis[2].get("/v1/sessions/default/qr")
    assert r.status_code == 200
    log = web.log()
    assert (
        f"user 3 requesting QR code for session default on http://127.0.0.1:{base} (port {base})"
        in log
    )
    assert f"worker http://127.0.0.1:{base} is reachable" in log
    shared = tmp_path / "worker1" / "sessions"
    assert {p.name for p in shared.iterdir()} == client_ids
