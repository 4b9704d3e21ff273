"""SSRF guard: URLs we will call on a user's behalf (webhooks, media) must not reach
loopback, private, link-local (cloud metadata lives there), multicast or reserved
addresses, unless the operator allows it (ZAPGATE_ALLOW_PRIVATE_URLS=true).

The decision is taken on the address actually connected to: `net/client.py` resolves a
host once, passes every answer through `ensure_allowed` and connects to a checked
address (DNS rebinding cannot swap it afterwards). `check_url` is the early check, so a
webhook or a media URL is refused with a 422 when it is given, not only when it is used.
Errors never repeat what a host resolved to: that would tell a caller the internal DNS."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from zapgate.errors import UrlNotAllowed, ValidationFailed
from zapgate.i18n import N_

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges that carry an IPv4 address in their low 32 bits, reached through a
# translator or a tunnel: decided on the IPv4 address they lead to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
# IPv6 ranges refused whatever they embed: IPv4-compatible addresses (deprecated, RFC
# 4291; `::` and `::1` are in it) and local-use NAT64 (RFC 8215: a translator inside the
# operator's own network, the very thing the guard keeps callers out of).
_ALWAYS_REFUSED = (
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)


def _forbidden_v4(ip: ipaddress.IPv4Address) -> bool:
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a packet to `ip` is delivered through: IPv4-mapped
    (::ffff:0:0/96), NAT64 (64:ff9b::/96), 6to4 (2002::/16, its gateway) and Teredo
    (2001::/32, its server and its client)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def is_forbidden(ip: IPAddress) -> bool:
    """True when zapgate must not connect to `ip` for a user."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _forbidden_v4(ip)
    if any(ip in net for net in _ALWAYS_REFUSED):
        return True
    inner = embedded_ipv4(ip)
    if inner:
        return any(_forbidden_v4(v4) for v4 in inner)
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_site_local
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


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order (an IP literal is
    itself). Raises OSError when it does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # An IPv6 answer may carry a zone ("fe80::1%eth0"): the address is what is decided on.
    found = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    return list(dict.fromkeys(found))


def ensure_allowed(host: str, addresses: list[IPAddress], *, allow_private: bool) -> None:
    """Raise UrlNotAllowed when any address of `host` is forbidden: a host that answers
    with a private address among public ones could be rebinding."""
    if not allow_private and any(is_forbidden(ip) for ip in addresses):
        raise UrlNotAllowed(host=host)


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise ValidationFailed for a URL that is not http(s), and UrlNotAllowed (422) when
    it would reach a private address."""
    host, port = check_syntax(url)
    if allow_private:
        return
    try:
        addresses = await resolve(host, port)
    except OSError as exc:
        raise ValidationFailed(
            N_("url: cannot resolve {host!r}: {detail}"), host=host, detail=str(exc)
        ) from exc
    ensure_allowed(host, addresses, allow_private=False)
