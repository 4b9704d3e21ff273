"""How a process reaches the simulated network: `SimLink`, in-process (`LocalSimLink`) or
over HTTP to `zapgate simnet` (`HttpSimLink`). The sim engine and the worker's /v1/sim
endpoints only ever see a SimLink."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import httpx

from zapgate.errors import ConfigError, EngineError, from_dict
from zapgate.i18n import N_
from zapgate.simnet.network import SimNetwork

logger = logging.getLogger(__name__)


@runtime_checkable
class SimLink(Protocol):
    """The operations of the simulated network; see SimNetwork for what each one does."""

    # device side
    async def connect(self, device_id: str, creds: Mapping[str, Any] | None) -> str | None: ...

    async def request_qr(self, device_id: str) -> str: ...

    async def pair_code(self, device_id: str, phone: str) -> str: ...

    async def send(
        self,
        device_id: str,
        request_id: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> str: ...

    async def react(
        self, device_id: str, chat: str, target: Mapping[str, Any], emoji: str
    ) -> str: ...

    async def edit(self, device_id: str, chat: str, target_id: str, text: str) -> str: ...

    async def revoke(self, device_id: str, chat: str, target: Mapping[str, Any]) -> str: ...

    async def mark_read(
        self, device_id: str, chat: str, ids: Sequence[str], sender: str | None = None
    ) -> None: ...

    async def set_presence(self, device_id: str, chat: str, state: str) -> None: ...

    async def check_numbers(
        self, device_id: str, phones: Sequence[str]
    ) -> list[dict[str, Any]]: ...

    async def contact_profile(self, device_id: str, address: str) -> dict[str, Any]: ...

    async def set_blocked(self, device_id: str, address: str, blocked: bool) -> None: ...

    async def address_book(self, device_id: str) -> list[dict[str, Any]]: ...

    async def reject_call(self, device_id: str, call_id: str, caller: str) -> None: ...

    async def pn_for_lid(self, device_id: str, lid: str) -> str | None: ...

    async def logout(self, device_id: str) -> None: ...

    async def disconnect(self, device_id: str) -> None: ...

    # `timeout` is how long the network may hold the poll open, a property of the
    # protocol rather than a cancel deadline, hence the noqa.
    async def next_events(
        self,
        device_id: str,
        after: int,
        timeout: float,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]: ...

    # phone side
    async def scan(self, qr: str, phone: str) -> str: ...

    async def enter_pair_code(self, phone: str, code: str) -> str: ...

    async def phone_send(
        self,
        phone: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> str: ...

    async def phone_send_own(self, owner: str, to: str, text: str) -> str: ...

    async def phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str: ...

    async def phone_edit(self, phone: str, to: str, target_id: str, text: str) -> str: ...

    async def phone_revoke(self, phone: str, to: str, target_id: str) -> str: ...

    async def phone_vote(
        self, phone: str, to: str, poll_id: str, options: Sequence[str]
    ) -> None: ...

    async def phone_presence(self, phone: str, to: str, state: str) -> None: ...

    async def phone_read(self, owner: str, chat: str) -> list[str]: ...

    async def phone_log(self, phone: str) -> list[dict[str, Any]]: ...

    async def phone_inbox(self, phone: str) -> list[dict[str, Any]]: ...

    async def set_push_name(self, phone: str, name: str) -> str: ...

    async def off_whatsapp(self, phone: str) -> None: ...

    async def set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
    ) -> None: ...

    async def phone_save_contact(self, owner: str, phone: str, name: str) -> None: ...

    async def phone_call(self, phone: str, to: str, *, video: bool = False) -> str: ...

    async def lid_of(self, phone: str) -> str: ...

    async def address_by_lid(self, phone: str, *, share_phone: bool) -> str: ...

    async def aclose(self) -> None: ...


class LocalSimLink:
    """Direct calls into a SimNetwork living in this process."""

    def __init__(self, network: SimNetwork) -> None:
        self.network = network

    async def connect(self, device_id: str, creds: Mapping[str, Any] | None) -> str | None:
        return await self.network.connect(device_id, creds)

    async def request_qr(self, device_id: str) -> str:
        return await self.network.request_qr(device_id)

    async def pair_code(self, device_id: str, phone: str) -> str:
        return await self.network.pair_code(device_id, phone)

    async def send(
        self,
        device_id: str,
        request_id: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> str:
        return await self.network.send(device_id, request_id, to, text, media, extras)

    async def react(self, device_id: str, chat: str, target: Mapping[str, Any], emoji: str) -> str:
        return await self.network.react(device_id, chat, target, emoji)

    async def edit(self, device_id: str, chat: str, target_id: str, text: str) -> str:
        return await self.network.edit(device_id, chat, target_id, text)

    async def revoke(self, device_id: str, chat: str, target: Mapping[str, Any]) -> str:
        return await self.network.revoke(device_id, chat, target)

    async def mark_read(
        self, device_id: str, chat: str, ids: Sequence[str], sender: str | None = None
    ) -> None:
        await self.network.mark_read(device_id, chat, ids, sender)

    async def set_presence(self, device_id: str, chat: str, state: str) -> None:
        await self.network.set_presence(device_id, chat, state)

    async def check_numbers(self, device_id: str, phones: Sequence[str]) -> list[dict[str, Any]]:
        return await self.network.check_numbers(device_id, phones)

    async def contact_profile(self, device_id: str, address: str) -> dict[str, Any]:
        return await self.network.contact_profile(device_id, address)

    async def set_blocked(self, device_id: str, address: str, blocked: bool) -> None:
        await self.network.set_blocked(device_id, address, blocked)

    async def address_book(self, device_id: str) -> list[dict[str, Any]]:
        return await self.network.address_book(device_id)

    async def reject_call(self, device_id: str, call_id: str, caller: str) -> None:
        await self.network.reject_call(device_id, call_id, caller)

    async def pn_for_lid(self, device_id: str, lid: str) -> str | None:
        return await self.network.pn_for_lid(device_id, lid)

    async def logout(self, device_id: str) -> None:
        await self.network.logout(device_id)

    async def disconnect(self, device_id: str) -> None:
        await self.network.disconnect(device_id)

    async def next_events(
        self,
        device_id: str,
        after: int,
        timeout: float,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        return await self.network.next_events(device_id, after, timeout)

    async def scan(self, qr: str, phone: str) -> str:
        return await self.network.scan(qr, phone)

    async def enter_pair_code(self, phone: str, code: str) -> str:
        return await self.network.enter_pair_code(phone, code)

    async def phone_send(
        self,
        phone: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> str:
        return await self.network.phone_send(phone, to, text, media, extras)

    async def phone_send_own(self, owner: str, to: str, text: str) -> str:
        return await self.network.phone_send_own(owner, to, text)

    async def phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str:
        return await self.network.phone_react(phone, to, target_id, emoji)

    async def phone_edit(self, phone: str, to: str, target_id: str, text: str) -> str:
        return await self.network.phone_edit(phone, to, target_id, text)

    async def phone_revoke(self, phone: str, to: str, target_id: str) -> str:
        return await self.network.phone_revoke(phone, to, target_id)

    async def phone_vote(self, phone: str, to: str, poll_id: str, options: Sequence[str]) -> None:
        await self.network.phone_vote(phone, to, poll_id, options)

    async def phone_presence(self, phone: str, to: str, state: str) -> None:
        await self.network.phone_presence(phone, to, state)

    async def phone_read(self, owner: str, chat: str) -> list[str]:
        return await self.network.phone_read(owner, chat)

    async def phone_log(self, phone: str) -> list[dict[str, Any]]:
        return await self.network.phone_log(phone)

    async def phone_inbox(self, phone: str) -> list[dict[str, Any]]:
        return await self.network.phone_inbox(phone)

    async def set_push_name(self, phone: str, name: str) -> str:
        return await self.network.set_push_name(phone, name)

    async def off_whatsapp(self, phone: str) -> None:
        await self.network.off_whatsapp(phone)

    async def set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
    ) -> None:
        await self.network.set_profile(
            phone, push_name=push_name, about=about, business=business, picture=picture
        )

    async def phone_save_contact(self, owner: str, phone: str, name: str) -> None:
        await self.network.phone_save_contact(owner, phone, name)

    async def phone_call(self, phone: str, to: str, *, video: bool = False) -> str:
        return await self.network.phone_call(phone, to, video=video)

    async def lid_of(self, phone: str) -> str:
        return await self.network.lid_of(phone)

    async def address_by_lid(self, phone: str, *, share_phone: bool) -> str:
        return await self.network.address_by_lid(phone, share_phone=share_phone)

    async def aclose(self) -> None:
        await self.network.aclose()


def _wire(media: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A media mapping ({kind, mime, filename, data: bytes}) as JSON: data in base64."""
    if media is None:
        return None
    return {**media, "data": base64.b64encode(bytes(media["data"])).decode()}


