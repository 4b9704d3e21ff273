"""An unexpected exception is a 500 in the usual `{errcode, error, hint}` shape, and says
`Connection: close`, because the server drops the connection after it (issue 8 item 4)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from zapgate.http.errors import install_error_handlers


def broken_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app, localize=True)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug in a service")

    return app


async def test_an_internal_error_is_a_500_in_the_error_shape_with_connection_close() -> None:
    transport = httpx.ASGITransport(app=broken_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom", headers={"Accept-Language": "pt-BR"})
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"errcode", "error", "hint"}
    assert body["errcode"] == "internal_error"
    assert "a bug in a service" not in response.text  # no internals leak
    assert response.headers["connection"] == "close"
