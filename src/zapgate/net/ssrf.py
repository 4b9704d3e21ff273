"""SSRF guard: URLs we will call on a user's behalf (webhooks, media) must not resolve to
loopback, private, link-local (cloud metadata lives there), multicast or reserved
addresses, unless the operator allows it (ZAPGATE_ALLOW_PRIVATE_URLS=true)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from zapgate.errors import UrlNotAllowed, ValidationFailed
from zapgate.i18n import N_


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
        raise ValidationFailed(N_("url: {url!r} is not an http(s) URL"), url=url[:100])
    if parts.username or parts.password:
        raise ValidationFailed(
            N_("url: credentials in the URL are not allowed"),
            hint=N_("Put secrets in the webhook secret, not in the URL."),
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValidationFailed(N_("url: bad port in {url!r}"), url=url[:100]) from exc
    return parts.hostname, port


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UrlNotAllowed (422) when `url` would reach a private address."""
    host, port = check_syntax(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValidationFailed(
            N_("url: cannot resolve {host!r}: {detail}"), host=host, detail=str(exc)
        ) from exc
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if _forbidden(ip):
            raise UrlNotAllowed(host=host, ip=str(ip))