def _seg(value: str) -> str:
    """One URL path segment; a phone's '+' must survive the trip."""
    return quote(value, safe="")


class HttpSimLink:
    """The same operations over HTTP to `zapgate simnet` (see simnet.server)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        request_timeout: float | None = None,
    ) -> Any:
        try:
            resp = await self._client.request(
                method,
                path,
                json=json,
                params=params,
                timeout=self.timeout if request_timeout is None else request_timeout,
            )
        except httpx.TransportError as exc:
            detail = str(exc) or type(exc).__name__
            raise EngineError(
                N_("simulated network unreachable at {url} ({detail})"),
                hint=N_("Start it with `zapgate simnet --port {port}` or fix ZAPGATE_SIMNET_URL."),
                url=self.base_url,
                detail=detail,
                port=urlsplit(self.base_url).port or 80,
            ) from exc
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.is_success:
            return body
        if isinstance(body, dict) and "errcode" in body:
            raise from_dict(body, resp.status_code)
        raise EngineError(
            N_("simulated network at {url} answered {method} {path} with HTTP {status}"),
            hint=N_(
                "Check that ZAPGATE_SIMNET_URL points at `zapgate simnet`, not another service."
            ),
            url=self.base_url,
            method=method,
            path=path,
            status=resp.status_code,
        )

    async def connect(self, device_id: str, creds: Mapping[str, Any] | None) -> str | None:
        body = await self._call(
            "POST",
            f"/devices/{_seg(device_id)}/connect",
            json={"creds": None if creds is None else dict(creds)},
        )
        phone = body.get("phone")
        return str(phone) if phone else None

    async def request_qr(self, device_id: str) -> str:
        body = await self._call("POST", f"/devices/{_seg(device_id)}/qr")
        return str(body["qr"])

    async def pair_code(self, device_id: str, phone: str) -> str:
        body = await self._call(
            "POST", f"/devices/{_seg(device_id)}/pair-code", json={"phone": phone}
        )
        return str(body["code"])

    async def send(
        self,
        device_id: str,
        request_id: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> str:
        body = await self._call(
            "POST",
            f"/devices/{_seg(device_id)}/messages",
            json={
                "request_id": request_id,
                "to": to,
                "text": text,
                "media": _wire(media),
                "extras": None if extras is None else dict(extras),
            },
        )
        return str(body["id"])

    async def react(self, device_id: str, chat: str, target: Mapping[str, Any], emoji: str) -> str:
        body = await self._call(
            "POST",
            f"/devices/{_seg(device_id)}/reactions",
            json={"chat": chat, "target": dict(target), "emoji": emoji},
        )
        return str(body["id"])

    async def edit(self, device_id: str, chat: str, target_id: str, text: str) -> str:
        body = await self._call(
            "POST",
            f"/devices/{_seg(device_id)}/edits",
            json={"chat": chat, "target_id": target_id, "text": text},
        )
        return str(body["id"])

    async def revoke(self, device_id: str, chat: str, target: Mapping[str, Any]) -> str:
        body = await self._call(
            "POST",
            f"/devices/{_seg(device_id)}/revokes",
            json={"chat": chat, "target": dict(target)},
        )
        return str(body["id"])

    async def mark_read(
        self, device_id: str, chat: str, ids: Sequence[str], sender: str | None = None
    ) -> None:
        await self._call(
            "POST",
            f"/devices/{_seg(device_id)}/reads",
            json={"chat": chat, "ids": list(ids), "sender": sender},
        )

    async def set_presence(self, device_id: str, chat: str, state: str) -> None:
        await self._call(
            "POST", f"/devices/{_seg(device_id)}/presence", json={"chat": chat, "state": state}
        )

    async def check_numbers(self, device_id: str, phones: Sequence[str]) -> list[dict[str, Any]]:
        body = await self._call(
            "POST", f"/devices/{_seg(device_id)}/number-checks", json={"phones": list(phones)}
        )
        return [dict(c) for c in body["items"]]

    async def contact_profile(self, device_id: str, address: str) -> dict[str, Any]:
        body = await self._call("GET", f"/devices/{_seg(device_id)}/profiles/{_seg(address)}")
        return dict(body)

    async def set_blocked(self, device_id: str, address: str, blocked: bool) -> None:
        await self._call(
            "POST",
            f"/devices/{_seg(device_id)}/blocks",
            json={"address": address, "blocked": blocked},
        )

    async def address_book(self, device_id: str) -> list[dict[str, Any]]:
        body = await self._call("GET", f"/devices/{_seg(device_id)}/address-book")
        return [dict(e) for e in body["items"]]

    async def reject_call(self, device_id: str, call_id: str, caller: str) -> None:
        await self._call(
            "POST",
            f"/devices/{_seg(device_id)}/call-rejects",
            json={"call_id": call_id, "caller": caller},
        )

    async def pn_for_lid(self, device_id: str, lid: str) -> str | None:
        body = await self._call("GET", f"/devices/{_seg(device_id)}/lids/{_seg(lid)}")
        phone = body.get("phone")
        return str(phone) if phone else None

    async def logout(self, device_id: str) -> None:
        await self._call("POST", f"/devices/{_seg(device_id)}/logout")

    async def disconnect(self, device_id: str) -> None:
        await self._call("POST", f"/devices/{_seg(device_id)}/disconnect")

    async def next_events(
        self,
        device_id: str,
        after: int,
        timeout: float,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        body = await self._call(
            "GET",
            f"/devices/{_seg(device_id)}/events",
            params={"after": after, "timeout": timeout},
            # The server holds the request up to `timeout`; allow for that on top.
            request_timeout=timeout + self.timeout,
        )
        return [dict(e) for e in body["events"]]

    async def scan(self, qr: str, phone: str) -> str:
        body = await self._call("POST", f"/phones/{_seg(phone)}/scan", json={"qr": qr})
        return str(body["device_id"])

    async def enter_pair_code(self, phone: str, code: str) -> str:
        body = await self._call("POST", f"/phones/{_seg(phone)}/pair-code", json={"code": code})
        return str(body["device_id"])

    async def phone_send(
        self,
        phone: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> str:
        body = await self._call(
            "POST",
            f"/phones/{_seg(phone)}/messages",
            json={
                "to": to,
                "text": text,
                "media": _wire(media),
                "extras": None if extras is None else dict(extras),
            },
        )
        return str(body["id"])

    async def phone_send_own(self, owner: str, to: str, text: str) -> str:
        body = await self._call(
            "POST", f"/phones/{_seg(owner)}/own-messages", json={"to": to, "text": text}
        )
        return str(body["id"])

    async def phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str:
        body = await self._call(
            "POST",
            f"/phones/{_seg(phone)}/reactions",
            json={"to": to, "target_id": target_id, "emoji": emoji},
        )
        return str(body["id"])

    async def phone_edit(self, phone: str, to: str, target_id: str, text: str) -> str:
        body = await self._call(
            "POST",
            f"/phones/{_seg(phone)}/edits",
            json={"to": to, "target_id": target_id, "text": text},
        )
        return str(body["id"])

    async def phone_revoke(self, phone: str, to: str, target_id: str) -> str:
        body = await self._call(
            "POST", f"/phones/{_seg(phone)}/revokes", json={"to": to, "target_id": target_id}
        )
        return str(body["id"])

    async def phone_vote(self, phone: str, to: str, poll_id: str, options: Sequence[str]) -> None:
        await self._call(
            "POST",
            f"/phones/{_seg(phone)}/votes",
            json={"to": to, "poll_id": poll_id, "options": list(options)},
        )

    async def phone_presence(self, phone: str, to: str, state: str) -> None:
        await self._call("POST", f"/phones/{_seg(phone)}/presence", json={"to": to, "state": state})

    async def phone_read(self, owner: str, chat: str) -> list[str]:
        body = await self._call("POST", f"/phones/{_seg(owner)}/reads", json={"chat": chat})
        return [str(i) for i in body["ids"]]

    async def phone_log(self, phone: str) -> list[dict[str, Any]]:
        body = await self._call("GET", f"/phones/{_seg(phone)}/log")
        return [dict(e) for e in body["items"]]

    async def phone_inbox(self, phone: str) -> list[dict[str, Any]]:
        body = await self._call("GET", f"/phones/{_seg(phone)}/inbox")
        return [dict(m) for m in body["items"]]

    async def set_push_name(self, phone: str, name: str) -> str:
        body = await self._call("POST", f"/phones/{_seg(phone)}/push-name", json={"name": name})
        return str(body["name"])

    async def off_whatsapp(self, phone: str) -> None:
        await self._call("POST", f"/phones/{_seg(phone)}/off-whatsapp")

    async def set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
    ) -> None:
        await self._call(
            "PUT",
            f"/phones/{_seg(phone)}/profile",
            json={"push_name": push_name, "about": about, "business": business, "picture": picture},
        )

    async def phone_save_contact(self, owner: str, phone: str, name: str) -> None:
        await self._call(
            "POST", f"/phones/{_seg(owner)}/contacts", json={"phone": phone, "name": name}
        )

    async def phone_call(self, phone: str, to: str, *, video: bool = False) -> str:
        body = await self._call(
            "POST", f"/phones/{_seg(phone)}/calls", json={"to": to, "video": video}
        )
        return str(body["id"])

    async def lid_of(self, phone: str) -> str:
        body = await self._call("GET", f"/phones/{_seg(phone)}/lid")
        return str(body["lid"])

    async def address_by_lid(self, phone: str, *, share_phone: bool) -> str:
        body = await self._call(
            "POST", f"/phones/{_seg(phone)}/lid-addressing", json={"share_phone": share_phone}
        )
        return str(body["lid"])

    async def aclose(self) -> None:
        await self._client.aclose()


def make_sim_link(simnet_url: str | None, state_path: Path) -> SimLink:
    """An HttpSimLink when a simnet URL is configured, else an in-process network whose
    links persist at `state_path`."""
    if simnet_url:
        parts = urlsplit(simnet_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(
                N_("ZAPGATE_SIMNET_URL={url!r} is not an http(s) URL"),
                hint=N_("Use the address of `zapgate simnet`, e.g. http://127.0.0.1:5090."),
                url=simnet_url,
            )
        logger.info("sim engine: using the simulated network at %s", simnet_url)
        return HttpSimLink(simnet_url)
    return LocalSimLink(SimNetwork(state_path))


__all__ = ["HttpSimLink", "LocalSimLink", "SimLink", "make_sim_link"]
