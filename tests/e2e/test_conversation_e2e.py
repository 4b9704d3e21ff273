"""The conversation view in a real browser, in pt-BR on a 390 px phone: link a session
with the simulated phone, have a friend write, reply to it and react to it from the
dashboard, then see an edit and a deletion made through the API ("editada", "Mensagem
apagada"), with a photo, a location, contacts and a poll in the chat too. Screenshots:
tests/e2e/screenshots/conversation-pt-BR-phone*.png (gitignored)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import run_cli
from tests.e2e.conftest import DESKTOP, PASSWORD, PHONE, SCREENSHOTS, Site, shot, sync_api
from tests.media_samples import png_bytes

expect = sync_api.expect
MY_PHONE = "+5511999990021"
FRIEND = "+5511988880021"
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="pt-BR", timezone_id="UTC"
    )
    ctx.set_default_timeout(15_000)
    yield ctx.new_page()
    ctx.close()


def api_headers(site: Site, email: str) -> dict[str, str]:
    out = run_cli(["keys", "create", email, "--name", "e2e-convo"], site.env)
    assert out.returncode == 0, out.stderr
    return {"Authorization": f"Bearer {out.stdout.split()[-1]}"}


def fits(page: Any, name: str) -> None:
    shot(page, f"conversation-pt-BR-phone-{name}")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert page.evaluate(NO_OVERFLOW), f"{name}: sideways scroll {width}"


def test_reply_react_edit_and_delete_in_portuguese_on_a_phone(site: Site, phone: Any) -> None:
    email = "conversa@example.com"
    out = run_cli(["users", "create", email, "--password-stdin"], site.env, PASSWORD + "\n")
    assert out.returncode == 0, out.stderr
    headers = api_headers(site, email)

    page = phone
    page.goto(site.url + "/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page).to_have_url(site.url + "/")
    expect(page.locator("#conversation")).to_contain_text("Nenhuma mensagem ainda")

    # link the session with the simulated phone shown on the page
    page.locator("#connect").click()
    expect(page.locator("[data-qr]")).to_be_visible()
    page.locator("#sim-phone").fill(MY_PHONE)
    page.get_by_role("button", name="Escanear o QR code da tela").click()
    expect(page.locator("#wa-connected")).to_contain_text("Conectado como +55 11 99999-0021")

    # a friend writes, from the dashboard's simulated phone: the chat opens by itself
    page.locator("#sim-sender").fill(FRIEND)
    page.locator("#sim-text").fill("Oi! Você tem o pedido 1234 pronto?")
    page.get_by_role("button", name="Enviar pelo celular simulado").click()
    hello = page.locator(".msg-in").filter(has_text="pedido 1234")
    expect(hello).to_have_count(1)
    expect(page.locator("#convo-head")).to_contain_text("+55 11 98888-0021")
    expect(page.locator(".chat-item.on .unread")).to_contain_text("1")

    # ... and sends a photo (the simulated phone, through /v1/sim)
    r = httpx.post(
        site.url + f"/v1/sim/phones/{FRIEND}/messages",
        headers=headers,
        json={
            "to": MY_PHONE,
            "text": "a foto da caixa",
            "media": {"type": "image", "base64": base64.b64encode(png_bytes(64)).decode()},
        },
    )
    assert r.status_code == 201, r.text
    photo = page.locator(".msg-in").filter(has_text="a foto da caixa")
    expect(photo.locator("img")).to_be_visible()
    assert photo.locator("img").evaluate("img => img.naturalWidth") == 64

    # reply from the dashboard: the menu, "Responder", the composer quotes it
    hello.locator(".msg-menu-btn").click()
    hello.get_by_role("link", name="Responder").click()
    expect(page.locator("#reply-preview")).to_contain_text("pedido 1234")
    expect(page.locator("#composer-text")).to_be_focused()
    fits(page, "replying")
    page.locator("#composer-text").fill("Sim, pode vir buscar!")
    page.get_by_role("button", name="Enviar mensagem").click()
    answer = page.locator(".msg-out").filter(has_text="Sim, pode vir buscar!")
    expect(answer).to_have_count(1)
    expect(answer.locator(".quote")).to_contain_text("pedido 1234")
    expect(page.locator("#reply-preview")).to_have_count(0)
    expect(answer).to_have_attribute("data-status", "read")
    # the quote links to the message it quotes
    hello_id = hello.get_attribute("data-id")
    assert answer.locator("a.quote").get_attribute("href") == f"#msg-{hello_id}"

    # react to the friend's message
    hello.locator(".msg-menu-btn").click()
    hello.get_by_role("button", name="Reagir com ❤️").click()
    expect(hello.locator(".reactions")).to_contain_text("❤️")
    expect(hello.locator(".msg-menu[open]")).to_have_count(0)

    # a location, a contact and a poll sent through the API show in the chat
    base = site.url + "/v1/sessions/default/messages"
    pin = {"latitude": -23.5614, "longitude": -46.6559, "name": "Loja Paulista"}
    for body in (
        {"to": FRIEND, "location": pin},
        {"to": FRIEND, "contacts": [{"name": "Entregas Rápidas", "phone": "+5511977776666"}]},
        {"to": FRIEND, "poll": {"question": "Qual horário?", "options": ["Manhã", "Tarde"]}},
    ):
        r = httpx.post(base, headers=headers, json=body)
        assert r.status_code in (201, 202), r.text
    link = page.locator(".msg-location")
    expect(link).to_have_attribute(
        "href", "https://www.openstreetmap.org/?mlat=-23.561400&mlon=-46.655900"
    )
    expect(page.locator(".contact-card")).to_contain_text("+55 11 97777-6666")
    expect(page.locator(".poll")).to_contain_text("Qual horário?")

    # an edit and a deletion, through the public API, appear as WhatsApp shows them
    r = httpx.post(base, headers=headers, json={"to": FRIEND, "text": "Chego às 15h"})
    first = r.json()["id"]
    r = httpx.post(base, headers=headers, json={"to": FRIEND, "text": "mensagem errada"})
    wrong = r.json()["id"]
    sent = page.locator(f"#msg-{wrong}")
    expect(sent).to_have_attribute("data-status", "read")
    expect(page.locator(f"#msg-{first}")).to_have_attribute("data-status", "read")
    r = httpx.patch(f"{base}/{first}", headers=headers, json={"text": "Chego às 16h"})
    assert r.status_code == 200, r.text
    r = httpx.delete(f"{base}/{wrong}", headers=headers)
    assert r.status_code == 200, r.text
    edited = page.locator(f"#msg-{first}")
    expect(edited).to_contain_text("Chego às 16h")
    expect(edited.locator(".msg-edited")).to_have_text("editada")
    expect(sent).to_contain_text("Mensagem apagada")
    expect(sent).not_to_contain_text("mensagem errada")
    expect(sent.locator(".msg-menu")).to_have_count(0)  # nothing to do on it any more
    fits(page, "chat")
    page.locator("#conversation").screenshot(
        path=str(SCREENSHOTS / "conversation-pt-BR-phone-thread.png")
    )

    # no English in the conversation
    text = page.locator("#conversation").inner_text()
    for english in ("This message was deleted", "edited", "Reply", "Send message", "unread"):
        assert english not in text, english

    # the same chat on a desktop, by its link
    page.set_viewport_size(DESKTOP)
    page.goto(site.url + f"/?chat={FRIEND.replace('+', '%2B')}")
    expect(page.locator("#convo-head")).to_contain_text("+55 11 98888-0021")
    expect(page.locator("#thread .msg")).to_have_count(8)
    shot(page, "conversation-pt-BR-desktop")
