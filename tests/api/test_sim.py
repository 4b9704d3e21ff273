"""The simulated network's routes (issue 8 item 2): with two tenants on one server, a
simulated phone only touches what its caller owns (every cross-tenant attempt is a 404 in
the usual shape and changes nothing, through the API and the dashboard's panel); the routes
exist only with the sim engine or ZAPGATE_SIM_API=true, and never in production."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.api.conftest import Api, Server, make_user
from tests.api.test_dashboard import htmx_post, signed_up
from tests.api.test_errors import assert_error
from tests.api.test_events import link
from tests.conftest import ZapgateProcess, base_env, free_port, run_cli, wait_until

ALICE_PHONE = "+5511999992001"
BOB_PHONE = "+5511999992002"
STRANGER = "+5511988882003"


def shown_qr(api: Api, name: str) -> str:
    qr: str = wait_until(
        lambda: (r := api.get(f"/v1/sessions/{name}/qr")).status_code == 200 and r.json()["qr"],
        what=f"the QR of {name}",
    )
    return qr


def inbound(api: Api, name: str) -> list[str]:
    r = api.get(f"/v1/sessions/{name}/messages", params={"direction": "in"})
    return [m["id"] for m in r.json()["items"]]


def test_scanning_another_users_qr_is_404_and_links_nothing(server: Server) -> None:
    alice, bob = server.alice, server.bob
    assert alice.put("/v1/sessions/scanned", json={"engine": "sim"}).status_code == 201
    qr = shown_qr(alice, "scanned")
    alice_client = alice.get("/v1/sessions/scanned").json()["client_id"]
    # Bob without any sim session, then with one of his own showing its QR.
    assert_error(bob.post("/v1/sim/scan", json={"qr": qr, "phone": BOB_PHONE}), 404)
    assert bob.put("/v1/sessions/bobs", json={"engine": "sim"}).status_code == 201
    shown_qr(bob, "bobs")
    r = bob.post("/v1/sim/scan", json={"qr": qr, "phone": BOB_PHONE})
    assert_error(r, 404, "qr_not_found")
    assert alice_client not in r.text
    time.sleep(0.5)
    assert alice.state("scanned") == "SCAN_QR"
    assert bob.state("bobs") == "SCAN_QR"
    # Alice's own scan of the same QR still works, and names her own session.
    r = alice.post("/v1/sim/scan", json={"qr": qr, "phone": ALICE_PHONE})
    assert r.status_code == 200, r.text
    assert r.json() == {"session": "scanned", "device_id": alice_client, "phone": ALICE_PHONE}
    wait_until(lambda: alice.state("scanned") == "CONNECTED", what="alice CONNECTED")


def test_a_simulated_phone_only_writes_to_and_from_the_callers_numbers(server: Server) -> None:
    alice, bob = server.alice, server.bob
    link(alice, "chat", ALICE_PHONE)
    # Bob may not use Alice's number to link his session...
    bob.put("/v1/sessions/bobchat", json={"engine": "sim"})
    r = bob.post("/v1/sim/scan", json={"qr": shown_qr(bob, "bobchat"), "phone": ALICE_PHONE})
    assert_error(r, 404, "phone_not_yours")
    assert bob.state("bobchat") == "SCAN_QR"
    link(bob, "bobchat", BOB_PHONE)
    before_alice, before_bob = inbound(alice, "chat"), inbound(bob, "bobchat")
    # ...nor write into Alice's chat from any number, nor write from Alice's number.
    for sender, to, errcode in [
        (STRANGER, ALICE_PHONE, "number_not_linked"),
        (BOB_PHONE, ALICE_PHONE, "number_not_linked"),
        (ALICE_PHONE, BOB_PHONE, "phone_not_yours"),
    ]:
        r = bob.post(f"/v1/sim/phones/{sender}/messages", json={"to": to, "text": "spoof"})
        body = assert_error(r, 404, errcode)
        assert "u" + str(server.alice_id) + "-" not in r.text, body
    time.sleep(1.0)
    assert inbound(alice, "chat") == before_alice
    assert inbound(bob, "bobchat") == before_bob
    # What is Bob's works.
    r = bob.post(f"/v1/sim/phones/{STRANGER}/messages", json={"to": BOB_PHONE, "text": "oi"})
    assert r.status_code == 201, r.text
    wait_until(lambda: r.json()["id"] in inbound(bob, "bobchat"), what="bob's message")


def test_the_dashboard_panel_follows_the_same_rules(server: Server) -> None:
    alice = server.alice
    link(alice, "panel", "+5511999992011")
    alice.put("/v1/sessions/panel-qr", json={"engine": "sim"})
    qr = shown_qr(alice, "panel-qr")
    before = inbound(alice, "panel")
    dash = signed_up(server.proc.url, "bob-sim-panel@example.com")
    assert htmx_post(dash, "/ui/sessions/default/connect").status_code == 200
    r = htmx_post(dash, "/ui/sessions/default/sim/scan", {"qr": qr, "phone": "+5511999992012"})
    assert "This is not the QR code session" in r.text
    time.sleep(0.5)
    assert alice.state("panel-qr") == "SCAN_QR"
    # Linked by its own QR (the one on the screen), the panel then writes to it only from
    # numbers that are not another account's.
    r = htmx_post(dash, "/ui/sessions/default/sim/scan", {"phone": "+5511999992012"})
    assert r.status_code == 200 and "This is not the QR code" not in r.text
    spoof = {"sender": "+5511999992011", "text": "x"}
    wait_until(
        lambda: (
            "is linked to a session of another account"
            in htmx_post(dash, "/ui/sessions/default/sim/write", spoof).text
        ),
        what="the panel to refuse Alice's number once Bob's session is CONNECTED",
    )
    time.sleep(0.5)
    assert inbound(alice, "panel") == before


def _serve(tmp: Path, **env_extra: str) -> tuple[ZapgateProcess, Api]:
    port = free_port()
    env = base_env(tmp / "data", ZAPGATE_PORT=str(port), **env_extra)
    _, key = make_user(env, "solo@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp / "serve.log").start()
    return proc, Api(proc.url, key)


def test_sim_routes_exist_only_with_the_sim_engine_or_the_switch(tmp_path: Path) -> None:
    body = {"qr": "2@x", "phone": "+5511999992099"}
    proc, api = _serve(tmp_path / "real", ZAPGATE_ENGINE="whatsmeow")
    try:
        r = api.post("/v1/sim/scan", json=body)
        assert_error(r, 404, "not_found")
        assert "There is no endpoint" in r.json()["error"]
        assert "/v1/sim/scan" not in httpx.get(proc.url + "/openapi.json").text
    finally:
        proc.stop()
    proc, api = _serve(tmp_path / "switch", ZAPGATE_ENGINE="whatsmeow", ZAPGATE_SIM_API="true")
    try:
        # The route is there: the caller simply has no sim session.
        r = api.post("/v1/sim/scan", json=body)
        assert "sim engine" in assert_error(r, 404, "not_found")["error"]
    finally:
        proc.stop()


def test_sim_api_switch_is_refused_in_production(tmp_path: Path) -> None:
    env = base_env(
        tmp_path / "data",
        ZAPGATE_ENV="production",
        ZAPGATE_SIM_API="true",
        ZAPGATE_TOPOLOGY="embedded",
        ZAPGATE_SECRET_KEY="Zq8-vN2kLp0wYt5rB7xHc3Ms9dGf1Ej4",
        ZAPGATE_PORT=str(free_port()),
    )
    out = run_cli(["serve"], env)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "ZAPGATE_SIM_API=true in production" in text and "Traceback" not in text
