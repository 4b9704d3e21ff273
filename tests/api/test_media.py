"""Media messages against a real `zapgate serve` (sim engine): send by base64, URL and
upload; limits and the SSRF guard answer before anything is sent; inbound media is saved
and served to its owner only; a queued media send goes out once the session connects."""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, make_user
from tests.api.test_errors import assert_error
from tests.api.test_events import link
from tests.conftest import ZapgateProcess, base_env, free_port, wait_until
from tests.media_samples import MP4, OGG, PDF, png_bytes

ALICE_PHONE = "+5511999991001"
BOB_PHONE = "+5511999991002"
STRANGER = "+5511988881003"
LIMIT = 20_000  # ZAPGATE_MAX_MEDIA_BYTES of the server under test
IMAGE = png_bytes()
BIG = b"\x89PNG\r\n\x1a\n" + bytes(LIMIT + 100)


class Files(http.server.BaseHTTPRequestHandler):
    """A loopback file server: /img.png, /big.png (over the limit), /missing (404),
    /redirect (to /img.png)."""

    def do_GET(self) -> None:
        routes: dict[str, tuple[int, bytes, dict[str, str]]] = {
            "/img.png": (200, IMAGE, {"Content-Type": "image/png"}),
            "/big.png": (200, BIG, {"Content-Type": "image/png"}),
            "/redirect": (302, b"", {"Location": "/img.png"}),
            "/fake.png": (200, b"<html>not an image</html>", {"Content-Type": "image/png"}),
        }
        status, body, headers = routes.get(self.path, (404, b"no", {}))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ZapgateProcess, Api, Api]]:
    tmp: Path = tmp_path_factory.mktemp("media")
    port = free_port()
    env = base_env(
        tmp / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_ALLOW_PRIVATE_URLS="true",
        ZAPGATE_MAX_MEDIA_BYTES=str(LIMIT),
        ZAPGATE_MAX_DOCUMENT_BYTES=str(LIMIT * 2),
        ZAPGATE_MAX_BODY_BYTES="8192",
        ZAPGATE_POLL_INTERVAL="0.1",
        ZAPGATE_SEND_RATE="off",
    )
    _, alice = make_user(env, "alice-media@example.com")
    _, bob = make_user(env, "bob-media@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp / "serve.log").start()
    a, b = Api(proc.url, alice), Api(proc.url, bob)
    link(a, "main", ALICE_PHONE)
    link(b, "main", BOB_PHONE)
    yield proc, a, b
    proc.stop()


def inbound(api: Api, name: str = "main") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(
        f"/v1/sessions/{name}/messages", params={"direction": "in"}
    ).json()["items"]
    return items


def received(api: Api, message_id: str) -> dict[str, Any]:
    """Wait for `message_id` (WhatsApp's id) to arrive in `api`'s main session."""
    found: dict[str, Any] = wait_until(
        lambda: next((m for m in inbound(api) if m["id"] == message_id), None),
        what=f"inbound {message_id}",
    )
    return found


def sent_to(api: Api, sender: Api, message_id: str, session: str = "main") -> dict[str, Any]:
    """Wait for the message `sender` sent (the gateway's `message_id`) to arrive in `api`'s
    main session, where it has WhatsApp's id, the sender's `wa_id` of it."""

    def wa_id() -> str | None:
        items = sender.get(f"/v1/sessions/{session}/messages", params={"direction": "out"})
        return next((m["wa_id"] for m in items.json()["items"] if m["id"] == message_id), None)

    return received(api, wait_until(wa_id, what=f"WhatsApp's id of {message_id}"))


def download(api: Api, message: dict[str, Any]) -> bytes:
    r = api.get(message["media"]["url"])
    assert r.status_code == 200, r.text
    return r.content


def test_image_by_base64_arrives_and_is_downloadable(gw: tuple[ZapgateProcess, Api, Api]) -> None:
    _, alice, bob = gw
    b64 = base64.b64encode(IMAGE).decode()
    r = alice.post(
        "/v1/sessions/main/messages",
        json={"to": BOB_PHONE, "media": {"type": "image", "base64": b64, "caption": "oi"}},
    )
    assert r.status_code in (201, 202), r.text
    sent = r.json()
    assert sent["text"] == "oi"
    media = sent["media"]
    assert (media["type"], media["mime"], media["size"]) == ("image", "image/png", len(IMAGE))
    assert media["url"] == f"/v1/sessions/main/messages/{sent['id']}/media"
    assert download(alice, sent) == IMAGE  # the sender keeps its copy

    got = sent_to(bob, alice, sent["id"])
    assert got["text"] == "oi" and got["chat"] == ALICE_PHONE
    assert got["media"]["type"] == "image" and got["media"]["size"] == len(IMAGE)
    r = bob.get(got["media"]["url"])
    assert r.status_code == 200 and r.content == IMAGE
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_image_by_url_and_redirect(gw: tuple[ZapgateProcess, Api, Api], files: str) -> None:
    _, alice, bob = gw
    for path in ("/img.png", "/redirect"):
        r = alice.post(
            "/v1/sessions/main/messages",
            json={"to": BOB_PHONE, "media": {"type": "image", "url": files + path}},
        )
        assert r.status_code in (201, 202), r.text
        got = sent_to(bob, alice, r.json()["id"])
        assert download(bob, got) == IMAGE
    assert_error(
        alice.post(
            "/v1/sessions/main/messages",
            json={"to": BOB_PHONE, "media": {"type": "image", "url": files + "/missing"}},
        ),
        422,
        "media_fetch_failed",
    )


def test_document_by_upload(gw: tuple[ZapgateProcess, Api, Api]) -> None:
    _, alice, bob = gw
    r = alice.post(
        "/v1/sessions/main/messages/media",
        data={"to": BOB_PHONE, "type": "document", "caption": "contrato"},
        files={"file": ("contrato.pdf", PDF, "application/pdf")},
        headers={"Idempotency-Key": "upload-1"},
    )
    assert r.status_code in (201, 202), r.text
    sent = r.json()
    assert sent["media"]["filename"] == "contrato.pdf"
    assert sent["media"]["mime"] == "application/pdf"
    got = sent_to(bob, alice, sent["id"])
    assert got["media"]["filename"] == "contrato.pdf"
    r2 = bob.get(got["media"]["url"])
    assert r2.content == PDF and "contrato.pdf" in r2.headers["content-disposition"]
    again = alice.post(
        "/v1/sessions/main/messages/media",
        data={"to": BOB_PHONE, "type": "document", "caption": "contrato"},
        files={"file": ("contrato.pdf", PDF, "application/pdf")},
        headers={"Idempotency-Key": "upload-1"},
    )
    assert again.status_code == 200 and again.json()["id"] == sent["id"]
    # The same key with another file, or another caption, is another request (item 11).
    for data, content in [
        ({"to": BOB_PHONE, "type": "document", "caption": "contrato"}, PDF + b"%v2\n"),
        ({"to": BOB_PHONE, "type": "document", "caption": "outro"}, PDF),
    ]:
        r = alice.post(
            "/v1/sessions/main/messages/media",
            data=data,
            files={"file": ("contrato.pdf", content, "application/pdf")},
            headers={"Idempotency-Key": "upload-1"},
        )
        assert_error(r, 422, "idempotency_key_reused")


def test_too_big_is_413_before_anything_is_sent(
    gw: tuple[ZapgateProcess, Api, Api], files: str
) -> None:
    _, alice, bob = gw
    before_out = alice.get("/v1/sessions/main/messages").json()["items"]
    before_in = inbound(bob)
    big64 = base64.b64encode(BIG).decode()
    attempts = [
        alice.post(
            "/v1/sessions/main/messages",
            json={"to": BOB_PHONE, "media": {"type": "image", "base64": big64}},
        ),
        alice.post(
            "/v1/sessions/main/messages",
            json={"to": BOB_PHONE, "media": {"type": "image", "url": files + "/big.png"}},
        ),
        alice.post(
            "/v1/sessions/main/messages/media",
            data={"to": BOB_PHONE, "type": "image"},
            files={"file": ("big.png", BIG, "image/png")},
        ),
    ]
    for r in attempts:
        assert_error(r, 413, "payload_too_large")
    # A document may be larger: the same bytes go as a document.
    r = alice.post(
        "/v1/sessions/main/messages",
        json={"to": BOB_PHONE, "media": {"type": "document", "base64": big64}},
    )
    assert r.status_code in (201, 202), r.text
    sent_to(bob, alice, r.json()["id"])
    out = alice.get("/v1/sessions/main/messages").json()["items"]
    assert len(out) == len(before_out) + 1  # only the document was stored
    assert len(inbound(bob)) == len(before_in) + 1  # and only it arrived


def test_bad_media_requests_are_422(gw: tuple[ZapgateProcess, Api, Api]) -> None:
    _, alice, _ = gw
    url = "/v1/sessions/main/messages"
    b64 = base64.b64encode(IMAGE).decode()
    for media, errcode in [
        ({"type": "hologram", "base64": b64}, "validation_error"),
        ({"type": "voice", "base64": b64}, "validation_error"),  # a PNG is no voice note
        ({"type": "image", "base64": "not base64!!"}, "validation_error"),
        ({"type": "image"}, "validation_error"),
        ({"type": "image", "base64": b64, "url": "http://x/"}, "validation_error"),
        ({"type": "image", "base64": base64.b64encode(PDF).decode()}, "validation_error"),
        ({"type": "audio", "base64": b64, "caption": "x"}, "validation_error"),
        ({"type": "image", "url": "ftp://example.com/a.png"}, "validation_error"),
    ]:
        assert_error(alice.post(url, json={"to": BOB_PHONE, "media": media}), 422, errcode)
    assert_error(
        alice.post(url, json={"to": BOB_PHONE, "text": "x", "media": {"type": "image"}}), 422
    )


def test_inbound_media_from_a_simulated_phone(gw: tuple[ZapgateProcess, Api, Api]) -> None:
    _, alice, bob = gw
    data = png_bytes(color=(1, 2, 3))
    r = alice.post(
        f"/v1/sim/phones/{STRANGER}/messages",
        json={
            "to": ALICE_PHONE,
            "text": "foto",
            "media": {"type": "image", "base64": base64.b64encode(data).decode()},
        },
    )
    assert r.status_code == 201, r.text
    got = received(alice, r.json()["id"])
    assert got["text"] == "foto" and got["chat"] == STRANGER
    assert got["media"]["mime"] == "image/png"
    assert download(alice, got) == data
    assert hashlib.sha256(download(alice, got)).digest() == hashlib.sha256(data).digest()
    # Another user: the session is theirs by name, the message is not.
    assert_error(bob.get(got["media"]["url"]), 404)
    assert_error(alice.get("/v1/sessions/main/messages/nope/media"), 404, "media_not_found")
    assert_error(alice.get("/v1/sessions/other/messages/x/media"), 404, "session_not_found")


def test_queued_media_goes_out_after_connect(gw: tuple[ZapgateProcess, Api, Api]) -> None:
    _, alice, bob = gw
    phone = "+5511999991009"
    assert alice.put("/v1/sessions/later", json={"engine": "sim", "start": False}).status_code in (
        200,
        201,
    )
    r = alice.post(
        "/v1/sessions/later/messages",
        json={
            "to": BOB_PHONE,
            "media": {"type": "image", "base64": base64.b64encode(IMAGE).decode()},
        },
    )
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    link(alice, "later", phone)
    got = sent_to(bob, alice, r.json()["id"], session="later")
    assert got["chat"] == phone and download(bob, got) == IMAGE
    wait_until(
        lambda: (
            alice.get("/v1/sessions/later/messages").json()["items"][0]["status"]
            in ("sent", "delivered", "read")
        ),
        what="the queued media to be sent",
    )


def test_private_url_without_the_flag_is_422(tmp_path: Path, files: str) -> None:
    port = free_port()
    env = base_env(tmp_path / "data", ZAPGATE_PORT=str(port))
    _, key = make_user(env, "ssrf@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp_path / "serve.log").start()
    try:
        api = Api(proc.url, key)
        api.put("/v1/sessions/s", json={"engine": "sim", "start": False})
        for url in (files + "/img.png", "http://169.254.169.254/latest/meta-data/"):
            r = api.post(
                "/v1/sessions/s/messages",
                json={"to": BOB_PHONE, "media": {"type": "image", "url": url}},
            )
            assert_error(r, 422, "url_not_allowed")
        assert api.get("/v1/sessions/s/messages").json()["items"] == []
    finally:
        proc.stop()


def test_bytes_that_are_not_the_declared_type_are_422(
    gw: tuple[ZapgateProcess, Api, Api], files: str
) -> None:
    # Issue 8 item 11: an "image" whose bytes were a PDF (or nothing known) was accepted.
    _, alice, bob = gw
    before_out, before_in = alice.get("/v1/sessions/main/messages").json()["items"], inbound(bob)
    url = "/v1/sessions/main/messages"

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    attempts: list[tuple[Any, str]] = [
        (
            alice.post(
                url + "/media",
                data={"to": BOB_PHONE, "type": "image"},
                files={"file": ("foto.png", PDF, "image/png")},
            ),
            "application/pdf",
        ),
        (
            alice.post(
                url,
                json={
                    "to": BOB_PHONE,
                    "media": {"type": "image", "base64": b64(IMAGE), "mime": "image/jpeg"},
                },
            ),
            "image/png",
        ),
        (
            alice.post(
                url, json={"to": BOB_PHONE, "media": {"type": "image", "url": files + "/fake.png"}}
            ),
            "no known file signature",
        ),
        (
            alice.post(
                url,
                json={
                    "to": BOB_PHONE,
                    "media": {"type": "document", "base64": b64(IMAGE), "mime": "application/pdf"},
                },
            ),
            "image/png",
        ),
        (
            alice.post(
                url,
                json={
                    "to": BOB_PHONE,
                    "media": {"type": "audio", "base64": b64(MP4), "mime": "audio/ogg"},
                },
            ),
            "video/mp4",
        ),
        (
            alice.post(
                url + "/media",
                data={"to": BOB_PHONE, "type": "video"},
                files={"file": ("clip.mp4", b"plain text, not a video", "video/mp4")},
            ),
            "no known file signature",
        ),
    ]
    for r, named in attempts:
        body = assert_error(r, 422, "media_type_mismatch")
        assert named in body["error"], body
    # The right declarations pass: an Ogg as audio/ogg, an MP4 upload as video/mp4.
    ok = alice.post(
        url,
        json={"to": BOB_PHONE, "media": {"type": "audio", "base64": b64(OGG), "mime": "audio/ogg"}},
    )
    assert ok.status_code in (201, 202), ok.text
    ok2 = alice.post(
        url + "/media",
        data={"to": BOB_PHONE, "type": "video"},
        files={"file": ("clip.mp4", MP4, "video/mp4")},
    )
    assert ok2.status_code in (201, 202), ok2.text
    out = alice.get("/v1/sessions/main/messages").json()["items"]
    assert len(out) == len(before_out) + 2
    sent_to(bob, alice, ok2.json()["id"])
    assert len(inbound(bob)) == len(before_in) + 2
