"""The dashboard's Webhooks page over plain HTTP against a real `zapgate serve` (private
URLs allowed) and a loopback receiver: create through the form with the secret shown once,
list, send a test that arrives signed and shows up as delivered in the log, a 410 that
disables the webhook, delete; CSRF refused; another user's webhook is a 404.
(Private URLs refused when the flag is off: tests/api/test_dashboard.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.test_dashboard import HTML, csrf, signed_up
from tests.conftest import ZapgateProcess, base_env, free_port, wait_until
from tests.receiver import Receiver


@dataclass
class Site:
    proc: ZapgateProcess
    receiver: Receiver

    @property
    def url(self) -> str:
        return self.proc.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("dash-webhooks")
    port = free_port()
    env = base_env(
        tmp / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_ALLOW_PRIVATE_URLS="true",
        ZAPGATE_WEBHOOK_BACKOFF_BASE="0.2",
    )
    receiver = Receiver().start()
    proc = ZapgateProcess(args=["serve"], env=env, port=port, log_path=tmp / "serve.log")
    proc.start()
    try:
        yield Site(proc=proc, receiver=receiver)
    finally:
        proc.stop()
        receiver.stop()


def create(c: httpx.Client, url: str, events: list[str], secret: str = "") -> httpx.Response:
    token = csrf(c.get("/webhooks").text)
    return c.post(
        "/webhooks", data={"csrf_token": token, "url": url, "events": events, "secret": secret}
    )


def created_id(c: httpx.Client, url: str) -> int:
    r = create(c, url, [])
    assert r.status_code == 303, r.text
    page = c.get("/webhooks").text
    found = re.search(
        rf'data-webhook-id="(\d+)"[^>]*>\s*<td[^>]*><a href="/webhooks/\d+" '
        rf'class="break">{re.escape(url)}</a>',
        page,
    )
    assert found, page
    return int(found.group(1))


def post(c: httpx.Client, path: str, htmx: bool = False) -> httpx.Response:
    token = csrf(c.get("/webhooks").text)
    if htmx:
        return c.post(path, headers={"HX-Request": "true", "X-CSRF-Token": token})
    return c.post(path, data={"csrf_token": token})


def log_row_status(c: httpx.Client, hook_id: int) -> str | None:
    html = c.get(f"/ui/webhooks/{hook_id}/deliveries", headers={"HX-Request": "true"}).text
    found = re.search(r'data-delivery-id="\d+" data-status="(\w+)"', html)
    return found.group(1) if found else None


def test_create_ping_log_and_delete(site: Site) -> None:
    c = signed_up(site.url, "hooks@example.com")
    page = c.get("/webhooks")
    assert page.status_code == 200
    assert '<a href="/webhooks" aria-current="page">Webhooks</a>' in page.text
    assert "You have no webhooks yet." in page.text
    for event in ("message.received", "message.status", "session.status", "session.qr"):
        assert f'name="events" value="{event}"' in page.text

    url = site.receiver.url("/hook")
    r = create(c, url, ["message.received", "session.status"])
    assert r.status_code == 303 and r.headers["location"].startswith("/webhooks?new=")
    shown = c.get(r.headers["location"]).text
    secret = re.search(r'id="new-secret-value" class="mono" readonly value="([^"]+)"', shown)
    assert secret and secret.group(1).startswith("whsec_"), shown
    assert "it will not be shown again" in shown and "data-copy=" in shown
    again = c.get(r.headers["location"]).text  # shown once: a reload does not show it
    assert 'id="new-secret-value"' not in again and secret.group(1) not in again
    assert again.count("data-webhook-id=") == 1  # and the redirect made no second one
    row = re.search(r'<tr data-webhook-id="(\d+)" data-enabled="true">(.*?)</tr>', again, re.S)
    assert row, again
    hook_id = int(row.group(1))
    assert url in row.group(2) and "<code>message.received</code>" in row.group(2)
    assert "<code>session.status</code>" in row.group(2) and "session.qr" not in row.group(2)
    assert "Active" in row.group(2)

    log = c.get(f"/webhooks/{hook_id}")
    assert log.status_code == 200 and "Nothing sent yet." in log.text
    assert 'hx-trigger="every 10s"' in log.text  # nothing pending: slow polling

    # "Send test" from the list: a plain form, redirected to the log
    r = post(c, f"/webhooks/{hook_id}/ping")
    assert r.status_code == 303 and r.headers["location"] == f"/webhooks/{hook_id}?pinged=1"
    got = wait_until(lambda: site.receiver.got("/hook"), timeout=10, what="the ping")
    assert got[0].json["type"] == "webhook.ping"
    assert got[0].json["data"] == {"webhook_id": hook_id}
    assert got[0].signature_ok(secret.group(1))
    event_id = got[0].headers["x-zapgate-event-id"]
    wait_until(lambda: log_row_status(c, hook_id) == "delivered", timeout=10, what="delivered")
    log = c.get(f"/webhooks/{hook_id}?pinged=1").text
    assert "Test event sent." in log
    assert ">webhook.ping</code>" in log and event_id in log
    assert re.search(r'data-status="delivered">.*?Delivered', log, re.S)
    assert "<code>200</code>" in log

    # "Send test" on the log page goes through htmx: the log fragment comes back, polling
    r = post(c, f"/webhooks/{hook_id}/ping", htmx=True)
    assert r.status_code == 200 and 'id="deliveries"' in r.text
    assert 'id="ping-feedback"' in r.text and 'hx-swap-oob="true"' in r.text
    wait_until(lambda: len(site.receiver.got("/hook")) == 2, timeout=10, what="the 2nd ping")
    wait_until(
        lambda: c.get(f"/webhooks/{hook_id}").text.count('data-status="delivered"') == 2,
        timeout=10,
        what="both delivered",
    )

    # the same page in Portuguese, dates per locale
    pt = c.get(f"/webhooks/{hook_id}", headers={"Accept-Language": "pt-BR"}).text
    assert "Registro de entregas" in pt and "Entregue" in pt and "Enviar teste" in pt
    assert re.search(r"\d{2}/\d{2}/\d{4},? \d{2}:\d{2}", pt)

    r = post(c, f"/webhooks/{hook_id}/delete")
    assert r.status_code == 303 and r.headers["location"] == "/webhooks?deleted=1"
    listing = c.get("/webhooks?deleted=1").text
    assert "The webhook was deleted." in listing and "data-webhook-id=" not in listing
    gone = c.get(f"/webhooks/{hook_id}")
    assert gone.status_code == 404 and "Page not found" in gone.text


def test_retries_and_410_disable_are_shown(site: Site) -> None:
    c = signed_up(site.url, "flaky@example.com")
    site.receiver.fail_first["/flaky"] = 1
    flaky = created_id(c, site.receiver.url("/flaky"))
    post(c, f"/webhooks/{flaky}/ping")
    wait_until(lambda: log_row_status(c, flaky) == "delivered", timeout=10, what="retried")
    html = c.get(f"/webhooks/{flaky}").text
    attempts = re.search(r'data-label="Attempts">(\d+)<', html)
    assert attempts and attempts.group(1) == "2", html

    site.receiver.gone.add("/gone")
    gone = created_id(c, site.receiver.url("/gone"))
    post(c, f"/webhooks/{gone}/ping")
    wait_until(lambda: log_row_status(c, gone) == "failed", timeout=10, what="410")
    html = c.get(f"/webhooks/{gone}").text
    assert "<code>410</code>" in html and "410 Gone: webhook disabled" in html
    assert "Disabled" in html and "the receiver answered 410 Gone" in html
    assert 'id="ping"' not in html  # no "Send test" for a disabled webhook
    # a forced ping is refused with a readable, translated message
    token = csrf(c.get("/webhooks").text)
    r = c.post(
        f"/webhooks/{gone}/ping",
        data={"csrf_token": token},
        headers={"Accept-Language": "pt-BR"},
    )
    assert r.status_code == 422
    assert f"O webhook {gone} está desativado" in r.text
    assert 'role="alert"' in r.text


def test_forms_need_the_csrf_token(site: Site) -> None:
    c = signed_up(site.url, "csrf-hooks@example.com")
    url = site.receiver.url("/csrf")
    r = c.post("/webhooks", data={"url": url})
    assert r.status_code == 403 and "did not come from this site" in r.text
    other = csrf(httpx.get(site.url + "/signup", headers=HTML).text)
    assert c.post("/webhooks", data={"url": url, "csrf_token": other}).status_code == 403
    assert "data-webhook-id=" not in c.get("/webhooks").text
    hook_id = created_id(c, url)
    assert c.post(f"/webhooks/{hook_id}/delete", data={}).status_code == 403
    assert c.post(f"/webhooks/{hook_id}/ping", data={"csrf_token": other}).status_code == 403
    r = c.post(f"/webhooks/{hook_id}/ping", headers={"HX-Request": "true"})
    assert "did not come from this site" in r.text
    assert f'data-webhook-id="{hook_id}"' in c.get("/webhooks").text  # still there
    assert "Nothing sent yet." in c.get(f"/webhooks/{hook_id}").text  # and never pinged


def test_another_users_webhook_is_404(site: Site) -> None:
    bob = signed_up(site.url, "bob-hooks@example.com")
    mallory = signed_up(site.url, "mallory-hooks@example.com")
    url = site.receiver.url("/bob-secret-path")
    hook_id = created_id(bob, url)
    for path in (f"/webhooks/{hook_id}", f"/ui/webhooks/{hook_id}/deliveries"):
        r = mallory.get(path)
        assert r.status_code == 404 and "Page not found" in r.text
        assert "bob-secret-path" not in r.text
    for action in ("ping", "delete"):
        r = post(mallory, f"/webhooks/{hook_id}/{action}")
        assert r.status_code == 404 and "bob-secret-path" not in r.text
    assert "bob-secret-path" not in mallory.get("/webhooks").text
    assert site.receiver.got("/bob-secret-path") == []
    assert f'data-webhook-id="{hook_id}"' in bob.get("/webhooks").text
    assert "Nothing sent yet." in bob.get(f"/webhooks/{hook_id}").text
