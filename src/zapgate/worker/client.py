"""How the web tier talks to a worker: `WorkerAPI` is the one interface, implemented by the
in-process `Worker` (embedded topology, no HTTP hop) and by `HttpWorkerClient`."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from zapgate import errors
from zapgate.config import url_port
from zapgate.domain.contacts import AddressBookEntry, ContactProfile, NumberCheck
from zapgate.domain.content import NO_EXTRAS, Extras, MessageRef
from zapgate.i18n import N_
from zapgate.worker.schemas import (
    AddressBookOut,
    CheckOut,
    JournalPage,
    PairCodeOut,
    SendOut,
    SessionStatus,
    SimLogOut,
    WorkerHealth,
)


def _seg(value: str) -> str:
    """One URL path segment; a phone's '+' must survive the trip."""
    return quote(value, safe="")


class WorkerAPI(Protocol):
    async def health(self) -> WorkerHealth: ...

    async def start_session(
        self, client_id: str, session_dir: str, engine: str
    ) -> SessionStatus: ...

    async def stop_session(self, client_id: str) -> SessionStatus: ...

    async def logout_session(self, client_id: str) -> SessionStatus: ...

    async def delete_session(self, client_id: str) -> None: ...

    async def status(self, client_id: str) -> SessionStatus: ...

    async def pair_code(self, client_id: str, phone: str) -> str: ...

    async def send_text(
        self, client_id: str, message_id: str, to: str, text: str, extras: Extras = NO_EXTRAS
    ) -> str: ...

    async def send_media(
        self,
        client_id: str,
        message_id: str,
        to: str,
        *,
        kind: str,
        data: bytes,
        mime: str,
        filename: str | None,
        caption: str | None,
        extras: Extras = NO_EXTRAS,
    ) -> str: ...

    async def react(self, client_id: str, chat: str, target: MessageRef, emoji: str) -> str: ...

    async def edit(self, client_id: str, chat: str, target_id: str, text: str) -> str: ...

    async def revoke(self, client_id: str, chat: str, target: MessageRef) -> str: ...

    async def mark_read(
        self, client_id: str, chat: str, ids: Sequence[str], sender: str | None = None
    ) -> None: ...

    async def set_presence(self, client_id: str, chat: str, state: str) -> None: ...

    async def check_numbers(self, client_id: str, phones: Sequence[str]) -> list[NumberCheck]: ...

    async def contact_profile(self, client_id: str, address: str) -> ContactProfile: ...

    async def set_blocked(self, client_id: str, address: str, blocked: bool) -> None: ...

    async def address_book(self, client_id: str) -> list[AddressBookEntry]: ...

    async def reject_call(self, client_id: str, call_id: str, caller: str) -> None: ...

    async def media(self, client_id: str, message_id: str) -> bytes: ...

    async def events(self, after: int, limit: int = 100, wait: float = 0.0) -> JournalPage: ...

    async def sim_scan(self, qr: str, phone: str) -> str: ...

    async def sim_phone_send(
        self,
        phone: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Extras = NO_EXTRAS,
    ) -> str: ...

    async def sim_phone_send_own(self, owner: str, to: str, text: str) -> str: ...

    async def sim_phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str: ...

    async def sim_phone_edit(self, phone: str, to: str, target_id: str, text: str) -> str: ...

    async def sim_phone_revoke(self, phone: str, to: str, target_id: str) -> str: ...

    async def sim_phone_vote(
        self, phone: str, to: str, poll_id: str, options: Sequence[str]
    ) -> None: ...

    async def sim_phone_presence(self, phone: str, to: str, state: str) -> None: ...

    async def sim_off_whatsapp(self, phone: str) -> None: ...

    async def sim_set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
    ) -> None: ...

    async def sim_phone_call(self, phone: str, to: str, video: bool = False) -> str: ...

    async def sim_phone_save_contact(self, owner: str, phone: str, name: str) -> None: ...

    async def sim_phone_log(self, phone: str) -> list[dict[str, Any]]: ...


TOKEN_HEADER = "X-Zapgate-Worker-Token"


