"""The dashboard over plain HTTP against real processes: CSRF, cookie flags (Secure in
production), a key that survives restarts, the sign-in rate limit, tenant isolation,
the QR timeout card, an unreachable worker explained, translated API errors."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import make_user
from tests.conftest import ZapgateProcess, base_env, free_port, wait_until

PASSWORD = "s3cret-password"
HTML = {"Accept": "text/html"}


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def signed_up(base: str, email: str) -> httpx.Client:
    c = httpx.Client(base_url=base, headers=HTML, timeout=20)
    token = csrf(c.get("/signup").text)
    r = c.post("/signup", data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return c


def htmx_post(c: httpx.Client, path: str, data: dict[str, str] | None = None) -> httpx.Response:
    token = csrf(c.get("/").text)
    return c.post(path, data=data or {}, headers={"HX-Request": "true", "X-CSRF-Token": token})


@dataclass
class Dev:
    proc: ZapgateProcess
    env: dict[str, str]
    tmp: Path

    @property
    def url(self) -> str:
        return self.proc.url


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """Development `zapgate serve`, no ZAPGATE_SECRET_KEY, QRs that time out quickly."""
    tmp = tmp_path_factory.mktemp("dash")
    port = free_port()
    env = base_env(
        tmp / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_QR_FIRST_TTL="1",
        ZAPGATE_QR_TTL="1",
        ZAPGATE_QR_MAX_ROTATIONS="1",
    )
    proc = ZapgateProcess(args=["serve"], env=env, port=port, log_path=tmp / "serve.log")
    proc.start()
    try:
        yield Dev(proc=proc, env=env, tmp=tmp)
    finally:
        proc.stop()


def test_signed_out_redirects_and_cookie_flags(dev: Dev) -> None:
    r = httpx.get(dev.url + "/", headers=HTML)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    cookie = r.headers["set-cookie"]
    assert "zapgate_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie and "Secure" not in cookie  # development over http
    r = httpx.get(dev.url + "/login", headers=HTML)
    assert r.status_code == 200
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"


def test_forms_need_the_csrf_token(dev: Dev) -> None:
    c = httpx.Client(base_url=dev.url, headers=HTML)
    token = csrf(c.get("/signup").text)
    data = {"email": "csrf@example.com", "password": PASSWORD}
    assert c.post("/signup", data=data).status_code == 403  # no token
    assert c.post("/signup", data={**data, "csrf_token": "x" * 43}).status_code == 403
    # another visitor's (valid) token is no good with this cookie
    other = csrf(httpx.get(dev.url + "/signup").text)
    assert c.post("/signup", data={**data, "csrf_token": other}).status_code == 403
    assert c.post("/signup", data={**data, "csrf_token": token}).status_code == 303

    # htmx posts carry it in X-CSRF-Token; without it nothing happens
    r = c.post("/ui/sessions/default/connect", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "did not come from this site" in r.text
    assert "Connect WhatsApp" in c.get("/").text  # still not started
    fresh = csrf(c.get("/").text)
    assert fresh != token  # a new token after signing in
    r = c.post(
        "/ui/sessions/default/connect", headers={"HX-Request": "true", "X-CSRF-Token": token}
    )
    assert "did not come from this site" in r.text  # the pre-sign-in token is dead
    r = c.post(
        "/ui/sessions/default/connect", headers={"HX-Request": "true", "X-CSRF-Token": fresh}
    )
    assert r.status_code == 200 and 'id="wa-card"' in r.text
    # a JSON client gets the error shape
    r = c.post("/logout", headers={"Accept": "application/json"})
    assert r.status_code == 403 and r.json()["errcode"] == "csrf_failed"


def test_users_never_see_each_other(dev: Dev) -> None:
    alice = signed_up(dev.url, "alice-dash@example.com")
    bob = signed_up(dev.url, "bob-dash@example.com")
    _, carol_key = make_user(dev.env, "carol-api@example.com")
    carol = {"Authorization": f"Bearer {carol_key}"}
    r = httpx.put(dev.url + "/v1/sessions/bobonly", headers=carol, json={"start": False})
    assert r.status_code == 201
    # Carol's session does not exist for Alice: pages, fragments and actions alike
    assert alice.get("/sessions/bobonly").status_code == 404
    assert alice.get("/ui/sessions/bobonly/card").status_code == 404
    assert alice.get("/ui/sessions/bobonly/conversation").status_code == 404
    r = htmx_post(alice, "/ui/sessions/bobonly/logout")
    assert "You have no session named" in r.text and "carol" not in r.text
    r = httpx.get(dev.url + "/v1/sessions/bobonly", headers=carol)
    assert r.json()["state"] == "STOPPED"  # untouched

    # Bob's API keys can't be revoked by Alice
    bob.post("/keys", data={"csrf_token": csrf(bob.get("/keys").text), "name": "bobkey"})
    key_id = re.search(r'data-key-id="(\d+)"', bob.get("/keys").text)
    assert key_id
    r = alice.post(
        f"/keys/{key_id.group(1)}/revoke", data={"csrf_token": csrf(alice.get("/keys").text)}
    )
    assert r.status_code == 404
    assert "bobkey" in bob.get("/keys").text and "bobkey" not in alice.get("/keys").text

    # a cookie is signed: editing the user id inside it signs nobody in
    value = alice.cookies["zapgate_session"]
    payload, _, sig = value.partition(".")
    forged = httpx.Client(base_url=dev.url, headers=HTML)
    forged.cookies.set("zapgate_session", payload[:-2] + "xx." + sig)
    assert forged.get("/").status_code == 303


def test_sign_in_is_rate_limited(dev: Dev) -> None:
    signed_up(dev.url, "limited@example.com")
    c = httpx.Client(base_url=dev.url, headers=HTML)
    token = csrf(c.get("/login").text)
    bad = {"csrf_token": token, "email": "limited@example.com", "password": "wrong-password"}
    for _ in range(5):
        r = c.post("/login", data=bad)
        assert r.status_code == 401 and "Wrong e-mail or password." in r.text
    r = c.post("/login", data={**bad, "password": PASSWORD})  # even the right one now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Too many failed sign-in attempts." in r.text
    # another e-mail from the same address is not held back
    r = c.post("/login", data={**bad, "email": "someone-else@example.com"})
    assert r.status_code == 401


def _fail_sign_ins(base: str, email: str, n: int, forwarded: bool) -> httpx.Response:
    """n failed sign-ins for `email`, each claiming another X-Forwarded-For address (when
    `forwarded`); returns the answer to one more attempt."""
    c = httpx.Client(base_url=base, headers=HTML)
    bad = {"csrf_token": csrf(c.get("/login").text), "email": email, "password": "wrong-pw"}
    for i in range(n + 1):
        headers = {"X-Forwarded-For": f"203.0.113.{i + 1}"} if forwarded else {}
        r = c.post("/login", data=bad, headers=headers)
        if i < n:
            assert r.status_code == 401, r.text
    return r


def test_rotating_x_forwarded_for_does_not_bypass_the_limit(dev: Dev) -> None:
    """Issue 8.7: X-Forwarded-For was believed from any local client."""
    r = _fail_sign_ins(dev.url, "rotating@example.com", 5, forwarded=True)
    assert r.status_code == 429


def test_x_forwarded_for_is_believed_from_a_trusted_proxy(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path / "data", ZAPGATE_PORT=str(port), ZAPGATE_TRUSTED_PROXIES="127.0.0.1")
    proc = ZapgateProcess(args=["serve"], env=env, port=port, log_path=tmp_path / "serve.log")
    proc.start()
    try:
        # Behind a trusted proxy, each forwarded address is its own client.
        r = _fail_sign_ins(proc.url, "proxied@example.com", 5, forwarded=True)
        assert r.status_code == 401
    finally:
        proc.stop()


def test_qr_timeout_shows_try_again(dev: Dev) -> None:
    c = signed_up(dev.url, "timeout@example.com")
    htmx_post(c, "/ui/sessions/default/connect")

    def card() -> str:
        return c.get("/ui/sessions/default/card", headers={"HX-Request": "true"}).text

    text = wait_until(
        lambda: next((t for t in [card()] if 'id="qr-timeout"' in t), None), timeout=20
    )
    assert 'data-reason="qr_timeout"' in text and "The QR code expired." in text
    assert "Try again" in text


def test_pairing_code_and_language_of_pages_and_api(dev: Dev) -> None:
    c = signed_up(dev.url, "pair@example.com")
    r = htmx_post(c, "/ui/sessions/default/pair", {"phone": "+5511999990077"})
    code = re.search(r'data-code="([A-Z0-9]{8})"', r.text)
    assert code, r.text
    token = csrf(c.get("/").text)
    c.post(
        "/lang", data={"csrf_token": token, "lang": "pt_BR"}, headers={"Referer": dev.url + "/keys"}
    )
    assert "Meu WhatsApp" in c.get("/").text
    assert "Código de pareamento" in c.get("/ui/sessions/default/card").text

    # API errors: same catalogs, chosen by Accept-Language; errcodes unchanged
    r = httpx.get(dev.url + "/v1/sessions", headers={"Accept-Language": "pt-BR,pt;q=0.9"})
    body = r.json()
    assert r.status_code == 401 and body["errcode"] == "unauthorized"
    assert body["error"] == "Nenhuma chave de API foi enviada."
    assert body["hint"].startswith("Envie sua chave de API")
    r = httpx.get(dev.url + "/v1/sessions")
    assert r.json()["error"] == "No API key was sent."
    _, key = make_user(dev.env, "api-pt@example.com")
    r = httpx.get(
        dev.url + "/v1/sessions/nope",
        headers={"Authorization": f"Bearer {key}", "Accept-Language": "pt-BR"},
    )
    assert r.status_code == 404 and r.json()["errcode"] == "session_not_found"
    assert r.json()["error"] == "Você não tem uma sessão chamada 'nope'."


def test_secret_key_survives_a_restart(dev: Dev) -> None:
    c = signed_up(dev.url, "restart@example.com")
    key_file = dev.tmp / "data" / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    dev.proc.stop()
    dev.proc.start()
    assert c.get("/").status_code == 200  # still signed in


def test_production_cookies_are_secure_and_signup_can_be_closed(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(
        tmp_path / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_ENV="production",
        ZAPGATE_SECRET_KEY="a-long-random-production-secret-value",
        ZAPGATE_SIGNUP_ENABLED="false",
    )
    proc = ZapgateProcess(args=["serve"], env=env, port=port, log_path=tmp_path / "p.log")
    proc.start()
    try:
        r = httpx.get(proc.url + "/login", headers=HTML)
        cookie = r.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "/signup" not in r.text
        assert httpx.get(proc.url + "/signup", headers=HTML).status_code == 403
        assert not (tmp_path / "data" / "secret_key").exists()  # the configured key is used
        assert 'id="sim-panel"' not in r.text
    finally:
        proc.stop()


def test_unreachable_worker_is_explained(tmp_path: Path) -> None:
    port, dead = free_port(), free_port()
    env = base_env(
        tmp_path / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_TOPOLOGY="shared",
        ZAPGATE_WORKER_URL=f"http://127.0.0.1:{dead}",
    )
    proc = ZapgateProcess(args=["web"], env=env, port=port, log_path=tmp_path / "web.log")
    proc.start()
    try:
        c = signed_up(proc.url, "far@example.com")
        r = htmx_post(c, "/ui/sessions/default/connect")
        assert r.status_code == 200
        assert 'id="worker-unreachable"' in r.text
        assert f"http://127.0.0.1:{dead}" in r.text and f"<code>{dead}</code>" in r.text
        assert "What to check:" in r.text
        page = c.get("/")
        assert page.status_code == 200 and 'id="worker-unreachable"' in page.text
    finally:
        proc.stop()


def test_private_webhook_url_is_refused_readably(dev: Dev) -> None:
    """This server runs without ZAPGATE_ALLOW_PRIVATE_URLS: a loopback webhook URL is
    refused by the SSRF guard, and the form says so (translated) instead of failing."""
    c = signed_up(dev.url, "private-hook@example.com")
    url = "http://127.0.0.1:9/hook"
    for lang, lead, detail in (
        (
            "en",
            "This server only sends webhooks to public addresses.",
            "URL: 127.0.0.1 resolves to a non-public address.",
        ),
        (
            "pt-BR",
            "Este servidor só envia webhooks para endereços públicos.",
            "URL: 127.0.0.1 aponta para um endereço que não é público.",
        ),
    ):
        token = csrf(c.get("/webhooks").text)
        r = c.post(
            "/webhooks",
            data={"csrf_token": token, "url": url, "events": ["message.received"]},
            headers={"Accept-Language": lang},
        )
        assert r.status_code == 422
        assert 'id="webhook-error"' in r.text and 'role="alert"' in r.text
        assert lead in r.text and detail in r.text and "ZAPGATE_ALLOW_PRIVATE_URLS" in r.text
        assert f'value="{url}"' in r.text and 'aria-invalid="true"' in r.text  # kept, marked
        assert 'value="message.received" checked' in r.text
    assert "data-webhook-id=" not in c.get("/webhooks").text


def test_out_of_range_ids_in_dashboard_paths_are_a_page_never_a_500(dev: Dev) -> None:
    """Issue 8 item 4: a key or webhook id beyond 64 bits (or not positive) is the
    dashboard's 422 page, never an overflow in SQL."""
    c = signed_up(dev.url, "ranges@example.com")
    token = csrf(c.get("/keys").text)
    for bad in (str(2**63), str(2**64 + 5), "9" * 40, "0", "-1"):
        pages = [
            c.get(f"/webhooks/{bad}"),
            c.get(f"/ui/webhooks/{bad}/deliveries"),
            c.post(f"/webhooks/{bad}/ping", data={"csrf_token": token}),
            c.post(f"/webhooks/{bad}/delete", data={"csrf_token": token}),
            c.post(f"/keys/{bad}/revoke", data={"csrf_token": token}),
        ]
        for r in pages:
            assert r.status_code == 422, (r.request.url, r.status_code, r.text[:300])
            assert r.headers["content-type"].startswith("text/html"), r.request.url
    # The largest id that fits is still just one that does not exist.
    assert c.get(f"/webhooks/{2**63 - 1}").status_code == 404
    r = c.post(f"/keys/{2**63 - 1}/revoke", data={"csrf_token": token})
    assert r.status_code == 404


