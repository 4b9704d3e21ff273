"""Schemathesis hooks for tests/api/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

The server resolves a webhook's or a media message's URL (DNS) before its SSRF guard
refuses it, so a random host name could leave the machine. Every generated `url` is
rewritten, just before the request goes, to a literal loopback address: no name to
resolve, and the guard (ZAPGATE_ALLOW_PRIVATE_URLS=false) refuses it before any connection.
The rest of each URL (path, query) is kept, so parsing is still fuzzed. A text sent with
`link_preview` has every link in it pointed at that address the same way."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import schemathesis

LOOPBACK = "http://127.0.0.1:9/"
LINK = re.compile(r"https?://", re.IGNORECASE)


def _local(value: Any) -> Any:
    return LOOPBACK + quote(value, safe="/?=&")[:200] if isinstance(value, str) else value


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    if "url" in body:
        body["url"] = _local(body["url"])
    if body.get("link_preview") and isinstance(body.get("text"), str):
        body["text"] = LINK.sub(LOOPBACK, body["text"])
    media = body.get("media")
    if isinstance(media, dict) and "url" in media:
        media["url"] = _local(media["url"])
