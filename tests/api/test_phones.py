"""Phone numbers through a real `zapgate serve` (issue 8, item 5): a national number is
never read as international; it is refused without a default country and read in the
country that ZAPGATE_DEFAULT_COUNTRY or the session's default_country names."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Api, Server, make_user
from tests.conftest import ZapgateProcess, base_env, free_port, run_cli

NATIONAL = "(11) 98888-7777"
E164 = "+5511988887777"


def _send(api: Api, name: str, to: str) -> tuple[int, dict[str, object]]:
    r = api.post(f"/v1/sessions/{name}/messages", json={"to": to, "text": "oi"})
    return r.status_code, r.json()


def test_national_number_is_refused_without_default_country(server: Server) -> None:
    api = server.alice
    assert api.put("/v1/sessions/phones", json={"start": False}).status_code in (200, 201)
    status, body = _send(api, "phones", NATIONAL)
    assert status == 422 and body["errcode"] == "invalid_phone", body
    assert "ZAPGATE_DEFAULT_COUNTRY" in str(body["hint"])
    status, body = _send(api, "phones", "5511988887777")  # bare digits: no country either
    assert status == 422 and body["errcode"] == "invalid_phone", body
    # the pairing code and the simulated network read numbers the same way
    r = api.post("/v1/sessions/phones/pair-code", json={"phone": NATIONAL})
    assert r.status_code == 422 and r.json()["errcode"] == "invalid_phone", r.text
    r = api.post("/v1/sim/scan", json={"qr": "x", "phone": NATIONAL})
    assert r.status_code == 422 and r.json()["errcode"] == "invalid_phone", r.text


def test_session_default_country(server: Server) -> None:
    api = server.alice
    r = api.put("/v1/sessions/phones-br", json={"start": False, "default_country": "br"})
    assert r.status_code in (200, 201) and r.json()["default_country"] == "BR", r.text
    status, body = _send(api, "phones-br", NATIONAL)
    assert status in (201, 202) and body["chat"] == E164, body
    # the old 8-digit form of a Brazilian mobile is kept as typed
    status, body = _send(api, "phones-br", "(11) 8888-7777")
    assert status in (201, 202) and body["chat"] == "+551188887777", body
    r = api.put("/v1/sessions/phones-br", json={"default_country": "XX"})
    assert r.status_code == 422 and r.json()["errcode"] == "validation_error", r.text
    r = api.put("/v1/sessions/phones-br", json={"default_country": None})
    assert r.status_code == 200 and r.json()["default_country"] is None
    status, body = _send(api, "phones-br", NATIONAL)
    assert status == 422 and body["errcode"] == "invalid_phone", body


def test_default_country_from_the_environment(spawn: type[ZapgateProcess], tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path / "data", ZAPGATE_PORT=str(port), ZAPGATE_DEFAULT_COUNTRY="BR")
    _, key = make_user(env, "br@example.com")
    proc = spawn(["serve"], env, port).start()
    api = Api(proc.url, key)
    assert api.put("/v1/sessions/loja", json={"start": False}).status_code == 201
    status, body = _send(api, "loja", NATIONAL)
    assert status in (201, 202) and body["chat"] == E164, body
    status, body = _send(api, "loja", "+351 912 345 678")  # '+' is international anyway
    assert status in (201, 202) and body["chat"] == "+351912345678", body


def test_bad_default_country_is_a_start_up_error(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data", ZAPGATE_DEFAULT_COUNTRY="Brasil")
    out = run_cli(["doctor"], env)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: Bad configuration: ZAPGATE_DEFAULT_COUNTRY"), out.stderr
    assert "Traceback" not in out.stderr