class HttpWorkerClient:
    """A worker reached over HTTP. Connection failures become `WorkerUnreachable` naming the
    URL and the port (`hint`: their hint, a template of `{port}`); error bodies become the
    GatewayError the worker raised."""

    def __init__(self, url: str, *, token: str | None, timeout: float, hint: str = "") -> None:
        self.url = url.rstrip("/")
        self.port = url_port(self.url)
        self.hint = hint
        headers = {TOKEN_HEADER: token} if token else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    def unreachable(self, exc: BaseException) -> errors.WorkerUnreachable:
        return errors.WorkerUnreachable(
            N_("WhatsApp worker not reachable at {worker_url} (port {port}): {detail}"),
            hint=self.hint or None,
            worker_url=self.url,
            port=self.port,
            detail=type(exc).__name__,
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        read_timeout: float | None = None,
        data: Any = None,
        files: Any = None,
        raw: bool = False,
    ) -> Any:
        try:
            kwargs: dict[str, Any] = {"json": json, "params": params}
            if files is not None:
                kwargs.update(data=data, files=files)
            if read_timeout is not None:
                kwargs["timeout"] = read_timeout
            resp = await self._http.request(method, path, **kwargs)
        except (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.RemoteProtocolError,
            httpx.ReadError,
        ) as exc:
            raise self.unreachable(exc) from exc
        except httpx.TimeoutException as exc:
            raise errors.WorkerUnreachable(
                N_("WhatsApp worker at {worker_url} (port {port}) did not answer in time"),
                hint=self.hint or None,
                worker_url=self.url,
                port=self.port,
            ) from exc
        if resp.status_code == 204:
            return None
        if raw and resp.is_success:
            return resp.content
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400:
            if resp.status_code == 401 and not isinstance(body, dict):
                body = {}
            if isinstance(body, dict) and "errcode" in body:
                if resp.status_code == 401:
                    raise errors.WorkerError(
                        N_("worker at {url} refused our token"),
                        hint=N_(
                            "Set the same ZAPGATE_WORKER_TOKEN on the web tier and the worker."
                        ),
                        url=self.url,
                    )
                raise errors.from_dict(body, resp.status_code)
            raise errors.WorkerError(
                N_("worker at {url} answered HTTP {status}"),
                hint=N_("Is something else listening on that port? `zapgate doctor` checks it."),
                url=self.url,
                status=resp.status_code,
            )
        return body

    async def health(self) -> WorkerHealth:
        return WorkerHealth.model_validate(await self._call("GET", "/internal/health"))

    async def start_session(self, client_id: str, session_dir: str, engine: str) -> SessionStatus:
        body = {"session_dir": session_dir, "engine": engine}
        data = await self._call("PUT", f"/internal/sessions/{client_id}", json=body)
        return SessionStatus.model_validate(data)

    async def stop_session(self, client_id: str) -> SessionStatus:
        data = await self._call("POST", f"/internal/sessions/{client_id}/stop")
        return SessionStatus.model_validate(data)

    async def logout_session(self, client_id: str) -> SessionStatus:
        data = await self._call("POST", f"/internal/sessions/{client_id}/logout")
        return SessionStatus.model_validate(data)

    async def delete_session(self, client_id: str) -> None:
        await self._call("DELETE", f"/internal/sessions/{client_id}")

    async def status(self, client_id: str) -> SessionStatus:
        data = await self._call("GET", f"/internal/sessions/{client_id}")
        return SessionStatus.model_validate(data)

    async def pair_code(self, client_id: str, phone: str) -> str:
        data = await self._call(
            "POST", f"/internal/sessions/{client_id}/pair-code", json={"phone": phone}
        )
        return PairCodeOut.model_validate(data).code

    async def send_text(
        self, client_id: str, message_id: str, to: str, text: str, extras: Extras = NO_EXTRAS
    ) -> str:
        body: dict[str, Any] = {"message_id": message_id, "to": to, "text": text}
        if extras:
            body["extras"] = extras.to_dict()
        data = await self._call("POST", f"/internal/sessions/{client_id}/messages", json=body)
        return SendOut.model_validate(data).id

    async def send_media(
        self,
        client_id: str,
        message_id: str,
        to: str,
        *,
        kind: str,
        data: bytes,
        mime: str,
        filename: str | None,
        caption: str | None,
        extras: Extras = NO_EXTRAS,
    ) -> str:
        fields = {"message_id": message_id, "to": to, "kind": kind, "mime": mime}
        if filename is not None:
            fields["filename"] = filename
        if caption is not None:
            fields["caption"] = caption
        if extras:
            fields["extras"] = json.dumps(extras.to_dict())
        body = await self._call(
            "POST",
            f"/internal/sessions/{client_id}/media",
            data=fields,
            files={"file": (filename or "media", data, mime)},
        )
        return SendOut.model_validate(body).id

    async def react(self, client_id: str, chat: str, target: MessageRef, emoji: str) -> str:
        body = {"chat": chat, "target": target.to_dict(), "emoji": emoji}
        data = await self._call("POST", f"/internal/sessions/{client_id}/reaction", json=body)
        return SendOut.model_validate(data).id

    async def edit(self, client_id: str, chat: str, target_id: str, text: str) -> str:
        body = {"chat": chat, "target_id": target_id, "text": text}
        data = await self._call("POST", f"/internal/sessions/{client_id}/edit", json=body)
        return SendOut.model_validate(data).id

    async def revoke(self, client_id: str, chat: str, target: MessageRef) -> str:
        body = {"chat": chat, "target": target.to_dict()}
        data = await self._call("POST", f"/internal/sessions/{client_id}/revoke", json=body)
        return SendOut.model_validate(data).id

    async def mark_read(
        self, client_id: str, chat: str, ids: Sequence[str], sender: str | None = None
    ) -> None:
        body = {"chat": chat, "ids": list(ids), "sender": sender}
        await self._call("POST", f"/internal/sessions/{client_id}/read", json=body)

    async def set_presence(self, client_id: str, chat: str, state: str) -> None:
        body = {"chat": chat, "state": state}
        await self._call("POST", f"/internal/sessions/{client_id}/presence", json=body)

    async def check_numbers(self, client_id: str, phones: Sequence[str]) -> list[NumberCheck]:
        body = {"phones": list(phones)}
        data = await self._call("POST", f"/internal/sessions/{client_id}/contacts/check", json=body)
        return [NumberCheck.from_dict(c) for c in CheckOut.model_validate(data).items]

    async def contact_profile(self, client_id: str, address: str) -> ContactProfile:
        body = {"address": address}
        path = f"/internal/sessions/{client_id}/contacts/profile"
        return ContactProfile.from_dict(await self._call("POST", path, json=body))

    async def set_blocked(self, client_id: str, address: str, blocked: bool) -> None:
        body = {"address": address, "blocked": blocked}
        await self._call("POST", f"/internal/sessions/{client_id}/contacts/block", json=body)

    async def address_book(self, client_id: str) -> list[AddressBookEntry]:
        data = await self._call("GET", f"/internal/sessions/{client_id}/contacts")
        return [AddressBookEntry.from_dict(e) for e in AddressBookOut.model_validate(data).items]

    async def reject_call(self, client_id: str, call_id: str, caller: str) -> None:
        body = {"call_id": call_id, "caller": caller}
        await self._call("POST", f"/internal/sessions/{client_id}/calls/reject", json=body)

    async def media(self, client_id: str, message_id: str) -> bytes:
        path = f"/internal/sessions/{client_id}/media/{quote(message_id, safe='')}"
        return bytes(await self._call("GET", path, raw=True))

    async def events(self, after: int, limit: int = 100, wait: float = 0.0) -> JournalPage:
        data = await self._call(
            "GET",
            "/internal/events",
            params={"after": after, "limit": limit, "wait": wait},
            read_timeout=wait + 10.0,
        )
        return JournalPage.model_validate(data)

    async def sim_scan(self, qr: str, phone: str) -> str:
        data = await self._call("POST", "/internal/sim/scan", json={"qr": qr, "phone": phone})
        return str(data["device_id"])

    async def sim_phone_send(
        self,
        phone: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Extras = NO_EXTRAS,
    ) -> str:
        wire = None
        if media is not None:
            wire = {**media, "data": base64.b64encode(bytes(media["data"])).decode()}
        body: dict[str, Any] = {"to": to, "text": text, "media": wire}
        if extras:
            body["extras"] = extras.to_dict()
        data = await self._call("POST", f"/internal/sim/phones/{_seg(phone)}/messages", json=body)
        return SendOut.model_validate(data).id

    async def sim_phone_send_own(self, owner: str, to: str, text: str) -> str:
        data = await self._call(
            "POST",
            f"/internal/sim/phones/{_seg(owner)}/own-messages",
            json={"to": to, "text": text},
        )
        return SendOut.model_validate(data).id

    async def sim_phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str:
        body = {"to": to, "target_id": target_id, "emoji": emoji}
        data = await self._call("POST", f"/internal/sim/phones/{_seg(phone)}/reactions", json=body)
        return SendOut.model_validate(data).id

    async def sim_phone_edit(self, phone: str, to: str, target_id: str, text: str) -> str:
        body = {"to": to, "target_id": target_id, "text": text}
        data = await self._call("POST", f"/internal/sim/phones/{_seg(phone)}/edits", json=body)
        return SendOut.model_validate(data).id

    async def sim_phone_revoke(self, phone: str, to: str, target_id: str) -> str:
        body = {"to": to, "target_id": target_id}
        data = await self._call("POST", f"/internal/sim/phones/{_seg(phone)}/revokes", json=body)
        return SendOut.model_validate(data).id

    async def sim_phone_vote(
        self, phone: str, to: str, poll_id: str, options: Sequence[str]
    ) -> None:
        body = {"to": to, "poll_id": poll_id, "options": list(options)}
        await self._call("POST", f"/internal/sim/phones/{_seg(phone)}/votes", json=body)

    async def sim_phone_presence(self, phone: str, to: str, state: str) -> None:
        body = {"to": to, "state": state}
        await self._call("POST", f"/internal/sim/phones/{_seg(phone)}/presence", json=body)

    async def sim_off_whatsapp(self, phone: str) -> None:
        await self._call("POST", f"/internal/sim/phones/{_seg(phone)}/off-whatsapp")

    async def sim_set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
    ) -> None:
        body = {"push_name": push_name, "about": about, "business": business, "picture": picture}
        await self._call("PUT", f"/internal/sim/phones/{_seg(phone)}/profile", json=body)

    async def sim_phone_call(self, phone: str, to: str, video: bool = False) -> str:
        body = {"to": to, "video": video}
        data = await self._call("POST", f"/internal/sim/phones/{_seg(phone)}/calls", json=body)
        return SendOut.model_validate(data).id

    async def sim_phone_save_contact(self, owner: str, phone: str, name: str) -> None:
        body = {"phone": phone, "name": name}
        await self._call("POST", f"/internal/sim/phones/{_seg(owner)}/contacts", json=body)

    async def sim_phone_log(self, phone: str) -> list[dict[str, Any]]:
        data = await self._call("GET", f"/internal/sim/phones/{_seg(phone)}/log")
        return SimLogOut.model_validate(data).items
