"""Browser tests: Playwright driving Debian's Chromium (never a downloaded browser)
against one real `zapgate serve` process per module, on 127.0.0.1 only."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ZapgateProcess, base_env, free_port, run_cli

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery"

if not Path(CHROMIUM).exists():  # `make test` installs it from Debian's packages
    pytest.skip(
        f"{CHROMIUM} is missing: apt-get install -y chromium (make test does)",
        allow_module_level=True,
    )

sync_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Site:
    proc: ZapgateProcess
    env: dict[str, str]
    admin_email: str

    @property
    def url(self) -> str:
        return self.proc.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("e2e")
    port = free_port()
    env = base_env(
        tmp / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_QR_FIRST_TTL="60",
        ZAPGATE_QR_TTL="30",
        ZAPGATE_TIMEZONE="America/Sao_Paulo",
        ZAPGATE_ALLOW_PRIVATE_URLS="true",  # webhooks to tests/receiver.py on 127.0.0.1
    )
    admin = "admin@zapgate.test"
    out = run_cli(["users", "create", admin, "--admin", "--password-stdin"], env, PASSWORD + "\n")
    assert out.returncode == 0, out.stderr
    proc = ZapgateProcess(args=["serve"], env=env, port=port, log_path=tmp / "serve.log")
    proc.start()
    try:
        yield Site(proc=proc, env=env, admin_email=admin)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def shot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)
