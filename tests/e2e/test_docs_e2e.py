"""`/docs` renders in a real browser with no internet: Swagger UI's assets come from the
package (issue 8.18: FastAPI's default loads them from a CDN and the page stayed blank).
Every request the page makes is checked to stay on the zapgate server."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.e2e.conftest import DESKTOP, Site, shot, sync_api

expect = sync_api.expect


def test_docs_render_offline_from_packaged_assets(site: Site, browser: Any) -> None:
    ctx = browser.new_context(viewport=DESKTOP)
    try:
        page = ctx.new_page()
        hosts: set[str] = set()
        page.on("request", lambda req: hosts.add(urlsplit(req.url).netloc))
        page.goto(site.url + "/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("zapgate")
        # The operations of the API are listed (the OpenAPI 3.1 document was understood).
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
        assert page.locator(".opblock").count() > 10
        assert hosts == {urlsplit(site.url).netloc}, hosts
        shot(page, "docs-desktop")
    finally:
        ctx.close()
