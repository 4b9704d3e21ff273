"""The dashboard in a real browser: sign up, connect WhatsApp by scanning the QR code
shown on the page with the simulated phone, send, receive a reply without reloading,
switch language, manage API keys and webhooks (a test ping whose delivery log updates
without a reload), and the admin pages (403 for everybody else).
Screenshots of the main pages at desktop and phone widths go to tests/e2e/screenshots/."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DESKTOP, PASSWORD, PHONE, Site, shot, sync_api
from tests.receiver import Receiver

expect = sync_api.expect
MY_PHONE = "+5511999990003"
FRIEND = "+5511988887777"
_ids = itertools.count(1)


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make(viewport: dict[str, int] = DESKTOP, locale: str = "en-US", **kw: Any) -> Any:
        ctx = browser.new_context(viewport=viewport, locale=locale, **kw)
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def sign_up(page: Any, site: Site, prefix: str = "user") -> str:
    email = f"{prefix}{next(_ids)}@example.com"
    page.goto(site.url + "/signup")
    page.get_by_label("E-mail").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form[action='/signup'] button[type=submit]").click()
    expect(page).to_have_url(site.url + "/")
    return email


def sign_in(page: Any, site: Site, email: str) -> None:
    page.goto(site.url + "/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page).to_have_url(site.url + "/")


def connect_with_sim(page: Any) -> str:
    """Press Connect, read the QR payload the page shows, scan it with the sim phone."""
    page.locator("#connect").click()
    qr = page.locator("[data-qr]")
    expect(qr).to_be_visible()
    payload = qr.get_attribute("data-qr")
    assert payload and payload.startswith("2@"), payload
    assert page.locator("#current-qr").get_attribute("value") == payload
    assert page.locator("[data-qr] svg").count() == 1  # rendered server-side
    page.locator("#sim-phone").fill(MY_PHONE)
    page.get_by_role("button", name="Scan the QR code shown").click()
    expect(page.locator("#wa-connected")).to_contain_text("Connected as +55 11 99999-0003")
    return payload


def test_sign_up_connect_send_and_receive_live(site: Site, new_page: Any) -> None:
    page = new_page()
    page.goto(site.url + "/")
    expect(page).to_have_url(site.url + "/login")  # signed out: to the sign-in page
    shot(page, "desktop-login")
    sign_up(page, site)
    expect(page.get_by_role("heading", level=1)).to_have_text("My WhatsApp")
    expect(page.locator("#wa-state")).to_contain_text("Not connected")
    shot(page, "desktop-home-not-connected")

    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    page.locator("#connect").click()
    expect(page.locator("[data-qr]")).to_be_visible()
    shot(page, "desktop-home-qr")
    payload = page.locator("[data-qr]").get_attribute("data-qr")
    assert payload and payload.startswith("2@")
    page.locator("#sim-phone").fill(MY_PHONE)
    page.get_by_role("button", name="Scan the QR code shown").click()
    expect(page.locator("#wa-connected")).to_contain_text("Connected as +55 11 99999-0003")
    expect(page.locator("#wa-state")).to_have_text(re.compile(r"\s*Connected\s*"))

    page.locator("#send-to").fill(FRIEND)
    page.locator("#send-text").fill("olá, teste do painel")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#send-feedback")).to_contain_text("Message sent.")
    sent = page.locator(".msg-out").filter(has_text="olá, teste do painel")
    expect(sent).to_have_count(1)
    expect(page.locator("#send-text")).to_have_value("")
    # the read receipt arrives by polling: blue double ticks
    expect(sent).to_have_attribute("data-status", "read")
    expect(sent.locator(".tick-read")).to_have_count(1)

    page.locator("#sim-sender").fill(FRIEND)
    page.locator("#sim-text").fill("oi, tudo bem?")
    page.get_by_role("button", name="Send from the simulated phone").click()
    reply = page.locator(".msg-in").filter(has_text="oi, tudo bem?")
    expect(reply).to_have_count(1)
    expect(page.locator("#convo-head")).to_contain_text("+55 11 98888-7777")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    shot(page, "desktop-home-connected")

    page.once("dialog", lambda d: d.accept())
    page.locator("#disconnect").click()
    expect(page.locator("#connect")).to_be_visible()
    expect(page.locator("#wa-state")).to_contain_text("Disconnected")


def test_language_follows_browser_then_user_setting(site: Site, new_page: Any) -> None:
    page = new_page(locale="pt-BR")
    page.goto(site.url + "/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Entrar")
    expect(page.locator("html")).to_have_attribute("lang", "pt-BR")
    page.goto(site.url + "/signup")
    page.locator("#email").fill(f"lang{next(_ids)}@example.com")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Criar conta").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Meu WhatsApp")
    expect(page.locator("#connect")).to_have_text("Conectar WhatsApp")

    page.get_by_role("button", name="EN", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My WhatsApp")
    page.reload()  # the user's setting now beats the browser's Accept-Language
    expect(page.get_by_role("heading", level=1)).to_have_text("My WhatsApp")

    page.get_by_role("button", name="PT", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Meu WhatsApp")
    page.goto(site.url + "/keys")
    page.locator("#key-name").fill("idioma")
    page.get_by_role("button", name="Criar chave").click()
    created = page.locator("#keys-table tbody tr td").nth(2).inner_text()
    # pt-BR dates, in the browser's zone with the zone named
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4},? \d{2}:\d{2} \S+", created), created
    expect(page.locator("#keys-table")).to_contain_text("nunca")


def test_api_key_create_copy_and_revoke(site: Site, new_page: Any) -> None:
    page = new_page()
    sign_up(page, site)
    page.get_by_role("link", name="API keys").click()
    expect(page.locator(".empty")).to_contain_text("You have no API keys yet.")
    page.locator("#key-name").fill("my backend")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key-value").input_value()
    assert key.startswith("zg_"), key
    expect(page.locator("#new-key")).to_contain_text("it will not be shown again")
    page.get_by_role("button", name="Copy", exact=True).click()
    copy = page.locator("button[data-copy]")
    expect(copy).to_have_text("Copied!")
    row = page.locator("#keys-table tbody tr").filter(has_text="my backend")
    expect(row).to_have_count(1)
    expect(row.locator(".key-prefix")).to_have_text(re.compile(re.escape(key[:8])))
    assert key not in page.locator("#keys-table").inner_html()  # only the prefix is listed
    shot(page, "desktop-keys")

    api = httpx.get(site.url + "/v1/sessions", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 200, api.text
    page.reload()  # the key is shown once: a reload neither shows it nor makes another
    expect(page.locator("#new-key")).to_have_count(0)
    expect(page.locator("#keys-table tbody tr")).to_have_count(1)
    expect(row.locator("td").nth(3)).not_to_contain_text("never")  # last used now

    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name=re.compile("Revoke")).click()
    expect(page.locator(".alert-success")).to_contain_text("The key was revoked.")
    expect(page.locator("#keys-table tbody tr").filter(has_text="my backend")).to_have_count(0)
    api = httpx.get(site.url + "/v1/sessions", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 401 and api.json()["errcode"] == "unauthorized"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth + 1"


def test_webhook_create_test_ping_and_live_log(
    site: Site, new_page: Any, receiver: Receiver
) -> None:
    page = new_page()
    sign_up(page, site, prefix="hooks")
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    expect(page.locator(".empty")).to_contain_text("You have no webhooks yet.")
    # a refused URL: a readable error on the form, the typed values kept
    page.get_by_label("URL").fill("ftp://example.com/hook")
    page.get_by_label(re.compile("message.status")).check()
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#webhook-error")).to_have_text(
        "URL: 'ftp://example.com/hook' is not an http(s) URL"
    )
    expect(page.get_by_label("URL")).to_have_value("ftp://example.com/hook")
    expect(page.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("URL")).to_be_focused()
    expect(page.get_by_label(re.compile("message.status"))).to_be_checked()
    shot(page, "desktop-webhooks-error")
    page.get_by_label(re.compile("message.status")).uncheck()

    url = receiver.url("/e2e")
    receiver.fail_first["/e2e"] = 1  # the first attempt fails: the log shows the retry
    page.get_by_label("URL").fill(url)
    page.get_by_label(re.compile("message.received")).check()
    page.get_by_label(re.compile("session.status")).check()
    page.get_by_role("button", name="Add webhook").click()
    secret = page.locator("#new-secret-value").input_value()
    assert secret.startswith("whsec_"), secret
    expect(page.locator("#new-webhook")).to_contain_text("it will not be shown again")
    page.locator("#new-webhook").get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator("#new-webhook button[data-copy]")).to_have_text("Copied!")
    row = page.locator("#webhooks-table tbody tr").filter(has_text=url)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("message.received")
    expect(row).to_contain_text("Active")
    shot(page, "desktop-webhooks")

    row.get_by_role("link", name=re.compile("Delivery log")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delivery log")
    expect(page.locator("#deliveries")).to_contain_text("Nothing sent yet.")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    page.locator("#ping").click()
    expect(page.locator("#ping-feedback")).to_contain_text("Test event sent.")
    delivery = page.locator("#deliveries-table tbody tr")
    expect(delivery).to_have_count(1)
    expect(delivery).to_contain_text("webhook.ping")
    # pending, then (by polling, after one failed attempt and a retry) delivered
    expect(delivery).to_have_attribute("data-status", "delivered")
    expect(delivery).to_contain_text("Delivered")
    expect(delivery.locator("td").nth(2)).to_have_text("2")
    expect(delivery.locator("td").nth(3)).to_have_text("200")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    got = receiver.got("/e2e")
    assert [g.json["type"] for g in got] == ["webhook.ping", "webhook.ping"]
    assert got[-1].signature_ok(secret)
    assert got[0].headers["x-zapgate-event-id"] == got[1].headers["x-zapgate-event-id"]
    expect(delivery).to_contain_text(got[0].headers["x-zapgate-event-id"])
    shot(page, "desktop-webhook-log")

    page.once("dialog", lambda d: d.accept())
    page.locator("#delete-webhook").click()
    expect(page).to_have_url(site.url + "/webhooks?deleted=1")
    expect(page.locator(".alert-success")).to_contain_text("The webhook was deleted.")
    expect(page.locator("#webhooks-table")).to_have_count(0)

    # a phone, in Portuguese
    phone = new_page(viewport=PHONE, is_mobile=True, has_touch=True, locale="pt-BR")
    sign_up(phone, site, prefix="hooksphone")
    phone.goto(site.url + "/webhooks")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Webhooks")
    phone.get_by_label("URL").fill(receiver.url("/phone"))
    phone.get_by_label(re.compile("message.received")).check()
    phone.get_by_role("button", name="Adicionar webhook").click()
    expect(phone.locator("#new-webhook")).to_contain_text("não será mostrado de novo")
    assert phone.evaluate(NO_SIDEWAYS_SCROLL)
    shot(phone, "phone-webhooks")
    phone.get_by_role("link", name=re.compile("Registro de entregas")).click()
    phone.get_by_role("button", name="Enviar teste").click()
    phone_delivery = phone.locator("#deliveries-table tbody tr")
    expect(phone_delivery).to_have_attribute("data-status", "delivered")
    expect(phone_delivery).to_contain_text("Entregue")
    assert phone.evaluate(NO_SIDEWAYS_SCROLL)
    shot(phone, "phone-webhook-log")


def test_admin_sees_all_sessions_and_users_get_403(site: Site, new_page: Any) -> None:
    user_page = new_page()
    email = sign_up(user_page, site, prefix="tenant")
    user_page.locator("#connect").click()
    expect(user_page.locator("[data-qr]")).to_be_visible()
    for path in ("/admin", "/admin/sessions"):
        resp = user_page.goto(site.url + path)
        assert resp is not None and resp.status == 403
        expect(user_page.locator("#forbidden")).to_contain_text("Not allowed")
    expect(user_page.get_by_role("link", name="Admin")).to_have_count(0)
    shot(user_page, "desktop-403")

    admin = new_page()
    sign_in(admin, site, site.admin_email)
    admin.get_by_role("link", name="Admin").click()
    expect(admin.locator("#topology")).to_have_text("embedded")
    workers = admin.locator("#workers-table")
    expect(workers).to_contain_text("embedded")
    expect(workers).to_contain_text("Reachable")
    shot(admin, "desktop-admin-workers")
    admin.get_by_role("link", name="Sessions").click()
    row = admin.locator("#sessions-table tbody tr").filter(has_text=email)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("default")
    expect(row).to_contain_text("Waiting for the QR scan")
    shot(admin, "desktop-admin-sessions")


def test_phone_width_pages(site: Site, new_page: Any) -> None:
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True, locale="pt-BR")
    page.goto(site.url + "/login")
    shot(page, "phone-login")
    sign_up(page, site, prefix="phone")
    shot(page, "phone-home-not-connected")
    page.locator("#connect").click()
    expect(page.locator("[data-qr]")).to_be_visible()
    shot(page, "phone-home-qr")
    page.locator("#sim-phone").fill("+5511999990004")
    page.get_by_role("button", name="Escanear o QR code da tela").click()
    expect(page.locator("#wa-connected")).to_contain_text("Conectado como +55 11 99999-0004")
    page.locator("#send-to").fill(FRIEND)
    page.locator("#send-text").fill("mensagem pelo celular")
    page.get_by_role("button", name="Enviar", exact=True).click()
    expect(page.locator(".msg-out").filter(has_text="mensagem pelo celular")).to_have_count(1)
    no_sideways_scroll = "document.documentElement.scrollWidth <= window.innerWidth + 1"
    assert page.evaluate(no_sideways_scroll)
    shot(page, "phone-home-connected")
    page.goto(site.url + "/keys")
    page.locator("#key-name").fill("celular")
    page.get_by_role("button", name="Criar chave").click()
    assert page.evaluate(no_sideways_scroll)
    shot(page, "phone-keys")

    admin = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(admin, site, site.admin_email)
    admin.goto(site.url + "/admin/sessions")
    expect(admin.locator("#sessions-table")).to_be_visible()
    assert admin.evaluate(no_sideways_scroll)
    shot(admin, "phone-admin-sessions")


def test_keyboard_only_sign_in(site: Site, new_page: Any) -> None:
    page = new_page()
    page.goto(site.url + "/login")
    expect(page.locator("#email")).to_be_focused()  # autofocus: type at once
    page.keyboard.type(site.admin_email)
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(site.url + "/")
    page.keyboard.press("Tab")  # the first stop on every page skips to the content
    expect(page.locator(".skip")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator(".brand")).to_be_focused()
