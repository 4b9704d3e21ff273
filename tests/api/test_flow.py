"""The whole product through real HTTP: a `zapgate serve` process with the sim engine.
Create a session, get its QR, a simulated phone scans it, CONNECTED, send, receive,
restart the process, still CONNECTED without a new QR."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.api.conftest import Api, make_user
from tests.conftest import ZapgateProcess, base_env, free_port, wait_until

PHONE = "+5511999990003"
FRIEND = "+5511988887777"


def test_full_flow_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path / "data", ZAPGATE_PORT=str(port))
    _, key = make_user(env, "flow@example.com")
    proc = ZapgateProcess(args=["serve"], env=env, port=port, log_path=tmp_path / "serve.log")
    proc.start()
    api = Api(proc.url, key)
    try:
        r = api.put("/v1/sessions/default", json={"engine": "sim"})
        assert r.status_code == 201, r.text
        s = r.json()
        assert s["name"] == "default" and s["engine"] == "sim" and s["port"] is None
        assert s["client_id"].startswith("u") and s["worker_id"] == "embedded"
        assert api.put("/v1/sessions/default").status_code == 200  # get-or-create: same one

        wait_until(lambda: api.state("default") == "SCAN_QR", what="SCAN_QR")
        qr = api.get("/v1/sessions/default/qr").json()
        assert qr["qr"].startswith("2@")
        assert base64.b64decode(qr["png_base64"]).startswith(b"\x89PNG")
        png = api.get("/v1/sessions/default/qr", headers={"Accept": "image/png"})
        assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")

        r = api.post("/v1/sim/scan", json={"qr": qr["qr"], "phone": PHONE})
        assert r.status_code == 200, r.text
        wait_until(lambda: api.state("default") == "CONNECTED", what="CONNECTED")
        assert api.get("/v1/sessions/default").json()["phone"] == PHONE

        r = api.post("/v1/sessions/default/messages", json={"to": FRIEND, "text": "olá!"})
        assert r.status_code == 201, r.text
        sent = r.json()
        assert sent["direction"] == "out" and sent["status"] in {"sent", "delivered", "read"}

        def status_of(mid: str) -> str:
            items = api.get("/v1/sessions/default/messages?direction=out").json()["items"]
            return next(m["status"] for m in items if m["id"] == mid)

        wait_until(lambda: status_of(sent["id"]) == "read", what="read receipt")

        r = api.post(
            f"/v1/sim/phones/{FRIEND}/messages", json={"to": PHONE, "text": "oi, tudo bem?"}
        )
        assert r.status_code == 201, r.text

        def inbound() -> list[dict[str, str]]:
            items: list[dict[str, str]] = api.get(
                "/v1/sessions/default/messages?direction=in"
            ).json()["items"]
            return items

        got = wait_until(inbound, what="inbound message")
        assert got[0]["text"] == "oi, tudo bem?" and got[0]["chat"] == FRIEND

        proc.stop()
        proc.start()
        wait_until(lambda: api.state("default") == "CONNECTED", what="CONNECTED after restart")
        r = api.get("/v1/sessions/default/qr")
        assert r.status_code == 409 and r.json()["errcode"] == "wrong_state"
        r = api.post("/v1/sessions/default/messages", json={"to": FRIEND, "text": "de volta"})
        assert r.status_code == 201, r.text
        history = api.get("/v1/sessions/default/messages").json()["items"]
        assert [m["text"] for m in history][:1] == ["de volta"] and len(history) == 3
    finally:
        proc.stop()
    log = proc.log()
    assert "requesting QR code for session default" in log
    assert "restored 1 linked session" in log
    assert "olá" not in log and "tudo bem" not in log  # no message bodies at INFO
