"""Reasons a whatsmeow session shows, from what Go reported as text: its dial errors as
a DISCONNECTED reason naming the host. (The worker's side: no neonize here.)"""

from __future__ import annotations

import re

WHATSAPP_HOST = "web.whatsapp.com"
WHATSAPP_PORT = 443

# Where Go's dial errors name the host, most precise first: the proxy's target, the URL,
# a failed lookup or dial.
_HOST_RES = (
    re.compile(r"->([\w.-]+:\d+)"),
    re.compile(r"https?://([\w.-]+)"),
    re.compile(r"lookup ([\w.-]+)"),
    re.compile(r"dial tcp ([\w.-]+:\d+)"),
)


def dial_reason(error: str, default_host: str = f"{WHATSAPP_HOST}:{WHATSAPP_PORT}") -> str:
    """A short DISCONNECTED reason that names the host that could not be reached."""
    host = default_host
    for pattern in _HOST_RES:
        if match := pattern.search(error):
            host = match.group(1)
            break
    detail = error.rsplit(": ", 1)[-1] if ": " in error else error
    return f"cannot reach {host}: {detail}"[:300]
