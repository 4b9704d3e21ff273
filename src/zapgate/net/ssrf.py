"""SSRF guard: URLs we will call on a user's behalf (webhooks, media) must not resolve to
loopback, private, link-local (cloud metadata lives there), multicast or reserved
addresses, unless the operator allows it (ZAPGATE_ALLOW_PRIVATE_URLS=true)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from zapgate.errors import ValidationFailed


class UrlNotAllowed(ValidationFailed):
    errcode = "url_not_allowed"
    default_hint = (
        "Use a public http(s) URL. Operators can allow private addresses with "
        "ZAPGATE_ALLOW_PRIVATE_URLS=true."
    )


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _forbidden(ip.ipv4_mapped)
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def check_syntax(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationFailed(f"url: {url[:100]!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ValidationFailed(
            "url: credentials in the URL are not allowed",
            hint="Put secrets in the webhook secret, not in the URL.",
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValidationFailed(f"url: bad port in {url[:100]!r}") from exc
    return parts.hostname, port


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UrlNotAllowed (422) when `url` would reach a private address."""
    host, port = check_syntax(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValidationFailed(f"url: cannot resolve {host!r}: {exc}") from exc
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if _forbidden(ip):
            raise UrlNotAllowed(f"url: {host} resolves to {ip}, a non-public address")
