"""Link previews and `chat.read` through a real `zapgate serve` (issue 9).

A loopback server plays the web: a page with Open Graph tags and its image, a page with a
<title> only, and links that fail. The gateway runs with ZAPGATE_ALLOW_PRIVATE_URLS=true
(the pages are on 127.0.0.1); a second one without it shows that a private address is
never fetched and the text goes anyway. Session `a` writes to session `b`'s number; `c`
and `d` are two linked devices of one number, so a chat read through the API on one is
read on the other as WhatsApp tells the account's devices."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image

from tests.api.conftest import Api, make_user
from tests.api.test_errors import assert_error
from tests.api.test_events import link
from tests.api.test_messages import arrived, events, sent
from tests.conftest import ZapgateProcess, base_env, free_port, wait_until
from tests.receiver import Receiver

PA = "+5511999994001"
PB = "+5511999994002"
PC = "+5511999994003"

PAGE = b"""<!doctype html><html><head><meta charset="utf-8">
<title>ignored when og:title is there</title>
<meta property="og:title" content="Pizzaria Bella">
<meta property="og:description" content="As melhores pizzas de S&atilde;o Paulo">
<meta property="og:image" content="/img/cover.png">
</head><body>menu</body></html>"""
TITLE_ONLY = b"<html><head><title>  Just a\n title </title></head><body></body></html>"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1200, 630), (10, 120, 40)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def web() -> Iterator[Receiver]:
    r = Receiver().start()
    r.pages.update(
        {
            "/menu": ("text/html; charset=utf-8", PAGE),
            "/img/cover.png": ("image/png", _png()),
            "/plain": ("text/html", TITLE_ONLY),
            "/file.pdf": ("application/pdf", b"%PDF-1.4\n"),
        }
    )
    yield r
    r.stop()


def _serve(tmp: Path, **env: str) -> tuple[ZapgateProcess, Api]:
    port = free_port()
    full = base_env(tmp / "data", ZAPGATE_PORT=str(port), ZAPGATE_SEND_RATE="off", **env)
    _, key = make_user(full, "previews@example.com")
    proc = ZapgateProcess(["serve"], full, port, tmp / "serve.log").start()
    return proc, Api(proc.url, key)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, web: Receiver) -> Iterator[Api]:
    proc, api = _serve(
        tmp_path_factory.mktemp("previews"),
        ZAPGATE_ALLOW_PRIVATE_URLS="true",
        ZAPGATE_WEBHOOK_BACKOFF_BASE="0.2",
    )
    try:
        hook = api.post("/v1/webhooks", json={"url": web.url("/hook")})
        assert hook.status_code == 201, hook.text
        for name, phone in (("a", PA), ("b", PB), ("c", PC), ("d", PC)):
            link(api, name, phone)
        yield api
    finally:
        proc.stop()


def _jpeg_size(thumbnail: str) -> tuple[int, int]:
    data = base64.b64decode(thumbnail)
    assert data[:2] == b"\xff\xd8"  # a JPEG
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def test_a_link_preview_is_fetched_and_reaches_the_other_side(gw: Api, web: Receiver) -> None:
    url = web.url("/menu")
    msg = sent(gw, "a", {"to": PB, "text": f"Hoje: {url}.", "link_preview": True})
    preview = msg["preview"]
    assert (preview["url"], preview["title"]) == (url, "Pizzaria Bella")
    assert preview["description"] == "As melhores pizzas de São Paulo"
    width, height = _jpeg_size(preview["thumbnail"])
    assert max(width, height) <= 300 and width > height
    at_b = arrived(gw, "b", msg["wa_id"])
    assert at_b["preview"] == preview and at_b["kind"] == "text"
    received = wait_until(
        lambda: [e for e in events(web, "b", "message.received") if e["id"] == at_b["id"]],
        what="message.received at b",
    )
    assert received[0]["preview"] == preview
    # The page and its image were each fetched once.
    assert len(web.got("/menu")) == 1 and len(web.got("/img/cover.png")) == 1


def test_a_page_without_open_graph_gives_its_title(gw: Api, web: Receiver) -> None:
    msg = sent(gw, "a", {"to": PB, "text": web.url("/plain"), "link_preview": True})
    assert msg["preview"] == {
        "url": web.url("/plain"),
        "title": "Just a title",
        "description": None,
        "thumbnail": None,
    }


@pytest.mark.parametrize("path", ["/missing", "/file.pdf"])
def test_a_link_that_cannot_be_previewed_is_sent_without_one(
    gw: Api, web: Receiver, path: str
) -> None:
    msg = sent(gw, "a", {"to": PB, "text": f"veja {web.url(path)}", "link_preview": True})
    assert msg["preview"] is None and msg["status"] != "failed"
    assert arrived(gw, "b", msg["wa_id"])["preview"] is None


def test_no_preview_unless_asked(gw: Api, web: Receiver) -> None:
    before = len(web.got("/plain"))
    msg = sent(gw, "a", {"to": PB, "text": web.url("/plain")})
    assert msg["preview"] is None and len(web.got("/plain")) == before


def test_link_preview_bad_input(gw: Api) -> None:
    bad: list[dict[str, Any]] = [
        {"to": PB, "location": {"latitude": 1, "longitude": 2}, "link_preview": True},
        {"to": PB, "media": {"type": "image", "url": "http://x/y.png"}, "link_preview": True},
        {"to": PB, "text": "x", "link_preview": "maybe"},
    ]
    for body in bad:
        assert_error(gw.post("/v1/sessions/a/messages", json=body), 422)


def test_a_private_address_is_not_fetched_without_the_setting(
    tmp_path: Path, web: Receiver
) -> None:
    proc, api = _serve(tmp_path)
    try:
        link(api, "a", PA)
        link(api, "b", PB)
        before = len(web.got("/menu"))
        msg = sent(api, "a", {"to": PB, "text": f"olha {web.url('/menu')}", "link_preview": True})
        assert msg["preview"] is None and msg["status"] != "failed"
        assert arrived(api, "b", msg["wa_id"])["text"] == f"olha {web.url('/menu')}"
        assert len(web.got("/menu")) == before  # never fetched
        assert "without a link preview of 127.0.0.1" in proc.log()
    finally:
        proc.stop()


def test_chat_read_through_the_api_and_on_the_accounts_other_device(gw: Api, web: Receiver) -> None:
    first = sent(gw, "a", {"to": PC, "text": "um"})
    second = sent(gw, "a", {"to": PC, "text": "dois"})
    at_c = arrived(gw, "c", second["wa_id"])
    arrived(gw, "d", second["wa_id"])
    r = gw.post(f"/v1/sessions/c/chats/{quote(PA)}/read")
    assert r.status_code == 200 and r.json() == {"chat": PA, "read": 2}

    def read_events(session: str) -> list[dict[str, Any]]:
        return events(web, session, "chat.read")

    (at_api,) = wait_until(lambda: read_events("c"), what="chat.read at c")
    assert at_api["chat"] == at_api["phone"] == PA and at_api["up_to"] == at_c["id"]
    assert at_api["chat_lid"] is not None and at_api["read_at"]
    # The account's other device hears of the read from WhatsApp: read there too.
    (at_d,) = wait_until(lambda: read_events("d"), what="chat.read at d")
    assert (at_d["chat"], at_d["up_to"]) == (PA, second["wa_id"])
    chats = gw.get("/v1/sessions/d/chats").json()["items"]
    assert next(c for c in chats if c["id"] == PA)["unread"] == 0
    # Reading again changes nothing: no second event anywhere.
    assert gw.post(f"/v1/sessions/c/chats/{quote(PA)}/read").json()["read"] == 0
    sent(gw, "a", {"to": PB, "text": "a later event, to wait for"})
    wait_until(
        lambda: any(
            e["text"] == "a later event, to wait for" for e in events(web, "b", "message.received")
        ),
        what="a later event",
    )
    assert len(read_events("c")) == 1 and len(read_events("d")) == 1
    assert first["wa_id"] != second["wa_id"]
