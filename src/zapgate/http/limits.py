"""A pure-ASGI guard that refuses request bodies over a size limit with 413, whether the
client announced the size (Content-Length) or streams it (chunked)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zapgate.errors import PayloadTooLarge
from zapgate.http.errors import json_error_body
from zapgate.i18n import N_


class BodyLimitMiddleware:
    """`max_bytes` for every path, except those matching one of `overrides`
    ((path regex, limit): the media routes take larger bodies)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        overrides: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = [(re.compile(p), n) for p, n in overrides]

    def _limit(self, scope: Scope) -> int:
        path = str(scope.get("path", ""))
        for pattern, limit in self.overrides:
            if pattern.fullmatch(path):
                return limit
        return self.max_bytes

    def _error(self, limit: int) -> PayloadTooLarge:
        if limit != self.max_bytes:
            hint = N_(
                "Send a smaller file; ZAPGATE_MAX_MEDIA_BYTES / _DOCUMENT_BYTES set the limit."
            )
        else:
            hint = N_("Send a smaller body; ZAPGATE_MAX_BODY_BYTES sets the limit.")
        return PayloadTooLarge(hint=hint, n=limit)

    async def _reject(self, send: Send, limit: int) -> None:
        body = json_error_body(self._error(limit))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send, limit)
                    return
        if not _has_body(scope):
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read the body here, up to the limit, then replay it.
        # Raising from inside `receive` would be turned into a 400 by the body parser.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > limit:
                await self._reject(send, limit)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replay: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([replay], receive), send)


def _has_body(scope: Scope) -> bool:
    names = {name for name, _ in scope.get("headers", [])}
    return b"content-length" not in names and scope.get("method") in {"POST", "PUT", "PATCH"}


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
