"""The real engine with WhatsApp out of reach (a refusing proxy on 127.0.0.1, so nothing
leaves the machine): the dashboard says why at once, translated; the QR endpoint repeats
why; a pairing-code error names the session, not its internal client id, in the caller's
language; a send the dashboard queues says so."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.conftest import Api, make_user
from tests.conftest import ZapgateProcess, base_env, free_port, run_cli, wait_until

PASSWORD = "offline-password"
HTML = {"Accept": "text/html"}


@dataclass
class Offline:
    proc: ZapgateProcess
    api: Api
    proxy_port: int


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Offline]:
    tmp = tmp_path_factory.mktemp("offline")
    port, proxy_port = free_port(), free_port()  # nothing listens on proxy_port
    env = base_env(
        tmp / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_ENGINE="whatsmeow",
        ZAPGATE_WHATSMEOW_PROXY=f"socks5://127.0.0.1:{proxy_port}",
    )
    _, key = make_user(env, "far@example.com")
    out = run_cli(["users", "set-password", "far@example.com", "--password-stdin"], env, PASSWORD)
    assert out.returncode == 0, out.stderr
    proc = ZapgateProcess(["serve"], env, port, tmp / "serve.log").start()
    api = Api(proc.url, key)
    assert api.put("/v1/sessions/celular", json={"engine": "whatsmeow"}).status_code in (200, 201)
    wait_until(lambda: api.state("celular") == "DISCONNECTED", what="DISCONNECTED")
    try:
        yield Offline(proc=proc, api=api, proxy_port=proxy_port)
    finally:
        proc.stop()


def signed_in(base: str) -> httpx.Client:
    c = httpx.Client(base_url=base, headers={**HTML, "Accept-Language": "pt-BR"}, timeout=20)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    r = c.post(
        "/login", data={"csrf_token": token[1], "email": "far@example.com", "password": PASSWORD}
    )
    assert r.status_code == 303, r.text
    return c


def test_the_qr_endpoint_repeats_why(offline: Offline) -> None:
    r = offline.api.get("/v1/sessions/celular/qr")
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"].startswith("Session 'celular' is DISCONNECTED (cannot reach proxy ")
    assert f"127.0.0.1:{offline.proxy_port}" in body["error"]
    assert "retrying" in body["hint"]


def test_pair_code_error_names_the_session_in_the_callers_language(offline: Offline) -> None:
    client_id = offline.api.get("/v1/sessions/celular").json()["client_id"]
    r = offline.api.post(
        "/v1/sessions/celular/pair-code",
        json={"phone": "+5511999990003"},
        headers={"Accept-Language": "pt-BR"},
    )
    assert r.status_code == 409, r.text
    body = r.json()
    assert client_id not in body["error"] + body["hint"]
    assert body["error"].startswith("A sessão 'celular' está DISCONNECTED: um código de pareamento")
    assert body["hint"].startswith("Faça POST /v1/sessions/celular/start antes")


def test_the_dashboard_says_why_at_once_and_that_a_send_is_queued(offline: Offline) -> None:
    c = signed_in(offline.proc.url)
    page = c.get("/sessions/celular").text
    reason = re.search(r'id="wa-reason">(.*?)</p>', page, re.DOTALL)
    assert reason, page
    assert (
        reason[1]
        .strip()
        .startswith(f"Motivo: não foi possível alcançar o proxy 127.0.0.1:{offline.proxy_port}: ")
    )
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    r = c.post(
        "/ui/sessions/celular/messages",
        data={"to": "+5511988887777", "text": "espera a conexão"},
        headers={"HX-Request": "true", "X-CSRF-Token": token[1]},
    )
    assert r.status_code == 200, r.text
    assert "Na fila: será enviada quando a sessão estiver conectada." in r.text
    assert "Mensagem enviada." not in r.text
    c.post("/lang", data={"csrf_token": token[1], "lang": "en"})
    r = c.post(
        "/ui/sessions/celular/messages",
        data={"to": "+5511988887777", "text": "still waiting"},
        headers={"HX-Request": "true", "X-CSRF-Token": token[1], "Accept-Language": "en"},
    )
    assert "Queued: it will be sent when the session is connected." in r.text