def test_portuguese_pages_say_nothing_in_english(dev: Dev) -> None:
    """Texts that used to stay English under pt-BR (issue 8 item 20)."""
    c = signed_up(dev.url, "pt-texts@example.com")
    token = csrf(c.get("/").text)
    c.post("/lang", data={"csrf_token": token, "lang": "pt_BR"})
    # a send before the home page's session exists: no internal name 'default'
    r = htmx_post(c, "/ui/sessions/default/messages", {"to": "+5511988887777", "text": "oi"})
    assert "Conecte seu WhatsApp antes: toque em “Conectar WhatsApp”" in r.text
    assert "default" not in re.sub(r'(href|hx-\w+|action)="[^"]*"', "", r.text)
    # the phone number error
    r = htmx_post(c, "/ui/sessions/default/pair", {"phone": "12"})
    assert "'12' não tem código de país: poderia ser um número de qualquer país." in html.unescape(
        r.text
    )
    # the private-URL error ends its sentence before the hint
    token = csrf(c.get("/webhooks").text)
    r = c.post("/webhooks", data={"csrf_token": token, "url": "http://127.0.0.1:9/hook"})
    error = re.search(r'id="webhook-error">(.*?)</div>', r.text, re.DOTALL)
    assert error, r.text
    assert re.search(r'\.\s*<span class="muted">Use uma URL http\(s\) pública\.', error[1]), error[
        1
    ]
    # the 404 page
    r = c.get("/nada-aqui")
    assert r.status_code == 404 and "Página não encontrada" in r.text
    assert "Not found" not in r.text and "Check the URL" not in r.text
