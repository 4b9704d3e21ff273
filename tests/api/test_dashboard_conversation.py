"""The dashboard's conversation view over plain HTTP against a real `zapgate serve`:
the chats and the open chat's bubbles (a reply, reactions, an edit, a deletion, a photo,
a document, a location, contacts, a poll), the composer with its reply, the reaction
form, a message's media for its owner only, bad input, and another user's session (404).

Two sessions of one user, linked to two simulated numbers: what session `b` sends shows
up in session `a`'s conversation view."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.conftest import Api
from tests.api.test_dashboard import HTML, csrf
from tests.api.test_events import link
from tests.api.test_messages import arrived, message, sent
from tests.conftest import ZapgateProcess, base_env, free_port, run_cli
from tests.media_samples import png_bytes

PASSWORD = "s3cret-password"
PA = "+5511999994001"
PB = "+5511999994002"
CHAT = quote(PB, safe="")


@dataclass
class Site:
    proc: ZapgateProcess
    api: Api
    web: httpx.Client
    other: httpx.Client

    def htmx(self, method: str, path: str, **kw: Any) -> httpx.Response:
        token = csrf(self.web.get("/sessions/a").text)
        headers = {"HX-Request": "true", "X-CSRF-Token": token}
        return self.web.request(method, path, headers=headers, **kw)


def user_with_password(env: dict[str, str], email: str) -> str:
    out = run_cli(["users", "create", email, "--password-stdin"], env, PASSWORD + "\n")
    assert out.returncode == 0, out.stderr
    out = run_cli(["keys", "create", email], env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def signed_in(base: str, email: str) -> httpx.Client:
    c = httpx.Client(base_url=base, headers=HTML, timeout=20)
    token = csrf(c.get("/login").text)
    r = c.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert r.status_code == 303, r.text
    return c


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("convo")
    port = free_port()
    env = base_env(tmp / "data", ZAPGATE_PORT=str(port), ZAPGATE_SEND_RATE="off")
    key = user_with_password(env, "convo@example.com")
    other_key = user_with_password(env, "other-convo@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp / "serve.log").start()
    try:
        api = Api(proc.url, key)
        link(api, "a", PA)
        link(api, "b", PB)
        r = Api(proc.url, other_key).put("/v1/sessions/theirs", json={"start": False})
        assert r.status_code == 201, r.text
        web, other = (
            signed_in(proc.url, "convo@example.com"),
            signed_in(proc.url, "other-convo@example.com"),
        )
        yield Site(proc=proc, api=api, web=web, other=other)
    finally:
        proc.stop()


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_conversation_shows_every_kind_and_acts_on_messages(site: Site) -> None:
    api = site.api
    hello = sent(api, "b", {"to": PA, "text": "oi, do b"})
    photo = sent(
        api,
        "b",
        {"to": PA, "media": {"type": "image", "base64": base64.b64encode(png_bytes()).decode()}},
    )
    doc = sent(
        api,
        "b",
        {
            "to": PA,
            "media": {
                "type": "document",
                "base64": base64.b64encode(b"%PDF-1.4 " + bytes(3000)).decode(),
                "mime": "application/pdf",
                "filename": "pedido.pdf",
            },
        },
    )
    pin = {"latitude": -23.55, "longitude": -46.63, "name": "Sé", "address": "Praça da Sé"}
    sent(api, "b", {"to": PA, "location": pin})
    sent(api, "b", {"to": PA, "contacts": [{"name": "Ana Souza", "phone": "+5511999990055"}]})
    poll = {"question": "Almoço?", "options": ["pizza", "sushi"], "max_selections": 1}
    last = sent(api, "b", {"to": PA, "poll": poll})
    inbound = arrived(api, "a", last["wa_id"])
    at_a_hello = arrived(api, "a", hello["wa_id"])
    at_a_photo = arrived(api, "a", photo["wa_id"])
    at_a_doc = arrived(api, "a", doc["wa_id"])

    # the session page: the chat, opened (the newest), its unread count and preview
    page = site.web.get("/sessions/a")
    assert page.status_code == 200, page.text
    body = text_of(page.text)
    assert 'id="conversation"' in page.text and f'data-chat="{PB}"' in page.text
    assert "+55 11 99999-4002" in body and "📊 Almoço?" in body
    assert re.search(r'class="unread"[^>]*>6<', page.text), page.text
    # every kind, as WhatsApp shows it
    assert "https://www.openstreetmap.org/?mlat=-23.550000&amp;mlon=-46.630000" in page.text
    assert "Praça da Sé" in body and "Ana Souza" in body and "+55 11 99999-0055" in body
    assert "pizza" in body and "sushi" in body and "Select one option" in body
    photo_url = f"/ui/sessions/a/messages/{at_a_photo['id']}/media"
    assert f'<img src="{photo_url}"' in page.text
    assert "pedido.pdf" in body and re.search(r"Document · 2\.9 KB", body), body
    assert inbound["id"] in page.text

    # the media, to its owner: the photo inline, the document a download, never a page
    r = site.web.get(photo_url)
    assert r.status_code == 200 and r.content == png_bytes()
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].startswith("inline")
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["x-content-type-options"] == "nosniff"
    r = site.web.get(f"/ui/sessions/a/messages/{at_a_doc['id']}/media")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    assert r.headers["content-type"] == "application/octet-stream"
    assert site.web.get(f"/ui/sessions/a/messages/{at_a_hello['id']}/media").status_code == 404

    # the fragments the page polls
    r = site.web.get(f"/ui/sessions/a/thread?chat={CHAT}", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "oi, do b" in r.text and "<section" not in r.text
    r = site.web.get(f"/ui/sessions/a/chats?chat={CHAT}", headers={"HX-Request": "true"})
    assert r.status_code == 200 and 'aria-current="true"' in r.text
    # a chat named by its JID is the same chat
    jid = quote(PB.lstrip("+") + "@s.whatsapp.net", safe="")
    r = site.web.get(f"/ui/sessions/a/conversation?chat={jid}", headers={"HX-Request": "true"})
    assert f'data-chat="{PB}"' in r.text

    # reply: the composer quotes the message, the send carries reply_to
    r = site.web.get(f"/ui/sessions/a/composer?reply_to={at_a_hello['id']}&text=rascunho")
    assert r.status_code == 200
    assert f'name="reply_to" value="{at_a_hello["id"]}"' in r.text
    assert 'value="rascunho"' in r.text and "Replying to +55 11 99999-4002" in text_of(r.text)
    r = site.htmx(
        "POST",
        "/ui/sessions/a/messages",
        data={"to": PB, "text": "respondendo", "reply_to": at_a_hello["id"], "composer": "true"},
    )
    assert r.status_code == 200 and r.headers["HX-Trigger"] == "zapgate:sent"
    assert 'id="send-feedback"' not in r.text  # the composer's send: the bubble says it
    reply = next(
        m for m in api.get("/v1/sessions/a/messages").json()["items"] if m["text"] == "respondendo"
    )
    assert reply["reply_to"]["id"] == at_a_hello["id"]
    assert f'<a class="quote" href="#msg-{at_a_hello["id"]}"' in r.text

    # react with a quick reaction; another emoji replaces it; "" removes it
    path = f"/ui/sessions/a/messages/{at_a_hello['id']}/reaction"
    r = site.htmx("POST", path, data={"emoji": "👍"})
    assert r.status_code == 200 and 'data-emoji="👍" data-count="1"' in r.text
    assert (message(api, "a", at_a_hello["id"]) or {})["reactions"]
    r = site.htmx("POST", path, data={"emoji": "❤️"})
    assert 'data-emoji="❤️"' in r.text and 'data-emoji="👍"' not in r.text
    r = site.htmx("POST", path, data={"emoji": ""})
    assert (
        'class="reactions"'
        not in r.text.split(f'id="msg-{at_a_hello["id"]}"')[1].split("</li>\n")[0]
    )

    # an edit and a deletion made through the API show in the bubbles
    own = sent(api, "a", {"to": PB, "text": "primeira versão"})
    r = api.request("PATCH", f"/v1/sessions/a/messages/{own['id']}", json={"text": "nova"})
    assert r.status_code == 200, r.text
    gone = sent(api, "a", {"to": PB, "text": "vou apagar"})
    assert api.delete(f"/v1/sessions/a/messages/{gone['id']}").status_code == 200
    r = site.web.get(f"/ui/sessions/a/thread?chat={CHAT}")
    bubbles = text_of(r.text)
    assert "nova" in bubbles and "edited" in bubbles and "primeira versão" not in bubbles
    assert "This message was deleted" in bubbles and "vou apagar" not in bubbles
    site.htmx("POST", "/lang", data={"lang": "pt_BR"})
    bubbles = text_of(site.web.get(f"/ui/sessions/a/thread?chat={CHAT}").text)
    assert "editada" in bubbles and "Mensagem apagada" in bubbles
    site.htmx("POST", "/lang", data={"lang": "en"})

    # without JavaScript: the forms come back to the page, on the chat
    token = csrf(site.web.get("/sessions/a").text)
    r = site.web.post(path, data={"csrf_token": token, "emoji": "😂"})
    assert r.status_code == 303 and r.headers["location"] == f"/sessions/a?chat={CHAT}"
    r = site.web.post(
        "/ui/sessions/a/messages", data={"csrf_token": token, "to": PB, "text": "sem js"}
    )
    assert r.status_code == 303 and r.headers["location"] == f"/sessions/a?chat={CHAT}"
    r = site.web.get(f"/sessions/a?reply_to={at_a_hello['id']}")
    assert 'id="reply-preview"' in r.text


def test_bad_input(site: Site) -> None:
    hello = sent(site.api, "b", {"to": PA, "text": "para os erros"})
    msg = arrived(site.api, "a", hello["wa_id"])
    # a chat that is no phone, LID or JID; too long; an unknown message
    for path in (
        "/ui/sessions/a/conversation?chat=abc",
        "/ui/sessions/a/thread?chat=12@nowhere",
        f"/ui/sessions/a/chats?chat={'9' * 65}",
    ):
        r = site.web.get(path)
        assert 400 <= r.status_code < 500 and r.status_code != 404, (path, r.status_code)
        assert "Traceback" not in r.text
    assert site.web.get("/ui/sessions/a/composer?reply_to=NOPE").status_code == 404
    assert site.web.get("/ui/sessions/a/messages/NOPE/media").status_code == 404
    # a reaction that is not an emoji, on an unknown message: said in the feedback, nothing
    # swapped
    for message_id, emoji, says in (
        (msg["id"], "x", "is not one emoji"),
        ("NOPE", "👍", "NOPE"),
    ):
        r = site.htmx(
            "POST", f"/ui/sessions/a/messages/{message_id}/reaction", data={"emoji": emoji}
        )
        assert r.status_code == 200 and r.headers["HX-Reswap"] == "none"
        assert 'id="convo-feedback"' in r.text and says in html.unescape(r.text), r.text
    # a send with an empty text from the form: only its feedback changes
    r = site.htmx("POST", "/ui/sessions/a/messages", data={"to": PB, "text": " "})
    assert r.headers["HX-Reswap"] == "none" and 'id="send-feedback"' in r.text
    assert "alert-error" in r.text
    # ... from the composer: the composer says it, with the reply kept
    r = site.htmx(
        "POST",
        "/ui/sessions/a/messages",
        data={"to": PB, "text": " ", "reply_to": msg["id"], "composer": "true"},
    )
    assert 'id="composer-error"' in r.text and f'value="{msg["id"]}"' in r.text
    # a reply to a message that is not there
    r = site.htmx(
        "POST",
        "/ui/sessions/a/messages",
        data={"to": PB, "text": "oi", "reply_to": "NOPE", "composer": "true"},
    )
    assert r.status_code == 200 and 'id="composer-error"' in r.text
    # no CSRF token: refused
    r = site.web.post(f"/ui/sessions/a/messages/{msg['id']}/reaction", data={"emoji": "👍"})
    assert r.status_code == 403


def test_another_users_session_is_not_found(site: Site) -> None:
    hello = sent(site.api, "b", {"to": PA, "text": "só para mim"})
    msg = arrived(site.api, "a", hello["wa_id"])
    other = site.other
    for path in (
        "/sessions/a",
        "/ui/sessions/a/conversation",
        f"/ui/sessions/a/thread?chat={CHAT}",
        f"/ui/sessions/a/chats?chat={CHAT}",
        f"/ui/sessions/a/composer?reply_to={msg['id']}",
        f"/ui/sessions/a/messages/{msg['id']}/media",
    ):
        assert other.get(path).status_code == 404, path
        assert site.web.get(path).status_code in (200, 404)
    # ... and the other way round
    assert other.get("/ui/sessions/theirs/conversation").status_code == 200
    assert site.web.get("/ui/sessions/theirs/conversation").status_code == 404
    assert site.web.get("/ui/sessions/theirs/thread").status_code == 404
    token = csrf(other.get("/").text)
    for path, data in (
        (f"/ui/sessions/a/messages/{msg['id']}/reaction", {"emoji": "👍"}),
        ("/ui/sessions/a/messages", {"to": PB, "text": "intruso"}),
    ):
        r = other.post(path, data={"csrf_token": token, **data})
        assert r.status_code == 404, (path, r.status_code)
    assert not (message(site.api, "a", msg["id"]) or {})["reactions"]
    texts = [m["text"] for m in site.api.get("/v1/sessions/a/messages").json()["items"]]
    assert "intruso" not in texts
