"""The limit of the server stack: a bare ASGI endpoint served exactly as `zapgate serve`
serves its app (`zapgate.cli._serve_asgi`: the same listener, uvicorn options and log
set-up), answering `POST /v1/sessions/{name}/messages` by validating the body with
zapgate's own `SendMessage` model and returning a `MessagePublic`, but with no routing
framework, authentication, database or worker behind it. The send benchmark measures it
beside the real send path, in the same run, with the same load generator.

    python -m bench.bare --port 8100    # serve it (the send benchmark starts it itself)
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from zapgate.domain.ids import identity, new_message_id
from zapgate.web.schemas.messages import MessagePublic, SendMessage

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] != "POST":
        await _respond(send, 200, b'{"status":"ok"}')
        return
    try:
        sent = SendMessage.model_validate_json(body)
    except ValidationError as exc:
        await _respond(send, 422, exc.json().encode())
        return
    out = MessagePublic(
        id=new_message_id(),
        direction="out",
        chat=sent.to,
        **identity(sent.to, None),
        text=sent.text,
        status="queued",
        status_reason=None,
        created_at=datetime.now(UTC),
    )
    await _respond(send, 202, out.model_dump_json().encode())


def main() -> None:
    from zapgate.cli import _serve_asgi

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    _serve_asgi(app, "127.0.0.1", ap.parse_args().port, "warning")


if __name__ == "__main__":
    main()
