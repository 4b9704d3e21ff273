"""Every dashboard page on a 390 px phone in pt-BR: no sideways scrolling (asserted with
`scrollWidth <= innerWidth`), no English left on the page, times in the browser's zone
with the zone shown. Screenshots go to tests/e2e/screenshots/ (gitignored)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import run_cli
from tests.e2e.conftest import PASSWORD, PHONE, Site, shot, sync_api

expect = sync_api.expect
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"
# English that used to show on pt-BR pages.
ENGLISH = re.compile(
    r"one worker inside|session\(s\)|Page not found|not a phone number|Reconnecting|"
    r"Message sent|no session named|is not started"
)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="pt-BR",
        timezone_id="America/Manaus",  # not the server's zone: the browser's wins
    )
    ctx.set_default_timeout(15_000)
    yield ctx.new_page()
    ctx.close()


def check(page: Any, name: str) -> None:
    shot(page, f"phone-pt-{name}")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert page.evaluate(NO_OVERFLOW), f"{name}: sideways scroll {width}"
    body = page.locator("body").inner_text()
    assert not ENGLISH.search(body), f"{name}: English on a pt-BR page: {body[:2000]}"


def api_key(site: Site) -> str:
    out = run_cli(["keys", "create", site.admin_email, "--name", "e2e-phone"], site.env)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[-1]


def test_every_page_fits_a_phone_in_portuguese(site: Site, phone: Any) -> None:
    headers = {"Authorization": f"Bearer {api_key(site)}"}
    # a second session with a long name, and a webhook whose page we visit
    r = httpx.put(site.url + "/v1/sessions/loja-centro-atendimento", headers=headers, json={})
    assert r.status_code in (200, 201), r.text
    r = httpx.post(
        site.url + "/v1/webhooks",
        headers=headers,
        json={"url": "http://127.0.0.1:9/um-endereco-de-webhook-bem-comprido/recebe"},
    )
    assert r.status_code == 201, r.text
    hook_id = r.json()["id"]

    page = phone
    page.goto(site.url + "/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Entrar")
    check(page, "login")
    page.goto(site.url + "/signup")
    check(page, "signup")

    page.goto(site.url + "/login")
    page.locator("#email").fill(site.admin_email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page).to_have_url(site.url + "/")
    check(page, "home-not-connected")

    page.locator("#connect").click()
    expect(page.locator("[data-qr]")).to_be_visible()
    check(page, "home-qr")
    # the state badge is whole inside the card
    card = page.locator("#wa-card").bounding_box()
    badge = page.locator("#wa-state").bounding_box()
    assert card and badge and badge["x"] + badge["width"] <= card["x"] + card["width"]

    page.locator("#sim-phone").fill("+5511999990007")
    page.get_by_role("button", name="Escanear o QR code da tela").click()
    expect(page.locator("#wa-connected")).to_contain_text("Conectado como +55 11 99999-0007")
    page.locator("#send-to").fill("+5511988887777")
    page.locator("#send-text").fill("uma mensagem com um horário")
    page.get_by_role("button", name="Enviar", exact=True).click()
    expect(page.locator("#send-feedback")).to_contain_text("Mensagem enviada.")
    when = page.locator(".msg-out time[data-local]").first
    # the browser's zone (Manaus, UTC-4), named: not the server's São Paulo time
    expect(when).to_have_attribute("data-zone", "America/Manaus")
    expect(when).to_have_text(re.compile(r"^\d{2}:\d{2} (GMT-4|AMT|-04)$"))
    check(page, "home-connected")

    # a queued send, on the session that is not connected
    page.goto(site.url + "/sessions/loja-centro-atendimento")
    page.locator("#send-to").fill("+5511988887777")
    page.locator("#send-text").fill("fica na fila")
    page.get_by_role("button", name="Enviar", exact=True).click()
    expect(page.locator("#send-feedback")).to_have_text(
        re.compile(r"Na fila: será enviada quando a sessão estiver conectada\.")
    )
    check(page, "session")

    page.goto(site.url + "/keys")
    expect(page.locator("#keys-table")).to_be_visible()
    created = page.locator("#keys-table tbody tr td").nth(2).inner_text()
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4},? \d{2}:\d{2} (GMT-4|AMT|-04)", created), created
    check(page, "keys")
    page.goto(site.url + "/webhooks")
    check(page, "webhooks")
    page.goto(site.url + f"/webhooks/{hook_id}")
    check(page, "webhook")
    page.goto(site.url + "/admin")
    expect(page.locator("#workers-table")).to_be_visible()
    expect(page.locator("body")).to_contain_text("um servidor do WhatsApp dentro do processo web")
    check(page, "admin")
    page.goto(site.url + "/admin/sessions")
    expect(page.locator("#sessions-table")).to_contain_text("+55 11 99999-0007")
    # the phone number on one line
    number = page.locator("#sessions-table td.nowrap").filter(has_text="+55 11 99999-0007")
    box = number.bounding_box()
    assert box and box["height"] < 2 * 24, box
    check(page, "admin-sessions")
    resp = page.goto(site.url + "/nada-aqui")
    assert resp is not None and resp.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Página não encontrada")
    check(page, "404")
